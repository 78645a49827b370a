//! Backend choice for one group of replica servers.
//!
//! A [`Pool`] holds the members (server ids) of one group and answers "which backend gets this
//! tool call?" with a [`Lease`]. The design follows from where it runs: on the gateway's hot
//! path, tens of thousands of times a second, from many tokio tasks.
//!
//! * **Power of two choices** ([`Pool::pick`]): two distinct admitted members are drawn at
//!   random and the one with the lower cost `(outstanding + 1) × latency EWMA` wins. Comparing
//!   two is O(1), needs no global ordering and, unlike "least loaded of all", does not make every
//!   task herd onto the same momentarily idle backend; it still steers traffic away from a slow
//!   or overloaded member (the classic result: the maximum load drops from `log n / log log n`
//!   to `log log n`).
//! * **One short `std::sync::Mutex` per pool.** A pick, a finish and an unfinished lease's drop
//!   each take it once, for a few dozen nanoseconds, and never across an `.await` (none of these
//!   methods is async). At 50 000 requests/s that is two lock holds per request, around 1 % of
//!   one core's time, so contention stays low, and one lock keeps the health state machine
//!   simple and consistent. Nothing on the hot path allocates: a lease clones two `Arc`s.
//! * **Time and randomness come from the caller** (`now: Instant`, `rng_word: u64`): the tests
//!   are deterministic and the gateway reads the clock once per request.
//! * **Passive health** ([`Lease::finish`]): consecutive failures eject a member for a backoff
//!   (`eject_base`, doubling per ejection in a row, capped at `eject_max`). A connection error
//!   ejects at once because a refused connection means the server is gone, and with 10 % of the
//!   fleet killed every request that still goes there costs a retry. When the backoff expires
//!   the member is *half-open*: one real request may go there at a time; a success re-admits it,
//!   a failure ejects it again for twice as long. Only outcomes of leases taken since the last
//!   health change count towards the state machine (an *epoch* per member): the hundred
//!   requests that were in flight to a server when it died all fail, but they are one piece of
//!   evidence, not a hundred, so they do not push the backoff to its maximum and keep a
//!   restarted server out for seconds.
//! * **Active health** ([`Pool::set_up`]): the gateway's `/healthz` + MCP prober or the
//!   supervisor's registry marks members down (never picked) and up again.
//! * **Discovery** ([`Pool::set_members`]): `fleet scale` changes the member set at runtime;
//!   survivors keep their statistics and health, new members start at the pool's median EWMA so
//!   they get traffic straight away.
//!
//! ## Latency estimate
//!
//! Each success updates the member's EWMA with a fixed weight (`ewma_alpha`, default 0.3): a
//! slowed server is noticed within a handful of its own requests, whatever the request rate.
//! Failures never update latency (a refused connection is fast, not a sign of a fast server);
//! they count towards ejection only. A fixed-alpha EWMA alone would starve a member that once
//! looked slow: it is only re-measured when picked, and it is only picked when it looks fast.
//! So an estimate that has not been refreshed relaxes towards the pool's typical latency, with
//! a half-life of `idle_half_life` since the member's last sample: stale knowledge becomes
//! "about average", the member gets an occasional request again and is re-measured. Relaxing
//! towards the average (not towards zero, as Finagle's and tower's peak-EWMA decay do) also
//! means a member coming back after a long ejection looks average rather than free, so it does
//! not attract a burst of traffic before its first response.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// Random draws from the pool's member list before falling back to counting the admitted
/// members. With 10 % of members unavailable, eight misses in a row happen once in 10⁸ picks.
const SAMPLE_TRIES: usize = 8;

/// Weight of one success in the pool-wide latency average that stale member estimates relax
/// towards. Small, because it averages samples from every member of the pool.
const POOL_ALPHA: f64 = 0.02;

/// Tuning of a [`Pool`]: ejection thresholds, backoffs and the latency estimate. Durations are
/// whole milliseconds in TOML (`eject_base = 200`), like the rest of the fleet spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Consecutive failures ending in a connection error that eject a member (default 1: a
    /// refused connection means the server is not there).
    pub connect_failures_to_eject: u32,
    /// Consecutive failures ending in a timeout, a 5xx or a garbled response that eject a
    /// member (default 3: one slow or failing request can be the request's fault).
    pub failures_to_eject: u32,
    /// First ejection's length (default 200 ms, short enough that a restarted server is back
    /// within the chaos target's 2 s).
    #[serde(with = "millis")]
    pub eject_base: Duration,
    /// Upper bound of the doubling backoff (default 5 s).
    #[serde(with = "millis")]
    pub eject_max: Duration,
    /// Weight of one latency sample in a member's EWMA, in `(0, 1]` (default 0.3).
    pub ewma_alpha: f64,
    /// Latency assumed for members of a pool that has no samples yet, in microseconds
    /// (default 1000).
    pub initial_latency_us: u64,
    /// Half-life with which a member's latency estimate relaxes towards the pool's typical
    /// latency while it gets no samples (default 1000 ms; 0 turns relaxing off).
    #[serde(with = "millis")]
    pub idle_half_life: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connect_failures_to_eject: 1,
            failures_to_eject: 3,
            eject_base: Duration::from_millis(200),
            eject_max: Duration::from_secs(5),
            ewma_alpha: 0.3,
            initial_latency_us: 1000,
            idle_half_life: Duration::from_secs(1),
        }
    }
}

