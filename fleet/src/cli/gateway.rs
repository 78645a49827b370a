//! `fleet gateway`: one MCP endpoint over the servers of many fleet nodes, each a `fleet up`
//! on its own machine (or port). The gateway is the one a fleet runs inside itself
//! ([`crate::gateway`]: the same `/mcp`, `/mcp/{server-id}` and `/mcp?group=NAME`, pools and
//! balancing), its servers learnt from the nodes' admin APIs ([`crate::gateway::nodes`])
//! rather than from a registry in its own process. Its flags are parsed and checked here, once;
//! a bad one is a usage error (exit 2) naming the input.

use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::{
    control::admin_auth::AdminToken,
    gateway::{
        Directory, Gateway,
        nodes::{
            NodesConfig,
            follow::Follower,
            source::{self, DnsSource, Node, Source},
            table::NodeTable,
        },
        session::SessionKey,
        upstream::Upstream,
    },
    serve::{limits::ConnectionLimits, listener, loopback::AllowedHosts, socket::bind_server},
};

/// How long the gateway waits for a server's response headers, as the in-fleet one does.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

const EXAMPLES: &str = "\
Examples:
  fleet gateway --node http://10.0.0.5:7900 --node http://10.0.0.6:7900
  fleet gateway --node a=http://127.0.0.1:7900 --node b=http://127.0.0.1:7910 --port 7990
  fleet gateway --discover dns:fleet.default.svc.cluster.local:7900

Server ids are qualified by their node: NODE~SERVER-ID, e.g. a~community-0000 or
10.0.0.5:7900~community-0000, pinned at /mcp/a~community-0000. /mcp spreads calls over every
node's servers (tools as group__tool), /mcp?group=NAME pins a session to one server of a group,
/metrics shows the nodes (mcpfleet_gateway_node_up), /backends every member.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct GatewayArgs {
    /// A fleet node's admin API, `[NAME=]http://HOST:PORT` (repeatable). NAME (default
    /// HOST:PORT) qualifies the node's server ids: `NAME~community-0000`.
    #[arg(long = "node", value_name = "[NAME=]URL", value_parser = source::parse_node,
          required_unless_present = "discover", conflicts_with = "discover")]
    pub nodes: Vec<Node>,
    /// Find the nodes in DNS instead: every A/AAAA record of NAME is one node's admin API on
    /// PORT (a Kubernetes headless Service), resolved again every --resolve-every; a node is
    /// named `IP:PORT`.
    #[arg(long, value_name = "dns:NAME:PORT", value_parser = source::parse_discover)]
    pub discover: Option<DnsSource>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7990)]
    pub port: u16,
    /// A host name clients may address the gateway by (repeatable), such as its Kubernetes
    /// Service's `fleet-gateway.mcpfleet.svc`: requests naming any other host than
    /// `localhost`, an IP address or these are refused with 403 (the DNS-rebinding guard).
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Threads serving the gateway [default: one per four CPUs, at least one].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// How often every node is asked for its servers.
    #[arg(long, default_value = "1s", value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub poll_every: Duration,
    /// How long a node may take to answer before its servers leave rotation (at most
    /// --poll-every).
    #[arg(long, default_value = "800ms", value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub poll_timeout: Duration,
    /// How often --discover's name is resolved again.
    #[arg(long, default_value = "5s", value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub resolve_every: Duration,
    /// Give up if no node has answered after this long (the gateway learns its groups from the
    /// first answers).
    #[arg(long, default_value = "30s", value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub startup_timeout: Duration,
    /// An admin token file to present to the nodes. Reading `/servers` needs no token (reads
    /// of the admin API stay open), so this is only for admin APIs behind a proxy that asks.
    #[arg(long, value_name = "PATH", env = "MCPFLEET_GATEWAY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl GatewayArgs {
    /// The nodes and the follower's settings, checked.
    fn settings(&self) -> Result<(Source, NodesConfig), String> {
        let source = match &self.discover {
            Some(dns) => Source::Dns(dns.clone()),
            None => source::fixed(self.nodes.clone()).map_err(|e| e.to_string())?,
        };
        let cfg = NodesConfig {
            poll_every: self.poll_every,
            poll_timeout: self.poll_timeout,
            resolve_every: self.resolve_every,
            ..NodesConfig::default()
        };
        cfg.validate()?;
        Ok((source, cfg))
    }
}

/// A usage error found after parsing: printed as clap prints its own, exit 2.
fn usage_error(message: String) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{message}\n\nFor more information, try 'fleet gateway --help'.\n"),
    )
    .exit()
}

pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let (source, cfg) = args.settings().unwrap_or_else(|e| usage_error(e));
    let allowed = AllowedHosts::new(&args.allowed_hosts).unwrap_or_else(|e| usage_error(e));
    let token = args
        .admin_token_file
        .as_deref()
        .map(AdminToken::read_from)
        .transpose()?;
    crate::serve::socket::raise_fd_limit();
    let addr = std::net::SocketAddr::new(args.host, args.port);
    let socket = bind_server(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let addr = socket.local_addr().unwrap_or(addr);
    let table = Arc::new(NodeTable::default());
    let mut follower = Follower::new(source, cfg.clone(), table.clone(), token.as_ref())?;
    let started = tokio::time::Instant::now();
    loop {
        follower.round().await;
        if follower.has_view() {
            break;
        }
        if started.elapsed() >= args.startup_timeout {
            bail!(
                "no node answered GET /servers within {:?} (the gateway learns its groups from \
                 them; is `fleet up` running there?): {}",
                args.startup_timeout,
                follower.silent()
            );
        }
        tokio::time::sleep(cfg.poll_every).await;
    }
    let key = SessionKey::random().context("cannot make the gateway's session key")?;
    let directory = Directory::new(follower.backends());
    let gw = Gateway::new(directory, Upstream::new(UPSTREAM_TIMEOUT), key).with_nodes(table);
    follower.apply(&gw);
    let stop = CancellationToken::new();
    let following = tokio::spawn(follower.run(gw.clone(), stop.clone()));
    let threads = args.threads.map_or_else(
        || (std::thread::available_parallelism().map_or(1, |n| n.get()) / 4).max(1),
        usize::from,
    );
    let served = listener::serve_on_threads(
        socket,
        "gateway",
        threads,
        gw.clone().router_allowing(allowed),
        Arc::default(),
        ConnectionLimits::default(),
        stop.clone(),
    )
    .with_context(|| format!("cannot serve on {addr}"))?;
    let served = tokio::spawn(served);
    announce(&gw, addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; eprintln!("Ctrl-C: stopping"); }
        _ = term.recv() => eprintln!("SIGTERM: stopping"),
    }
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = following.await;
        let _ = served.await;
    })
    .await;
    Ok(())
}

/// Where the gateway listens and what it serves, on stdout (tests and scripts read the
/// `gateway` line).
fn announce(gw: &Gateway, addr: std::net::SocketAddr) {
    use std::io::Write as _;
    let groups = gw.backends();
    let servers: usize = groups.values().map(Vec::len).sum();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "  gateway    http://{addr}/mcp  ({servers} servers in {} group(s); /mcp/NODE~SERVER-ID \
         pins one; nodes in /metrics)",
        groups.len()
    );
    let _ = out.flush();
}
