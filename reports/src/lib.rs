//! Reads loadgen run files (schema in [`run`]) and never measures anything itself: the HTML
//! report of one run ([`html`]), the comparison of two ([`compare`]), the index of many
//! ([`index`]), the CI gate ([`gate`]) and the exports other tools read (a per-second CSV
//! and HdrHistogram interval logs, [`export`]).
//!
//! Beside them: the charts the pages draw ([`chart`]), the findings the report makes by itself
//! ([`diagnose`]), the statistics the comparison and the gate share ([`stats`]) and the HTML
//! escaping every page uses ([`escape`]); latencies read for people through [`fmt_micros`].
//! Synthetic run files for tests (`synthetic`) exist only in test builds and behind the
//! `testing` feature.

pub mod chart;
pub mod compare;
pub mod diagnose;
pub mod escape;
pub mod export;
mod format;
pub mod gate;
pub mod html;
pub mod index;
pub mod merge;
pub mod run;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod synthetic;

pub use format::fmt_micros;
