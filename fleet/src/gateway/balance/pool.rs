//! The handle the gateway holds per group: membership changes from discovery
//! ([`Pool::set_members`]), active health ([`Pool::set_up`]), the power-of-two-choices pick
//! ([`Pool::pick`]) that hands out a [`Lease`], and the members' statistics.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex},
    time::Instant,
};

use super::{
    config::PoolConfig,
    lease::Lease,
    member::Member,
    outcome::MemberStats,
    table::{MemberTable, PoolCore},
};

/// Random draws from the pool's member list before falling back to counting the admitted
/// members. With 10 % of members unavailable, eight misses in a row happen once in 10⁸ picks.
const SAMPLE_TRIES: usize = 8;

/// Picks backends for one group: see the module documentation. Cloning is cheap and clones
/// share the pool.
#[derive(Clone)]
pub struct Pool {
    core: Arc<PoolCore>,
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
            core: Arc::new(PoolCore {
                table: Mutex::new(MemberTable {
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
        &self.core.config
    }

    /// Number of members, whatever their health.
    pub fn len(&self) -> usize {
        self.core.lock().members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members a pick could choose right now (up, not ejected or half-open without a probe
    /// in flight): for a "healthy backends" gauge and readiness.
    pub fn available(&self, now: Instant) -> usize {
        self.core
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
        let mut table = self.core.lock();
        let seed = table
            .median_ewma()
            .unwrap_or(self.core.config.initial_latency_us.max(1) as f64);
        let mut old: HashMap<Arc<str>, Member> = std::mem::take(&mut table.members)
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
                    let uid = table.next_uid;
                    table.next_uid += 1;
                    members.push(Member::new(id, uid, seed));
                }
            }
        }
        table.members = members;
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
        let mut table = self.core.lock();
        let Some(m) = table.members.iter_mut().find(|m| *m.id == *id) else {
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
    /// `rng_word` is the randomness (a fresh random word per pick does; it seeds
    /// a `fastrand::Rng`); further draws are
    /// derived from it. Never blocks beyond the pool's short lock and never allocates.
    pub fn pick(&self, exclude: &[&str], now: Instant, rng_word: u64) -> Option<Lease> {
        let mut table = self.core.lock();
        let mut rng = fastrand::Rng::with_seed(rng_word);
        let first = choose(&table.members, exclude, now, None, &mut rng)?;
        let idx = match choose(&table.members, exclude, now, Some(first), &mut rng) {
            None => first,
            Some(second) => {
                let half_life = self.core.config.idle_half_life;
                let pool_us = table.pool_ewma_us;
                let members = &table.members;
                if members[second].cost(now, pool_us, half_life)
                    < members[first].cost(now, pool_us, half_life)
                {
                    second
                } else {
                    first
                }
            }
        };
        let m = &mut table.members[idx];
        m.outstanding += 1;
        let probe = m.ejection.is_some();
        if probe {
            m.probe_in_flight = true;
        }
        Some(Lease::new(Arc::clone(&self.core), m, idx, probe))
    }

    /// Every member's state, in member order.
    pub fn snapshot(&self) -> Vec<MemberStats> {
        self.core.lock().members.iter().map(Member::stats).collect()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("members", &self.len())
            .field("config", &self.core.config)
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
    rng: &mut fastrand::Rng,
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
        let i = skip(rng.usize(..span));
        if ok(i) {
            return Some(i);
        }
    }
    let count = (0..members.len()).filter(|&i| ok(i)).count();
    if count == 0 {
        return None;
    }
    let k = rng.usize(..count);
    (0..members.len()).filter(|&i| ok(i)).nth(k)
}
