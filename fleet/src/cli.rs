//! The `fleet` command line: `up` runs a fleet in the foreground, `status` and `down` talk to a
//! running one through its admin API.

use std::{
    io::{IsTerminal, Write},
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::{
    control::admin::FleetView,
    fleet::{Fleet, FleetOptions},
    serve::registry::ServerState,
    spec::{FleetSpec, Isolation},
};

#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    version,
    about = "Run the mcpfleet reference fleet of MCP servers",
    long_about = "Runs the reference fleet that mcpfleet's load generator measures: by default \
                  500 MCP servers (346 `community` on 127.0.0.1:8000-8345, 154 `security` on \
                  127.0.0.1:9346-9499), supervised, health-checked, with an admin API on \
                  127.0.0.1:7900."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start a fleet and run it until Ctrl-C or `fleet down`.
    Up(UpArgs),
    /// Show the state of a running fleet.
    Status(StatusArgs),
    /// Stop a running fleet cleanly.
    Down(AdminArgs),
    /// Grow or shrink a group of a running fleet: new servers start at once, removed ones stop
    /// gracefully; the gateway follows without a restart.
    Scale(ScaleArgs),
    /// Work with the fleet's git-backed memory repository.
    #[command(subcommand)]
    Memory(MemoryCmd),
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    /// Check a memory repository's integrity: every object readable with its hash verified,
    /// the history a straight line of contiguous versions, replaying every commit's ops
    /// yielding exactly the files it holds, and the WAL readable. Takes the owner lock, so it
    /// cannot run on a repository a fleet is serving. Exits non-zero on any problem.
    Verify(MemoryRepoArgs),
}