impl PoolConfig {
    /// Checks what serde cannot, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.connect_failures_to_eject == 0 {
            return Err("`connect_failures_to_eject` must be at least 1".into());
        }
        if self.failures_to_eject == 0 {
            return Err("`failures_to_eject` must be at least 1".into());
        }
        if self.eject_base.is_zero() {
            return Err("`eject_base` must be positive".into());
        }
        if self.eject_max < self.eject_base {
            return Err(format!(
                "`eject_max` ({} ms) must be at least `eject_base` ({} ms)",
                self.eject_max.as_millis(),
                self.eject_base.as_millis()
            ));
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(format!(
                "`ewma_alpha` must be in (0, 1], got {}",
                self.ewma_alpha
            ));
        }
        if self.initial_latency_us == 0 {
            return Err("`initial_latency_us` must be at least 1".into());
        }
        Ok(())
    }

    /// Consecutive failures that eject a member when the latest one is of this kind.
    fn threshold(&self, kind: FailureKind) -> u32 {
        let t = match kind {
            FailureKind::Connect => self.connect_failures_to_eject,
            _ => self.failures_to_eject,
        };
        t.max(1)
    }

    /// Length of the `n`th ejection in a row (`n ≥ 1`): `eject_base × 2ⁿ⁻¹`, at most
    /// `eject_max`.
    fn backoff(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.eject_base
            .saturating_mul(1u32 << doublings)
            .min(self.eject_max.max(self.eject_base))
    }

    fn alpha(&self) -> f64 {
        if self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0 {
            self.ewma_alpha
        } else {
            0.3
        }
    }
}

/// Why a request to a backend failed, as far as backend health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made (refused, reset before a response): the server is
    /// most likely gone.
    Connect,
    /// No (complete) response in time.
    Timeout,
    /// The backend answered with an HTTP 5xx.
    Status5xx,
    /// The backend answered with something that is not a valid MCP/JSON-RPC response.
    BadResponse,
}

impl FailureKind {
    /// Every kind, in the order of [`FailureCounts`]' fields.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Status5xx,
        FailureKind::BadResponse,
    ];

    /// Label value for metrics (`kind="connect"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Status5xx => "5xx",
            FailureKind::BadResponse => "bad_response",
        }
    }
}

/// How a request to the leased backend ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The backend answered properly (a JSON-RPC error result from the tool is still a success
    /// for the backend's health).
    Success,
    Failure(FailureKind),
}

/// Failures of one member by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub connect: u64,
    pub timeout: u64,
    pub status_5xx: u64,
    pub bad_response: u64,
}

impl FailureCounts {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status_5xx + self.bad_response
    }

    /// Failures of one kind.
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Connect => self.connect,
            FailureKind::Timeout => self.timeout,
            FailureKind::Status5xx => self.status_5xx,
            FailureKind::BadResponse => self.bad_response,
        }
    }

    fn bump(&mut self, kind: FailureKind) {
        let c = match kind {
            FailureKind::Connect => &mut self.connect,
            FailureKind::Timeout => &mut self.timeout,
            FailureKind::Status5xx => &mut self.status_5xx,
            FailureKind::BadResponse => &mut self.bad_response,
        };
        *c += 1;
    }
}

/// One member's state for `/metrics` and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberStats {
    pub id: String,
    /// Not marked down by active health checks or the registry.
    pub up: bool,
    /// Leases held right now (requests in flight).
    pub outstanding: u32,
    /// Latency EWMA in microseconds, as last updated (without idle relaxing).
    pub ewma_us: u64,
    /// Passively ejected, including half-open (backoff over, waiting for a successful probe).
    pub ejected: bool,
    pub ejections_total: u64,
    pub failures_total: u64,
    pub failures: FailureCounts,
    pub successes_total: u64,
    /// When the member was last taken out of rotation (marked down or ejected), in
    /// milliseconds since the Unix epoch, oldest first (the last [`TAKEN_OUT_KEPT`]): how a
    /// chaos run times detection against the moment it killed the server.
    pub taken_out_at_ms: Vec<u64>,
    /// Latency of the requests it answered.
    #[serde(skip)]
    pub latency: super::histogram::Snapshot,
}

/// How many taken-out times a member remembers.
pub const TAKEN_OUT_KEPT: usize = 8;

/// Picks backends for one group: see the module documentation. Cloning is cheap and clones
/// share the pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    config: PoolConfig,
    state: Mutex<State>,
}

struct State {
    members: Vec<Member>,
    /// Uids tell members apart across `set_members`, which moves and replaces them.
    next_uid: u64,
    /// Typical latency of the pool (µs) that stale member estimates relax towards.
    pool_ewma_us: f64,
}

#[derive(Debug)]
struct Member {
    id: Arc<str>,
    uid: u64,
    up: bool,
    outstanding: u32,
    ewma_us: f64,
    /// Time of the last latency sample; `None` until the first, so a fresh member keeps its
    /// seed estimate.
    last_sample: Option<Instant>,
    consecutive_failures: u32,
    ejection: Option<Ejection>,
    /// Ejections since the last success: the exponent of the backoff.
    ejections_in_row: u32,
    /// Bumped on every health change; only leases of the current epoch move the health state.
    epoch: u64,
    /// A half-open member's one probe lease is out.
    probe_in_flight: bool,
    successes_total: u64,
    failures: FailureCounts,
    ejections_total: u64,
    taken_out_at_ms: VecDeque<u64>,
    latency: super::histogram::Histogram,
}

#[derive(Debug, Clone, Copy)]
struct Ejection {
    since: Instant,
    until: Instant,
}

