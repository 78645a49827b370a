//! What each member of the gateway speaks, as far as it has learnt: the stateless era, or only
//! the session eras (then with the sessions held on it). Learnt and used by [`super::member`].

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use super::upstream_session::MemberSessions;

/// What each member speaks, as far as the gateway has learnt.
#[derive(Debug, Default)]
pub(super) struct Eras {
    /// Set once any member has been found to speak only the session eras: until then every
    /// request goes out statelessly without a look at the table.
    pub(super) any_sessions: AtomicBool,
    known: RwLock<HashMap<String, Speaks>>,
}

/// A member's era, once learnt.
#[derive(Debug, Clone)]
pub(super) enum Speaks {
    /// It answered a `server/discover`: stateless requests are its own, 400s included.
    Stateless,
    /// Only the session eras: its requests go over sessions held on it.
    Sessions(Arc<MemberSessions>),
}

impl Eras {
    pub(super) fn get(&self, id: &str) -> Option<Speaks> {
        self.read().get(id).cloned()
    }

    /// Forgets what `id` speaks (it went down: its next instance may speak otherwise).
    pub(super) fn forget(&self, id: &str) {
        self.write().remove(id);
    }

    /// Forgets the members not in `keep` (they left).
    pub(super) fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.write().retain(|id, _| keep(id));
    }

    /// Records what `id` speaks, unless another request learnt it meanwhile; gives what is
    /// recorded.
    pub(super) fn learn(&self, id: &str, speaks: Speaks) -> Speaks {
        if matches!(speaks, Speaks::Sessions(_)) {
            self.any_sessions.store(true, Ordering::Relaxed);
        }
        self.write().entry(id.to_string()).or_insert(speaks).clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Speaks>> {
        self.known.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Speaks>> {
        self.known.write().unwrap_or_else(|e| e.into_inner())
    }
}
