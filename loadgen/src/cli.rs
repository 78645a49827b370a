//! Command-line arguments, checked at parse time so a bad flag fails before anything starts.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::target::TargetSpec;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Measure the mcpfleet reference fleet and write a run file and an HTML report",
    long_about = "Measures MCP servers and checks the seed report's claims against the numbers.\n\n\
        With no arguments it starts the embedded reference fleet (500 MCP servers in this \
        process: 346 `community` on 127.0.0.1:8000-8345, 154 `security` on 9346-9499, admin API \
        on 7900), checks every server once with `tools/list` (the health sweep), then runs a \
        closed-loop latency test: --users workers, each with its own connection(s) and one \
        request in flight, calling a mix of tools (over the stateless 2026-07-28 protocol unless \
        --protocol says 2025-11-25) for --warmup + --duration seconds. It writes run.json and a self-contained report.html into \
        a new run folder and prints their paths.",
    after_help = "Examples:\n  cargo run --release -p loadgen\n  \
        loadgen --servers 50 --users 16 --duration 5\n  \
        loadgen --target http://127.0.0.1:8000/mcp http://127.0.0.1:8001/mcp"
)]
pub struct Args {
    /// Seconds to measure, after the warm-up.
    #[arg(long, default_value = "15", value_name = "SECS", value_parser = positive_secs)]
    pub duration: Duration,

    /// Concurrent users. Each has its own HTTP client and one request in flight; with fewer
    /// users than servers each user cycles through its share of the servers.
    #[arg(long, default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub users: u32,

    /// Seconds of load before measuring starts; requests started then are not recorded.
    #[arg(long, default_value = "2", value_name = "SECS", value_parser = secs)]
    pub warmup: Duration,

    /// Scale the embedded fleet to N servers (proportionally over its groups) [default: 500].
    /// Above 500 the default port ranges overlap: add --ephemeral-ports.
    #[arg(long, value_name = "N", conflicts_with = "targets",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub servers: Option<u32>,

    /// Let the kernel choose the embedded fleet's ports, e.g. to run beside `fleet up`.
    #[arg(long, conflicts_with = "targets")]
    pub ephemeral_ports: bool,

    /// Measure these instead of starting the fleet: MCP endpoint URLs
    /// (`http://127.0.0.1:8000/mcp`), port ranges (`127.0.0.1:8000-8345/mcp`) or a fleet admin
    /// API (`http://127.0.0.1:7900`, whose servers are discovered). Servers of an mcpfleet
    /// fleet found through its admin API get their profile's tool mix; others only `tools/list`.
    #[arg(long = "target", value_name = "TARGET", num_args = 1..)]
    pub targets: Vec<TargetSpec>,

    /// Per-request timeout in seconds; slower requests count as `timeout` errors.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = positive_secs)]
    pub timeout: Duration,

    /// Open model: send this many requests per second in total, each at a fixed intended time,
    /// and count latency from that time, so a stalled server shows in the tails (coordinated
    /// omission corrected). --users is then the most requests in flight. Without it: a closed
    /// loop, each user sending its next request when the previous one completed.
    #[arg(long, value_name = "REQ/S", value_parser = rate)]
    pub rate: Option<f64>,

    /// A tool to call instead of the built-in mix, for servers whose tools loadgen does not
    /// know: `NAME[@WEIGHT][:JSON-ARGS]`, e.g. `--tool 'search@3:{"query":"x"}' --tool ping_db`.
    /// Repeatable; weights default to 1. Every target gets this mix.
    #[arg(long = "tool", value_name = "NAME[@WEIGHT][:JSON]")]
    pub tools: Vec<crate::mix::ToolChoice>,

    /// MCP protocol era: `2026-07-28` (stateless, the default) or `2025-11-25` (each user
    /// initializes a session per server, sends `Mcp-Session-Id`, deletes it at the end, and
    /// re-initializes after a 404).
    #[arg(long, value_enum, default_value = "2026-07-28")]
    pub protocol: crate::mcp::Protocol,

    /// Claims to judge the run against (TOML, see ci/claims/seed-report.toml for the format)
    /// [default: the seed report's claims, built in].
    #[arg(long, value_name = "FILE")]
    pub claims: Option<PathBuf>,

    /// Directory for run.json and report.html
    /// [default: <cargo target dir>/mcpfleet-runs/<UTC timestamp>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{v} s is out of range (0 to 86400)"));
    }
    Ok(Duration::from_secs_f64(v))
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

fn positive_secs(s: &str) -> Result<Duration, String> {
    match secs(s)? {
        d if d.is_zero() => Err("must be more than 0 seconds".into()),
        d => Ok(d),
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
        for bad in [
            &["loadgen", "--duration", "0"][..],
            &["loadgen", "--users", "0"],
            &["loadgen", "--warmup", "-1"],
            &["loadgen", "--servers", "0"],
            &["loadgen", "--target", "https://example.invalid/mcp"],
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
}