impl Member {
    fn new(id: &str, uid: u64, ewma_us: f64) -> Self {
        Self {
            id: Arc::from(id),
            uid,
            up: true,
            outstanding: 0,
            ewma_us,
            last_sample: None,
            consecutive_failures: 0,
            ejection: None,
            ejections_in_row: 0,
            epoch: 0,
            probe_in_flight: false,
            successes_total: 0,
            failures: FailureCounts::default(),
            ejections_total: 0,
            taken_out_at_ms: VecDeque::new(),
            latency: super::histogram::Histogram::default(),
        }
    }

    /// Notes the wall-clock moment the member left rotation.
    fn record_taken_out(&mut self) {
        if self.taken_out_at_ms.len() == TAKEN_OUT_KEPT {
            self.taken_out_at_ms.pop_front();
        }
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.taken_out_at_ms.push_back(ms);
    }

    /// May this member take a new lease now?
    fn eligible(&self, exclude: &[&str], now: Instant) -> bool {
        if !self.up {
            return false;
        }
        if let Some(e) = &self.ejection
            && (now < e.until || self.probe_in_flight)
        {
            return false;
        }
        !exclude.iter().any(|x| **x == *self.id)
    }

    /// The latency estimate, relaxed towards the pool's typical latency by the time since the
    /// last sample.
    fn latency_us(&self, now: Instant, pool_us: f64, half_life: Duration) -> f64 {
        let Some(at) = self.last_sample else {
            return self.ewma_us;
        };
        let idle = now.saturating_duration_since(at);
        if idle.is_zero() || half_life.is_zero() {
            return self.ewma_us;
        }
        let keep = (-(idle.as_secs_f64() / half_life.as_secs_f64())).exp2();
        pool_us + (self.ewma_us - pool_us) * keep
    }

    fn cost(&self, now: Instant, pool_us: f64, half_life: Duration) -> f64 {
        (f64::from(self.outstanding) + 1.0) * self.latency_us(now, pool_us, half_life)
    }

    fn eject(&mut self, now: Instant, config: &PoolConfig) {
        self.ejections_in_row = self.ejections_in_row.saturating_add(1);
        let until = now + config.backoff(self.ejections_in_row);
        if self.ejection.is_none() && self.up {
            self.record_taken_out();
        }
        self.ejection = Some(Ejection { since: now, until });
        self.consecutive_failures = 0;
        self.probe_in_flight = false;
        self.ejections_total += 1;
        self.epoch += 1;
    }

    fn stats(&self) -> MemberStats {
        MemberStats {
            id: self.id.to_string(),
            up: self.up,
            outstanding: self.outstanding,
            ewma_us: self.ewma_us.max(0.0).round() as u64,
            ejected: self.ejection.is_some(),
            ejections_total: self.ejections_total,
            failures_total: self.failures.total(),
            failures: self.failures,
            successes_total: self.successes_total,
            taken_out_at_ms: self.taken_out_at_ms.iter().copied().collect(),
            latency: self.latency.snapshot(),
        }
    }
}

impl State {
    /// The member a lease points at: at its index unless `set_members` moved it, gone if
    /// `set_members` dropped it.
    fn find_mut(&mut self, uid: u64, hint: usize) -> Option<&mut Member> {
        if self.members.get(hint).is_some_and(|m| m.uid == uid) {
            return self.members.get_mut(hint);
        }
        self.members.iter_mut().find(|m| m.uid == uid)
    }

