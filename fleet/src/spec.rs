//! The fleet spec: which groups of servers to run, on which ports, with which profile, and how
//! they are supervised. Read once from TOML (or built from defaults), validated at the edge.

use std::{collections::BTreeSet, net::IpAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use crate::profile::Profile;
pub use crate::spec_memory::MemorySpec;

/// Most threads the gateway may be given.
pub const MAX_GATEWAY_THREADS: usize = 256;

/// Most servers one group may have, in a spec or scaled at run time (`fleet scale`): far
/// beyond what one machine's ports and memory serve, so a typo (an extra zero) is refused
/// instead of tried.
pub const MAX_GROUP_SIZE: u32 = 10_000;

/// Most servers a whole fleet may have (the groups added up, or `--servers N`): each takes a
/// port and a descriptor of its own, and the kernel's ephemeral port range holds ~28,000.
pub const MAX_SERVERS: u32 = 20_000;

/// Everything needed to start a fleet. Every field has a default, so an empty TOML file is the
/// report's fleet: 346 community servers on 8000-8345 and 154 security servers on 9346-9499.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSpec {
    /// Address every server, the admin API and health checks bind to (loopback by default).
    pub host: IpAddr,
    /// Port of the admin API; 0 picks a free one.
    pub admin_port: u16,
    /// Port of the gateway (one MCP endpoint over the fleet); 0 picks a free one.
    pub gateway_port: u16,
    /// Threads serving the gateway, each with a runtime of its own; 0 (the default) means one
    /// per CPU when the gateway calls its servers in-process, else one per four CPUs, at least
    /// one.
    pub gateway_threads: usize,
    /// In task mode, the gateway calls the servers in-process instead of over loopback HTTP
    /// (same answers, faults and failures, without a second HTTP exchange per call). `false`
    /// makes every gateway call a real HTTP hop, e.g. to measure what that hop costs. No effect
    /// in process mode.
    pub gateway_in_process: bool,
    /// `task`: all servers in this process; `process`: one OS process per server.
    pub isolation: Isolation,
    pub groups: Vec<GroupSpec>,
    pub health: HealthSpec,
    pub server: ServerSpec,
    pub http: HttpSpec,
    pub memory: MemorySpec,
}

/// A named set of identical servers on consecutive ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub profile: Profile,
    pub count: u32,
    /// First port of the group; servers take `first_port..first_port+count`. 0 means
    /// ephemeral ports chosen by the kernel (useful for tests and side-by-side runs).
    pub first_port: u16,
    /// Overrides `[server] stateless` for this group's servers: `false` runs a group that
    /// speaks only the session eras beside groups that speak every era.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateless: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// All servers are tasks of one process: cheapest, the default.
    #[default]
    Task,
    /// Each server is its own OS process; a dead one is respawned with backoff.
    Process,
}

impl Isolation {
    /// The name in specs, flags, run files and messages (`task`, `process`).
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Task => "task",
            Isolation::Process => "process",
        }
    }
}

/// How the health monitor probes servers and when it declares them unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSpec {
    /// Time between probes of one server.
    #[serde(with = "millis")]
    pub interval: Duration,
    /// A probe slower than this counts as failed.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Consecutive failed probes after which a server is unhealthy and gets restarted.
    pub failures_to_unhealthy: u32,
    /// Every Nth probe also makes a real MCP round trip (`tools/list`), not just `/healthz`.
    pub mcp_probe_every: u32,
}

/// Per-server limits and behaviour shared by every server of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSpec {
    /// Largest accepted request body; larger ones get HTTP 413.
    pub max_body_bytes: usize,
    /// Idle sessions (2025-11-25 era) are closed after this long.
    #[serde(with = "millis")]
    pub session_idle: Duration,
    /// Upper bound for the `work` tool's requested time, so one call cannot hog a server.
    #[serde(with = "millis")]
    pub max_work: Duration,
    /// Most sessions (2025-11-25 era) one server holds at once; an `initialize` beyond gets
    /// HTTP 503 and a JSON-RPC error. Each costs memory until ended or idle for
    /// `session_idle`, so this bounds what one client opening sessions in a loop can take.
    pub max_sessions: usize,
    /// Whether the servers also speak the stateless era (2026-07-28). `false` makes them
    /// session-era servers (2025-11-25 and older), as most servers deployed today are: a
    /// stateless request gets HTTP 400 and JSON-RPC -32022. A group's `stateless` overrides it.
    pub stateless: bool,
    /// Longest a security tool's call may take, its wait for a free thread included; past it
    /// the call is answered with an error (JSON-RPC -32603) and its work abandoned.
    #[serde(with = "millis")]
    pub tool_deadline: Duration,
    /// How long an idle session keeps rmcp's in-memory worker (~94 kB of heap) after its last
    /// request or stream ended; then only what it needs to come back is kept (a few hundred
    /// bytes) until `session_idle`, and its next request restores it. At most `session_idle`.
    #[serde(with = "millis")]
    pub session_resident: Duration,
}

