//! The embedded reference fleet: started in this process through the `fleet` library, turned
//! into measurement targets, and stopped after its own counters have been read.

use std::{
    io::IsTerminal as _,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use fleet::{Fleet, FleetOptions, FleetSpec, Isolation, StartError};
use tokio_util::sync::CancellationToken;

use crate::{Args, measure::Target, runfile::FleetFacts};

/// How long the embedded fleet may take to become healthy.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A started fleet and how its start went.
#[derive(Debug)]
pub struct Embedded {
    pub fleet: Fleet,
    pub healthy_at_start: usize,
    pub startup_s: f64,
}

/// Starts the embedded fleet and waits until it is healthy (or the start-up timeout passes).
pub async fn start(args: &Args, stop: &CancellationToken) -> anyhow::Result<Embedded> {
    let mut spec = FleetSpec::default();
    if let Some(n) = args.servers {
        spec = spec.scaled_to(n)?;
    }
    if args.ephemeral_ports {
        spec = spec.with_ephemeral_ports();
    }
    spec.isolation = Isolation::Task;
    let total = spec.server_count();
    eprintln!("starting the embedded fleet: {total} servers in this process");
    let started = Instant::now();
    let options = FleetOptions {
        child: None,
        admin: true,
    };
    let fleet = match Fleet::start(spec, options).await {
        Ok(f) => f,
        Err(e @ StartError::Bind { .. }) => bail!(
            "cannot start the embedded fleet: {e}\n\
             Is another fleet running (`fleet up`)? Stop it with `fleet down`, or run loadgen \
             with --ephemeral-ports, or with a smaller --servers N."
        ),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot start the embedded fleet")),
    };
    let healthy = tokio::select! {
        h = fleet.wait_healthy(STARTUP_TIMEOUT, fleet::cli::progress_printer(total)) => Some(h),
        () = stop.cancelled() => None,
    };
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    match healthy {
        None => {
            fleet.stop().await;
            bail!("interrupted while the fleet was starting; nothing was measured");
        }
        Some(0) => {
            fleet.stop().await;
            bail!("no server of the embedded fleet became healthy within {STARTUP_TIMEOUT:?}");
        }
        Some(h) if h < total => eprintln!(
            "warning: only {h}/{total} servers healthy after {secs:.1} s; measuring anyway"
        ),
        Some(h) => eprintln!("{h}/{total} healthy in {secs:.2} s"),
    }
    for line in fleet::cli::describe(&fleet) {
        eprintln!("{line}");
    }
    Ok(Embedded {
        fleet,
        healthy_at_start: healthy.unwrap_or(0),
        startup_s: secs,
    })
}

impl Embedded {
    /// Every server, with the tool mix of its profile.
    pub fn targets(&self) -> anyhow::Result<Arc<[Target]>> {
        let entries = self.fleet.registry().entries();
        let mixes = crate::target::Mixes::default();
        self.fleet
            .endpoints()
            .into_iter()
            .zip(entries)
            .map(|(e, entry)| {
                Ok(Target {
                    url: e.mcp_url().parse().context("fleet endpoint URL")?,
                    id: e.id,
                    group: e.group,
                    mix: mixes.get(entry.identity.profile),
                })
            })
            .collect()
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
        fleet.stop().await;
        eprintln!("fleet stopped in {:.2} s", t.elapsed().as_secs_f64());
        facts
    }
}