    /// Median latency estimate of the members that have samples.
    fn median_ewma(&self) -> Option<f64> {
        let mut v: Vec<f64> = self
            .members
            .iter()
            .filter(|m| m.last_sample.is_some())
            .map(|m| m.ewma_us)
            .collect();
        if v.is_empty() {
            return None;
        }
        let mid = v.len() / 2;
        let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
        Some(*m)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and the state stays consistent field by
        // field even if one did: keep balancing rather than poison every request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    /// A pool of `ids` with the default configuration.
    pub fn new<S: AsRef<str>>(ids: &[S]) -> Self {
        Self::with_config(ids, PoolConfig::default())
    }

    /// A pool of `ids`. `config` should have passed [`PoolConfig::validate`]; out-of-range
    /// values are clamped rather than trusted.
    pub fn with_config<S: AsRef<str>>(ids: &[S], config: PoolConfig) -> Self {
        let seed = config.initial_latency_us.max(1) as f64;
        let pool = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    members: Vec::new(),
                    next_uid: 0,
                    pool_ewma_us: seed,
                }),
                config,
            }),
        };
        pool.set_members(ids);
        pool
    }

    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Number of members, whatever their health.
    pub fn len(&self) -> usize {
        self.shared.lock().members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members a pick could choose right now (up, not ejected or half-open without a probe
    /// in flight): for a "healthy backends" gauge and readiness.
    pub fn available(&self, now: Instant) -> usize {
        self.shared
            .lock()
            .members
            .iter()
            .filter(|m| m.eligible(&[], now))
            .count()
    }

    /// Replaces the member set (service discovery): ids that stay keep their statistics and
    /// health, new ids start healthy with the pool's median latency estimate (or
    /// `initial_latency_us`), ids that are gone are dropped; their outstanding leases become
    /// no-ops. Duplicate ids count once. Allocates, but runs only when the registry changes.
    pub fn set_members<S: AsRef<str>>(&self, ids: &[S]) {
        let mut st = self.shared.lock();
        let seed = st
            .median_ewma()
            .unwrap_or(self.shared.config.initial_latency_us.max(1) as f64);
        let mut old: HashMap<Arc<str>, Member> = std::mem::take(&mut st.members)
            .into_iter()
            .map(|m| (Arc::clone(&m.id), m))
            .collect();
        let mut seen = HashSet::with_capacity(ids.len());
        let mut members = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref();
            if !seen.insert(id) {
                continue;
            }
            match old.remove(id) {
                Some(m) => members.push(m),
                None => {
                    let uid = st.next_uid;
                    st.next_uid += 1;
                    members.push(Member::new(id, uid, seed));
                }
            }
        }
        st.members = members;
    }

    /// Active health: `up == false` (failed `/healthz` or MCP probe, or the registry says the
    /// server is stopped or restarting) takes the member out until it is marked up again.
    ///
    /// `up == true` is evidence that the server works right now:
    /// * for a member marked down it re-admits it fully, clearing any passive ejection and
    ///   its backoff (the server was restarted or has recovered);
    /// * for a member that is up but passively ejected it ends the backoff early, making the
    ///   member half-open: one real request decides. A passing `/healthz` alone does not
    ///   override what real requests showed (a server can answer `/healthz` and fail tool
    ///   calls), but it bounds how long a recovered server waits out a long backoff to one
    ///   probe interval. So call it with probe results or on registry changes, not on every
    ///   poll of an unchanged registry.
    ///
    /// Returns false if `id` is not a member.
    pub fn set_up(&self, id: &str, up: bool) -> bool {
        let mut st = self.shared.lock();
        let Some(m) = st.members.iter_mut().find(|m| *m.id == *id) else {
            return false;
        };
        if !up {
            if m.up {
                if m.ejection.is_none() {
                    m.record_taken_out();
                }
                m.up = false;
                m.probe_in_flight = false;
                m.epoch += 1;
            }
        } else if !m.up {
            m.up = true;
            m.ejection = None;
            m.consecutive_failures = 0;
            m.ejections_in_row = 0;
            m.probe_in_flight = false;
            m.epoch += 1;
        } else if let Some(e) = &mut m.ejection {
            e.until = e.until.min(e.since);
        }
        true
    }

    /// Chooses a backend by power of two choices among the members that are up, not ejected
    /// (a half-open member counts while its one probe lease is not out) and not in `exclude`
    /// (the backends a retried request already failed on). Of two distinct random candidates
    /// the one with the lower `(outstanding + 1) × latency` wins; a single candidate is taken;
    /// `None` when no member is available (answer 503 / a JSON-RPC error).
    ///
    /// `rng_word` is the randomness (one `SplitMix64` output per pick does); further draws are
    /// derived from it. Never blocks beyond the pool's short lock and never allocates.
    pub fn pick(&self, exclude: &[&str], now: Instant, rng_word: u64) -> Option<Lease> {
        let mut st = self.shared.lock();
        let mut rng = SplitMix64::new(rng_word);
        let first = choose(&st.members, exclude, now, None, &mut rng)?;
        let idx = match choose(&st.members, exclude, now, Some(first), &mut rng) {
            None => first,
            Some(second) => {
                let half_life = self.shared.config.idle_half_life;
                let pool_us = st.pool_ewma_us;
                let members = &st.members;
                if members[second].cost(now, pool_us, half_life)
                    < members[first].cost(now, pool_us, half_life)
                {
                    second
                } else {
                    first
                }
            }
        };
        let m = &mut st.members[idx];
        m.outstanding += 1;
        let probe = m.ejection.is_some();
        if probe {
            m.probe_in_flight = true;
        }
        Some(Lease {
            shared: Arc::clone(&self.shared),
            id: Arc::clone(&m.id),
            uid: m.uid,
            hint: idx,
            epoch: m.epoch,
            probe,
            finished: false,
        })
    }

    /// Every member's state, in member order.
    pub fn snapshot(&self) -> Vec<MemberStats> {
        self.shared
            .lock()
            .members
            .iter()
            .map(Member::stats)
            .collect()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("members", &self.len())
            .field("config", &self.shared.config)
            .finish()
    }
}

/// One uniformly random eligible member other than `other`: rejection sampling over the whole
/// list (O(1) expected while most members are available), then an exact count-and-index pass
/// when most are not. Either way every eligible member is equally likely.
fn choose(
    members: &[Member],
    exclude: &[&str],
    now: Instant,
    other: Option<usize>,
    rng: &mut SplitMix64,
) -> Option<usize> {
    let ok = |i: usize| Some(i) != other && members[i].eligible(exclude, now);
    // Draw from the members other than `other`: indices 0..span, shifted past `other`.
    let span = members.len() - usize::from(other.is_some_and(|o| o < members.len()));
    if span == 0 {
        return None;
    }
    let skip = |j: usize| match other {
        Some(o) if j >= o => j + 1,
        _ => j,
    };
    for _ in 0..SAMPLE_TRIES {
        let i = skip(bounded(rng.next_u64(), span));
        if ok(i) {
            return Some(i);
        }
    }
    let count = (0..members.len()).filter(|&i| ok(i)).count();
    if count == 0 {
        return None;
    }
    let k = bounded(rng.next_u64(), count);
    (0..members.len()).filter(|&i| ok(i)).nth(k)
}

/// Maps a random word to `0..n` (Lemire's multiply-shift; bias below n / 2⁶⁴).
fn bounded(word: u64, n: usize) -> usize {
    ((u128::from(word) * n as u128) >> 64) as usize
}

