//! Reading the log back at open, deciding what every finding means, and deleting what git
//! holds. The rules, so that no acknowledged write is ever dropped silently:
//!
//! - segments whose successor starts at or below `head + 1` (git's version) are wholly in git:
//!   not read (their damage cannot matter) and deleted when repairing;
//! - a batch counts only once its batch-end frame is read and matches its records, so a batch
//!   is recovered whole or not at all (the owner acknowledges it only after that frame is
//!   synced with it);
//! - damage with no batch end after it in the last segment is a torn tail (never acknowledged):
//!   cut from the start of its batch, with a warning. If only the final batch's end frame is
//!   damaged while its records are all good, the batch was written whole: it is kept;
//! - damage after which the log resumes at a version git holds is skipped with a note;
//! - anything else is damage to acknowledged writes: opening is refused with
//!   [`WalError::Damaged`], which names the file, the byte, the versions at stake and how to
//!   recover, and nothing on disk is changed.

use std::{
    fs::{self, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use super::error::WalError;
use super::format::{is_v2, near_end_frame, segments, sync_dir};
use super::scan::{Item, Segment, scan};
use crate::memory::op::Record;

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Records with a version above the one asked for, in order.
    pub records: Vec<Record>,
    /// Records at or below it (already in git), counted only.
    pub committed: u64,
    /// A torn tail: (segment, offset, bytes). Cut off when repairing.
    pub torn: Option<(PathBuf, u64, u64)>,
    /// Damage that loses nothing (in versions git holds, a segment header), for `verify`.
    pub notes: Vec<String>,
}

/// Reads the log past `head` (the version git holds) by the rules above. With `repair`, a
/// torn tail is truncated away (and synced) and segments wholly in git are deleted.
pub(crate) fn recover(dir: &Path, head: u64, repair: bool) -> Result<Recovered, WalError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalError::Io { path, source }
    };
    let segs = match segments(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let in_git = segs.windows(2).take_while(|p| p[1].0 <= head + 1).count();
    let mut read = Vec::new();
    for (first, path) in &segs[in_git..] {
        let buf = fs::read(path).map_err(io_err(path))?;
        read.push(scan(*first, path.clone(), is_v2(path), &buf, head));
    }
    let repo = dir.ancestors().nth(2).unwrap_or(dir).to_path_buf();
    let mut d = Decider {
        head,
        segs: &read,
        repo,
        out: Recovered::default(),
        last: None,
        pending: Vec::new(),
        pending_at: 0,
        last_close: read
            .last()
            .and_then(|s| s.items.iter().rposition(|i| i.closes(s.v2))),
    };
    d.run()?;
    let out = d.out;
    if repair {
        if let Some((path, at, bytes)) = &out.torn {
            tracing::warn!(wal = %path.display(), offset = at, bytes, "cutting a torn batch off the WAL tail (it was never acknowledged)");
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err(path))?;
            f.set_len(*at).map_err(io_err(path))?;
            f.sync_all().map_err(io_err(path))?;
        }
        for (_, path) in &segs[..in_git] {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        if in_git > 0 {
            sync_dir(dir).map_err(io_err(dir))?;
        }
    }
    Ok(out)
}

/// The second pass over the segments read, in order.
struct Decider<'a> {
    head: u64,
    segs: &'a [Segment],
    repo: PathBuf,
    out: Recovered,
    /// Version of the last batch accepted (None at the start and after skipped damage).
    last: Option<u64>,
    /// Records of the batch being read, and where it starts in its segment.
    pending: Vec<(u64, Option<&'a Record>)>,
    pending_at: u64,
    /// Index of the last batch end (or format-1 record) in the last segment: damage before
    /// it cannot be a torn tail.
    last_close: Option<usize>,
}

