//! Command-line arguments, checked at parse time so a bad flag fails before anything starts.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use fleet::timespan::{parse as span, parse_positive as positive_span};

use crate::{scenario::chaos::fault::FaultSpec, target::TargetSpec, transport::tls::CaCerts};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Measure MCP servers (the built-in reference fleet, or yours) against performance \
             claims; write a run file and an HTML report",
    long_about = "Measures MCP streamable-HTTP servers and judges performance claims against \
        the numbers.\n\n\
        With no --target it starts the embedded reference fleet (500 MCP servers in this \
        process: 346 `community` on 127.0.0.1:8000-8345, 154 `security` on 9346-9499, admin API \
        on 7900). Every run begins with the health sweep (one `tools/list` to every server, \
        which also finds each server's protocol era), then runs the scenarios:\n\
        - latency: --users goose users, each on its own connection, calling a mix of tools for \
          --warmup + --run-time seconds (closed loop, or open model with --rate);\n\
        - connections: --connections users, each on its own TCP connection, held for --hold \
          seconds at --connection-rate requests/s each; the held connections are counted on \
          both sides;\n\
        - capacity: open-model steps searching the highest rate whose p99 stays within \
          --capacity-p99;\n\
        - sync: --sync-rate memory writes/s for --sync-time seconds, each on a random server \
          and read back with minVersion on another (ack latency, write-to-visible lag), then a \
          check that no acknowledged write is missing (needs servers with the memory tools);\n\
        - chaos: --chaos-rate requests/s for --chaos-time seconds, through the gateway when the \
          fleet has one, while --chaos faults (default: kill 10 % of the servers) are injected \
          through the fleet's admin API; success rate, failures by class, and per fault the \
          time until the fleet and the gateway noticed and until the server was healthy again;\n\
        - scale: the embedded fleet grown to --scale-to servers (default 1000) through its \
          admin API, timed until all are healthy, its memory read at both sizes, and every \
          server swept;\n\
        - health: the sweep alone.\n\
        It writes run.json and a self-contained report.html into a new run folder, with \
        phases.csv (a row per second of every phase) and an HdrHistogram interval log per \
        phase (<phase>.hlog), prints the claim verdicts and the paths (--json: one JSON \
        object; --quiet: no progress lines). Every TIME takes 500ms, 2s, 1m30s, 1h or a bare \
        number of seconds. Ctrl-C stops early and keeps what was measured, marked \
        interrupted.\n\n\
        Exit status: 0 every claim passed or was not measured; 1 a claim failed; 2 a usage or \
        input error, or a run that could not be made (the message says which); 130 \
        interrupted. The subcommands: 0, 1 (a failed gate) and 2 likewise.",
    after_help = "Examples:\n  cargo run --release -p loadgen\n  \
        loadgen --servers 50 --users 16 --run-time 5 --scenario latency\n  \
        loadgen --scenario connections --connections 2000 --ephemeral-ports --servers 1000\n  \
        loadgen --scenario scale --isolation process --scale-to 1000\n  \
        loadgen --target http://127.0.0.1:8000/mcp --tool 'echo:{\"text\":\"hi\"}' --rate 500\n  \
        loadgen --target https://mcp.internal:8443/mcp --cacert ca.pem --scenario latency\n  \
        loadgen report target/mcpfleet-runs/20261124T050000Z\n  \
        loadgen compare BASE/run.json HEAD/run.json\n  \
        loadgen gate --config ci/gates.toml --baseline BASE/run.json HEAD/run.json",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Without a subcommand, loadgen measures; the subcommands read run files it wrote.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Scenarios to run, in order; `all` runs health, latency, connections, capacity, sync,
    /// chaos, scale.
    #[arg(
        long = "scenario",
        value_enum,
        value_delimiter = ',',
        default_value = "all"
    )]
    pub scenarios: Vec<ScenarioChoice>,

    /// How long the latency scenario measures, after ramp-up and warm-up. Every TIME takes
    /// one syntax: seconds (`15`, `0.5`) or units h, m, s, ms (`500ms`, `2s`, `1m30s`, `1h`).
    #[arg(long = "run-time", visible_alias = "duration", default_value = "15",
          value_name = "TIME", value_parser = positive_span)]
    pub duration: Duration,

    /// Concurrent users of the latency scenario. Each has its own HTTP client and connection(s)
    /// and one request in flight; with fewer users than servers each user cycles through its
    /// share of the servers. In the open model (--rate) it is the most requests in flight.
    #[arg(long, short = 'u', default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub users: u32,

    /// Time over which goose starts the latency scenario's users (evenly); 0 starts them all
    /// at once. Not measured.
    #[arg(long = "increase-time", visible_alias = "ramp-up", default_value = "0",
          value_name = "TIME", value_parser = span)]
    pub ramp_up: Duration,

    /// Seconds of load after ramp-up and before measuring starts; requests started then are
    /// not recorded.
    #[arg(long, default_value = "2", value_name = "TIME", value_parser = span)]
    pub warmup: Duration,

    /// Run shard I of a sharded run of N generators (1-based, e.g. `2/4`): this process sends
    /// its share of the latency scenario's users and of its --rate (its open-model send times
    /// offset so that the N shards together keep one generator's schedule), holds its share
    /// of --connections and sends its share of --chaos-rate (shard 1 alone injects the
    /// faults). Every shard's run file says which shard it is; `loadgen merge` makes one run of
    /// them. Needs --run-id and the targets of the run (--target); sharded runs measure the
    /// health sweep and the latency, connections and chaos scenarios.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse, requires = "run_id",
          requires = "targets")]
    pub shard: Option<Shard>,

    /// Start measuring at this wall-clock instant (RFC 3339, e.g. `2026-12-07T12:00:00Z`), so
    /// that the shards of a run, started one by one or on several machines, measure the same
    /// seconds. Waits until then after the health sweep, before the first load phase; each run
    /// file records how late that phase began against it. At most 24 h ahead.
    #[arg(long, value_name = "RFC3339", value_parser = start_at)]
    pub start_at: Option<StartAt>,

    /// Names the sharded run this shard belongs to: every shard of a run takes the same one,
    /// and `loadgen merge` refuses shards of different runs.
    #[arg(long, value_name = "ID", requires = "shard")]
    pub run_id: Option<String>,

    /// Scale the embedded fleet to N servers (proportionally over its groups) [default: 500].
    /// Above 500 the default port ranges overlap: add --ephemeral-ports.
    #[arg(long, value_name = "N", conflicts_with = "targets",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub servers: Option<u32>,

    /// Let the kernel choose the embedded fleet's ports, e.g. to run beside `fleet up`.
    #[arg(long, conflicts_with = "targets")]
    pub ephemeral_ports: bool,

    /// How the embedded fleet runs its servers: `task` (tokio tasks in this process) or
    /// `process` (one child process each, as `fleet up --isolation process`).
    #[arg(long, value_enum, default_value = "task", conflicts_with = "targets")]
    pub isolation: fleet::Isolation,

    /// The fleet admin API the chaos scenario injects faults through, when measuring --target
    /// servers (e.g. `http://127.0.0.1:7900` of `fleet up`); the embedded fleet's is known.
    #[arg(long, value_name = "URL")]
    pub admin: Option<reqwest::Url>,

    /// The admin token file of the fleet at --admin, which its fault requests must carry
    /// (`fleet up` writes it and prints where; the embedded fleet's token is known).
    #[arg(long, value_name = "PATH", default_value_os_t = fleet::cli::default_admin_token_file(),
          env = "MCPFLEET_ADMIN_TOKEN_FILE")]
    pub admin_token_file: std::path::PathBuf,

    /// Measure these instead of starting the fleet: MCP endpoint URLs
    /// (`http://127.0.0.1:8000/mcp`, `https://mcp.internal:8443/mcp`; a root URL such as
    /// `http://127.0.0.1:3000` is an MCP endpoint at `/` unless it answers as a fleet admin
    /// API), port ranges (`127.0.0.1:8000-8345/mcp`, `https://mcp.internal:8000-8010/mcp`), a
    /// fleet admin API (`http://127.0.0.1:7900/servers`, whose servers are discovered), or a
    /// stdio server loadgen spawns, `'stdio:COMMAND ARG...'` (split as a shell would; e.g.
    /// `'stdio:npx -y @modelcontextprotocol/server-everything stdio'`; its stderr goes to
    /// stdio-N.log in the run folder). Servers of an mcpfleet fleet found through its admin
    /// API get their profile's tool mix; others only `tools/list` unless --tool says what to
    /// call.
    #[arg(long = "target", value_name = "TARGET", num_args = 1..)]
    pub targets: Vec<TargetSpec>,

    /// Per-request timeout; slower requests count as `timeout` errors.
    #[arg(long, default_value = "10", value_name = "TIME", value_parser = positive_span)]
    pub timeout: Duration,

    /// Trust the certificates of this PEM file (one or more) as roots for `https://` targets,
    /// beside the machine's certificate store. A file that is missing or holds no certificate
    /// is a usage error.
    #[arg(long, value_name = "FILE", value_parser = cacert, conflicts_with = "insecure")]
    pub cacert: Option<CaCerts>,

    /// Accept any certificate an `https://` target shows (the handshake's signatures are still
    /// checked); the run file and the report say "TLS verification off".
    #[arg(long)]
    pub insecure: bool,

    /// OAuth 2.1 client credentials for targets that answer 401 (the MCP authorization flow):
    /// the client id registered at the authorization server the target names. Needs
    /// --oauth-client-secret-env or --oauth-private-key. Tokens are fetched before measuring
    /// (not timed), renewed before they expire and once after a 401, and counted apart in the
    /// run file. A fixed token instead: -H 'Authorization: Bearer ...'.
    #[arg(long, value_name = "ID", requires = "oauth_credentials")]
    pub oauth_client_id: Option<String>,

    /// The environment variable holding the OAuth client secret (sent by client_secret_basic,
    /// or client_secret_post when that is all the server takes).
    #[arg(
        long,
        value_name = "VAR",
        requires = "oauth_client_id",
        group = "oauth_credentials"
    )]
    pub oauth_client_secret_env: Option<String>,

    /// A PEM private key signing private_key_jwt client assertions (RFC 7523): PKCS#8 P-256
    /// (ES256) or RSA (RS256).
    #[arg(
        long,
        value_name = "FILE",
        requires = "oauth_client_id",
        group = "oauth_credentials"
    )]
    pub oauth_private_key: Option<PathBuf>,

    /// The OAuth scope to ask for [default: the 401 challenge's, else none].
    #[arg(long, value_name = "SCOPE", requires = "oauth_client_id")]
    pub oauth_scope: Option<String>,

    /// Open model for the latency scenario: send this many requests per second in total, each
    /// at a fixed intended time, and count latency from that time, so a stalled server shows
    /// in the tails (coordinated omission corrected). Without it: a closed loop, each user
    /// sending its next request when the previous one completed.
    #[arg(long, value_name = "REQ/S", value_parser = rate)]
    pub rate: Option<f64>,

    /// A tool to call instead of the built-in mix, for servers whose tools loadgen does not
    /// know: `NAME[@WEIGHT][:JSON-ARGS]`, e.g. `--tool 'search@3:{"query":"x"}' --tool ping_db`.
    /// Repeatable; weights default to 1. Every target gets this mix.
    #[arg(long = "tool", value_name = "NAME[@WEIGHT][:JSON]")]
    pub tools: Vec<crate::mix::ToolChoice>,

    /// Any JSON-RPC method in the mix, beside or instead of --tool:
    /// `METHOD[@WEIGHT][:JSON-PARAMS]`, e.g. `--request 'resources/read:{"uri":"file:///a"}'`,
    /// `--request prompts/get@2:{"name":"p"}`, `--request ping`. Repeatable.
    #[arg(long = "request", value_name = "METHOD[@WEIGHT][:JSON]")]
    pub requests: Vec<crate::mix::RequestChoice>,

    /// An extra HTTP header sent on every request (health sweep, session set-up, calls,
    /// session end), replacing one loadgen would send of the same name: `-H 'Authorization:
    /// Bearer TOKEN'`. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE",
          value_parser = crate::transport::settings::parse_header)]
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,

    /// MCP protocol version: `auto` (per server: 2026-07-28 if it answers `server/discover`,
    /// else `initialize` asking for 2025-11-25 and then the version the server negotiated), or
    /// one version: `2026-07-28` (stateless), `2025-11-25`, `2025-06-18`, `2025-03-26` (each
    /// user initializes a session per server in goose's on-start, sends `Mcp-Session-Id` and
    /// `MCP-Protocol-Version`, re-initializes after a 404 and deletes the session in on-stop)
    /// or `2024-11-05`.
    #[arg(long, value_enum, default_value = "auto")]
    pub protocol: crate::measure::ProtocolChoice,

    /// For a `stdio:` target: run N server processes shared by all users, requests pipelined
    /// (matched by id), instead of one process per user (--users). Each is opened (initialize,
    /// or server/discover) before measuring; one that exits is restarted.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub stdio_processes: Option<u32>,

    /// Connections (users) the connections scenario opens and holds.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub connections: u32,

    /// How long the connections scenario holds them, measured (after a 1 s warm-up).
    #[arg(long, default_value = "10", value_name = "TIME", value_parser = positive_span)]
    pub hold: Duration,

    /// Requests per second each held connection sends.
    #[arg(long, default_value = "1", value_name = "REQ/S", value_parser = rate)]
    pub connection_rate: f64,

    /// Time over which the connections scenario opens its connections.
    #[arg(long, default_value = "5", value_name = "TIME", value_parser = span)]
    pub connections_ramp_up: Duration,

    /// The p99 latency (ms) the capacity search must keep [default: the bound of the claims'
    /// first latency claim, else 25].
    #[arg(long, value_name = "MS", value_parser = positive_ms)]
    pub capacity_p99: Option<f64>,

    /// Measured length of each capacity step (after a 1 s warm-up).
    #[arg(long, default_value = "3", value_name = "TIME", value_parser = positive_span)]
    pub capacity_step: Duration,

    /// Memory writes per second of the sync scenario (open model: each at a fixed intended
    /// time; ack latency counts from it). Each write goes to a random server and is then read
    /// on another with `minVersion`; at most 256 writes are in flight.
    #[arg(long, default_value = "1000", value_name = "WRITES/S", value_parser = rate)]
    pub sync_rate: f64,

    /// How long the sync scenario measures (after a 1 s warm-up), before its final check that
    /// every acknowledged write is present.
    #[arg(long, default_value = "5", value_name = "TIME", value_parser = positive_span)]
    pub sync_time: Duration,

    /// Faults of the chaos scenario: `kill:SHARE` (SIGKILL in process mode; the supervisor
    /// restarts the server), `pause:SHARE[:FOR]` (the server stops answering, then resumes;
    /// default 2 s) or `slow:SHARE:MS[:FOR]` (MS added to every request; default 5 s). SHARE
    /// is a percentage of the servers (`10%`) or a count (`3`); FOR is a TIME (`2`, `500ms`,
    /// `1m30s`); each server gets at most one fault. Repeatable; faults are spread over the first 60 % of --chaos-time.
    #[arg(long = "chaos", value_name = "FAULT", default_value = "kill:10%")]
    pub chaos: Vec<FaultSpec>,

    /// How long the chaos scenario measures (after a 1 s warm-up).
    #[arg(long, default_value = "10", value_name = "TIME", value_parser = positive_span)]
    pub chaos_time: Duration,

    /// Requests per second of the chaos scenario's load (open model).
    #[arg(long, default_value = "500", value_name = "REQ/S", value_parser = rate)]
    pub chaos_rate: f64,

    /// Servers the scale step grows the embedded fleet to, through its admin API
    /// (`POST /groups/{group}/scale`, proportionally over the groups: 346/154 -> 692/308),
    /// waiting until all are healthy and sweeping them. Skipped (saying why) when the fleet
    /// already has that many, and for --target servers, which loadgen cannot scale.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub scale_to: u32,

    /// Claims to judge the run against (TOML, see ci/claims/seed-report.toml for the format)
    /// [default: the seed report's claims, built in].
    #[arg(long, value_name = "FILE")]
    pub claims: Option<PathBuf>,

    /// Print the run's summary as one JSON object on stdout, and nothing else there: the exit
    /// status and its meaning, the claim verdicts, key figures per phase and the paths written.
    #[arg(long)]
    pub json: bool,

    /// Print no progress lines: stderr carries errors and warnings only.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Directory for run.json, report.html and the exports (phases.csv, one .hlog per phase)
    /// [default: <cargo target dir>/mcpfleet-runs/<UTC timestamp>].
    // The angle brackets are help text for people, not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// What loadgen does with run files it (or another machine) wrote; none of these measures.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Render the HTML report of a run again (e.g. after upgrading loadgen), and its exports
    /// beside run.json: phases.csv and one HdrHistogram interval log (.hlog) per phase.
    Report {
        /// The run: its run.json or its folder.
        run: PathBuf,
        /// Where to write the report [default: report.html beside run.json].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print what was written as one JSON object on stdout (`{"written": [{"kind",
        /// "path"}, ...]}`).
        #[arg(long)]
        json: bool,
    },
    /// Render a comparison of two runs: overlaid charts and a table of changes with their
    /// significance.
    Compare {
        /// The run compared against (before): its run.json or its folder.
        base: PathBuf,
        /// The run being judged (after).
        head: PathBuf,
        /// Where to write it [default: compare.html beside HEAD's run.json].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print what was written as one JSON object on stdout (`{"written": [{"kind",
        /// "path"}, ...]}`).
        #[arg(long)]
        json: bool,
    },
    /// Judge runs against gate rules; exit 0 when they pass, 1 when a gate fails, 2 on a usage
    /// or input error. Writes a JUnit XML file and a Markdown summary.
    Gate {
        /// Gate rules (TOML; see ci/gates.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// A baseline run measured in the same job, for the relative rules; repeat it for
        /// repeated runs (more runs, more power).
        #[arg(long, value_name = "RUN")]
        baseline: Vec<PathBuf>,
        /// The runs to judge: run.json files or run folders.
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// JUnit XML output [default: gate-junit.xml beside the first RUN].
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Markdown summary output [default: gate-summary.md beside the first RUN; also
        /// appended to $GITHUB_STEP_SUMMARY when that is set].
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        /// Print the outcome as one JSON object on stdout (exit status, every check with its
        /// status, the files written) instead of the text summary.
        #[arg(long)]
        json: bool,
    },
    /// Merge the run files of a sharded run's shards (`--shard I/N`) into one run: histograms
    /// added (exact percentiles), counts summed, seconds lined up by the wall clock, claims
    /// judged again. Exit 0 when every claim holds, 1 when one failed, 2 when the files are
    /// not the whole set of one run's shards (the message names the file).
    Merge {
        /// The shards' run.json files or run folders, one per shard, in any order.
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// The folder to write the merged run.json, report.html and exports into [default: a
        /// new run folder beside the other runs].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Claims to judge the merged run against (TOML) [default: the seed report's].
        #[arg(long, value_name = "FILE")]
        claims: Option<PathBuf>,
        /// Print the outcome as one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write index.html listing the runs in a folder, their verdicts and a trend of key
    /// figures.
    Index {
        /// The folder holding run folders [default: <cargo target dir>/mcpfleet-runs].
        #[allow(rustdoc::invalid_html_tags)]
        dir: Option<PathBuf>,
        /// Print what was written as one JSON object on stdout (`{"written": [{"kind",
        /// "path"}, ...]}`).
        #[arg(long)]
        json: bool,
    },
}

/// `--start-at`: the instant, and how it was written (for the run file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAt {
    pub at: std::time::SystemTime,
    pub text: String,
}