/// A backend chosen by [`Pool::pick`], counted as one outstanding request until it is
/// finished or dropped. Dropping it without [`Lease::finish`] (the request was cancelled)
/// releases it without counting a success or a failure.
#[must_use = "a lease counts as an outstanding request until finished or dropped"]
pub struct Lease {
    shared: Arc<Shared>,
    id: Arc<str>,
    uid: u64,
    hint: usize,
    epoch: u64,
    probe: bool,
    finished: bool,
}

impl Lease {
    /// The chosen backend's server id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// This lease is the one request allowed to a half-open member: its outcome decides
    /// whether the member is re-admitted.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records how the request ended and releases the lease. `latency` is the backend's
    /// response time (used for the EWMA on success only); `now` is when the request ended.
    pub fn finish(mut self, outcome: Outcome, latency: Duration, now: Instant) {
        self.finished = true;
        let config = &self.shared.config;
        let mut st = self.shared.lock();
        let pool_us = st.pool_ewma_us;
        let Some(m) = st.find_mut(self.uid, self.hint) else {
            return;
        };
        m.outstanding = m.outstanding.saturating_sub(1);
        let current = m.epoch == self.epoch;
        match outcome {
            Outcome::Success => {
                m.successes_total += 1;
                m.latency.record(latency);
                let sample = latency.as_secs_f64() * 1e6;
                let prior = m.latency_us(now, pool_us, config.idle_half_life);
                m.ewma_us = prior + config.alpha() * (sample - prior);
                m.last_sample = Some(m.last_sample.map_or(now, |t| t.max(now)));
                if current {
                    m.consecutive_failures = 0;
                    m.ejections_in_row = 0;
                    if m.ejection.take().is_some() {
                        m.probe_in_flight = false;
                        m.epoch += 1;
                    }
                }
                st.pool_ewma_us = pool_us + POOL_ALPHA * (sample - pool_us);
            }
            Outcome::Failure(kind) => {
                m.failures.bump(kind);
                if current {
                    if m.ejection.is_some() {
                        // The half-open probe failed: out again, for twice as long.
                        m.eject(now, config);
                    } else {
                        m.consecutive_failures = m.consecutive_failures.saturating_add(1);
                        if m.consecutive_failures >= config.threshold(kind) {
                            m.eject(now, config);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut st = self.shared.lock();
        if let Some(m) = st.find_mut(self.uid, self.hint) {
            m.outstanding = m.outstanding.saturating_sub(1);
            if self.probe && m.epoch == self.epoch {
                // A cancelled probe decides nothing: let the next request probe.
                m.probe_in_flight = false;
            }
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("probe", &self.probe)
            .finish()
    }
}

/// SplitMix64: a tiny, fast generator, good enough to spread picks. One per task supplies the
/// `rng_word`s for [`Pool::pick`], which also uses it to derive further draws from one word.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Durations in TOML as whole milliseconds, like the fleet spec.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::VecDeque;

    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    fn stats(pool: &Pool, id: &str) -> MemberStats {
        pool.snapshot()
            .into_iter()
            .find(|s| s.id == id)
            .expect("member exists")
    }

    /// Finishes a lease on `id` (forced by excluding everyone else) with `outcome`.
    fn on(pool: &Pool, id: &str, now: Instant, outcome: Outcome, latency: Duration) {
        let others: Vec<String> = pool
            .snapshot()
            .into_iter()
            .map(|s| s.id)
            .filter(|s| s != id)
            .collect();
        let exclude: Vec<&str> = others.iter().map(String::as_str).collect();
        let lease = pool.pick(&exclude, now, 7).expect("member is pickable");
        assert_eq!(lease.id(), id);
        lease.finish(outcome, latency, now);
    }

    fn pickable(pool: &Pool, id: &str, now: Instant) -> bool {
        let mut rng = SplitMix64::new(1);
        (0..64).any(|_| {
            pool.pick(&[], now, rng.next_u64())
                .is_some_and(|l| l.id() == id)
        })
    }

    #[test]
    fn prefers_the_less_loaded_of_two() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        let held = pool.pick(&["b"], now, 1).unwrap();
        assert_eq!(held.id(), "a");
        let mut rng = SplitMix64::new(42);
        for _ in 0..100 {
            let l = pool.pick(&[], now, rng.next_u64()).unwrap();
            assert_eq!(l.id(), "b");
        }
        drop(held);
        assert_eq!(stats(&pool, "a").outstanding, 0);
    }

    #[test]
    fn prefers_the_faster_of_two() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        for _ in 0..10 {
            on(&pool, "a", now, Outcome::Success, 100 * US);
            on(&pool, "b", now, Outcome::Success, 1000 * US);
        }
        assert!(stats(&pool, "a").ewma_us < stats(&pool, "b").ewma_us);
        let mut rng = SplitMix64::new(3);
        for _ in 0..100 {
            let l = pool.pick(&[], now, rng.next_u64()).unwrap();
            assert_eq!(l.id(), "a");
        }
    }

    #[test]
    fn slow_members_get_far_less_traffic() {
        let names = ids(10);
        let pool = Pool::new(&names);
        let latency = |id: &str| {
            if id == "s3" || id == "s7" {
                5000 * US
            } else {
                500 * US
            }
        };
        let t0 = Instant::now();
        for id in &names {
            for _ in 0..5 {
                on(&pool, id, t0, Outcome::Success, latency(id));
            }
        }
        // 10k picks with eight requests in flight, each finishing after the next seven picks.
        let mut rng = SplitMix64::new(99);
        let mut in_flight = VecDeque::new();
        let mut count: HashMap<String, u32> = HashMap::new();
        for i in 0..10_000u32 {
            let now = t0 + (i + 1) * 100 * US;
            let lease = pool.pick(&[], now, rng.next_u64()).unwrap();
            *count.entry(lease.id().to_owned()).or_default() += 1;
            in_flight.push_back(lease);
            if in_flight.len() > 8 {
                let l = in_flight.pop_front().unwrap();
                let lat = latency(l.id());
                l.finish(Outcome::Success, lat, now);
            }
        }
        drop(in_flight);
        let slow = count.get("s3").copied().unwrap_or(0) + count.get("s7").copied().unwrap_or(0);
        // Uniform would give the two 2000; p2c gives them little more than the pairs in which
        // both candidates are slow (1/45 of picks).
        assert!(slow < 500, "slow members got {slow} of 10000: {count:?}");
        for id in &names {
            if id != "s3" && id != "s7" {
                assert!(
                    count.get(id.as_str()).copied().unwrap_or(0) > 800,
                    "{count:?}"
                );
            }
        }
        assert!(pool.snapshot().iter().all(|s| s.outstanding == 0));
    }

    #[test]
    fn exclusion_sends_retries_elsewhere() {
        let pool = Pool::new(&["a", "b", "c"]);
        let now = Instant::now();
        let mut rng = SplitMix64::new(5);
        for _ in 0..200 {
            let l = pool.pick(&["a"], now, rng.next_u64()).unwrap();
            assert_ne!(l.id(), "a");
            let l = pool.pick(&["a", "b"], now, rng.next_u64()).unwrap();
            assert_eq!(l.id(), "c");
        }
        assert!(pool.pick(&["a", "b", "c"], now, rng.next_u64()).is_none());
    }

    #[test]
    fn picks_are_spread_uniformly_when_idle() {
        let names = ids(5);
        let pool = Pool::new(&names);
        let now = Instant::now();
        let mut rng = SplitMix64::new(11);
        let mut count = HashMap::new();
        for _ in 0..10_000 {
            let l = pool.pick(&[], now, rng.next_u64()).unwrap();
            *count.entry(l.id().to_owned()).or_insert(0u32) += 1;
        }
        // Equal costs: the first candidate wins, which is uniform.
        for id in &names {
            let c = count[id.as_str()];
            assert!((1700..2300).contains(&c), "{count:?}");
        }
    }

    #[test]
    fn connect_failure_ejects_then_half_open_probe_readmits() {
        let pool = Pool::new(&["a", "b"]);
        let t0 = Instant::now();
        on(&pool, "a", t0, Outcome::Failure(FailureKind::Connect), MS);
        let s = stats(&pool, "a");
        assert!(s.ejected);
        assert_eq!((s.ejections_total, s.failures.connect), (1, 1));

        // Not picked during the 200 ms backoff, not even as a retry's last resort.
        assert!(!pickable(&pool, "a", t0 + 199 * MS));
        assert!(pool.pick(&["b"], t0 + 199 * MS, 1).is_none());
        assert_eq!(pool.available(t0 + 199 * MS), 1);

        // Half-open: exactly one lease at a time.
        let t = t0 + 200 * MS;
        let probe = pool.pick(&["b"], t, 1).unwrap();
        assert_eq!(probe.id(), "a");
        assert!(probe.is_probe());
        assert!(pool.pick(&["b"], t, 2).is_none());
        assert!(!pickable(&pool, "a", t));
        // A cancelled probe lets the next request probe.
        drop(probe);
        let probe = pool.pick(&["b"], t, 3).unwrap();
        assert!(probe.is_probe());
        probe.finish(Outcome::Success, MS, t);

        let s = stats(&pool, "a");
        assert!(!s.ejected);
        let l1 = pool.pick(&["b"], t, 4).unwrap();
        let l2 = pool.pick(&["b"], t, 5).unwrap();
        assert!(!l1.is_probe() && !l2.is_probe());
        assert_eq!(stats(&pool, "a").outstanding, 2);
    }

    #[test]
    fn repeated_ejections_double_the_backoff_up_to_the_max() {
        let config = PoolConfig {
            eject_max: Duration::from_secs(1),
            ..PoolConfig::default()
        };
        let pool = Pool::with_config(&["a"], config);
        let mut t = Instant::now();
        on(&pool, "a", t, Outcome::Failure(FailureKind::Connect), MS);
        for expected in [200u64, 400, 800, 1000, 1000] {
            let backoff = Duration::from_millis(expected);
            assert!(pool.pick(&[], t + backoff - MS, 1).is_none(), "{expected}");
            t += backoff;
            let probe = pool.pick(&[], t, 1).expect("half-open");
            assert!(probe.is_probe());
            probe.finish(Outcome::Failure(FailureKind::Connect), MS, t);
        }
        assert_eq!(stats(&pool, "a").ejections_total, 6);
        // A success resets the backoff: the next ejection is short again.
        t += Duration::from_secs(1);
        pool.pick(&[], t, 1)
            .unwrap()
            .finish(Outcome::Success, MS, t);
        on(&pool, "a", t, Outcome::Failure(FailureKind::Connect), MS);
        assert!(pool.pick(&[], t + 199 * MS, 1).is_none());
        assert!(pool.pick(&[], t + 200 * MS, 1).is_some());
    }

    #[test]
    fn other_failures_eject_after_three_in_a_row() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        let fail = |kind| on(&pool, "a", now, Outcome::Failure(kind), MS);
        fail(FailureKind::Timeout);
        fail(FailureKind::Status5xx);
        on(&pool, "a", now, Outcome::Success, MS);
        fail(FailureKind::BadResponse);
        fail(FailureKind::Timeout);
        assert!(!stats(&pool, "a").ejected);
        fail(FailureKind::Status5xx);
        let s = stats(&pool, "a");
        assert!(s.ejected);
        assert_eq!(s.failures_total, 5);
        assert_eq!(s.successes_total, 1);
        assert_eq!(s.failures.get(FailureKind::Timeout), 2);
        // Two slow failures then a refused connection: the connection error decides.
        on(&pool, "b", now, Outcome::Failure(FailureKind::Timeout), MS);
        assert!(!stats(&pool, "b").ejected);
        on(&pool, "b", now, Outcome::Failure(FailureKind::Connect), MS);
        assert!(stats(&pool, "b").ejected);
    }

    #[test]
    fn requests_in_flight_at_ejection_do_not_escalate_the_backoff() {
        let pool = Pool::new(&["a", "b"]);
        let t0 = Instant::now();
        let leases: Vec<Lease> = (0..20).map(|i| pool.pick(&["b"], t0, i).unwrap()).collect();
        for l in leases {
            l.finish(Outcome::Failure(FailureKind::Connect), MS, t0);
        }
        let s = stats(&pool, "a");
        assert_eq!(
            (s.ejections_total, s.failures_total, s.outstanding),
            (1, 20, 0)
        );
        assert!(pool.pick(&["b"], t0 + 200 * MS, 1).is_some());
    }

    #[test]
    fn set_up_excludes_and_readmits() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        assert!(pool.set_up("a", false));
        assert!(!pickable(&pool, "a", now));
        assert!(!stats(&pool, "a").up);
        assert!(pool.set_up("b", false));
        assert!(pool.pick(&[], now, 1).is_none());
        assert_eq!(pool.available(now), 0);
        assert!(pool.set_up("a", true));
        assert!(pickable(&pool, "a", now));
        assert!(!pool.set_up("nope", true));
    }

    #[test]
    fn set_up_after_down_clears_an_ejection() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        on(&pool, "a", now, Outcome::Failure(FailureKind::Connect), MS);
        pool.set_up("a", false);
        pool.set_up("a", true);
        let s = stats(&pool, "a");
        assert!(s.up && !s.ejected);
        let l = pool.pick(&["b"], now, 1).unwrap();
        assert!(!l.is_probe());
    }

