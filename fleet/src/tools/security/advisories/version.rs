//! Package versions and their order: SemVer (tolerating a leading `v` and short versions, as
//! crates.io, npm and Go tags are written) and PEP 440 (epoch, release, pre/post/dev
//! releases) for PyPI.

use std::cmp::Ordering;

/// Longest version string accepted (an argument or a lockfile entry).
pub(super) const MAX_VERSION_BYTES: usize = 128;

/// A version in one ecosystem's scheme. Versions of different schemes never meet (the
/// ecosystem decides the scheme), but the order is total anyway: SemVer sorts first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version {
    Sem(semver::Version),
    Pep(PepVersion),
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Version::Sem(a), Version::Sem(b)) => a.cmp_precedence(b),
            (Version::Pep(a), Version::Pep(b)) => a.cmp(b),
            (Version::Sem(_), Version::Pep(_)) => Ordering::Less,
            (Version::Pep(_), Version::Sem(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer, tolerating a leading `v` and one- or two-part versions.
pub(super) fn parse_semverish(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('V'))
        .unwrap_or(s);
    if s.is_empty() || s.len() > MAX_VERSION_BYTES {
        return None;
    }
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let split = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(split);
    let parts = core.split('.').count();
    if !(1..=2).contains(&parts) || core.split('.').any(|p| p.is_empty()) {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok()
}

/// Sort key of a [`PepVersion`]: epoch, release, pre-release phase, post, dev.
pub(super) type PepKey<'a> = (u64, &'a [u64], (u8, u8, u64), (u8, u64), (u8, u64));

/// A PEP 440 version, reduced to what ordering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PepVersion {
    pub(super) epoch: u64,
    /// Release segments with trailing zeros removed (`1.0.0` == `1`).
    pub(super) release: Vec<u64>,
    /// Pre-release: (0 = alpha, 1 = beta, 2 = rc, number).
    pub(super) pre: Option<(u8, u64)>,
    pub(super) post: Option<u64>,
    pub(super) dev: Option<u64>,
}

impl PepVersion {
    /// Parses a PEP 440 version (normalised spellings accepted, e.g. `1.0-RC.1`, `v2`,
    /// `1.0.post1`, `1.0-1`, `1!2.0`, `1.0+local`).
    pub(crate) fn parse(input: &str) -> Option<Self> {
        let lower = input.trim().to_ascii_lowercase();
        if lower.is_empty() || lower.len() > MAX_VERSION_BYTES {
            return None;
        }
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        // Local version label: validated, then ignored.
        let s = match s.split_once('+') {
            Some((public, local)) => {
                if local.is_empty()
                    || !local
                        .split(['.', '-', '_'])
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    return None;
                }
                public
            }
            None => s,
        };
        let (epoch, s) = match s.split_once('!') {
            Some((e, rest)) => (e.parse::<u64>().ok()?, rest),
            None => (0, s),
        };
        let b = s.as_bytes();
        let mut i = 0;
        let mut release = Vec::with_capacity(4);
        loop {
            let (n, next) = read_number(b, i)?;
            release.push(n);
            i = next;
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        // Pre-release.
        let j = skip_sep(b, i);
        if let Some((kind, len)) = match_word(
            b,
            j,
            &[
                ("alpha", 0),
                ("beta", 1),
                ("preview", 2),
                ("pre", 2),
                ("rc", 2),
                ("a", 0),
                ("b", 1),
                ("c", 2),
            ],
        ) {
            let k = skip_sep(b, j + len);
            let (n, next) = read_number(b, k).unwrap_or((0, j + len));
            pre = Some((kind, n));
            i = next;
        }
        // Post-release: `-N` or `[sep]post|rev|r[sep]N`.
        if i < b.len() && b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let (n, next) = read_number(b, i + 1)?;
            post = Some(n);
            i = next;
        } else {
            let j = skip_sep(b, i);
            if let Some((_, len)) = match_word(b, j, &[("post", 0), ("rev", 0), ("r", 0)]) {
                let k = skip_sep(b, j + len);
                let (n, next) = read_number(b, k).unwrap_or((0, j + len));
                post = Some(n);
                i = next;
            }
        }
        // Dev-release.
        let j = skip_sep(b, i);
        if let Some((_, len)) = match_word(b, j, &[("dev", 0)]) {
            let k = skip_sep(b, j + len);
            let (n, next) = read_number(b, k).unwrap_or((0, j + len));
            dev = Some(n);
            i = next;
        }
        if i != b.len() {
            return None;
        }
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Some(Self {
            epoch,
            release,
            pre,
            post,
            dev,
        })
    }

    pub(super) fn key(&self) -> PepKey<'_> {
        // PEP 440: 1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0 < 1.0.post1.dev0 < 1.0.post1
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (0, 0, 0),
            (Some((kind, n)), _, _) => (1, kind, n),
            (None, _, _) => (2, 0, 0),
        };
        let post = self.post.map_or((0, 0), |n| (1, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, &self.release, pre, post, dev)
    }
}

impl Ord for PepVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (ae, ar, ap, apo, ad) = self.key();
        let (be, br, bp, bpo, bd) = other.key();
        ae.cmp(&be)
            .then_with(|| cmp_release(ar, br))
            .then(ap.cmp(&bp))
            .then(apo.cmp(&bpo))
            .then(ad.cmp(&bd))
    }
}

impl PartialOrd for PepVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares release tuples, padding the shorter with zeros.
pub(super) fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

pub(super) fn read_number(b: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut i = start;
    let mut n: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    (i > start).then_some((n, i))
}

pub(super) fn skip_sep(b: &[u8], i: usize) -> usize {
    if i < b.len() && matches!(b[i], b'.' | b'-' | b'_') {
        i + 1
    } else {
        i
    }
}

pub(super) fn match_word(b: &[u8], i: usize, words: &[(&str, u8)]) -> Option<(u8, usize)> {
    let rest = b.get(i..)?;
    words
        .iter()
        .find(|(w, _)| rest.starts_with(w.as_bytes()))
        .map(|&(w, kind)| (kind, w.len()))
}
