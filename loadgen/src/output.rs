//! The run folder: where it goes, and writing into it `run.json`, `report.html` and the
//! exports other tools read (`phases.csv`, one `<phase>.hlog` per load phase), the last two
//! from the run file alone.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context as _, bail};

use crate::runfile::{self, RunFile};

/// `<cargo target dir>/mcpfleet-runs`: `$CARGO_TARGET_DIR`, else the `target` directory this
/// binary runs from, else `./target`.
pub fn default_runs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("mcpfleet-runs");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "target"))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("mcpfleet-runs")
}

/// A new directory named after the start time (with a suffix if that one exists).
pub fn new_run_dir(parent: &Path, started_at: SystemTime) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let stamp = runfile::utc_timestamp(started_at).1;
    for n in 1..1000 {
        let dir = parent.join(if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!(
        "cannot find a free run directory name in {}",
        parent.display()
    )
}

/// What a run folder holds once written.
#[derive(Debug, Clone)]
pub struct Written {
    pub run_file: PathBuf,
    pub report: PathBuf,
    pub exports: reports::export::Exports,
}

/// Writes `run.json`, then what is made from it: `report.html` and the exports.
pub fn write(dir: &Path, run: &RunFile) -> anyhow::Result<Written> {
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(std::fs::canonicalize(&path).unwrap_or(path))
    };
    let json = serde_json::to_string_pretty(run).context("serialising the run file")?;
    let run_file = write("run.json", json + "\n")?;
    let report = write("report.html", reports::html::render(run))?;
    let exports = reports::export::write(dir, run)?;
    Ok(Written {
        run_file,
        report,
        exports,
    })
}

/// Writes `index.html` in `dir`, listing the run folders in it; gives its path.
pub fn write_index(dir: &Path) -> anyhow::Result<PathBuf> {
    let entries = reports::index::scan(dir)
        .with_context(|| format!("cannot list the runs in {}", dir.display()))?;
    let path = dir.join("index.html");
    std::fs::write(&path, reports::index::render(&entries))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn run_dirs_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = new_run_dir(tmp.path(), t).unwrap();
        let b = new_run_dir(tmp.path(), t).unwrap();
        assert!(a.ends_with("20231114T221320Z"));
        assert!(b.ends_with("20231114T221320Z-2"));
    }
}
