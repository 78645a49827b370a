//! The run file, `run.json`: its schema lives in [`reports::run`] (the crate every consumer of
//! runs reads), re-exported here so that loadgen names it in this one place. `crate::results`
//! turns what a phase recorded into it.

pub use reports::run::*;