/// What every listening socket of the fleet (each server, the gateway, the admin API) allows a
/// connection: a client that sends slowly, or holds connections it does not use, gets them
/// closed, and one that opens too many gets HTTP 503 instead of starving the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSpec {
    /// Most connections one listening socket holds at once; one beyond is answered HTTP 503
    /// (`Retry-After: 1`) and closed. The whole process also keeps its connections within its
    /// open-file limit, less a reserve for the health probes and its own files.
    pub max_connections: usize,
    /// A request's head must arrive within this: the first request of a connection from its
    /// opening, each next one on an HTTP/1.1 connection from the end of the one before.
    #[serde(with = "millis")]
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this from its head; past it the request is
    /// answered HTTP 408 and the connection closed.
    #[serde(with = "millis")]
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/2 and any
    /// connection that keeps sending without finishing a request).
    #[serde(with = "millis")]
    pub idle_timeout: Duration,
}

/// Most connections `[http] max_connections` may allow one listening socket.
pub const MAX_CONNECTIONS_PER_LISTENER: usize = 1_000_000;

impl Default for HttpSpec {
    fn default() -> Self {
        Self {
            // Well above the 1000+ simultaneous connections the seed report claims per fleet.
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS_PER_LISTENER {
            return Err(SpecError::Invalid(format!(
                "http.max_connections is {}; it must be 1 to {MAX_CONNECTIONS_PER_LISTENER}",
                self.max_connections
            )));
        }
        let bounds = Duration::from_millis(10)..=Duration::from_secs(24 * 3600);
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if !bounds.contains(&value) {
                return Err(SpecError::Invalid(format!(
                    "http.{name} is {value:?}; it must be 10 ms to 24 h"
                )));
            }
        }
        Ok(())
    }
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            admin_port: 7900,
            gateway_port: 7999,
            gateway_threads: 0,
            gateway_in_process: true,
            isolation: Isolation::Task,
            groups: vec![
                GroupSpec {
                    name: "community".into(),
                    profile: Profile::Community,
                    count: 346,
                    first_port: 8000,
                    stateless: None,
                },
                GroupSpec {
                    name: "security".into(),
                    profile: Profile::Security,
                    count: 154,
                    first_port: 9346,
                    stateless: None,
                },
            ],
            health: HealthSpec::default(),
            server: ServerSpec::default(),
            http: HttpSpec::default(),
            memory: MemorySpec::default(),
        }
    }
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self {
            // 500 servers at one probe each per 2 s is ~250 healthz/s plus ~50 MCP round trips/s:
            // a few per cent of what the fleet serves, so probes barely disturb a measurement.
            interval: Duration::from_millis(2000),
            timeout: Duration::from_millis(1000),
            failures_to_unhealthy: 3,
            mcp_probe_every: 5,
        }
    }
}

impl Default for ServerSpec {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            session_idle: Duration::from_secs(60),
            max_work: Duration::from_secs(10),
            max_sessions: 4096,
            stateless: true,
            tool_deadline: Duration::from_secs(5),
            session_resident: Duration::from_secs(5),
        }
    }
}

/// What is wrong with a spec, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read fleet spec {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("fleet spec {path} is not valid")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid fleet spec: {0}")]
    Invalid(String),
}