    #[test]
    fn set_up_while_up_makes_an_ejected_member_half_open() {
        let pool = Pool::new(&["a", "b"]);
        let now = Instant::now();
        for _ in 0..4 {
            on(&pool, "a", now, Outcome::Failure(FailureKind::Connect), MS);
            pool.set_up("a", true);
        }
        // Each probe failed; the healthy active check lets one request try again at once.
        let probe = pool.pick(&["b"], now, 1).unwrap();
        assert!(probe.is_probe());
        assert!(pool.pick(&["b"], now, 2).is_none());
        probe.finish(Outcome::Success, MS, now);
        assert!(!stats(&pool, "a").ejected);
    }

    #[test]
    fn down_while_probing_ignores_the_stale_probe() {
        let pool = Pool::new(&["a", "b"]);
        let t0 = Instant::now();
        on(&pool, "a", t0, Outcome::Failure(FailureKind::Connect), MS);
        let t = t0 + 200 * MS;
        let probe = pool.pick(&["b"], t, 1).unwrap();
        pool.set_up("a", false);
        pool.set_up("a", true);
        // Re-admitted by the active check; the old probe's failure is stale evidence.
        probe.finish(Outcome::Failure(FailureKind::Connect), MS, t);
        let s = stats(&pool, "a");
        assert!(!s.ejected);
        assert_eq!(s.failures_total, 2);
        assert_eq!(s.outstanding, 0);
    }