#[derive(Debug, Args)]
pub struct MemoryRepoArgs {
    /// The memory repository (a `git clone` of one works too).
    #[arg(long, value_name = "PATH", default_value_os_t = default_memory_repo(), env = "MCPFLEET_MEMORY_REPO")]
    pub memory_repo: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the memory lives unless told otherwise: `$XDG_DATA_HOME/mcpfleet/memory`, else
/// `~/.local/share/mcpfleet/memory`, else `.mcpfleet/memory` in the working directory.
pub fn default_memory_repo() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match data {
        Some(dir) => dir.join("mcpfleet/memory"),
        None => PathBuf::from(".mcpfleet/memory"),
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Fleet spec file (TOML): groups, ports, isolation, health and server settings.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Scale the spec's groups proportionally to this many servers in total.
    #[arg(long, value_name = "N")]
    pub servers: Option<u32>,
    /// `task`: all servers in this process; `process`: one OS process per server.
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// Address to bind servers and the admin API to.
    #[arg(long)]
    pub host: Option<IpAddr>,
    /// Admin API port (0 picks a free one).
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Gateway port: one MCP endpoint over the fleet, `/mcp` (tools of every group as
    /// `group__tool`) and `/mcp/{server-id}` (0 picks a free one) [default: 7999].
    #[arg(long, conflicts_with = "no_gateway")]
    pub gateway_port: Option<u16>,
    /// Threads serving the gateway, each with its own runtime [default: one per CPU when it
    /// calls task-mode servers in-process, else one per four CPUs, at least one].
    #[arg(long, value_name = "N", conflicts_with = "no_gateway")]
    pub gateway_threads: Option<usize>,
    /// Make the gateway reach task-mode servers over loopback HTTP like any proxy, instead of
    /// calling them in-process (to measure a real proxy hop).
    #[arg(long, conflicts_with = "no_gateway")]
    pub gateway_over_http: bool,
    /// Run without the gateway.
    #[arg(long)]
    pub no_gateway: bool,
    /// Let the kernel pick every server's port (for running beside another fleet).
    #[arg(long)]
    pub ephemeral_ports: bool,
    /// Give up if the fleet is not fully healthy after this many seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub startup_timeout: f64,
    /// Git repository of the shared memory every server offers (created if missing; an
    /// existing one resumes with all its data; a `git clone` of one restores it).
    #[arg(long, value_name = "PATH", default_value_os_t = default_memory_repo(), env = "MCPFLEET_MEMORY_REPO")]
    pub memory_repo: PathBuf,
    /// Run without the shared memory (and without the memory tools).
    #[arg(long, conflicts_with = "memory_repo")]
    pub no_memory: bool,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API of the running fleet.
    #[arg(long, default_value = "http://127.0.0.1:7900", env = "MCPFLEET_ADMIN")]
    pub admin: String,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The group to scale (as `fleet status` names it, e.g. `community`).
    pub group: String,
    /// Servers the group should have (0 empties it).
    #[arg(value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::control::scale::MAX_GROUP_SIZE)))]
    pub count: u32,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// List every server, not only the per-group summary and servers that are not healthy.
    #[arg(long)]
    pub all: bool,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl UpArgs {
    /// The spec this invocation asks for, validated.
    pub fn spec(&self) -> anyhow::Result<FleetSpec> {
        let mut spec = match &self.spec {
            Some(path) => FleetSpec::from_file(path)?,
            None => FleetSpec::default(),
        };
        if let Some(n) = self.servers {
            spec = spec.scaled_to(n)?;
        }
        if let Some(i) = self.isolation {
            spec.isolation = i;
        }
        if let Some(h) = self.host {
            spec.host = h;
        }
        if let Some(p) = self.admin_port {
            spec.admin_port = p;
        }
        if let Some(p) = self.gateway_port {
            spec.gateway_port = p;
        }
        if let Some(n) = self.gateway_threads {
            spec.gateway_threads = n;
        }
        if self.gateway_over_http {
            spec.gateway_in_process = false;
        }
        if self.ephemeral_ports {
            let (admin, gateway) = (spec.admin_port, spec.gateway_port);
            spec = spec.with_ephemeral_ports();
            spec.admin_port = admin;
            spec.gateway_port = gateway;
        }
        spec.validate()?;
        Ok(spec)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up(args) => up(args).await,
        Cmd::Status(args) => status(args).await,
        Cmd::Down(args) => down(args).await,
        Cmd::Scale(args) => scale(args).await,
        Cmd::Memory(MemoryCmd::Verify(args)) => verify_memory(args).await,
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

/// Prints start-up progress: a line updated in place on a terminal, a few plain lines otherwise.
pub fn progress_printer(total: usize) -> impl FnMut(usize, usize) {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_plain = Instant::now();
    move |healthy, _| {
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(
                err,
                "\r  {healthy}/{total} healthy ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
        } else if last_plain.elapsed() >= Duration::from_secs(1) {
            let _ = writeln!(
                err,
                "  {healthy}/{total} healthy ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            last_plain = Instant::now();
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let total = spec.server_count();
    eprintln!(
        "starting {total} servers ({} isolation) in {} group(s)",
        spec.isolation.name(),
        spec.groups.len()
    );
    let started = Instant::now();
    let memory_repo = (!args.no_memory).then(|| args.memory_repo.clone());
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            admin: true,
            gateway: !args.no_gateway,
            memory_repo,
            ..Default::default()
        },
    )
    .await?;
    let timeout = Duration::from_secs_f64(args.startup_timeout.max(0.1));
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
        for line in describe(&fleet) {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
    let stop = fleet.shutdown_requested();
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; eprintln!("Ctrl-C: stopping"); }
        () = stop.cancelled() => eprintln!("stop requested through the admin API"),
    }
    let t = Instant::now();
    fleet.stop().await;
    eprintln!("fleet stopped in {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Human lines naming where everything is.
pub fn describe(fleet: &Fleet) -> Vec<String> {
    let mut lines = Vec::new();
    let endpoints = fleet.endpoints();
    for group in &fleet.spec().groups {
        let ports: Vec<u16> = endpoints
            .iter()
            .filter(|e| e.group == group.name)
            .map(|e| e.addr.port())
            .collect();
        let (lo, hi) = (ports.iter().min(), ports.iter().max());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let host = fleet.spec().host;
            let place = if usize::from(hi - lo) + 1 == ports.len() {
                format!("http://{host}:{lo}-{hi}/mcp")
            } else {
                format!("http://{host}:PORT/mcp on scattered ports {lo}..{hi} (see /servers)")
            };
            lines.push(format!(
                "  {:<10} {:>4} {} servers  {place}",
                group.name,
                ports.len(),
                group.profile,
            ));
        }
    }
    if let Some(addr) = fleet.admin_addr() {
        lines.push(format!(
            "  admin      http://{addr}/servers  (metrics: /metrics)"
        ));
    }
    if let Some(addr) = fleet.gateway_addr() {
        lines.push(format!(
            "  gateway    http://{addr}/mcp  (every group's tools as group__tool; \
             /mcp/SERVER-ID pins one server)"
        ));
    }
    if let Some(memory) = fleet.memory() {
        lines.push(format!(
            "  memory     {} (git, version {}; every server offers the memory tools)",
            memory.path().display(),
            memory.view().version()
        ));
    }
    lines
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

/// The `fleet status` table.
pub fn render_status(view: &FleetView, all: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}/{} healthy, {} isolation, up {:.0} s",
        view.healthy,
        view.total,
        view.isolation.name(),
        view.uptime_ms as f64 / 1000.0
    );
    let mut groups: Vec<&str> = view.servers.iter().map(|s| s.group.as_str()).collect();
    groups.dedup();
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>8} {:>9} {:>11} {:>6} {:>8}",
        "GROUP", "SERVERS", "HEALTHY", "REQUESTS", "CONNECTIONS", "SESS", "RESTARTS"
    );
    for g in groups {
        let members: Vec<_> = view.servers.iter().filter(|s| s.group == g).collect();
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>8} {:>9} {:>11} {:>6} {:>8}",
            g,
            members.len(),
            members
                .iter()
                .filter(|s| s.state == ServerState::Healthy)
                .count(),
            members.iter().map(|s| s.requests).sum::<u64>(),
            members.iter().map(|s| s.open_connections).sum::<u64>(),
            members.iter().map(|s| s.open_sessions).sum::<u64>(),
            members.iter().map(|s| u64::from(s.restarts)).sum::<u64>(),
        );
    }
    let rows: Vec<_> = view
        .servers
        .iter()
        .filter(|s| all || s.state != ServerState::Healthy)
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>7} {:<10} {:>8} {:>8} {:>9} {:>5} {:>4}  LAST ERROR",
            "SERVER", "PORT", "PID", "STATE", "RESTARTS", "UPTIME", "REQUESTS", "CONNS", "SESS"
        );
        for s in rows {
            let _ = writeln!(
                out,
                "{:<16} {:>5} {:>7} {:<10} {:>8} {:>7.0}s {:>9} {:>5} {:>4}  {}",
                s.id,
                s.port,
                s.pid.map_or("-".to_string(), |p| p.to_string()),
                format!("{:?}", s.state).to_lowercase(),
                s.restarts,
                s.uptime_ms as f64 / 1000.0,
                s.requests,
                s.open_connections,
                s.open_sessions,
                s.last_error.as_deref().unwrap_or("")
            );
        }
    }
    out
}

async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let base = args.admin.admin.trim_end_matches('/').to_string();
    // Stopping many servers gracefully can take a while; starting them is quick.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()?;
    let resp = client
        .post(format!("{base}/groups/{}/scale", args.group))
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
    client
        .post(format!("{base}/shutdown"))
        .send()
        .await
        .with_context(|| format!("no fleet answers at {base} (is `fleet up` running?)"))?
        .error_for_status()?;
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
