//! Exports of a run for other tools, written beside `run.json` from the run file alone (so a
//! run measured elsewhere, or long ago, exports the same way): `phases.csv`, one row per second
//! of every load phase for spreadsheets and scripts, and one HdrHistogram interval log per
//! phase (`<phase>.hlog`; the sync scenario's of its write acknowledgements), so
//! HdrHistogram's own tools (HistogramLogAnalyzer, HistogramLogProcessor) read our latencies
//! without knowing our format.

mod interval_log;
mod per_second_csv;

use std::path::{Path, PathBuf};

use crate::run::{HistogramError, RunFile};

pub use interval_log::{render as interval_log, render_sync as sync_interval_log};
pub use per_second_csv::render as per_second_csv;

/// The name of the per-second table in a run folder.
pub const CSV_NAME: &str = "phases.csv";

/// What [`write()`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exports {
    /// `phases.csv`.
    pub csv: PathBuf,
    /// One `<phase>.hlog` per load phase, in the order the phases ran, then `sync.hlog` when
    /// the sync scenario ran: the phase's key
    /// ([`LoadPhase::key`](crate::run::LoadPhase::key), or `sync`) and the file.
    pub interval_logs: Vec<(String, PathBuf)>,
}

impl Exports {
    /// Every file written, the table first.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.csv).chain(self.interval_logs.iter().map(|(_, path)| path))
    }
}

/// Why an export could not be made; each names the file or the phase.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("phase {phase}: a histogram of the run file does not decode: {source}")]
    Histogram {
        phase: String,
        source: HistogramError,
    },
    #[error("phase {phase}: the interval log cannot be written: {message}")]
    IntervalLog { phase: String, message: String },
}

/// Writes `phases.csv` and one `<phase>.hlog` per load phase of `run` into `dir` (and
/// `sync.hlog` when the sync scenario ran); gives their paths. A run without load phases gets
/// a table of its header alone.
pub fn write(dir: &Path, run: &RunFile) -> Result<Exports, ExportError> {
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, ExportError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| ExportError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(std::fs::canonicalize(&path).unwrap_or(path))
    };
    let csv = write(CSV_NAME, per_second_csv(run).as_bytes())?;
    let mut interval_logs = run
        .load_phases()
        .iter()
        .map(|phase| {
            let key = phase.key();
            let path = write(&format!("{key}.hlog"), &interval_log(phase)?)?;
            Ok((key, path))
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    if let Some(figures) = run.sync.as_ref().and_then(|s| s.figures.as_ref()) {
        let path = write("sync.hlog", &sync_interval_log(figures)?)?;
        interval_logs.push(("sync".into(), path));
    }
    Ok(Exports { csv, interval_logs })
}
