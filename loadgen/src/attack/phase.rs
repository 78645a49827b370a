//! What a load phase is asked to do ([`Phase`], paced as [`Pacing`] says) and what it gives
//! back ([`PhaseOutcome`]).

use std::{sync::Arc, time::Duration};

use crate::{cpu::CpuUse, measure::Target, recorder::Recorder, transport::settings::HttpSettings};

/// How users pace their requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Each user sends its next request when the previous one completed.
    Closed,
    /// `rate` requests per second in total, each at a fixed intended time, sent by whichever
    /// user is free; latency counts from the intended time (coordinated omission corrected).
    Open { rate: f64 },
    /// Each user sends `rate` requests per second on its own timetable, starting at a random
    /// phase; latency counts from the intended time. For held connections at a modest rate.
    PerUser { rate: f64 },
}

/// What one phase is to do.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Names the phase in goose and in progress lines (`latency`, `connections`, ...).
    pub name: String,
    pub targets: Arc<[Target]>,
    pub users: usize,
    pub ramp_up: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    /// What every HTTP request carries (timeout, extra headers, TLS, credentials).
    pub settings: Arc<HttpSettings>,
    pub pacing: Pacing,
    /// Added to every open-model send time: a shard's place in the shared schedule (shard I
    /// of N at N/R apart, offset by (I-1)/R, so the shards together send at R).
    pub open_offset: Duration,
    /// The servers run in this process (their CPU shows in ours).
    pub embedded: bool,
    /// The phase's verdict rests on the count of client sockets (the connections scenario):
    /// count at normal CPU priority, so that a busy machine does not starve the count. Other
    /// phases count at the lowest priority, so that the count does not take a core from the
    /// requests they time (see `sockets`).
    pub sockets_are_evidence: bool,
}

pub use crate::runfile::{ConnectionSample, EngineFacts};

/// The result of a phase.
#[derive(Debug)]
pub struct PhaseOutcome {
    pub recorder: Recorder,
    /// Length of the measured window actually run (shorter than asked when interrupted).
    pub measured: Duration,
    pub interrupted: bool,
    pub connections: Vec<ConnectionSample>,
    /// Seconds since the phase started at which the measured window began and ended.
    pub window: (f64, f64),
    /// When the phase started, by the wall clock.
    pub started_at: std::time::SystemTime,
    pub cpu: Option<CpuUse>,
    pub engine: EngineFacts,
}
