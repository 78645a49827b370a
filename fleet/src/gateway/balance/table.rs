//! The state a pool and its leases share: the configuration and the member table behind one
//! short `std::sync::Mutex`, with the lookups both sides need (a lease's member by uid, the
//! median latency a new member starts at).

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{config::PoolConfig, member::Member};

/// The pool itself, shared by its `Pool` handles and every outstanding lease: the
/// configuration and the locked member table.
pub(super) struct PoolCore {
    pub(super) config: PoolConfig,
    pub(super) table: Mutex<MemberTable>,
}

/// The members of a pool and the pool-wide latency average, behind the pool's one lock.
pub(super) struct MemberTable {
    pub(super) members: Vec<Member>,
    /// Uids tell members apart across `set_members`, which moves and replaces them.
    pub(super) next_uid: u64,
    /// Typical latency of the pool (µs) that stale member estimates relax towards.
    pub(super) pool_ewma_us: f64,
}

impl MemberTable {
    /// The member a lease points at: at its index unless `set_members` moved it, gone if
    /// `set_members` dropped it.
    pub(super) fn find_mut(&mut self, uid: u64, hint: usize) -> Option<&mut Member> {
        if self.members.get(hint).is_some_and(|m| m.uid == uid) {
            return self.members.get_mut(hint);
        }
        self.members.iter_mut().find(|m| m.uid == uid)
    }

    /// Median latency estimate of the members that have samples.
    pub(super) fn median_ewma(&self) -> Option<f64> {
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

impl PoolCore {
    pub(super) fn lock(&self) -> MutexGuard<'_, MemberTable> {
        // No code path panics while holding the lock, and the state stays consistent field by
        // field even if one did: keep balancing rather than poison every request.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