    #[test]
    fn empty_pool_picks_nothing() {
        let pool = Pool::new::<String>(&[]);
        assert!(pool.is_empty());
        assert!(pool.pick(&[], Instant::now(), 1).is_none());
    }

    #[test]
    fn set_members_keeps_survivors_and_adds_and_drops() {
        let pool = Pool::new(&["a", "b", "c"]);
        let now = Instant::now();
        on(&pool, "a", now, Outcome::Success, 100 * US);
        on(&pool, "b", now, Outcome::Success, 300 * US);
        on(&pool, "c", now, Outcome::Success, 900 * US);
        on(&pool, "c", now, Outcome::Failure(FailureKind::Connect), MS);
        let a = stats(&pool, "a");
        let c = stats(&pool, "c");
        let median = stats(&pool, "b").ewma_us;
        let held_a = pool.pick(&["b", "c"], now, 1).unwrap();
        let held_b = pool.pick(&["a", "c"], now, 1).unwrap();

        pool.set_members(&["d", "c", "a", "d"]);
        let snap = pool.snapshot();
        let order: Vec<&str> = snap.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(order, ["d", "c", "a"]);
        assert_eq!(stats(&pool, "a").successes_total, a.successes_total);
        assert_eq!(stats(&pool, "a").outstanding, 1);
        assert_eq!(stats(&pool, "c"), c);
        let d = stats(&pool, "d");
        assert_eq!((d.successes_total, d.ejected, d.up), (0, false, true));
        assert_eq!(d.ewma_us, median);

        // Leases survive the change: a's finds its member at its new index, b's is a no-op.
        held_a.finish(Outcome::Success, 100 * US, now);
        drop(held_b);
        assert_eq!(stats(&pool, "a").outstanding, 0);
        assert_eq!(stats(&pool, "a").successes_total, 2);
        assert!(pool.snapshot().iter().all(|s| s.id != "b"));
        // The new member looks typical (median), so it gets traffic as soon as the faster a is
        // busy.
        let busy = pool.pick(&["c", "d"], now, 1).unwrap();
        assert!(pickable(&pool, "d", now));
        drop(busy);
    }

