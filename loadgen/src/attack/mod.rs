//! One load phase, driven by goose: goose launches the users (spread over the ramp-up), keeps
//! them running for the phase and stops them. Each goose user speaks MCP in its transactions:
//! it opens its connections (and, for 2025-11-25 targets, its sessions) in the on-start
//! transaction, makes one call per iteration and deletes its sessions in the on-stop
//! transaction.
//!
//! Timing is ours, not goose's: goose times a request to its response headers, while an MCP
//! call is done when the matching JSON-RPC response has arrived, so every call is timed to the
//! end of its body and recorded into hdrhistogram ([`crate::recorder::Recorder`]), and handed
//! to goose with `record_custom_request_duration`, whose request counts are kept as a
//! cross-check ([`crate::runfile::EngineFacts`]). Calls go over each user's own lean
//! connections ([`crate::transport::conn::Conn`]) rather than goose's reqwest client, which
//! costs twice the CPU per request.
//!
//! Clock of a phase: users start over `ramp_up`, then `warmup` (requests started then are not
//! recorded), then `duration` (recorded). Goose's run time is whole seconds, so a fractional
//! phase idles to the next whole second before goose stops the users.

mod goose;
mod phase;
mod progress;
mod run;
mod users;

pub use phase::{Pacing, Phase, PhaseOutcome};
pub use run::run;
