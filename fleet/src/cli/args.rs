//! The `fleet` command line's arguments as clap parses them: the subcommands, their flags and
//! defaults, and the fleet spec `up` builds from them.

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{
    memory::replica::NodeId,
    profile::Profile,
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
    /// One MCP endpoint over the servers of many fleet nodes (their admin APIs), following
    /// their joins, leaves and health; a node that stops answering leaves rotation.
    Gateway(super::gateway::GatewayArgs),
    /// Serve one reference server over stdio (newline-delimited JSON-RPC on stdin/stdout,
    /// logs on stderr) until stdin closes: what an MCP host spawns as a stdio server.
    ServeStdio(ServeStdioArgs),
}

#[derive(Debug, Args)]
pub struct ServeStdioArgs {
    /// The tool set to offer, as a fleet group of that profile does.
    #[arg(long, value_enum, default_value_t = Profile::Community)]
    pub profile: Profile,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    /// Check a memory repository's integrity: every object readable with its hash verified,
    /// the history a straight line of contiguous versions, replaying every commit's ops
    /// yielding exactly the files it holds, and the WAL readable. Takes the owner lock, so it
    /// cannot run on a repository a fleet is serving. Exits non-zero on any problem.
    Verify(MemoryRepoArgs),
    /// When opening refuses because acknowledged writes in the write-ahead log are damaged
    /// and no intact copy of `<gitdir>/mcpfleet/wal/` exists: keep every whole batch before
    /// the damage and set the rest aside in `mcpfleet/wal-quarantine/` (nothing is deleted),
    /// giving up the versions from the damage on. Takes the owner lock.
    SalvageWal(MemoryRepoArgs),
    /// Make a peer repository that nodes publish their memory to (`fleet up --memory-peer
    /// PATH`): a bare git repository, created if missing; an existing repository is left as
    /// it is. Lists the nodes it already holds.
    InitPeer(InitPeerArgs),
}

#[derive(Debug, Args)]
pub struct InitPeerArgs {
    /// Where the peer repository lives (a shared volume, say).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
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

/// The fleet's state directory: `$XDG_DATA_HOME/mcpfleet`, else
/// `~/.local/share/mcpfleet`, else `.mcpfleet` in the working directory.
pub fn state_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match data {
        Some(dir) => dir.join("mcpfleet"),
        None => PathBuf::from(".mcpfleet"),
    }
}

/// Where the memory lives unless told otherwise: `memory` in the [`state_dir`].
pub fn default_memory_repo() -> PathBuf {
    state_dir().join("memory")
}

/// Where `fleet up` writes its admin token, and other commands read it, unless told
/// otherwise: `admin-token` in the [`state_dir`].
pub fn default_admin_token_file() -> PathBuf {
    state_dir().join("admin-token")
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
    /// Give up if the fleet is not fully healthy after this long (`30`, `500ms`, `1m30s`).
    #[arg(long, default_value = "30", value_name = "TIME",
          value_parser = crate::timespan::parse_positive)]
    pub startup_timeout: std::time::Duration,
    /// Git repository of the shared memory every server offers (created if missing; an
    /// existing one resumes with all its data; a `git clone` of one restores it).
    #[arg(long, value_name = "PATH", default_value_os_t = default_memory_repo(), env = "MCPFLEET_MEMORY_REPO")]
    pub memory_repo: PathBuf,
    /// Run without the shared memory (and without the memory tools).
    #[arg(long, conflicts_with = "memory_repo")]
    pub no_memory: bool,
    /// Publish the memory's history to this peer git repository (repeatable): the path or
    /// `file://` URL of an existing repository on a local or shared volume (`fleet memory
    /// init-peer PATH` makes one), or `ssh://[user@]host[:port]/path` of one on another
    /// machine (through `git` and your ssh set-up, never prompting). Each node
    /// publishes to its own ref, `refs/heads/nodes/<node id>`, about twice a second when it
    /// has new commits, reads the other nodes' refs there and merges their writes into its own memory
    /// (all nodes converge; see the README's memory section); a peer that cannot be reached is
    /// retried with backoff and shown in `fleet status` and /metrics, never holding up writes.
    /// Given here, these replace the spec's `[memory] peers`.
    #[arg(long = "memory-peer", value_name = "URL", conflicts_with = "no_memory",
          value_parser = parse_peer)]
    pub memory_peers: Vec<String>,
    /// This node's id among nodes publishing to the same peers (letters, digits, '.', '_',
    /// '-'; at most 64). Default: the one remembered in the repository, else the host name
    /// and 8 random hex digits (then remembered).
    #[arg(long, value_name = "ID", value_parser = parse_node_id)]
    pub memory_node_id: Option<NodeId>,
    /// How often to publish to the peers and merge from them (`1s`, `250ms`): most of
    /// the replication lag between nodes is this, twice (the writer's round, then the
    /// reader's). Default: the spec's `[memory] peer_interval`, else 500ms.
    #[arg(long, value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub memory_peer_interval: Option<std::time::Duration>,
    /// Longest one push or fetch to a peer over ssh may take before git and ssh are stopped
    /// (and the peer retried with backoff). Default: the spec's `[memory] peer_timeout`,
    /// else 120s.
    #[arg(long, value_name = "TIME", value_parser = crate::timespan::parse_positive)]
    pub memory_peer_timeout: Option<std::time::Duration>,
    /// Where to write the admin token that requests changing the fleet must carry (a new
    /// random one each start, readable by this user only).
    #[arg(long, value_name = "PATH", default_value_os_t = default_admin_token_file(), env = "MCPFLEET_ADMIN_TOKEN_FILE")]
    pub admin_token_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API of the running fleet.
    #[arg(long, default_value = "http://127.0.0.1:7900", env = "MCPFLEET_ADMIN")]
    pub admin: String,
    /// The admin token file `fleet up` wrote (read by commands that change the fleet).
    #[arg(long, value_name = "PATH", default_value_os_t = default_admin_token_file(), env = "MCPFLEET_ADMIN_TOKEN_FILE")]
    pub admin_token_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The group to scale (as `fleet status` names it, e.g. `community`).
    pub group: String,
    /// Servers the group should have (at least 1: a group is never emptied).
    #[arg(value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::spec::MAX_GROUP_SIZE)))]
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

fn parse_node_id(s: &str) -> Result<NodeId, String> {
    NodeId::parse(s)
}

fn parse_peer(s: &str) -> Result<String, String> {
    crate::memory::replica::check_url(s).map(|()| s.to_string())
}
