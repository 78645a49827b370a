//! The servers behind the gateway: a [`Backend`] is one server it can route to (over HTTP, or
//! in-process for task-mode servers), the [`Directory`] finds them by id and by group.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use crate::serve::registry::Entry;

/// One server the gateway can route to.
#[derive(Debug, Clone)]
pub struct Backend {
    pub id: String,
    pub group: String,
    pub addr: SocketAddr,
    /// Set when the server runs in this process (task mode): it is called in-process, without
    /// the loopback HTTP exchange, and is down while the slot is empty. `None`: over HTTP at
    /// `addr`.
    pub local: Option<Arc<crate::serve::local::Slot>>,
}

impl Backend {
    /// The server of a registry entry, listening on `host`; called in-process when
    /// `in_process` (the entry's instances run in this process and may be called there).
    pub fn of(entry: &Entry, host: std::net::IpAddr, in_process: bool) -> Self {
        Self {
            id: entry.identity.id.clone(),
            group: entry.identity.group.clone(),
            addr: SocketAddr::new(host, entry.port),
            local: in_process.then(|| entry.local.clone()),
        }
    }
}

/// The servers behind the gateway, by id and by group.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub(super) by_id: BTreeMap<String, Arc<Backend>>,
}

impl Directory {
    pub fn new(backends: impl IntoIterator<Item = Backend>) -> Self {
        Self {
            by_id: backends
                .into_iter()
                .map(|b| (b.id.clone(), Arc::new(b)))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Backend>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Server ids by group, each group's in id order.
    pub(super) fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for b in self.by_id.values() {
            groups
                .entry(b.group.clone())
                .or_default()
                .push(b.id.clone());
        }
        groups
    }
}
