//! One check's record (layer, name, run, status, measured, limit, message) and the builder the
//! layers push their checks through.

use crate::stats::Comparison;

/// A layer of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Invariants,
    Relative,
    Ceilings,
}

impl Layer {
    /// The layers in the order they are checked and reported.
    pub const ALL: [Layer; 3] = [Layer::Invariants, Layer::Relative, Layer::Ceilings];

    /// The name in reports: the config section and the JUnit suite.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Invariants => "invariants",
            Layer::Relative => "relative",
            Layer::Ceilings => "ceilings",
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Layer::Invariants => "Invariants",
            Layer::Relative => "Relative to the baseline",
            Layer::Ceilings => "Ceilings",
        }
    }
}

/// How a check came out. `Skipped` is a check that could not apply (no baseline, phase not
/// run, too few samples): neither a pass nor a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    /// The word in reports; failures in capitals so they stand out in a terminal.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Failed => "FAIL",
            Status::Skipped => "skipped",
        }
    }

    pub(super) fn icon(self) -> &'static str {
        match self {
            Status::Passed => "✅",
            Status::Failed => "❌",
            Status::Skipped => "⏭️",
        }
    }
}

/// One rule applied to one run (or, for relative rules, to the pooled runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub layer: Layer,
    /// What was checked: `latency.errors`, `connections.held`, `latency_p50`,
    /// `latency_p99_ms`, ...
    pub name: String,
    /// The run file the finding comes from; `None` for relative rules, which pool every run.
    pub run: Option<String>,
    pub status: Status,
    /// What the run showed, for people.
    pub measured: String,
    /// The bound applied, for people.
    pub limit: String,
    /// Why it passed, failed or was skipped.
    pub message: String,
    /// The statistics of a relative rule.
    pub comparison: Option<Comparison>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.status.label(),
            self.layer.name(),
            self.name
        )?;
        if let Some(run) = &self.run {
            write!(f, " [{run}]")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.measured.is_empty() || !self.limit.is_empty() {
            write!(f, " (measured {}; limit {})", self.measured, self.limit)?;
        }
        Ok(())
    }
}

/// Builds the checks of one layer and one run.
pub(super) struct Checks<'a> {
    pub(super) layer: Layer,
    pub(super) run: Option<&'a str>,
    pub(super) out: &'a mut Vec<Check>,
}

impl Checks<'_> {
    pub(super) fn push(
        &mut self,
        name: &str,
        status: Status,
        measured: String,
        limit: String,
        message: String,
    ) {
        self.out.push(Check {
            layer: self.layer,
            name: name.into(),
            run: self.run.map(str::to_string),
            status,
            measured,
            limit,
            message,
            comparison: None,
        });
    }

    pub(super) fn judge(
        &mut self,
        name: &str,
        ok: bool,
        measured: String,
        limit: String,
        message: String,
    ) {
        let status = if ok { Status::Passed } else { Status::Failed };
        self.push(name, status, measured, limit, message);
    }

    pub(super) fn skip(&mut self, name: &str, message: impl Into<String>) {
        self.push(
            name,
            Status::Skipped,
            String::new(),
            String::new(),
            message.into(),
        );
    }
}
