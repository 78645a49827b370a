//! What each subcommand does: `up` runs a fleet in the foreground until Ctrl-C or `down`,
//! `status`, `scale` and `down` talk to a running one through its admin API, `memory verify`
//! checks a memory repository offline.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    args::{
        AdminArgs, Cli, Cmd, InitPeerArgs, MemoryCmd, MemoryRepoArgs, ScaleArgs, StatusArgs, UpArgs,
    },
    output::{describe, progress_printer, render_status},
};
use crate::{
    control::{admin::FleetView, admin_auth::AdminToken},
    fleet::{Fleet, FleetOptions},
    memory::replica::{NodeId, ReplicaOptions},
    serve::registry::ServerState,
    spec::MemorySpec,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up(args) => up(args).await,
        Cmd::Status(args) => status(args).await,
        Cmd::Down(args) => down(args).await,
        Cmd::Scale(args) => scale(args).await,
        Cmd::Memory(MemoryCmd::Verify(args)) => verify_memory(args).await,
        Cmd::Memory(MemoryCmd::SalvageWal(args)) => super::salvage::salvage_wal(args).await,
        Cmd::Memory(MemoryCmd::InitPeer(args)) => init_peer(&args),
        Cmd::ServeStdio(args) => super::stdio::serve_stdio(args).await,
        Cmd::Gateway(args) => super::gateway::gateway(args).await,
    }
}

async fn verify_memory(args: MemoryRepoArgs) -> anyhow::Result<()> {
    let path = args.memory_repo.clone();
    let report = tokio::task::spawn_blocking(move || crate::memory::verify(&path))
        .await
        .context("the verification panicked")??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: head {} at version {}: {} commits, {} ops, {} entities, {} relations, \
             {} objects checked, {} acknowledged ops in the WAL not yet committed",
            args.memory_repo.display(),
            report.head,
            report.version,
            report.commits,
            report.ops,
            report.entities,
            report.relations,
            report.objects_checked,
            report.wal_pending,
        );
        for note in &report.notes {
            println!("note: {note}");
        }
        for problem in &report.problems {
            println!("PROBLEM: {problem}");
        }
        if report.more_problems > 0 {
            println!("... and {} more problems", report.more_problems);
        }
    }
    if !report.is_ok() {
        bail!(
            "{} is damaged: {} problem(s)",
            args.memory_repo.display(),
            report.problems.len() + report.more_problems
        );
    }
    if !args.json {
        println!("ok");
    }
    Ok(())
}

fn init_peer(args: &InitPeerArgs) -> anyhow::Result<()> {
    let peer = crate::memory::replica::init_peer(&args.path)?;
    let verb = if peer.created { "created" } else { "exists" };
    println!("{}: {verb}, a bare repository", args.path.display());
    for (node, version) in &peer.nodes {
        println!("  node {node}: history up to version {version}");
    }
    Ok(())
}