impl FleetSpec {
    /// Reads and validates a TOML spec file.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let spec: Self = toml::from_str(&text).map_err(|source| SpecError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Scales the groups proportionally so they add up to `total` servers (largest remainder,
    /// every group keeps at least one server when `total` allows it).
    pub fn scaled_to(mut self, total: u32) -> Result<Self, SpecError> {
        if total == 0 || total > MAX_SERVERS {
            return Err(SpecError::Invalid(format!(
                "--servers is {total}; it must be 1 to {MAX_SERVERS}"
            )));
        }
        let current: u64 = self.groups.iter().map(|g| u64::from(g.count)).sum();
        if current == 0 {
            return Err(SpecError::Invalid("no servers to scale".into()));
        }
        let mut shares: Vec<(usize, u32, u64)> = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let exact = u64::from(g.count) * u64::from(total);
                (i, (exact / current) as u32, exact % current)
            })
            .collect();
        let assigned: u32 = shares.iter().map(|s| s.1).sum();
        shares.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        // Largest remainders first get the servers the floor division left over.
        let left_over = total.saturating_sub(assigned) as usize;
        for share in shares.iter_mut().take(left_over) {
            share.1 += 1;
        }
        for (i, count, _) in shares {
            self.groups[i].count = count;
        }
        self.groups.retain(|g| g.count > 0);
        self.validate()?;
        Ok(self)
    }

    /// Whether the gateway calls the servers in-process: they run in its process (task mode)
    /// and the configuration allows it.
    pub fn gateway_calls_in_process(&self) -> bool {
        self.isolation == Isolation::Task && self.gateway_in_process
    }

    /// Threads to serve the gateway on: as configured, or by default one per CPU when the
    /// gateway calls the servers in-process (their work for its calls then runs on its
    /// threads), else one per four CPUs (at least one), leaving most of the machine to the
    /// servers it fronts.
    pub fn gateway_threads(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.gateway_threads {
            0 if self.gateway_calls_in_process() => cpus,
            0 => (cpus / 4).max(1),
            n => n,
        }
    }

    /// Puts every group on ephemeral ports, and the admin API and the gateway on free ports.
    pub fn with_ephemeral_ports(mut self) -> Self {
        self.admin_port = 0;
        self.gateway_port = 0;
        for g in &mut self.groups {
            g.first_port = 0;
        }
        self
    }

    /// What the servers of `group` are given: `[server]`, with the group's own `stateless`.
    pub fn server_for(&self, group: &str) -> ServerSpec {
        let mut server = self.server.clone();
        if let Some(stateless) = self
            .groups
            .iter()
            .find(|g| g.name == group)
            .and_then(|g| g.stateless)
        {
            server.stateless = stateless;
        }
        server
    }

    /// Total number of servers.
    pub fn server_count(&self) -> usize {
        self.groups.iter().map(|g| g.count as usize).sum()
    }

    /// Checks what serde cannot: names, port ranges that fit and do not overlap, sane timings.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if self.groups.is_empty() {
            return bad("`groups` is empty: a fleet needs at least one group".into());
        }
        if self.gateway_threads > MAX_GATEWAY_THREADS {
            return bad(format!(
                "gateway_threads is {}; at most {MAX_GATEWAY_THREADS}",
                self.gateway_threads
            ));
        }
        let mut names = BTreeSet::new();
        let mut ports: Vec<(u32, u32, &str)> = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let valid_name = !g.name.is_empty()
                && g.name.len() <= 32
                && g.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                return bad(format!(
                    "groups[{i}].name `{}` must be 1-32 characters of [A-Za-z0-9_-]",
                    g.name
                ));
            }
            if !names.insert(g.name.as_str()) {
                return bad(format!("groups[{i}].name `{}` is used twice", g.name));
            }
            if g.count == 0 || g.count > MAX_GROUP_SIZE {
                return bad(format!(
                    "groups[{i}].count is {}; it must be 1 to {MAX_GROUP_SIZE}",
                    g.count
                ));
            }
            if g.first_port != 0 {
                let first = u32::from(g.first_port);
                // Checked: a count near u32::MAX must not wrap to a range that looks valid.
                let last = first
                    .checked_add(g.count - 1)
                    .filter(|last| *last <= u32::from(u16::MAX))
                    .ok_or_else(|| {
                        SpecError::Invalid(format!(
                            "groups[{i}] `{}`: {} ports from {first} run past 65535",
                            g.name, g.count
                        ))
                    })?;
                ports.push((first, last, &g.name));
            }
        }
        let total: u64 = self.groups.iter().map(|g| u64::from(g.count)).sum();
        if total > u64::from(MAX_SERVERS) {
            return bad(format!(
                "the groups add up to {total} servers; at most {MAX_SERVERS}"
            ));
        }
        ports.sort();
        for w in ports.windows(2) {
            if w[1].0 <= w[0].1 {
                return bad(format!(
                    "groups `{}` ({}..={}) and `{}` ({}..={}) overlap",
                    w[0].2, w[0].0, w[0].1, w[1].2, w[1].0, w[1].1
                ));
            }
        }
        if self.admin_port != 0
            && ports
                .iter()
                .any(|(a, b, _)| (*a..=*b).contains(&u32::from(self.admin_port)))
        {
            return bad(format!(
                "admin_port {} lies inside a group's port range",
                self.admin_port
            ));
        }
        if self.gateway_port != 0
            && ports
                .iter()
                .any(|(a, b, _)| (*a..=*b).contains(&u32::from(self.gateway_port)))
        {
            return bad(format!(
                "gateway_port {} lies inside a group's port range",
                self.gateway_port
            ));
        }
        if self.gateway_port != 0 && self.gateway_port == self.admin_port {
            return bad(format!(
                "gateway_port and admin_port are both {}",
                self.gateway_port
            ));
        }
        if self.health.interval < Duration::from_millis(50) {
            return bad("health.interval must be at least 50 ms".into());
        }
        if self.health.timeout.is_zero() || self.health.failures_to_unhealthy == 0 {
            return bad("health.timeout and health.failures_to_unhealthy must be positive".into());
        }
        if self.health.mcp_probe_every == 0 {
            return bad("health.mcp_probe_every must be at least 1".into());
        }
        if self.server.tool_deadline.is_zero() {
            return bad("server.tool_deadline must be more than 0".into());
        }
        if self.server.max_sessions == 0 {
            return bad("server.max_sessions must be at least 1".into());
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes must be at least 1024".into());
        }
        self.http.validate()?;
        self.memory.validate().map_err(SpecError::Invalid)
    }
}

