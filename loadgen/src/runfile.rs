//! The run file, `run.json`: its schema lives in [`reports::run`] (the crate every consumer of
//! runs reads), re-exported here so that loadgen names it in this one place. `crate::results`
//! turns what a phase recorded into it.

pub use reports::run::*;

/// A run file named by itself or by its folder, read and checked.
pub fn load(path: &std::path::Path) -> anyhow::Result<(std::path::PathBuf, RunFile)> {
    let file = if path.is_dir() {
        path.join("run.json")
    } else {
        path.to_path_buf()
    };
    let run = RunFile::load(&file)?;
    Ok((file, run))
}
