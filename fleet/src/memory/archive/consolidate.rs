//! Geometric merging of packs: reads pack indexes and copies whole objects verbatim into one
//! new pack, so that one pack per commit never becomes thousands.

use std::{
    collections::HashSet,
    fs::{self, File},
    path::{Path, PathBuf},
};

use git2::{Odb, Oid, Repository};

use super::pack::{PackWriter, fsync};
use crate::memory::error::ArchiveError;

/// Number of packs in the repository (each commit adds one until they are merged).
pub(crate) fn pack_count(gitdir: &Path) -> usize {
    fs::read_dir(gitdir.join("objects").join("pack"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        })
        .unwrap_or(0)
}

/// One object's place in a pack, from the pack's index.
struct IdxEntry {
    oid: Oid,
    crc: u32,
    offset: u64,
}

/// Reads a version-2 pack index.
fn read_idx(path: &Path) -> Result<Vec<IdxEntry>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bad = || format!("{} is not a valid version-2 pack index", path.display());
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(bad)
    };
    if bytes.get(0..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    let n = u32_at(8 + 255 * 4)? as usize;
    let ids = 8 + 256 * 4;
    let crcs = ids + n * 20;
    let offsets = crcs + n * 4;
    let large = offsets + n * 4;
    // A damaged count must not size an allocation (a peer's packs are not this node's own).
    if bytes.len() < large + 40 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = bytes.get(ids + i * 20..ids + i * 20 + 20).ok_or_else(bad)?;
        let oid = Oid::from_bytes(id).map_err(|_| bad())?;
        let crc = u32_at(crcs + i * 4)?;
        let o = u32_at(offsets + i * 4)?;
        let offset = if o & 0x8000_0000 == 0 {
            u64::from(o)
        } else {
            let at = large + (o & 0x7fff_ffff) as usize * 8;
            let b = bytes.get(at..at + 8).ok_or_else(bad)?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        out.push(IdxEntry { oid, crc, offset });
    }
    Ok(out)
}

/// Appends the objects of one pack to `w`, skipping those in `done`: whole objects as their
/// compressed bytes (CRC-checked), deltas (from a `git gc`) resolved through the odb.
fn copy_pack(
    pack: &Path,
    entries: &mut [IdxEntry],
    odb: &Odb<'_>,
    done: &mut HashSet<Oid>,
    w: &mut PackWriter,
) -> Result<(), ArchiveError> {
    use std::io::Read;
    let io = |e| ArchiveError::io("read", pack)(e);
    let len = fs::metadata(pack).map_err(io)?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, File::open(pack).map_err(io)?);
    entries.sort_unstable_by_key(|e| e.offset);
    let mut at = 0u64;
    let mut buf = Vec::new();
    for i in 0..entries.len() {
        let start = entries[i].offset;
        let end = entries
            .get(i + 1)
            .map_or(len.saturating_sub(20), |e| e.offset);
        if start < at.max(12) || end <= start || end > len.saturating_sub(20) {
            return Err(io(std::io::Error::other(
                "pack index offsets are out of order or past the pack's end",
            )));
        }
        std::io::copy(&mut (&mut r).take(start - at), &mut std::io::sink()).map_err(io)?;
        buf.resize(
            usize::try_from(end - start).map_err(|e| io(std::io::Error::other(e)))?,
            0,
        );
        r.read_exact(&mut buf).map_err(io)?;
        at = end;
        let e = &entries[i];
        if !done.insert(e.oid) {
            continue;
        }
        if crc32fast::hash(&buf) != e.crc {
            return Err(io(std::io::Error::other(format!(
                "object {} fails its CRC check",
                e.oid
            ))));
        }
        match (buf[0] >> 4) & 7 {
            1..=4 => w.add_raw(e.oid, e.crc, &buf)?,
            _ => {
                let o = odb
                    .read(e.oid)
                    .map_err(ArchiveError::git("read an object to merge"))?;
                w.add(e.oid, o.kind(), o.data())?;
            }
        }
    }
    Ok(())
}

/// Keeps the number of packs logarithmic: once there are more than `max_packs`, merges the
/// smallest packs until every pack is at least twice as big as all smaller ones together
/// (geometric repacking: each object is rewritten O(log n) times). Whole objects are copied
/// verbatim (checked against their CRC), so a merge costs about a file copy; the merged
/// pack has no deltas, and `git gc` on a backup clone compresses history if space matters.
/// Returns (packs merged, objects in the new pack), or None if nothing needed merging.
pub(crate) fn consolidate_packs(
    gitdir: &Path,
    max_packs: usize,
) -> Result<Option<(usize, usize)>, ArchiveError> {
    let pack_dir = gitdir.join("objects").join("pack");
    let mut packs: Vec<(usize, PathBuf, Vec<IdxEntry>)> = Vec::new();
    let entries = fs::read_dir(&pack_dir).map_err(ArchiveError::io("list", &pack_dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "idx") || path.with_extension("keep").exists() {
            continue;
        }
        match read_idx(&path) {
            Ok(entries) => packs.push((entries.len(), path, entries)),
            Err(e) => tracing::debug!(%e, "pack left out of merging"),
        }
    }
    if packs.len() <= max_packs {
        return Ok(None);
    }
    packs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut prefix = 0usize;
    let mut merge = 0usize;
    for (i, (n, _, _)) in packs.iter().enumerate() {
        if *n < 2 * prefix {
            merge = i + 1;
        }
        prefix += n;
    }
    // Always make progress once over the limit.
    let merge = merge.max(packs.len() - max_packs / 2).min(packs.len());
    if merge < 2 {
        return Ok(None);
    }
    let repo = Repository::open(gitdir).map_err(ArchiveError::git("open the repository"))?;
    let odb = repo
        .odb()
        .map_err(ArchiveError::git("open the object database"))?;
    let mut unique = HashSet::new();
    for (_, _, entries) in &packs[..merge] {
        unique.extend(entries.iter().map(|e| e.oid));
    }
    let objects = unique.len();
    let mut w = PackWriter::new(&pack_dir, objects)?;
    let mut done: HashSet<Oid> = HashSet::with_capacity(objects);
    for (_, idx, entries) in &mut packs[..merge] {
        copy_pack(
            &idx.with_extension("pack"),
            entries,
            &odb,
            &mut done,
            &mut w,
        )?;
    }
    let new_idx = w.finish()?;
    for (_, idx, _) in &packs[..merge] {
        if *idx == new_idx {
            continue;
        }
        for ext in ["pack", "idx", "rev", "bitmap", "mtimes"] {
            let p = idx.with_extension(ext);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ArchiveError::io("remove", &p)(e)),
            }
        }
    }
    fsync(&pack_dir)?;
    Ok(Some((merge, objects)))
}
