//! Starting and stopping a whole fleet: bind every port first (so a taken port fails fast and
//! nothing is left half-running), then start the keepers, the health monitors and the admin API.
//! This is the library entry point the `fleet` binary, `loadgen` and the tests share.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    control::{
        admin::{self, AdminState},
        admin_auth::{AdminToken, TokenError},
        browser_auth::BrowserAuth,
        health::Prober,
        instance::{ChildProgram, Launcher, ServerMemory},
        scale::Scaler,
        supervisor::{Commands, TaskGroup},
    },
    dashboard::{self, Dashboard},
    gateway::{self, Backend, Directory, Gateway, session::SessionKey, upstream::Upstream},
    memory::{
        Memory, MemoryHandle, Store, StoreOptions,
        remote::{self, MemorySocket},
        replica::ReplicaOptions,
    },
    serve::{
        limits::ConnectionLimits,
        listener,
        registry::{Identity, Registry},
        socket::bind_server,
    },
    spec::{FleetSpec, Isolation},
};

/// How long the gateway waits for a server's response headers.
const GATEWAY_UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("cannot listen on {addr} ({what})")]
    Bind {
        addr: SocketAddr,
        what: String,
        source: std::io::Error,
    },
    #[error("process isolation needs a server program: {0}")]
    ChildProgram(std::io::Error),
    #[error("cannot build the health prober")]
    Prober(#[from] reqwest::Error),
    #[error("cannot open the memory repository: {0}")]
    Memory(#[from] crate::memory::OpenError),
    #[error("cannot serve the memory to server processes: {0}")]
    MemorySocket(std::io::Error),
    #[error("cannot make the gateway's session key: {0}")]
    SessionKey(crate::gateway::session::SessionError),
    #[error(transparent)]
    AdminToken(#[from] TokenError),
}

/// How a fleet is embedded.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Program for process-mode servers; defaults to the current executable.
    pub child: Option<ChildProgram>,
    /// Serve the admin API (on `spec.admin_port`).
    pub admin: bool,
    /// Serve the gateway (on `spec.gateway_port`).
    pub gateway: bool,
    /// The shared memory's git repository (created if missing); `None` runs without memory
    /// and without the memory tools.
    pub memory_repo: Option<PathBuf>,
    /// Peer repositories the memory's history is published to (none by default).
    pub memory_replica: ReplicaOptions,
    /// The token the admin API's requests that change something must carry; `None` makes a
    /// random one ([`Fleet::admin_token`] gives it either way).
    pub admin_token: Option<AdminToken>,
}

/// The fleet's memory: the store (this process owns the repository) and, in process mode,
/// the socket server processes reach it through.
struct FleetMemory {
    store: Store,
    socket_stop: CancellationToken,
    /// The thread serving the socket, in process mode.
    socket_thread: Option<std::thread::JoinHandle<()>>,
}

/// One server as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub group: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// The MCP endpoint URL, `http://host:port/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// A running fleet. Stop it with [`Fleet::stop`]; dropping it leaves the servers running until
/// the runtime ends.
pub struct Fleet {
    spec: FleetSpec,
    memory: Option<FleetMemory>,
    registry: Arc<Registry>,
    commands: Commands,
    keepers: Arc<TaskGroup>,
    monitors: Arc<TaskGroup>,
    scaler: Arc<Scaler>,
    admin_addr: Option<SocketAddr>,
    gateway_addr: Option<SocketAddr>,
    admin_stop: CancellationToken,
    admin_tracker: TaskTracker,
    admin_token: AdminToken,
    /// How browsers sign in to the dashboard, when the admin API is served.
    browser: Option<Arc<BrowserAuth>>,
    shutdown_requested: CancellationToken,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("spec", &self.spec)
            .field("memory", &self.memory.as_ref().map(|m| m.store.handle()))
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

fn bind(addr: SocketAddr, what: impl Fn() -> String) -> Result<std::net::TcpListener, StartError> {
    bind_server(addr).map_err(|source| StartError::Bind {
        addr,
        what: what(),
        source,
    })
}

/// A listening socket for every server of the spec, with its identity and the port it got
/// (the one asked for, or an ephemeral one).
fn bind_servers(
    spec: &FleetSpec,
) -> Result<Vec<(Identity, u16, std::net::TcpListener)>, StartError> {
    let mut sockets = Vec::with_capacity(spec.server_count());
    for group in &spec.groups {
        for i in 0..group.count {
            let port = if group.first_port == 0 {
                0
            } else {
                group.first_port + i as u16
            };
            let identity = Identity::new(&group.name, group.profile, i);
            let socket = bind(SocketAddr::new(spec.host, port), || {
                format!("server {}", identity.id)
            })?;
            let port = socket
                .local_addr()
                .map_err(|source| StartError::Bind {
                    addr: SocketAddr::new(spec.host, port),
                    what: identity.id.clone(),
                    source,
                })?
                .port();
            sockets.push((identity, port, socket));
        }
    }
    Ok(sockets)
}

/// Serves the admin API on its bound socket until `stop`.
fn serve_admin(
    spec: &FleetSpec,
    socket: std::net::TcpListener,
    state: AdminState,
    limits: &ConnectionLimits,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Result<(), StartError> {
    let listener =
        tokio::net::TcpListener::from_std(socket).map_err(|source| StartError::Bind {
            addr: SocketAddr::new(spec.host, spec.admin_port),
            what: "admin API".into(),
            source,
        })?;
    tracker.spawn(listener::serve(
        listener,
        admin::app(state),
        Arc::default(),
        limits.for_admin(),
        stop.clone(),
    ));
    Ok(())
}

/// The gateway over the registry's servers (not yet serving).
fn make_gateway(spec: &FleetSpec, registry: &Registry) -> Result<Gateway, StartError> {
    let directory = Directory::new(
        registry
            .entries()
            .iter()
            .map(|e| Backend::of(e, spec.host, spec.gateway_calls_in_process())),
    );
    let key = SessionKey::random().map_err(StartError::SessionKey)?;
    Ok(Gateway::new(
        directory,
        Upstream::new(GATEWAY_UPSTREAM_TIMEOUT),
        key,
    ))
}

/// Serves the gateway on its bound socket until `stop`, its pools following the registry.
fn serve_gateway(
    spec: &FleetSpec,
    socket: std::net::TcpListener,
    gateway: Gateway,
    registry: &Arc<Registry>,
    limits: &ConnectionLimits,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Result<(), StartError> {
    tracker.spawn(gateway::follow_registry(
        gateway.clone(),
        registry.clone(),
        spec.host,
        spec.gateway_calls_in_process(),
        stop.clone(),
    ));
    let served = listener::serve_on_threads(
        socket,
        "gateway",
        spec.gateway_threads(),
        gateway.router(),
        Arc::default(),
        limits.clone(),
        stop.clone(),
    )
    .map_err(|source| StartError::Bind {
        addr: SocketAddr::new(spec.host, spec.gateway_port),
        what: "gateway".into(),
        source,
    })?;
    tracker.spawn(served);
    Ok(())
}

impl Fleet {
    /// Validates the spec, binds every port and starts everything. Must run inside a tokio
    /// runtime. On error nothing is left running.
    pub async fn start(spec: FleetSpec, options: FleetOptions) -> Result<Self, StartError> {
        spec.validate()?;
        crate::serve::socket::raise_fd_limit();
        let child = match (spec.isolation, options.child) {
            (Isolation::Process, None) => {
                Some(ChildProgram::current_exe().map_err(StartError::ChildProgram)?)
            }
            (_, child) => child,
        };
        // Bind everything before starting anything.
        let sockets = bind_servers(&spec)?;
        let admin_socket = options
            .admin
            .then(|| {
                bind(SocketAddr::new(spec.host, spec.admin_port), || {
                    "admin API".to_string()
                })
            })
            .transpose()?;
        let gateway_socket = options
            .gateway
            .then(|| {
                bind(SocketAddr::new(spec.host, spec.gateway_port), || {
                    "gateway".to_string()
                })
            })
            .transpose()?;
        // Sized now that every listening socket is open.
        let limits = ConnectionLimits::new(&spec.http);
        let prober = Prober::new(spec.host, spec.health.timeout)?;
        let memory = match options.memory_repo {
            Some(path) => Some(open_memory(path, options.memory_replica, spec.isolation).await?),
            None => None,
        };
        let server_memory = memory.as_ref().map(|(m, socket)| match socket {
            Some(socket) => ServerMemory::Socket(socket.clone()),
            None => ServerMemory::Local(Memory::Local(m.store.handle())),
        });
        let memory = memory.map(|(m, _)| m);

        let launcher = Arc::new(Launcher {
            isolation: spec.isolation,
            servers: spec
                .groups
                .iter()
                .map(|g| (g.name.clone(), spec.server_for(&g.name)))
                .collect(),
            child,
            memory: server_memory,
            limits: limits.clone(),
        });
        let registry = Arc::new(Registry::new(
            spec.groups.iter().map(|g| g.name.clone()).collect(),
        ));
        let commands = Commands::default();
        let keepers = Arc::new(TaskGroup::default());
        let monitors = Arc::new(TaskGroup::default());
        let scaler = Arc::new(Scaler::new(
            spec.host,
            spec.groups.clone(),
            registry.clone(),
            commands.clone(),
            launcher,
            prober,
            spec.health.clone(),
            spec.isolation,
            keepers.clone(),
            monitors.clone(),
        ));
        scaler.add(sockets);

        let admin_token = match options.admin_token {
            Some(token) => token,
            None => AdminToken::random()?,
        };
        let shutdown_requested = CancellationToken::new();
        let admin_stop = CancellationToken::new();
        let admin_tracker = TaskTracker::new();
        let gateway = match gateway_socket {
            Some(socket) => Some((make_gateway(&spec, &registry)?, socket)),
            None => None,
        };
        let mut admin_addr = None;
        let mut browser = None;
        if let Some(socket) = admin_socket {
            admin_addr = socket.local_addr().ok();
            let auth = Arc::new(BrowserAuth::new()?);
            browser = Some(auth.clone());
            let memory = memory.as_ref().map(|m| m.store.handle());
            let sources = dashboard::Sources {
                registry: registry.clone(),
                isolation: spec.isolation,
                memory: memory.clone(),
                gateway: gateway.as_ref().map(|(g, _)| g.clone()),
            };
            let state = AdminState {
                registry: registry.clone(),
                commands: commands.clone(),
                scaler: scaler.clone(),
                isolation: spec.isolation,
                shutdown: shutdown_requested.clone(),
                token: admin_token.clone(),
                browser: auth,
                dashboard: Dashboard::start(sources, &admin_tracker, admin_stop.clone()),
                memory,
            };
            serve_admin(&spec, socket, state, &limits, &admin_tracker, &admin_stop)?;
        }
        let mut gateway_addr = None;
        if let Some((gateway, socket)) = gateway {
            gateway_addr = socket.local_addr().ok();
            serve_gateway(
                &spec,
                socket,
                gateway,
                &registry,
                &limits,
                &admin_tracker,
                &admin_stop,
            )?;
        }
        Ok(Self {
            spec,
            memory,
            registry,
            commands,
            keepers,
            monitors,
            scaler,
            admin_addr,
            gateway_addr,
            admin_stop,
            admin_tracker,
            admin_token,
            browser,
            shutdown_requested,
        })
    }

    /// Waits until every server is healthy or `timeout` passes, calling `progress(healthy,
    /// total)` whenever the count changes. Returns the number healthy at the end.
    pub async fn wait_healthy(
        &self,
        timeout: Duration,
        mut progress: impl FnMut(usize, usize),
    ) -> usize {
        let deadline = Instant::now() + timeout;
        let total = self.registry.entries().len();
        let mut last = usize::MAX;
        loop {
            let healthy = self.registry.healthy();
            if healthy != last {
                progress(healthy, total);
                last = healthy;
            }
            if healthy == total || Instant::now() >= deadline {
                return healthy;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn spec(&self) -> &FleetSpec {
        &self.spec
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn commands(&self) -> &Commands {
        &self.commands
    }

    /// Grows or shrinks groups at runtime (what `fleet scale` asks through the admin API).
    pub fn scaler(&self) -> &Arc<Scaler> {
        &self.scaler
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// What the admin API's requests that change something (kill, pause, latency, scale,
    /// shutdown) must carry as `Authorization: Bearer TOKEN`.
    pub fn admin_token(&self) -> &AdminToken {
        &self.admin_token
    }

    /// The dashboard's sign-in link (`http://ADMIN/#token=…`, usable once), while unused; the
    /// page itself is at the admin address.
    pub fn dashboard_link(&self) -> Option<String> {
        let addr = self.admin_addr?;
        let token = self.browser.as_ref()?.link_token()?;
        Some(format!("http://{addr}/#token={token}"))
    }

    /// Where the gateway listens, when it runs.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway_addr
    }

    /// Every server's MCP endpoint, in spec order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.registry
            .entries()
            .iter()
            .map(|e| Endpoint {
                id: e.identity.id.clone(),
                group: e.identity.group.clone(),
                addr: SocketAddr::new(self.spec.host, e.port),
            })
            .collect()
    }

    /// Cancelled when someone asks the fleet to stop through the admin API (`fleet down`).
    pub fn shutdown_requested(&self) -> CancellationToken {
        self.shutdown_requested.clone()
    }

    /// The shared memory, when the fleet runs with one.
    pub fn memory(&self) -> Option<MemoryHandle> {
        self.memory.as_ref().map(|m| m.store.handle())
    }

    /// Stops every server gracefully, then the monitors and the admin API, then commits
    /// everything the memory acknowledged and releases its repository.
    pub async fn stop(self) {
        self.monitors.stop().await;
        self.keepers.stop().await;
        self.admin_stop.cancel();
        self.admin_tracker.close();
        self.admin_tracker.wait().await;
        if let Some(memory) = self.memory {
            memory.socket_stop.cancel();
            if let Some(thread) = memory.socket_thread
                && tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .is_err()
            {
                tracing::error!("the memory socket's thread panicked");
            }
            match tokio::task::spawn_blocking(move || memory.store.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "closing the memory"),
                Err(e) => tracing::error!(error = %e, "closing the memory"),
            }
        }
    }
}

/// Opens the memory repository (off the async threads: it may replay a WAL) and, for
/// process isolation, starts the socket server processes reach it through.
async fn open_memory(
    path: PathBuf,
    replica: ReplicaOptions,
    isolation: Isolation,
) -> Result<(FleetMemory, Option<MemorySocket>), StartError> {
    let options = StoreOptions {
        replica,
        ..StoreOptions::default()
    };
    let store = tokio::task::spawn_blocking(move || Store::open(&path, options))
        .await
        .map_err(|e| StartError::MemorySocket(std::io::Error::other(e)))??;
    let socket_stop = CancellationToken::new();
    let mut socket = None;
    let mut socket_thread = None;
    if isolation == Isolation::Process {
        let (bound, listener) = MemorySocket::bind(None).map_err(StartError::MemorySocket)?;
        socket_thread = Some(
            remote::serve_on_thread(store.handle(), listener, bound.clone(), socket_stop.clone())
                .map_err(StartError::MemorySocket)?,
        );
        socket = Some(bound);
    }
    Ok((
        FleetMemory {
            store,
            socket_stop,
            socket_thread,
        },
        socket,
    ))
}
