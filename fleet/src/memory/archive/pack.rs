//! Writing objects as one durable packfile (and its index) without libgit2's packbuilder,
//! and the fsyncs that make a pack and a moved ref survive a power cut.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use git2::{ObjectType, Oid, Repository};

use super::objects::{MAIN, NewObjects};
use crate::memory::error::ArchiveError;

/// Name prefix of packs being written (in `objects/pack`).
pub(super) const TMP_PACK_PREFIX: &str = "tmp_mcpfleet_";

/// True if the file at `path` was last modified more than `age` ago (false if it is gone or
/// its time cannot be read): how leftovers of killed writers are told from work under way.
pub(crate) fn older_than(path: &Path, age: std::time::Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

pub(super) fn fsync(path: &Path) -> Result<(), ArchiveError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(ArchiveError::io("fsync", path))
}

/// Writes a version-2 packfile of whole (undeltified) objects, zlib-compressed at the fast
/// level, and its version-2 index, then makes both durable: `objects/pack/pack-<hash>.pack`
/// and `.idx`, each written under a temporary name, fsynced and renamed, pack first (git
/// only looks for packs through their index). Memory use is about one object.
///
/// Why not libgit2: its packbuilder spends seconds searching deltas in large trees and its
/// indexer inflates and re-hashes every object, all on the two cores that acknowledge
/// writes. We already know every object's id, so the index is a sort away.
pub(super) struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    sha: sha1::Sha1,
    z: flate2::Compress,
    entry: Vec<u8>,
    offset: u64,
    /// (id, crc32 of the entry, offset)
    index: Vec<(Oid, u32, u64)>,
    left: u32,
}

