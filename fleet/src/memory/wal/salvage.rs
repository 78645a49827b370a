//! The way out of a refused open, for when no intact copy of the log exists: the operator
//! accepts losing the acknowledged writes that cannot be read, and everything readable before
//! them is kept. Nothing is deleted: the damaged segment is copied and every later segment
//! moved to `<gitdir>/mcpfleet/wal-quarantine/<unix seconds>/`, then the damaged segment is
//! cut back to the whole batches before the damage. Versions must stay consecutive (a write's
//! `seen` refers to them), so records after the damage cannot be kept even where readable.

use std::{
    fs::{self, OpenOptions},
    io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use super::format::{segments, sync_dir};
use super::{error::WalError, recovery::recover};
use crate::memory::{archive, error::OpenError, lock::state_dir};

/// What [`salvage`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Salvaged {
    /// Where the damaged segment's copy and the later segments now are.
    pub quarantine: PathBuf,
    /// The damaged segment, cut back to `kept_bytes`.
    pub segment: PathBuf,
    pub kept_bytes: u64,
    /// Segments moved whole into the quarantine.
    pub moved: Vec<PathBuf>,
    /// The first version given up (every later one is given up too).
    pub lost_from: u64,
    /// What the refusal said.
    pub damage: String,
}

/// Salvages the WAL of the memory repository at `path` (taking the owner lock). Ok(None) if
/// its log opens as it is and nothing was changed.
pub fn salvage(path: &Path) -> Result<Option<Salvaged>, OpenError> {
    if !path.exists() {
        return Err(OpenError::NotARepository {
            path: path.to_path_buf(),
            reason: "it does not exist".into(),
        });
    }
    let opened = archive::open_locked(path)?;
    let dir = state_dir(&opened.gitdir).join("wal");
    let head = opened.graph.version();
    let (segment, keep, lost_from, damage) = match recover(&dir, head, false) {
        Ok(_) => return Ok(None),
        Err(e) => match &e {
            WalError::Damaged {
                path, keep, first, ..
            } => (path.clone(), *keep, *first, e.to_string()),
            _ => return Err(e.into()),
        },
    };
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let quarantine = state_dir(&opened.gitdir)
        .join("wal-quarantine")
        .join(stamp.to_string());
    fs::create_dir_all(&quarantine).map_err(OpenError::io("create", &quarantine))?;
    let copy = quarantine.join(segment.file_name().unwrap_or_default());
    fs::copy(&segment, &copy).map_err(OpenError::io("copy the damaged segment to", &copy))?;
    OpenOptions::new()
        .write(true)
        .open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(OpenError::io("sync", &copy))?;
    let mut moved = Vec::new();
    let all = segments(&dir).map_err(OpenError::io("list", &dir))?;
    let damaged_at = all
        .iter()
        .position(|(_, p)| *p == segment)
        .unwrap_or(all.len());
    for (_, p) in all.into_iter().skip(damaged_at + 1) {
        let to = quarantine.join(p.file_name().unwrap_or_default());
        fs::rename(&p, &to).map_err(OpenError::io("move a later segment to", &to))?;
        moved.push(to);
    }
    sync_dirs(&[&quarantine, &dir]).map_err(OpenError::io("sync", &quarantine))?;
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|f| {
            f.set_len(keep)?;
            f.sync_all()
        })
        .map_err(OpenError::io("cut back", &segment))?;
    // What is left must now open; if it does not, say so rather than claim success.
    recover(&dir, head, false)?;
    Ok(Some(Salvaged {
        quarantine,
        segment,
        kept_bytes: keep,
        moved,
        lost_from,
        damage,
    }))
}

fn sync_dirs(dirs: &[&Path]) -> io::Result<()> {
    dirs.iter().try_for_each(|d| sync_dir(d))
}