/// The replication settings: the flags given, else the spec's `[memory]` section.
fn replica_options(args: &UpArgs, spec: &MemorySpec) -> anyhow::Result<ReplicaOptions> {
    let peers = if args.memory_peers.is_empty() {
        spec.peers.clone()
    } else {
        args.memory_peers.clone()
    };
    let node_id = match (&args.memory_node_id, &spec.node_id) {
        (Some(id), _) => Some(id.clone()),
        // Checked when the spec was read.
        (None, Some(id)) => Some(NodeId::parse(id).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    let flags = args.memory_node_id.is_some()
        || args.memory_peer_interval.is_some()
        || args.memory_peer_timeout.is_some();
    if peers.is_empty() && flags {
        bail!(
            "--memory-node-id, --memory-peer-interval and --memory-peer-timeout need a peer: \
             --memory-peer URL or the spec's [memory] peers"
        );
    }
    if !peers.is_empty() && args.no_memory {
        bail!("the spec's [memory] peers need the memory: drop --no-memory");
    }
    Ok(ReplicaOptions {
        peers,
        node_id,
        interval: args.memory_peer_interval.unwrap_or(spec.peer_interval),
        ssh_timeout: args.memory_peer_timeout.unwrap_or(spec.peer_timeout),
    })
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let total = spec.server_count();
    eprintln!(
        "starting {total} servers ({} isolation) in {} group(s)",
        spec.isolation.name(),
        spec.groups.len()
    );
    if let Some(warning) = exposure_warning(spec.host) {
        eprintln!("{warning}");
    }
    let started = Instant::now();
    let memory_repo = (!args.no_memory).then(|| args.memory_repo.clone());
    let memory_replica = replica_options(&args, &spec.memory)?;
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            admin: true,
            gateway: !args.no_gateway,
            memory_repo,
            memory_replica,
            ..Default::default()
        },
    )
    .await?;
    // Written before the fleet is healthy, so it is there once the admin API is named.
    if let Err(e) = fleet.admin_token().write_to(&args.admin_token_file) {
        fleet.stop().await;
        return Err(e.into());
    }
    let timeout = args.startup_timeout;
    let healthy = fleet.wait_healthy(timeout, progress_printer(total)).await;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let elapsed = started.elapsed();
    if healthy < total {
        let sick: Vec<String> = fleet
            .registry()
            .entries()
            .iter()
            .filter(|e| e.state() != ServerState::Healthy)
            .take(10)
            .map(|e| {
                let v = e.view();
                format!(
                    "{} ({:?}{})",
                    v.id,
                    v.state,
                    v.last_error.map(|m| format!(": {m}")).unwrap_or_default()
                )
            })
            .collect();
        fleet.stop().await;
        bail!(
            "only {healthy}/{total} servers healthy after {:.1} s; not healthy: {}",
            elapsed.as_secs_f64(),
            sick.join(", ")
        );
    }
    {
        // A reader that stopped reading (`fleet up | head`, a test that found the line it
        // wanted) must not take the running fleet down with a broken-pipe panic.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{healthy}/{total} healthy in {:.2} s",
            elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  token      {}  (the admin token, mode 0600: requests that change the fleet carry it)",
            args.admin_token_file.display()
        );
        for line in describe(&fleet) {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
    let stop = fleet.shutdown_requested();
    // SIGTERM is how `kill`, systemd and Kubernetes ask a service to stop: the same clean stop
    // as Ctrl-C (server processes ended, memory committed), not a death by signal.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; eprintln!("Ctrl-C: stopping"); }
        _ = term.recv() => eprintln!("SIGTERM: stopping"),
        () = stop.cancelled() => eprintln!("stop requested through the admin API"),
    }
    let t = Instant::now();
    fleet.stop().await;
    eprintln!("fleet stopped in {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// The warning for an admin API on an address other machines can reach.
fn exposure_warning(host: std::net::IpAddr) -> Option<String> {
    (!host.is_loopback()).then(|| {
        format!(
            "warning: --host {host} is not a loopback address: the admin API (and every \
             server) is then reachable from the network; only its admin token stands between \
             it and whoever reaches the port"
        )
    })
}

fn admin_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?)
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let url = format!("{}/servers", args.admin.admin.trim_end_matches('/'));
    let resp = admin_client()?.get(&url).send().await.with_context(|| {
        format!(
            "no fleet answers at {} (is `fleet up` running?)",
            args.admin.admin
        )
    })?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    let text = resp.text().await?;
    if args.json {
        println!("{text}");
        return Ok(());
    }
    let view: FleetView = serde_json::from_str(&text)
        .with_context(|| format!("{url} did not return a fleet status"))?;
    print!("{}", render_status(&view, args.all));
    Ok(())
}

async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let base = args.admin.admin.trim_end_matches('/').to_string();
    // Stopping many servers gracefully can take a while; starting them is quick.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()?;
    let token = AdminToken::read_from(&args.admin.admin_token_file)?;
    let resp = client
        .post(format!("{base}/groups/{}/scale", args.group))
        .header(reqwest::header::AUTHORIZATION, token.bearer())
        .json(&crate::control::admin::ScaleRequest { count: args.count })
        .send()
        .await
        .with_context(|| format!("no fleet answers at {base} (is `fleet up` running?)"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("{base} answered {status} without JSON"))?;
    if !status.is_success() {
        let why = body["error"].as_str().unwrap_or("no reason given");
        bail!("scaling {} to {} failed: {why}", args.group, args.count);
    }
    let outcome: crate::control::scale::ScaleOutcome =
        serde_json::from_value(body).context("the fleet's answer to a scale")?;
    let list = |ids: &[String]| match ids {
        [] => "none".to_string(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} .. {last}"),
    };
    println!(
        "{}: {} servers (added {}: {}; removed {}: {})",
        outcome.group,
        outcome.count,
        outcome.added.len(),
        list(&outcome.added),
        outcome.removed.len(),
        list(&outcome.removed),
    );
    Ok(())
}

async fn down(args: AdminArgs) -> anyhow::Result<()> {
    let base = args.admin.trim_end_matches('/').to_string();
    let client = admin_client()?;
    let token = AdminToken::read_from(&args.admin_token_file)?;
    let resp = client
        .post(format!("{base}/shutdown"))
        .header(reqwest::header::AUTHORIZATION, token.bearer())
        .send()
        .await
        .with_context(|| format!("no fleet answers at {base} (is `fleet up` running?)"))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let why = body["error"].as_str().unwrap_or("no reason given");
        bail!("{base} refused to stop ({status}): {why}");
    }
    // Wait until the admin API is gone: the fleet stops it last.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if client.get(format!("{base}/healthz")).send().await.is_err() {
            println!("fleet stopped");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("asked the fleet at {base} to stop, but it is still answering after 15 s")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_non_loopback_host_warns() {
        for host in ["127.0.0.1", "::1"] {
            assert_eq!(super::exposure_warning(host.parse().unwrap()), None);
        }
        let warning = super::exposure_warning("0.0.0.0".parse().unwrap()).unwrap();
        assert!(warning.contains("reachable from the network"), "{warning}");
    }
}
