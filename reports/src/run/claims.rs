//! The claims a run judges: each with its verdict, what was measured and the criterion.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "not measured",
        }
    }

    /// The run file's spelling (`pass`, `fail`, `not_measured`), also the report's CSS class.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotMeasured => "not_measured",
        }
    }
}

/// A judged claim, as the run file and the report carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub id: String,
    pub title: String,
    /// The claim as its source words it.
    pub quote: String,
    pub verdict: Verdict,
    pub measured: Option<String>,
    pub criterion: String,
    pub note: String,
}