impl<'a> Decider<'a> {
    fn run(&mut self) -> Result<(), WalError> {
        let segs = self.segs;
        for (si, seg) in segs.iter().enumerate() {
            if let Some(n) = &seg.header_note {
                self.note(format!(
                    "{}: {n} (its frames are read anyway)",
                    seg.path.display()
                ));
            }
            let mut first_in_segment = true;
            for (ii, item) in seg.items.iter().enumerate() {
                match item {
                    Item::Record {
                        version,
                        record,
                        at,
                    } => {
                        self.check_next(si, ii, *version, first_in_segment)?;
                        first_in_segment = false;
                        if self.pending.is_empty() {
                            self.pending_at = *at;
                        }
                        self.pending.push((*version, record.as_ref()));
                        if !seg.v2 {
                            self.accept(*version);
                        }
                    }
                    Item::End {
                        end,
                        version,
                        at,
                        crc_ok,
                    } => {
                        let p = &self.pending;
                        let matches = p.last().is_some_and(|r| r.0 == *version)
                            && u64::from(end.count) == (version + 1).saturating_sub(end.first)
                            && (p[0].0 == end.first && *crc_ok
                                // Resumed inside this batch after damage git holds.
                                || p[0].0 > end.first && p[0].0 <= self.head + 1);
                        if !matches && *version > self.head {
                            let reason = format!(
                                "batch end of versions {}..={version} does not match the records before it",
                                end.first
                            );
                            return Err(self.damaged(si, ii, *at, reason));
                        }
                        self.accept(*version);
                    }
                    Item::Damage {
                        at,
                        end,
                        reason,
                        raw,
                    } => {
                        if self.damage(si, ii, *at, *end, reason, raw)? {
                            return Ok(());
                        }
                    }
                }
            }
            if !self.pending.is_empty() {
                let seg_end = seg.len;
                if si + 1 == self.segs.len() {
                    // Cut at a frame boundary inside the last batch: torn as well.
                    self.out.torn =
                        Some((seg.path.clone(), self.pending_at, seg_end - self.pending_at));
                } else if self.pending.iter().any(|r| r.0 > self.head) {
                    let reason = "a batch without its end frame, and newer segments follow".into();
                    return Err(self.damaged(si, seg.items.len(), self.pending_at, reason));
                }
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Versions must continue: from `head + 1` on, each the one before plus one, and a
    /// segment starts with the version it is named for.
    fn check_next(&self, si: usize, ii: usize, v: u64, first: bool) -> Result<(), WalError> {
        let seg = &self.segs[si];
        if v <= self.head {
            return Ok(());
        }
        let prev = self.pending.last().map(|r| r.0).or(self.last);
        let reason = if first && v != seg.first {
            format!(
                "segment starts with version {v} but is named for {}",
                seg.first
            )
        } else if prev.map_or(v != self.head + 1, |p| v != p + 1) {
            let after = prev.unwrap_or(self.head);
            format!("version {v} follows {after}: versions are missing")
        } else {
            return Ok(());
        };
        let at = match &seg.items[ii] {
            Item::Record { at, .. } | Item::End { at, .. } | Item::Damage { at, .. } => *at,
        };
        Err(self.damaged(si, ii, at, reason))
    }

    /// The pending batch is whole: its records above `head` are recovered.
    fn accept(&mut self, version: u64) {
        for (v, r) in self.pending.drain(..) {
            match r {
                Some(r) if v > self.head => self.out.records.push(r.clone()),
                _ => self.out.committed += 1,
            }
        }
        self.last = Some(version);
    }

    /// Decides what the damage at `at..end` of segment `si` (its item `ii`) is. Ok(true) when
    /// recovery ends there (a torn tail).
    fn damage(
        &mut self,
        si: usize,
        ii: usize,
        at: u64,
        end: u64,
        reason: &str,
        raw: &[u8],
    ) -> Result<bool, WalError> {
        let segs = self.segs;
        let seg = &segs[si];
        let closes_after = self.last_close.is_some_and(|c| c > ii);
        if si + 1 == self.segs.len() && !closes_after {
            let only_end = ii + 1 == seg.items.len()
                && end == seg.len
                && self.pending.first().is_some_and(|p| {
                    let count = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
                    near_end_frame(raw, p.0, count)
                });
            if seg.v2 && only_end {
                let n = self.pending.len();
                self.note(format!(
                    "{}: the end frame of the last batch is damaged at byte {at} ({reason}); its {n} records are all good and were kept",
                    seg.path.display()
                ));
                let last = self.pending.last().map_or(0, |r| r.0);
                self.accept(last);
            } else {
                let cut = if self.pending.is_empty() {
                    at
                } else {
                    self.pending_at
                };
                self.pending.clear();
                self.out.torn = Some((seg.path.clone(), cut, seg.len - cut));
            }
            return Ok(true);
        }
        let head = self.head;
        let in_git = self.after(si, ii).find_map(|(_, item)| match item {
            Item::Record { version, .. } => Some(*version <= head + 1),
            Item::End { version, .. } => Some(*version <= head),
            Item::Damage { .. } => None,
        });
        if in_git != Some(true) {
            return Err(self.damaged(si, ii, at, reason.to_string()));
        }
        self.out.committed += self.pending.len() as u64;
        self.pending.clear();
        self.last = None;
        self.note(format!(
            "{} is damaged at byte {at} ({reason}) in versions git holds (up to {head}): skipped; the segment is deleted once a newer commit is durable",
            seg.path.display()
        ));
        Ok(false)
    }

    /// Items after item `ii` of segment `si`, across later segments.
    fn after(&self, si: usize, ii: usize) -> impl Iterator<Item = (&Segment, &Item)> {
        let rest = self.segs[si]
            .items
            .iter()
            .skip(ii + 1)
            .map(move |i| (&self.segs[si], i));
        rest.chain(
            self.segs[si + 1..]
                .iter()
                .flat_map(|s| s.items.iter().map(move |i| (s, i))),
        )
    }

    fn damaged(&self, si: usize, ii: usize, offset: u64, reason: String) -> WalError {
        let seg = &self.segs[si];
        let first = self.last.map_or(self.head, |l| l.max(self.head)) + 1;
        let later = self.after(si, ii).filter_map(|(_, i)| i.version());
        let last = self.pending.iter().map(|r| r.0).chain(later).max();
        WalError::Damaged {
            path: seg.path.clone(),
            offset,
            reason,
            first,
            last: last.filter(|&l| l >= first),
            head: self.head,
            keep: if self.pending.is_empty() {
                offset
            } else {
                self.pending_at
            },
            repo: self.repo.clone(),
        }
    }

    fn note(&mut self, note: String) {
        tracing::warn!("{note}");
        self.out.notes.push(note);
    }
}
