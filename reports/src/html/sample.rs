//! The run the report's own tests render: a synthetic run with errors, an interrupted run's
//! banner, a target address full of markup and a claim not measured.

use crate::{
    run::{ErrorClass, RunFile, SweepFailure, Verdict},
    synthetic::{Spec, run},
};

/// A synthetic run with every section the tests look for, and text that must be escaped.
pub(super) fn sample_run() -> RunFile {
    let mut run = run(&Spec {
        error_every: 97,
        ..Default::default()
    });
    let evil = "http://127.0.0.1:1/mcp?<script>alert(1)</script>";
    run.config.targets = vec![evil.into()];
    run.config.scenarios = vec!["latency".into(), "sync".into()];
    run.interrupted = true;
    run.health.failures = vec![SweepFailure {
        server: evil.into(),
        url: evil.into(),
        error: ErrorClass::Connect,
        status: None,
    }];
    run.claims[0].verdict = Verdict::NotMeasured;
    run
}
