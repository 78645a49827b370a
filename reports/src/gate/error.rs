//! Why the gate could not judge, and the exit codes the CLI turns its answer into: pass, fail,
//! or usage (a bad argument, run file or config, never a failed gate).

use crate::run::LoadError;

/// Every check passed (skipped ones included).
pub const EXIT_PASS: i32 = 0;
/// At least one check failed.
pub const EXIT_FAIL: i32 = 1;
/// The gate could not judge: bad arguments, run files or config ([`GateError`]).
pub const EXIT_USAGE: i32 = 2;

/// Why the gate could not judge (exit code [`EXIT_USAGE`]). Each names the file, and the key
/// or field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read gate config {path}: {source}")]
    ConfigRead {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid gate config: {message}")]
    ConfigSyntax { path: String, message: String },
    #[error("{path}: {key}: {message}")]
    ConfigKey {
        path: String,
        key: String,
        message: String,
    },
    #[error("{path}: {key} = {value}: {reason}")]
    ConfigRule {
        path: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Run(#[from] LoadError),
    #[error("no run file to judge: give at least one RUN")]
    NoRuns,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl GateError {
    /// Always [`EXIT_USAGE`]: the gate could not judge, which is not a failed gate.
    pub fn exit_code(&self) -> i32 {
        EXIT_USAGE
    }
}
