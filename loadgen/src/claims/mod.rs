//! Claims judged against what a run measured. Claims are data (`ci/claims/seed-report.toml`,
//! compiled in as the default; `--claims FILE` for your own): each names a [`spec::Metric`], a
//! comparator and a bound. The rule: a claim whose metric this run did not measure (or measured
//! on too few servers) is `not_measured`, never `pass`, and every verdict names its criterion.

mod evidence;
mod judge;
mod scale_metrics;
mod spec;
mod sync_metrics;
#[cfg(test)]
mod tests;

pub use evidence::Evidence;
pub use judge::{evaluate, text_table};
pub use spec::{ClaimSpec, latency_bound_ms, load};