impl PackWriter {
    pub(super) fn new(dir: &Path, count: usize) -> Result<PackWriter, ArchiveError> {
        use sha1::Digest;
        let left = u32::try_from(count).map_err(|_| ArchiveError::Io {
            action: "pack so many objects into",
            path: dir.to_path_buf(),
            source: std::io::Error::other("more than 2^32 objects"),
        })?;
        // Unique among processes on other hosts too (a peer repository on a shared volume:
        // every node of a Kubernetes fleet runs as pid 1), and never an existing file.
        let tmp = dir.join(format!(
            "{TMP_PACK_PREFIX}{}_{:016x}.pack",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(ArchiveError::io("create", &tmp))?;
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&left.to_be_bytes());
        let mut w = PackWriter {
            dir: dir.to_path_buf(),
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            sha: sha1::Sha1::new(),
            z: flate2::Compress::new(flate2::Compression::fast(), true),
            entry: Vec::new(),
            offset: 0,
            index: Vec::with_capacity(count),
            left,
        };
        w.write(&header)?;
        Ok(w)
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        use sha1::Digest;
        self.sha.update(bytes);
        self.file
            .write_all(bytes)
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn add(
        &mut self,
        oid: Oid,
        kind: ObjectType,
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        let code: u8 = match kind {
            ObjectType::Commit => 1,
            ObjectType::Tree => 2,
            ObjectType::Blob => 3,
            ObjectType::Tag => 4,
            _ => {
                return Err(ArchiveError::Io {
                    action: "pack an object of unknown type into",
                    path: self.tmp.clone(),
                    source: std::io::Error::other(format!("{kind:?}")),
                });
            }
        };
        self.left = self.left.checked_sub(1).ok_or_else(|| ArchiveError::Io {
            action: "pack more objects than announced into",
            path: self.tmp.clone(),
            source: std::io::Error::other("object count exceeded"),
        })?;
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        // Header: type and size, little-endian base 128 with a continuation bit.
        let mut size = data.len();
        let mut byte = (code << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            entry.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        entry.push(byte);
        self.z.reset();
        loop {
            entry.reserve(data.len() / 2 + 64);
            let done = usize::try_from(self.z.total_in()).unwrap_or(usize::MAX);
            let rest = data.get(done..).unwrap_or_default();
            let status = self
                .z
                .compress_vec(rest, &mut entry, flate2::FlushCompress::Finish)
                .map_err(|e| ArchiveError::Io {
                    action: "compress an object for",
                    path: self.tmp.clone(),
                    source: std::io::Error::other(e),
                })?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        self.index.push((oid, crc32fast::hash(&entry), self.offset));
        let written = self.write(&entry);
        self.entry = entry;
        written
    }

    /// Appends an entry copied from another pack (a whole object: header and zlib data).
    pub(super) fn add_raw(&mut self, oid: Oid, crc: u32, entry: &[u8]) -> Result<(), ArchiveError> {
        self.left = self.left.checked_sub(1).ok_or_else(|| ArchiveError::Io {
            action: "pack more objects than announced into",
            path: self.tmp.clone(),
            source: std::io::Error::other("object count exceeded"),
        })?;
        self.index.push((oid, crc, self.offset));
        self.write(entry)
    }

    /// Writes the trailer and the index, fsyncs and renames both, fsyncs the directory.
    /// Returns the index path.
    pub(super) fn finish(mut self) -> Result<PathBuf, ArchiveError> {
        use sha1::Digest;
        if self.left != 0 {
            return Err(ArchiveError::Io {
                action: "finish a pack in",
                path: self.tmp.clone(),
                source: std::io::Error::other("fewer objects than announced"),
            });
        }
        let checksum: [u8; 20] = self.sha.clone().finalize().into();
        self.file
            .write_all(&checksum)
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.file
            .flush()
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.file
            .get_ref()
            .sync_all()
            .map_err(ArchiveError::io("fsync", &self.tmp))?;
        let name: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
        let pack = self.dir.join(format!("pack-{name}.pack"));
        let idx = self.dir.join(format!("pack-{name}.idx"));
        fs::rename(&self.tmp, &pack).map_err(ArchiveError::io("rename a pack to", &pack))?;

        self.index
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let n = self.index.len();
        let mut out = Vec::with_capacity(8 + 1024 + n * 28 + 40);
        out.extend_from_slice(&[0xff, b't', b'O', b'c']);
        out.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for (oid, _, _) in &self.index {
            fanout[usize::from(oid.as_bytes()[0])] += 1;
        }
        let mut total = 0u32;
        for f in fanout {
            total += f;
            out.extend_from_slice(&total.to_be_bytes());
        }
        for (oid, _, _) in &self.index {
            out.extend_from_slice(oid.as_bytes());
        }
        for (_, crc, _) in &self.index {
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut large: Vec<u64> = Vec::new();
        for (_, _, offset) in &self.index {
            match u32::try_from(*offset) {
                Ok(o) if o < 0x8000_0000 => out.extend_from_slice(&o.to_be_bytes()),
                _ => {
                    let i = u32::try_from(large.len()).unwrap_or(u32::MAX) | 0x8000_0000;
                    out.extend_from_slice(&i.to_be_bytes());
                    large.push(*offset);
                }
            }
        }
        for o in large {
            out.extend_from_slice(&o.to_be_bytes());
        }
        out.extend_from_slice(&checksum);
        let idx_checksum: [u8; 20] = sha1::Sha1::digest(&out).into();
        out.extend_from_slice(&idx_checksum);
        let tmp_idx = self.tmp.with_extension("idx");
        let mut f = File::create(&tmp_idx).map_err(ArchiveError::io("create", &tmp_idx))?;
        f.write_all(&out)
            .and_then(|()| f.sync_all())
            .map_err(ArchiveError::io("write", &tmp_idx))?;
        drop(f);
        fs::rename(&tmp_idx, &idx).map_err(ArchiveError::io("rename an index to", &idx))?;
        fsync(&self.dir)?;
        Ok(idx)
    }
}

impl Drop for PackWriter {
    /// An unfinished pack leaves no file behind (a finished one was renamed away).
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
        let _ = fs::remove_file(self.tmp.with_extension("idx"));
    }
}

/// Writes one commit's new objects as one durable packfile, then lets libgit2 see it.
pub(super) fn write_pack(repo: &Repository, objects: &NewObjects) -> Result<PathBuf, ArchiveError> {
    let pack_dir = repo.path().join("objects").join("pack");
    let mut w = PackWriter::new(&pack_dir, objects.len())?;
    for (oid, kind, data) in &objects.items {
        w.add(*oid, *kind, data)?;
    }
    let idx = w.finish()?;
    repo.odb()
        .and_then(|odb| odb.refresh())
        .map_err(ArchiveError::git("refresh the object database"))?;
    Ok(idx)
}

/// Makes `refs/heads/main` (as written by libgit2) and its directory durable (`refs/heads`
/// exists from the repository's creation on).
pub(super) fn sync_ref(gitdir: &Path) -> Result<(), ArchiveError> {
    let loose = gitdir.join(MAIN);
    if loose.is_file() {
        fsync(&loose)?;
        if let Some(dir) = loose.parent() {
            fsync(dir)?;
        }
    } else {
        // Packed (as in a fresh clone): the packed-refs file holds it.
        fsync(&gitdir.join("packed-refs"))?;
        fsync(gitdir)?;
    }
    Ok(())
}

/// Makes the ref `name` (as written by libgit2) and its directories durable, up to the git
/// directory (the first ref under a prefix makes its directory).
pub(crate) fn sync_named_ref(gitdir: &Path, name: &str) -> Result<(), ArchiveError> {
    let loose = gitdir.join(name);
    if !loose.is_file() {
        fsync(&gitdir.join("packed-refs"))?;
        return fsync(gitdir);
    }
    fsync(&loose)?;
    for dir in loose.ancestors().skip(1) {
        fsync(dir)?;
        if dir == gitdir {
            break;
        }
    }
    Ok(())
}