/// Furthest ahead `--start-at` may be: beyond, it is more likely a mistyped date than a plan.
const START_AT_MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

fn start_at(s: &str) -> Result<StartAt, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-12-07T12:00:00Z: {e}"))?;
    let at = std::time::SystemTime::from(parsed);
    if at
        .duration_since(std::time::SystemTime::now())
        .is_ok_and(|ahead| ahead > START_AT_MAX_AHEAD)
    {
        return Err(format!("{s:?} is more than 24 h ahead"));
    }
    Ok(StartAt {
        at,
        text: parsed.to_rfc3339(),
    })
}

/// Which shard of a sharded run this process is (`--shard I/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected I/N, e.g. 2/4"))?;
        let number = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {x:?} is not a whole number"))
        };
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 || index == 0 || index > count || count > reports::merge::MAX_SHARDS {
            return Err(format!(
                "{s:?}: shards count from 1 to N (N from 1 to {})",
                reports::merge::MAX_SHARDS
            ));
        }
        Ok(Self { index, count })
    }

    /// This shard's part of `total` (users): an even split, the first shards taking one more
    /// while the remainder lasts.
    pub fn share(&self, total: usize) -> usize {
        let (n, i) = (self.count as usize, self.index as usize - 1);
        total / n + usize::from(i < total % n)
    }
}

