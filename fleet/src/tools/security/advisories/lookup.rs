//! Matching one version of one package against the snapshot's index: Go package paths fall
//! back to their module, every affected range and explicit version list is tried, and each
//! advisory is reported once with the `fixed` bound that matched.

use super::{
    ecosystem::Ecosystem,
    schema::AdvisoryMatch,
    snapshot::{DB, Upper},
    version::Version,
};

/// Advisories in the snapshot affecting `version` of the package `name` (already
/// normalised for `eco`), ordered by id.
pub(crate) fn lookup(eco: Ecosystem, name: &str, version: &Version) -> Vec<AdvisoryMatch> {
    let db = &*DB;
    let mut entries = db.index.get(&(eco, name.to_string()));
    if entries.is_none() && eco == Ecosystem::Go {
        // A package path inside a module: try enclosing paths, but never across a major
        // version suffix (`…/v2` is a different module).
        let mut path = name;
        while let Some((parent, last)) = path.rsplit_once('/') {
            if is_major_suffix(last) || !parent.contains('/') {
                break;
            }
            if let Some(found) = db.index.get(&(eco, parent.to_string())) {
                entries = Some(found);
                break;
            }
            path = parent;
        }
    }
    let Some(entries) = entries else {
        return Vec::new();
    };
    let mut out: Vec<AdvisoryMatch> = Vec::new();
    for entry in entries {
        let Some(advisory) = db.advisories.get(entry.advisory) else {
            continue;
        };
        if out.iter().any(|m| m.id == advisory.id) {
            continue;
        }
        let hit = entry
            .intervals
            .iter()
            .find(|iv| iv.contains(version))
            .map(|iv| match &iv.upper {
                Upper::Fixed(_, raw) => Some(raw.clone()),
                Upper::LastAffected(_) | Upper::Open => None,
            })
            .or_else(|| entry.versions.contains(version).then_some(None));
        if let Some(fixed_in) = hit {
            out.push(AdvisoryMatch {
                id: advisory.id.clone(),
                aliases: advisory.aliases.clone(),
                summary: advisory.summary.clone(),
                severity: advisory.severity,
                fixed_in,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

pub(super) fn is_major_suffix(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
