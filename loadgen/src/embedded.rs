//! The embedded reference fleet: started in this process through the `fleet` library, turned
//! into measurement targets, and stopped after its own counters have been read.
//!
//! The fleet runs on its own tokio runtime, whose threads are all named [`FLEET_THREAD_NAME`], so
//! [`crate::cpu`] can tell the load generator's CPU from the servers' even though both share
//! this process.

use std::{
    io::IsTerminal as _,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use fleet::{Fleet, FleetOptions, FleetSpec, Isolation, StartError};
use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;

use crate::{cli::Args, measure::Target, runfile::FleetFacts, verbosity::progress};

/// How long the embedded fleet may take to become healthy.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long stopping waits for the fleet runtime's threads to end once the fleet has stopped.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of every thread of the fleet's runtime (workers and blocking pool); [`crate::cpu`]
/// counts threads whose name starts with it as the fleet's. Linux keeps only 15 bytes of a
/// thread name, so this must stay shorter, and no thread of the load generator may share it.
pub const FLEET_THREAD_NAME: &str = "fleet-rt";

/// A started fleet and how its start went.
#[derive(Debug)]
pub struct Embedded {
    pub fleet: Fleet,
    pub healthy_at_start: usize,
    pub startup_s: f64,
    /// Where every task of `fleet` runs. Declared after `fleet`, so it is dropped after it.
    runtime: FleetRuntime,
}

/// The fleet's own multi-thread runtime (as many workers as cores, like `fleet up`).
///
/// A runtime cannot be dropped normally inside another runtime's async context (tokio panics,
/// since dropping blocks), so dropping this one, on an error path or when a start is
/// abandoned, shuts it down in the background; [`FleetRuntime::shutdown`] is the orderly way.
#[derive(Debug)]
struct FleetRuntime {
    handle: Handle,
    runtime: Option<Runtime>,
}

impl FleetRuntime {
    fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(FLEET_THREAD_NAME)
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on the fleet's runtime (so whatever it spawns runs there too) and waits
    /// for it from the caller's runtime.
    async fn run<F>(&self, future: F) -> anyhow::Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle
            .spawn(future)
            .await
            .context("a task of the embedded fleet failed")
    }

    /// Stops `fleet` where its tasks run, then the runtime.
    async fn stop(self, fleet: Fleet) {
        if let Err(e) = self.run(fleet.stop()).await {
            eprintln!("warning: stopping the embedded fleet: {e:#}");
        }
        self.shutdown().await;
    }

    /// Shuts the runtime down, waiting up to [`SHUTDOWN_TIMEOUT`] for its threads on a
    /// blocking thread of the caller's runtime (waiting is not allowed on its workers).
    async fn shutdown(self) {
        // Should the closure never run, dropping `self` still shuts the runtime down.
        let waited = tokio::task::spawn_blocking(move || self.shutdown_blocking()).await;
        if let Err(e) = waited {
            eprintln!("warning: shutting down the embedded fleet's runtime: {e}");
        }
    }

    fn shutdown_blocking(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}

impl Drop for FleetRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Starts the embedded fleet and waits until it is healthy (or the start-up timeout passes).
pub async fn start(
    args: &Args,
    memory_repo: &Path,
    stop: &CancellationToken,
) -> anyhow::Result<Embedded> {
    let mut spec = FleetSpec::default();
    if let Some(n) = args.servers {
        spec = spec.scaled_to(n)?;
    }
    if args.ephemeral_ports {
        spec = spec.with_ephemeral_ports();
    }
    spec.isolation = args.isolation;
    let total = spec.server_count();
    match spec.isolation {
        Isolation::Task => {
            progress!("starting the embedded fleet: {total} servers in this process");
        }
        Isolation::Process => {
            progress!("starting the embedded fleet: {total} server processes");
        }
    }
    let runtime = FleetRuntime::new().context("cannot start the embedded fleet's runtime")?;
    let started = Instant::now();
    let options = FleetOptions {
        child: None,
        admin: true,
        // The chaos scenario's load goes through the gateway.
        gateway: true,
        memory_repo: Some(memory_repo.to_path_buf()),
        memory_replica: Default::default(),
        // Made at start; the chaos scenario takes it from the fleet in-process.
        admin_token: None,
    };
    let interrupt = stop.clone();
    // `Fleet::start` spawns every server, monitor and the admin API on the runtime it runs on.
    let start_and_wait = runtime.run(async move {
        let fleet = Fleet::start(spec, options).await?;
        let healthy = tokio::select! {
            h = fleet.wait_healthy(STARTUP_TIMEOUT, start_up_progress(total)) => Some(h),
            () = interrupt.cancelled() => None,
        };
        Ok::<_, StartError>((fleet, healthy))
    });
    let (fleet, healthy) = match start_and_wait.await? {
        Ok(started) => started,
        Err(e) => {
            runtime.shutdown().await;
            return Err(match e {
                e @ StartError::Bind { .. } => anyhow::anyhow!(
                    "cannot start the embedded fleet: {e}\n\
                     Is another fleet running (`fleet up`)? Stop it with `fleet down`, or run \
                     loadgen with --ephemeral-ports, or with a smaller --servers N."
                ),
                e => anyhow::Error::new(e).context("cannot start the embedded fleet"),
            });
        }
    };
    if std::io::stderr().is_terminal() && !crate::verbosity::quiet() {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    match healthy {
        None => {
            runtime.stop(fleet).await;
            bail!("interrupted while the fleet was starting; nothing was measured");
        }
        Some(0) => {
            runtime.stop(fleet).await;
            bail!("no server of the embedded fleet became healthy within {STARTUP_TIMEOUT:?}");
        }
        Some(h) if h < total => eprintln!(
            "warning: only {h}/{total} servers healthy after {secs:.1} s; measuring anyway"
        ),
        Some(h) => progress!("{h}/{total} healthy in {secs:.2} s"),
    }
    for line in fleet::cli::describe(&fleet) {
        progress!("{line}");
    }
    Ok(Embedded {
        fleet,
        healthy_at_start: healthy.unwrap_or(0),
        startup_s: secs,
        runtime,
    })
}

impl Embedded {
    /// Every server, with the tool mix of its profile.
    pub fn targets(&self) -> anyhow::Result<Arc<[Target]>> {
        let host = self.fleet.spec().host;
        let mixes = crate::target::Mixes::default();
        self.fleet
            .registry()
            .entries()
            .iter()
            .map(|entry| {
                let addr = std::net::SocketAddr::new(host, entry.port);
                Ok(Target {
                    url: format!("http://{addr}/mcp")
                        .parse()
                        .context("fleet endpoint URL")?,
                    id: entry.identity.id.clone(),
                    group: entry.identity.group.clone(),
                    mix: mixes.get(entry.identity.profile),
                    version: crate::mcp::Version::V2026_07_28,
                    transport: crate::transport::client::Transport::default(),
                })
            })
            .collect()
    }

    /// The admin API's base URL.
    pub fn admin_url(&self) -> anyhow::Result<reqwest::Url> {
        let addr = self
            .fleet
            .admin_addr()
            .context("the embedded fleet serves no admin API")?;
        format!("http://{addr}/").parse().context("admin API URL")
    }

    /// The gateway's `/mcp` as one target, with every group's tool mix under its prefix, spoken
    /// to in `version` (a session era: a session the gateway holds, its calls federated), and
    /// the gateway's `/backends`.
    pub fn gateway_target(
        &self,
        version: crate::mcp::Version,
    ) -> anyhow::Result<Option<(Target, reqwest::Url)>> {
        let Some(addr) = self.fleet.gateway_addr() else {
            return Ok(None);
        };
        let groups: Vec<(String, fleet::Profile, u32)> = self
            .fleet
            .spec()
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.profile, g.count))
            .collect();
        let target = Target {
            id: "gateway".into(),
            group: "gateway".into(),
            url: format!("http://{addr}/mcp")
                .parse()
                .context("gateway URL")?,
            mix: Arc::new(crate::mix::Mix::federated(&groups)),
            version,
            transport: crate::transport::client::Transport::default(),
        };
        let backends = format!("http://{addr}/backends")
            .parse()
            .context("gateway URL")?;
        Ok(Some((target, backends)))
    }

    /// Open connections the servers count right now.
    pub fn open_connections(&self) -> u64 {
        let entries = self.fleet.registry().entries();
        entries.iter().map(|e| e.view().open_connections).sum()
    }

    /// Reads the fleet's own counters, then stops it.
    pub async fn stop(self) -> FleetFacts {
        let Self {
            fleet,
            healthy_at_start,
            startup_s,
            runtime,
        } = self;
        let views: Vec<_> = fleet
            .registry()
            .entries()
            .iter()
            .map(|e| e.view())
            .collect();
        let facts = FleetFacts {
            servers: views.len(),
            healthy_at_start,
            startup_s,
            healthy_at_end: fleet.registry().healthy(),
            requests_total: views.iter().map(|v| v.requests).sum(),
            restarts_total: views.iter().map(|v| u64::from(v.restarts)).sum(),
            open_connections_max: None,
        };
        let t = Instant::now();
        runtime.stop(fleet).await;
        progress!("fleet stopped in {:.2} s", t.elapsed().as_secs_f64());
        facts
    }
}

