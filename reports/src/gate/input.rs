//! The run files the gate judges and compares with, loaded with their names (a directory
//! stands for its `run.json`).

use std::path::PathBuf;

use super::error::GateError;
use crate::run::RunFile;

#[derive(Debug, Clone)]
pub struct NamedRun {
    pub name: String,
    pub file: RunFile,
}

/// Loads run files with [`RunFile::load`] (which checks the schema version first). A directory
/// stands for the `run.json` in it, as loadgen's `--out DIR` writes it; findings name the file.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<NamedRun>, GateError> {
    paths
        .iter()
        .map(|p| {
            let path = if p.is_dir() {
                p.join("run.json")
            } else {
                p.clone()
            };
            Ok(NamedRun {
                name: path.display().to_string(),
                file: RunFile::load(&path)?,
            })
        })
        .collect()
}