pub(crate) use crate::timespan::millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reports_fleet() {
        let spec = FleetSpec::default();
        spec.validate().expect("default spec is valid");
        assert_eq!(spec.server_count(), 500);
        assert_eq!(spec.groups[0].count, 346);
        assert_eq!(spec.groups[1].first_port, 9346);
        assert_eq!(
            spec.groups[1].first_port as u32 + spec.groups[1].count - 1,
            9499
        );
    }

    #[test]
    fn empty_toml_is_default() {
        let spec: FleetSpec = toml::from_str("").expect("parses");
        assert_eq!(spec, FleetSpec::default());
    }

    #[test]
    fn scaling_keeps_proportions_and_total() {
        let spec = FleetSpec::default().scaled_to(20).expect("scales");
        assert_eq!(spec.server_count(), 20);
        assert_eq!(spec.groups[0].count, 14);
        assert_eq!(spec.groups[1].count, 6);
        let one = FleetSpec::default().scaled_to(1).expect("scales");
        assert_eq!(one.server_count(), 1);
        assert!(FleetSpec::default().scaled_to(0).is_err());
        let thousand = FleetSpec::default().scaled_to(1000).expect("fits");
        assert_eq!(thousand.groups[0].count, 692);
        let big = FleetSpec::default().scaled_to(2000);
        assert!(big.is_err(), "community would overlap security ports");
    }

    #[test]
    fn rejects_unknown_keys_and_overlaps() {
        let err = toml::from_str::<FleetSpec>("hots = \"127.0.0.1\"").unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
        let overlapping = r#"
            [[groups]]
            name = "a"
            profile = "community"
            count = 10
            first_port = 8000
            [[groups]]
            name = "b"
            profile = "security"
            count = 10
            first_port = 8005
        "#;
        let spec: FleetSpec = toml::from_str(overlapping).expect("parses");
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");
    }

    /// One group of `count` servers from `first_port`.
    fn one_group(count: u32, first_port: u16) -> FleetSpec {
        FleetSpec {
            groups: vec![GroupSpec {
                name: "g".into(),
                profile: Profile::Community,
                count,
                first_port,
                stateless: None,
            }],
            ..FleetSpec::default()
        }
    }

    /// A count near `u32::MAX` once wrapped `first_port + count - 1` into a range that looked
    /// valid, and the fleet then tried to allocate for four billion servers.
    #[test]
    fn counts_are_bounded_and_port_ranges_cannot_wrap() {
        for (count, first_port) in [(u32::MAX, 8000), (u32::MAX - 7000, 8000), (u32::MAX, 0)] {
            let err = one_group(count, first_port)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("groups[0]"), "{count}@{first_port}: {err}");
        }
        let err = one_group(MAX_GROUP_SIZE + 1, 0).validate().unwrap_err();
        assert!(err.to_string().contains("1 to 10000"), "{err}");
        one_group(MAX_GROUP_SIZE, 0)
            .validate()
            .expect("the limit itself is valid");
        let err = one_group(MAX_GROUP_SIZE, 60_000).validate().unwrap_err();
        assert!(err.to_string().contains("run past 65535"), "{err}");
        let toml = "[[groups]]\nname = \"g\"\nprofile = \"community\"\ncount = 4294967295\n\
                    first_port = 8000\n";
        let spec: FleetSpec = toml::from_str(toml).expect("parses");
        assert!(spec.validate().is_err(), "the issue's spec");
    }

    #[test]
    fn http_limits_are_bounded() {
        let spec: FleetSpec = toml::from_str("[http]\nidle_timeout = \"2m\"\n").expect("parses");
        assert_eq!(spec.http.idle_timeout, Duration::from_secs(120));
        assert_eq!(spec.http.max_connections, 4096);
        for (toml, field) in [
            ("max_connections = 0", "max_connections"),
            ("max_connections = 1000001", "max_connections"),
            ("header_read_timeout = 0", "header_read_timeout"),
            ("body_read_timeout = 5", "body_read_timeout"),
            ("idle_timeout = 90000000", "idle_timeout"),
        ] {
            let spec: FleetSpec = toml::from_str(&format!("[http]\n{toml}\n")).expect("parses");
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("http.{field}")), "{toml}: {err}");
        }
    }

    #[test]
    fn the_fleet_total_is_bounded() {
        let mut spec = one_group(MAX_GROUP_SIZE, 0);
        for name in ["h", "i"] {
            let mut g = spec.groups[0].clone();
            g.name = name.into();
            spec.groups.push(g);
        }
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("add up to 30000"), "{err}");
        // `--servers N` is refused before any arithmetic, whatever the spec's ports.
        for total in [u32::MAX, MAX_SERVERS + 1] {
            for base in [one_group(1, 8000), one_group(1, 0), FleetSpec::default()] {
                let err = base.scaled_to(total).unwrap_err().to_string();
                assert!(err.contains("--servers"), "{total}: {err}");
            }
        }
        let scaled = one_group(1, 0).scaled_to(MAX_GROUP_SIZE).expect("fits");
        assert_eq!(scaled.server_count(), MAX_GROUP_SIZE as usize);
        let err = one_group(1, 0).scaled_to(MAX_GROUP_SIZE + 1).unwrap_err();
        assert!(err.to_string().contains("groups[0].count"), "{err}");
    }

    #[test]
    fn parses_a_custom_spec() {
        let text = r#"
            isolation = "process"
            admin_port = 17900
            [health]
            interval = 250
            [[groups]]
            name = "edge"
            profile = "security"
            count = 3
            first_port = 0
            stateless = false
            [[groups]]
            name = "core"
            profile = "community"
            count = 1
            first_port = 0
        "#;
        let spec: FleetSpec = toml::from_str(text).expect("parses");
        spec.validate().expect("valid");
        assert!(
            !spec.server_for("edge").stateless,
            "the group's own setting"
        );
        assert!(spec.server_for("core").stateless, "[server]'s default");
        assert_eq!(spec.isolation, Isolation::Process);
        assert_eq!(spec.health.interval, Duration::from_millis(250));
        assert_eq!(spec.health.failures_to_unhealthy, 3);
        assert_eq!(spec.groups[0].profile, Profile::Security);
        let spans: FleetSpec =
            toml::from_str("[health]\ninterval = \"1s\"\ntimeout = \"500ms\"\n").expect("parses");
        assert_eq!(
            (spans.health.interval, spans.health.timeout),
            (Duration::from_secs(1), Duration::from_millis(500))
        );
        let err = toml::from_str::<FleetSpec>("[server]\nmax_work = \"10x\"").unwrap_err();
        assert!(err.to_string().contains("1m30s"), "{err}");
    }

    #[test]
    fn gateway_threads_are_automatic_or_bounded() {
        let auto = FleetSpec::default();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // In-process calls put the servers' work for the gateway on its threads.
        assert_eq!(auto.gateway_threads(), cpus);
        let over_http = FleetSpec {
            gateway_in_process: false,
            ..FleetSpec::default()
        };
        assert_eq!(over_http.gateway_threads(), (cpus / 4).max(1));
        let process = FleetSpec {
            isolation: Isolation::Process,
            ..FleetSpec::default()
        };
        assert_eq!(process.gateway_threads(), (cpus / 4).max(1));
        let two: FleetSpec = toml::from_str("gateway_threads = 2").expect("parses");
        two.validate().expect("valid");
        assert_eq!(two.gateway_threads(), 2);
        let many: FleetSpec = toml::from_str("gateway_threads = 100000").expect("parses");
        let err = many.validate().unwrap_err().to_string();
        assert!(err.contains("gateway_threads"), "{err}");
    }
}
