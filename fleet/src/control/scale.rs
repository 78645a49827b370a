//! Servers joining and leaving a running fleet: the fleet starts its servers through
//! [`Scaler::add`] and `fleet scale GROUP COUNT` (the admin API's `POST /groups/{group}/scale`)
//! grows or shrinks a group. Everything that follows the registry (the gateway's pools, the
//! admin API, `fleet status`) sees the change at once, without a restart.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    control::{
        health::{self, Prober},
        instance::Launcher,
        supervisor::{self, Commands, TaskGroup},
    },
    serve::registry::{Entry, Identity, Registry},
    spec::{GroupSpec, HealthSpec, Isolation, MAX_GROUP_SIZE},
};

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("no group named {0:?} (groups: {1})")]
    UnknownGroup(String, String),
    #[error("count {0} is over the limit of {MAX_GROUP_SIZE} servers per group")]
    TooMany(u32),
    #[error("count 0 would empty the group; a group keeps at least 1 server, as in a spec")]
    Empty,
    #[error("cannot listen for server {id} on {addr}: {source}")]
    Bind {
        id: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the fleet is stopping")]
    Stopping,
}

/// What a scale did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleOutcome {
    pub group: String,
    /// Servers in the group afterwards.
    pub count: u32,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// One running server's own stop switches and its keeper task.
struct Running {
    keeper_stop: CancellationToken,
    monitor_stop: CancellationToken,
    keeper: JoinHandle<()>,
}

/// Adds and removes servers: owns what starting one takes.
pub struct Scaler {
    pub(crate) host: IpAddr,
    pub(crate) groups: Vec<GroupSpec>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) commands: Commands,
    pub(crate) launcher: Arc<Launcher>,
    pub(crate) prober: Prober,
    pub(crate) health: HealthSpec,
    pub(crate) isolation: Isolation,
    pub(crate) keepers: Arc<TaskGroup>,
    pub(crate) monitors: Arc<TaskGroup>,
    running: Mutex<HashMap<String, Running>>,
    /// One scale at a time, so two requests cannot pick the same new index.
    scaling: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler")
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl Scaler {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        host: IpAddr,
        groups: Vec<GroupSpec>,
        registry: Arc<Registry>,
        commands: Commands,
        launcher: Arc<Launcher>,
        prober: Prober,
        health: HealthSpec,
        isolation: Isolation,
        keepers: Arc<TaskGroup>,
        monitors: Arc<TaskGroup>,
    ) -> Self {
        Self {
            host,
            groups,
            registry,
            commands,
            launcher,
            prober,
            health,
            isolation,
            keepers,
            monitors,
            running: Mutex::default(),
            scaling: tokio::sync::Mutex::new(()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers servers whose sockets are bound (one registry change for all of them) and
    /// starts their keepers and health monitors.
    pub(crate) fn add(&self, servers: Vec<(Identity, u16, std::net::TcpListener)>) {
        let changes = self.registry.changes();
        let servers: Vec<_> = servers
            .into_iter()
            .map(|(identity, port, socket)| {
                let entry = Arc::new(Entry::new(identity, port, changes.clone()));
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                self.commands.insert(entry.identity.id.clone(), tx);
                (entry, socket, rx)
            })
            .collect();
        self.registry
            .update(servers.iter().map(|(e, ..)| e.clone()).collect(), &[]);
        for (entry, socket, rx) in servers {
            let id = entry.identity.id.clone();
            let keeper_stop = self.keepers.shutdown.child_token();
            let monitor_stop = self.monitors.shutdown.child_token();
            let keeper = self.keepers.tracker.spawn(supervisor::keep(
                entry.clone(),
                Arc::new(socket),
                self.launcher.clone(),
                rx,
                keeper_stop.clone(),
            ));
            self.monitors.tracker.spawn(health::monitor(
                entry,
                self.prober.clone(),
                self.health.clone(),
                self.isolation,
                self.commands.clone(),
                monitor_stop.clone(),
            ));
            self.running().insert(
                id,
                Running {
                    keeper_stop,
                    monitor_stop,
                    keeper,
                },
            );
        }
    }

    /// Grows or shrinks `group` to `count` servers: new ones get the next indices (on the
    /// group's own port range while it lasts, else on ports the kernel picks), and the highest
    /// indices leave first, each stopped gracefully (in-flight requests finish) after it has
    /// left the registry, so the gateway sends it nothing new.
    pub async fn scale(&self, group: &str, count: u32) -> Result<ScaleOutcome, ScaleError> {
        if count > MAX_GROUP_SIZE {
            return Err(ScaleError::TooMany(count));
        }
        if count == 0 {
            return Err(ScaleError::Empty);
        }
        let spec = self
            .groups
            .iter()
            .find(|g| g.name == group)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
                ScaleError::UnknownGroup(group.to_string(), names.join(", "))
            })?;
        let _one_at_a_time = self.scaling.lock().await;
        if self.keepers.shutdown.is_cancelled() {
            return Err(ScaleError::Stopping);
        }
        let mut members: Vec<Arc<Entry>> = self
            .registry
            .entries()
            .iter()
            .filter(|e| e.identity.group == group)
            .cloned()
            .collect();
        members.sort_by_key(|e| e.identity.index);
        let mut outcome = ScaleOutcome {
            group: group.to_string(),
            count,
            added: Vec::new(),
            removed: Vec::new(),
        };
        let have = members.len() as u32;
        if count > have {
            // Bind every new socket first: a taken port adds nothing.
            let first = members.last().map_or(0, |e| e.identity.index + 1);
            let mut bound = Vec::new();
            for next in first..first + (count - have) {
                let identity = Identity::new(&spec.name, spec.profile, next);
                let port = if spec.first_port != 0 && next < spec.count {
                    spec.first_port + next as u16
                } else {
                    0
                };
                let addr = SocketAddr::new(self.host, port);
                let socket =
                    crate::serve::socket::bind_server(addr).map_err(|source| ScaleError::Bind {
                        id: identity.id.clone(),
                        addr,
                        source,
                    })?;
                let port = socket
                    .local_addr()
                    .map_err(|source| ScaleError::Bind {
                        id: identity.id.clone(),
                        addr,
                        source,
                    })?
                    .port();
                bound.push((identity, port, socket));
            }
            outcome.added = bound
                .iter()
                .map(|(identity, ..)| identity.id.clone())
                .collect();
            self.add(bound);
        } else {
            let leaving: Vec<Arc<Entry>> = members.split_off(count as usize);
            let ids: Vec<&str> = leaving.iter().map(|e| e.identity.id.as_str()).collect();
            self.registry.update(Vec::new(), &ids);
            let mut stopping = Vec::new();
            for entry in leaving.iter().rev() {
                let id = &entry.identity.id;
                self.commands.remove(id);
                if let Some(r) = self.running().remove(id) {
                    r.monitor_stop.cancel();
                    r.keeper_stop.cancel();
                    stopping.push(r.keeper);
                }
                outcome.removed.push(id.clone());
            }
            for keeper in stopping {
                if let Err(e) = keeper.await {
                    tracing::error!(error = %e, "a retired server's keeper failed");
                }
            }
        }
        tracing::info!(
            group,
            count,
            added = outcome.added.len(),
            removed = outcome.removed.len(),
            "scaled"
        );
        Ok(outcome)
    }
}