/// The fleet's start-up progress line, unless `--quiet`.
fn start_up_progress(total: usize) -> impl FnMut(usize, usize) {
    let mut printer = fleet::cli::progress_printer(total);
    let quiet = crate::verbosity::quiet();
    move |healthy, of| {
        if !quiet {
            printer(healthy, of);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's id and name.
    fn current_thread() -> (String, String) {
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid = link.file_name().unwrap().to_string_lossy().into_owned();
        let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
        (tid, name.trim_end().to_string())
    }

    fn alive(tid: &str) -> bool {
        std::path::Path::new("/proc/self/task").join(tid).exists()
    }

    #[tokio::test]
    async fn fleet_tasks_run_on_named_threads_that_end_with_the_runtime() {
        let runtime = FleetRuntime::new().unwrap();
        let (tid, name) = runtime.run(async { current_thread() }).await.unwrap();
        assert!(name.starts_with(FLEET_THREAD_NAME), "{name}");
        // Tasks spawned by a task follow it onto the fleet's runtime.
        let spawned = runtime
            .run(async { tokio::spawn(async { current_thread() }).await })
            .await
            .unwrap()
            .unwrap();
        assert!(spawned.1.starts_with(FLEET_THREAD_NAME), "{spawned:?}");
        assert_ne!(current_thread().1, name);
        assert!(alive(&tid));
        runtime.shutdown().await;
        // The orderly shutdown joins the runtime's threads.
        assert!(!alive(&tid), "thread {tid} outlived the runtime");
    }

    #[tokio::test]
    async fn dropping_the_runtime_in_async_context_does_not_panic() {
        let runtime = FleetRuntime::new().unwrap();
        let (tid, _) = runtime.run(async { current_thread() }).await.unwrap();
        drop(runtime);
        // The threads end in the background; give them ample time.
        let t = Instant::now();
        while alive(&tid) && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(&tid), "thread {tid} outlived the dropped runtime");
    }
}