/// A scenario `--scenario` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ScenarioChoice {
    Health,
    Latency,
    Connections,
    Capacity,
    Sync,
    Chaos,
    Scale,
    All,
}

impl Args {
    /// What every HTTP request of the run carries; the TLS configuration only when a target
    /// is `https://` or a TLS flag was given.
    pub fn http_settings(
        &self,
    ) -> Result<crate::transport::settings::HttpSettings, crate::transport::tls::TlsError> {
        let mut settings = crate::transport::settings::HttpSettings::with_timeout(self.timeout);
        for (name, value) in &self.headers {
            settings.headers.append(name, value.clone());
        }
        if self.uses_tls() {
            let tls = crate::transport::tls::Tls::new(self.cacert.as_ref(), self.insecure)?;
            settings.tls = Some(std::sync::Arc::new(tls));
        }
        Ok(settings)
    }

    /// Whether any target is `https://`, or `--cacert`/`--insecure` asks for TLS.
    pub fn uses_tls(&self) -> bool {
        self.cacert.is_some()
            || self.insecure
            || self
                .targets
                .iter()
                .any(|t| t.to_string().starts_with("https://"))
    }

    /// The scenarios to run, in their fixed order, `all` expanded.
    pub fn scenario_list(&self) -> Vec<ScenarioChoice> {
        use ScenarioChoice::*;
        let all = self.scenarios.contains(&All);
        [Health, Latency, Connections, Capacity, Sync, Chaos, Scale]
            .into_iter()
            .filter(|s| all || self.scenarios.contains(s))
            .collect()
    }
}