    #[test]
    fn leases_release_on_drop_and_finish() {
        let pool = Pool::new(&["a"]);
        let now = Instant::now();
        let l1 = pool.pick(&[], now, 1).unwrap();
        let l2 = pool.pick(&[], now, 2).unwrap();
        {
            let _l3 = pool.pick(&[], now, 3).unwrap();
            assert_eq!(stats(&pool, "a").outstanding, 3);
        }
        assert_eq!(stats(&pool, "a").outstanding, 2);
        l1.finish(Outcome::Success, MS, now);
        assert_eq!(stats(&pool, "a").outstanding, 1);
        drop(l2);
        let s = stats(&pool, "a");
        // The dropped leases were cancelled requests: neither success nor failure.
        assert_eq!(
            (s.outstanding, s.successes_total, s.failures_total),
            (0, 1, 0)
        );
        // The pool may go away before its leases.
        let l = pool.pick(&[], now, 4).unwrap();
        drop(pool);
        l.finish(Outcome::Success, MS, now);
    }

    #[test]
    fn a_starved_slow_member_is_tried_again_after_idling() {
        let pool = Pool::new(&["a", "b"]);
        let t0 = Instant::now();
        for _ in 0..20 {
            on(&pool, "b", t0, Outcome::Success, 10 * MS);
            on(&pool, "a", t0, Outcome::Success, 100 * US);
        }
        let busy = pool.pick(&["b"], t0, 1).unwrap();
        // With a one request busy, b still costs far more.
        let mut rng = SplitMix64::new(8);
        let t = t0 + MS;
        assert!((0..50).all(|_| pool.pick(&[], t, rng.next_u64()).unwrap().id() == "a"));
        // Twenty half-lives later both estimates are "typical" and load decides.
        let t = t0 + Duration::from_secs(20);
        assert!((0..50).all(|_| pool.pick(&[], t, rng.next_u64()).unwrap().id() == "b"));
        drop(busy);
    }

    #[test]
    fn concurrent_picks_and_finishes_balance_out() {
        let names = ids(16);
        let pool = Pool::new(&names);
        let t0 = Instant::now();
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut rng = SplitMix64::new(t);
                    let mut done = 0u64;
                    for i in 0..5_000u32 {
                        let now = t0 + i * US;
                        let Some(lease) = pool.pick(&[], now, rng.next_u64()) else {
                            continue;
                        };
                        match rng.next_u64() % 10 {
                            0 => drop(lease),
                            1 => {
                                let kind = FailureKind::ALL[(i % 4) as usize];
                                lease.finish(Outcome::Failure(kind), 50 * US, now);
                                done += 1;
                            }
                            _ => {
                                lease.finish(Outcome::Success, 50 * US, now);
                                done += 1;
                            }
                        }
                    }
                    done
                })
            })
            .collect();
        let done: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let snap = pool.snapshot();
        assert!(snap.iter().all(|s| s.outstanding == 0), "{snap:?}");
        let counted: u64 = snap
            .iter()
            .map(|s| s.successes_total + s.failures_total)
            .sum();
        assert_eq!(counted, done);
    }

    #[test]
    fn config_defaults_validate_and_parse() {
        let config = PoolConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.backoff(1), Duration::from_millis(200));
        assert_eq!(config.backoff(3), Duration::from_millis(800));
        assert_eq!(config.backoff(100), Duration::from_secs(5));

        let parsed: PoolConfig = toml::from_str("eject_base = 100\newma_alpha = 0.5").unwrap();
        assert_eq!(parsed.eject_base, Duration::from_millis(100));
        assert_eq!(parsed.ewma_alpha, 0.5);
        assert_eq!(parsed.eject_max, Duration::from_secs(5));
        let text = toml::to_string(&parsed).unwrap();
        assert_eq!(toml::from_str::<PoolConfig>(&text).unwrap(), parsed);
        assert!(toml::from_str::<PoolConfig>("eject_bse = 1").is_err());

        let bad = |c: PoolConfig, field: &str| {
            let err = c.validate().unwrap_err();
            assert!(err.contains(field), "{err}");
        };
        let d = PoolConfig::default;
        bad(
            PoolConfig {
                connect_failures_to_eject: 0,
                ..d()
            },
            "connect_failures_to_eject",
        );
        bad(
            PoolConfig {
                failures_to_eject: 0,
                ..d()
            },
            "failures_to_eject",
        );
        bad(
            PoolConfig {
                eject_base: Duration::ZERO,
                ..d()
            },
            "eject_base",
        );
        bad(
            PoolConfig {
                eject_max: Duration::from_millis(100),
                ..d()
            },
            "eject_max",
        );
        for alpha in [0.0, 1.5, f64::NAN] {
            bad(
                PoolConfig {
                    ewma_alpha: alpha,
                    ..d()
                },
                "ewma_alpha",
            );
        }
        bad(
            PoolConfig {
                initial_latency_us: 0,
                ..d()
            },
            "initial_latency_us",
        );
    }
}