impl ScenarioChoice {
    pub fn name(self) -> &'static str {
        match self {
            ScenarioChoice::Health => "health",
            ScenarioChoice::Latency => "latency",
            ScenarioChoice::Connections => "connections",
            ScenarioChoice::Capacity => "capacity",
            ScenarioChoice::Sync => "sync",
            ScenarioChoice::Chaos => "chaos",
            ScenarioChoice::Scale => "scale",
            ScenarioChoice::All => "all",
        }
    }
}

/// `--cacert`: the file's certificates, read now so a bad file fails before anything starts.
fn cacert(s: &str) -> Result<CaCerts, String> {
    CaCerts::read(std::path::Path::new(s)).map_err(|e| e.to_string())
}

fn positive_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 600_000.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of milliseconds (more than 0)"
        )),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1_000_000.0 => Ok(r),
        Ok(r) => Err(format!(
            "{r} req/s is out of range (more than 0, at most 1000000)"
        )),
        Err(_) => Err(format!("`{s}` is not a number of requests per second")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let a = Args::try_parse_from(["loadgen"]).unwrap();
        assert_eq!(a.duration, Duration::from_secs(15));
        assert_eq!(
            (a.users, a.warmup, a.servers),
            (64, Duration::from_secs(2), None)
        );
        assert!(a.targets.is_empty() && !a.ephemeral_ports && a.out.is_none());
        let a = Args::try_parse_from(["loadgen", "--duration", "0.5", "--warmup", "0"]).unwrap();
        assert_eq!(a.duration, Duration::from_millis(500));
        let a =
            Args::try_parse_from(["loadgen", "--run-time", "1m30s", "--ramp-up", "2s"]).unwrap();
        assert_eq!(
            (a.duration, a.ramp_up),
            (Duration::from_secs(90), Duration::from_secs(2))
        );
        let a = Args::try_parse_from([
            "loadgen",
            "--hold",
            "500ms",
            "--timeout",
            "1h",
            "--sync-time",
            "0.5",
        ])
        .unwrap();
        assert_eq!(
            (a.hold, a.timeout, a.sync_time),
            (
                Duration::from_millis(500),
                Duration::from_secs(3600),
                Duration::from_millis(500)
            )
        );
        let e = Args::try_parse_from(["loadgen", "--capacity-step", "3x"]).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("--capacity-step") && e.contains("1m30s"), "{e}");
        assert_eq!(a.scenario_list().len(), 7, "all by default");
        assert_eq!(
            a.scenario_list().last(),
            Some(&ScenarioChoice::Scale),
            "scale ends it"
        );
        assert_eq!(a.scale_to, 1000);
        assert_eq!(a.chaos.len(), 1);
        assert_eq!(a.chaos[0].to_string(), "kill:10%");
        assert_eq!(a.isolation, fleet::Isolation::Task);
        let a = Args::try_parse_from([
            "loadgen",
            "--chaos",
            "kill:5%",
            "--chaos",
            "pause:2:1s",
            "--isolation",
            "process",
        ])
        .unwrap();
        assert_eq!(a.chaos.len(), 2, "a given --chaos replaces the default");
        assert_eq!(a.isolation, fleet::Isolation::Process);
        assert_eq!((a.sync_rate, a.sync_time), (1000.0, Duration::from_secs(5)));
        let a = Args::try_parse_from(["loadgen", "--scenario", "capacity,latency"]).unwrap();
        assert_eq!(
            a.scenario_list(),
            [ScenarioChoice::Latency, ScenarioChoice::Capacity]
        );
        for bad in [
            &["loadgen", "--duration", "0"][..],
            &["loadgen", "--users", "0"],
            &["loadgen", "--warmup", "-1"],
            &["loadgen", "--run-time", "1x"],
            &["loadgen", "--run-time", "m"],
            &["loadgen", "--scenario", "speed"],
            &["loadgen", "--capacity-p99", "0"],
            &["loadgen", "--sync-rate", "0"],
            &["loadgen", "--sync-time", "0"],
            &["loadgen", "--chaos", "kill"],
            &["loadgen", "--chaos-rate", "0"],
            &["loadgen", "--chaos-time", "0"],
            &["loadgen", "--isolation", "thread"],
            &[
                "loadgen",
                "--target",
                "http://127.0.0.1:1/mcp",
                "--isolation",
                "process",
            ],
            &["loadgen", "--servers", "0"],
            &["loadgen", "--cacert", "/nonexistent/ca.pem"],
            &["loadgen", "--target", "ftp://x/mcp"],
            &[
                "loadgen",
                "--target",
                "http://127.0.0.1:1/mcp",
                "--servers",
                "3",
            ],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let a = Args::try_parse_from([
            "loadgen",
            "--target",
            "http://127.0.0.1:8000/mcp",
            "http://127.0.0.1:8001/mcp",
        ])
        .unwrap();
        assert_eq!(a.targets.len(), 2);
    }

    #[test]
    fn shards_split_users_evenly_and_parse_strictly() {
        let s = |i, n| Shard { index: i, count: n };
        assert_eq!(Shard::parse("2/4"), Ok(s(2, 4)));
        for bad in ["0/2", "3/2", "1/0", "2", "a/2", "1/b", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        // 10 users over 4 shards: 3, 3, 2, 2; always the whole.
        let shares: Vec<usize> = (1..=4).map(|i| s(i, 4).share(10)).collect();
        assert_eq!(shares, [3, 3, 2, 2]);
        for (total, n) in [(7, 3), (64, 5), (5, 5)] {
            assert_eq!((1..=n).map(|i| s(i, n).share(total)).sum::<usize>(), total);
        }
    }
}
