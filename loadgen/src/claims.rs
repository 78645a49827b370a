//! Claims judged against what a run measured. Claims are data (`ci/claims/seed-report.toml`,
//! compiled in as the default; `--claims FILE` for your own): each names a [`Metric`], a
//! comparator and a bound. The rule: a claim whose metric this run did not measure (or measured
//! on too few servers) is `not_measured`, never `pass`, and every verdict names its criterion.

use std::{collections::BTreeSet, fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    fmt_micros,
    measure::HealthSweep,
    runfile::{
        CapacityResult, ChaosResult, Config, ConnectionsResult, FleetFacts, Results, SyncFigures,
        SyncResult,
    },
};

/// The seed report's claims, as shipped in `ci/claims/seed-report.toml`.
pub const SEED_REPORT_CLAIMS: &str = include_str!("../../ci/claims/seed-report.toml");

pub use reports::run::{Claim, Verdict};

/// What a run can measure. Units are in the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyMeanMs,
    LatencyP50Ms,
    LatencyP90Ms,
    LatencyP99Ms,
    LatencyP999Ms,
    LatencyMaxMs,
    /// Share of the latency run's requests that succeeded.
    SuccessPercent,
    /// Share of servers that answered the health sweep.
    AvailabilityPercent,
    /// Servers that answered the health sweep.
    ServersAnswered,
    ThroughputRps,
    /// Most open connections the embedded fleet's servers counted at once.
    OpenConnectionsMax,
    /// Connections held for a whole hold period (the `connections` scenario).
    ConnectionsHeld,
    /// Mean latency while those connections were held (the `connections` scenario).
    ConnectionsLatencyMeanMs,
    /// p99 latency while those connections were held (the `connections` scenario).
    ConnectionsLatencyP99Ms,
    /// Highest open-model rate whose p99 stayed within the bound (the `capacity` scenario).
    CapacityRps,
    /// Write-to-visible lag across servers (the `sync` scenario).
    SyncLagP99Ms,
    /// Acknowledged memory writes missing afterwards (the `sync` scenario).
    LostWrites,
    /// Seconds from a server's failure to healthy again, the slowest of the chaos scenario's
    /// kills and pauses.
    RecoveryS,
    /// Share of the chaos scenario's requests that succeeded while servers failed.
    ChaosSuccessPercent,
}

impl Metric {
    /// The scenario that measures this metric.
    pub fn scenario(self) -> &'static str {
        match self {
            Metric::LatencyMeanMs
            | Metric::LatencyP50Ms
            | Metric::LatencyP90Ms
            | Metric::LatencyP99Ms
            | Metric::LatencyP999Ms
            | Metric::LatencyMaxMs
            | Metric::SuccessPercent
            | Metric::ThroughputRps
            | Metric::OpenConnectionsMax => "latency",
            Metric::AvailabilityPercent | Metric::ServersAnswered => "health",
            Metric::ConnectionsHeld
            | Metric::ConnectionsLatencyMeanMs
            | Metric::ConnectionsLatencyP99Ms => "connections",
            Metric::CapacityRps => "capacity",
            Metric::SyncLagP99Ms | Metric::LostWrites => "sync",
            Metric::RecoveryS | Metric::ChaosSuccessPercent => "chaos",
        }
    }

    fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "==")]
    Eq,
}

impl Comparator {
    fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparator::Le => value <= target,
            Comparator::Lt => value < target,
            Comparator::Ge => value >= target,
            Comparator::Gt => value > target,
            Comparator::Eq => (value - target).abs() < 1e-9,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparator::Le => "<=",
            Comparator::Lt => "<",
            Comparator::Ge => ">=",
            Comparator::Gt => ">",
            Comparator::Eq => "==",
        }
    }
}

/// One claim as written in a claims file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    pub id: String,
    pub title: String,
    pub quote: String,
    pub metric: Metric,
    pub comparator: Comparator,
    pub target: f64,
    /// The scenario that measures the metric; checked against it, so a claims file says
    /// which scenario each claim needs.
    #[serde(default)]
    pub scenario: Option<String>,
    /// A run that measured fewer servers says nothing about the claim.
    #[serde(default)]
    pub min_servers: Option<usize>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    claims: Vec<ClaimSpec>,
}

/// A claims file that cannot be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("cannot read claims file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("claims file {path} is not valid")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("claims file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Parses and validates claims; `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<ClaimSpec>, ClaimsError> {
    let file: ClaimsFile = toml::from_str(text).map_err(|source| ClaimsError::Parse {
        path: origin.to_string(),
        source: Box::new(source),
    })?;
    let invalid = |message: String| ClaimsError::Invalid {
        path: origin.to_string(),
        message,
    };
    if file.claims.is_empty() {
        return Err(invalid("it has no [[claims]]".into()));
    }
    let mut ids = BTreeSet::new();
    for (i, c) in file.claims.iter().enumerate() {
        let id_ok = !c.id.is_empty()
            && c.id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !id_ok {
            return Err(invalid(format!(
                "claims[{i}].id `{}` must be non-empty [a-z0-9_]",
                c.id
            )));
        }
        if !ids.insert(c.id.as_str()) {
            return Err(invalid(format!("claims[{i}].id `{}` is used twice", c.id)));
        }
        if !c.target.is_finite() {
            return Err(invalid(format!(
                "claims[{i}].target must be a finite number"
            )));
        }
        if c.title.trim().is_empty() {
            return Err(invalid(format!("claims[{i}].title is empty")));
        }
        if let Some(scenario) = &c.scenario
            && scenario != c.metric.scenario()
        {
            return Err(invalid(format!(
                "claims[{i}].scenario `{scenario}`: metric {} is measured by the `{}` scenario",
                c.metric.name(),
                c.metric.scenario()
            )));
        }
    }
    Ok(file.claims)
}

/// Reads claims from a file, or the compiled-in seed report's claims.
pub fn load(path: Option<&Path>) -> Result<Vec<ClaimSpec>, ClaimsError> {
    match path {
        None => parse(SEED_REPORT_CLAIMS, "ci/claims/seed-report.toml (built in)"),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ClaimsError::Read {
                path: path.display().to_string(),
                source,
            })?;
            parse(&text, &path.display().to_string())
        }
    }
}

/// The bound of the first latency claim with `<=` or `<`, in ms: what "the claimed latency"
/// means for the capacity search.
pub fn latency_bound_ms(specs: &[ClaimSpec]) -> Option<f64> {
    specs
        .iter()
        .find(|c| {
            c.metric.scenario() == "latency"
                && c.metric.name().starts_with("latency_")
                && matches!(c.comparator, Comparator::Le | Comparator::Lt)
        })
        .map(|c| c.target)
}

/// What a run measured, as the claims need it.
pub struct Evidence<'a> {
    pub config: &'a Config,
    pub fleet: Option<&'a FleetFacts>,
    pub health: &'a HealthSweep,
    pub latency: Option<&'a Results>,
    pub connections: Option<&'a ConnectionsResult>,
    pub capacity: Option<&'a CapacityResult>,
    pub sync: Option<&'a SyncResult>,
    pub chaos: Option<&'a ChaosResult>,
}

impl Evidence<'_> {
    /// The metric's value with a human description, or why this run did not measure it.
    fn value(&self, metric: Metric) -> Result<(f64, String), String> {
        let not_run = |scenario: &str| {
            format!("needs the `{scenario}` scenario, which this run did not include")
        };
        let h = self.health;
        let sweep = || -> Result<(), String> {
            if h.interrupted || h.servers == 0 {
                Err("the health sweep did not finish".into())
            } else {
                Ok(())
            }
        };
        match metric.scenario() {
            "latency" => {
                let r = self.latency.ok_or_else(|| not_run("latency"))?;
                self.latency_value(metric, r)
            }
            "health" => {
                sweep()?;
                if metric == Metric::AvailabilityPercent {
                    let p = h.ok as f64 * 100.0 / h.servers as f64;
                    Ok((
                        p,
                        format!("{}/{} servers answered the sweep", h.ok, h.servers),
                    ))
                } else {
                    Ok((
                        h.ok as f64,
                        format!("{}/{} servers answered", h.ok, h.servers),
                    ))
                }
            }
            "connections" => {
                let c = self.connections.ok_or_else(|| not_run("connections"))?;
                connections_value(metric, c)
            }
            "capacity" => {
                let c = self.capacity.ok_or_else(|| not_run("capacity"))?;
                let best = c.best_rps.unwrap_or(0.0);
                Ok((
                    best,
                    format!(
                        "{best:.0} req/s with p99 <= {} ({} steps)",
                        fmt_micros(c.p99_bound_us),
                        c.steps.len()
                    ),
                ))
            }
            "sync" => {
                let s = self.sync.ok_or_else(|| not_run("sync"))?;
                match (&s.figures, s.ran) {
                    (Some(f), true) => sync_value(metric, f),
                    _ => Err(format!("the sync scenario did not run: {}", s.reason)),
                }
            }
            "chaos" => {
                let c = self.chaos.ok_or_else(|| not_run("chaos"))?;
                chaos_value(metric, c)
            }
            other => Err(format!(
                "needs the `{other}` scenario, which this version of loadgen does not run yet"
            )),
        }
    }

    /// Metrics of the latency scenario.
    fn latency_value(&self, metric: Metric, r: &Results) -> Result<(f64, String), String> {
        let ms = |us: f64| us / 1000.0;
        let latency = |us: f64, what: &str| -> Result<(f64, String), String> {
            if r.ok == 0 {
                return Err("the latency run had no successful request".into());
            }
            let l = &r.latency_us;
            let context = [
                ("mean", l.mean.round() as u64),
                ("p50", l.p50),
                ("p99", l.p99),
            ]
            .into_iter()
            .filter(|(name, _)| *name != what)
            .map(|(name, v)| format!("{name} {}", fmt_micros(v)))
            .collect::<Vec<_>>()
            .join(", ");
            Ok((
                ms(us),
                format!(
                    "{what} {} ({context}) over {} requests at {} users",
                    fmt_micros(us.round() as u64),
                    l.count,
                    self.config.users
                ),
            ))
        };
        let l = &r.latency_us;
        match metric {
            Metric::LatencyMeanMs => latency(l.mean, "mean"),
            Metric::LatencyP50Ms => latency(l.p50 as f64, "p50"),
            Metric::LatencyP90Ms => latency(l.p90 as f64, "p90"),
            Metric::LatencyP99Ms => latency(l.p99 as f64, "p99"),
            Metric::LatencyP999Ms => latency(l.p99_9 as f64, "p99.9"),
            Metric::LatencyMaxMs => latency(l.max as f64, "max"),
            Metric::SuccessPercent => {
                let p = r
                    .success_percent()
                    .ok_or("the latency run measured no requests")?;
                Ok((p, format!("{p:.3} % of {} requests succeeded", r.requests)))
            }
            Metric::ThroughputRps => {
                if r.requests == 0 {
                    return Err("the latency run measured no requests".into());
                }
                Ok((
                    r.throughput_rps,
                    format!(
                        "{:.0} req/s at {} users",
                        r.throughput_rps, self.config.users
                    ),
                ))
            }
            Metric::OpenConnectionsMax => {
                let n = self
                    .fleet
                    .and_then(|f| f.open_connections_max)
                    .ok_or("only an embedded fleet reports its open connections")?;
                Ok((n as f64, format!("at most {n} open connections")))
            }
            other => Err(format!("{} is not a latency metric", other.name())),
        }
    }
}

/// Metrics of the chaos scenario.
fn chaos_value(metric: Metric, c: &ChaosResult) -> Result<(f64, String), String> {
    let r = &c.results;
    let via = if c.through_gateway {
        "through the gateway"
    } else {
        "to the servers directly"
    };
    if metric == Metric::ChaosSuccessPercent {
        let p = r
            .success_percent()
            .ok_or("the chaos load measured no requests")?;
        return Ok((
            p,
            format!(
                "{p:.3} % of {} requests {via} succeeded during {} faults ({})",
                r.requests,
                c.faults.len(),
                c.specs.join(", ")
            ),
        ));
    }
    let n = c.recoverable().count();
    if n == 0 {
        return Err(
            "no fault needed the fleet to recover (no kill, no pause long enough for \
                    its health checks to notice)"
                .into(),
        );
    }
    let (slowest, never) = c.recovery();
    if never > 0 {
        let waited = c.recovery_wait_ms as f64 / 1000.0;
        return Ok((
            waited,
            format!("{never} of {n} servers were not healthy again within {waited:.1} s"),
        ));
    }
    let slowest = slowest.unwrap_or(0);
    Ok((
        slowest as f64 / 1000.0,
        format!(
            "all {n} servers healthy again, the slowest {} after its fault ({} isolation)",
            fmt_micros(slowest * 1000),
            c.isolation.as_deref().unwrap_or("unknown")
        ),
    ))
}

/// Metrics of the connections scenario.
fn connections_value(metric: Metric, c: &ConnectionsResult) -> Result<(f64, String), String> {
    let held = c
        .held()
        .ok_or("neither the client's sockets (/proc) nor the servers' counts were readable")?;
    if metric == Metric::ConnectionsHeld {
        return Ok((
            held as f64,
            format!(
                "{held} of {} connections held for {:.0} s (client sockets {}, servers {}), {} \
                 errors",
                c.asked,
                c.results.measured_s,
                c.held_min_client.map_or("?".into(), |n| n.to_string()),
                c.held_min_server.map_or("-".into(), |n| n.to_string()),
                c.results.requests - c.results.ok
            ),
        ));
    }
    let l = &c.results.latency_us;
    if c.results.ok == 0 {
        return Err("no request succeeded while the connections were held".into());
    }
    let (value, what) = if metric == Metric::ConnectionsLatencyMeanMs {
        (l.mean, "mean")
    } else {
        (l.p99 as f64, "p99")
    };
    Ok((
        value / 1000.0,
        format!(
            "{what} {} over {} requests with {held} connections open",
            fmt_micros(value.round() as u64),
            l.count,
        ),
    ))
}

/// Share of acknowledged writes that may fail to become visible before the lag's p99 is
/// beyond any measured value.
const SYNC_P99: f64 = 0.99;

/// Metrics of the sync scenario.
fn sync_value(metric: Metric, f: &SyncFigures) -> Result<(f64, String), String> {
    let isolation = f
        .isolation
        .as_deref()
        .map_or(String::new(), |i| format!(", {i} isolation"));
    match metric {
        Metric::SyncLagP99Ms => {
            let invisible: u64 = f.visibility_failures.values().sum();
            let read_back = f.visible + invisible;
            if read_back == 0 {
                return Err("no acknowledged write of the measured window was read back".into());
            }
            let pairs = if f.same_server {
                "on the same server (only one server)"
            } else {
                "on another server"
            };
            let context = format!(
                "over {read_back} writes at {:.0} writes/s on {} servers{isolation}; the lag \
                 includes one read round trip (baseline read p50 {}, p99 {})",
                f.achieved_wps,
                f.servers,
                fmt_micros(f.baseline_read_us.p50),
                fmt_micros(f.baseline_read_us.p99),
            );
            // A write that never became visible has a lag beyond any measured one: the p99
            // of all writes read back is the lag histogram's quantile that leaves room for
            // them above it.
            let q = SYNC_P99 * read_back as f64 / f.visible.max(1) as f64;
            if invisible > 0 && (f.visible == 0 || q > 1.0) {
                return Ok((
                    f64::INFINITY,
                    format!(
                        "p99 not reached: {invisible} of {read_back} acknowledged writes did not \
                         become visible {pairs} within {} ms ({context})",
                        f.visible_wait_ms
                    ),
                ));
            }
            let p99_us = if invisible == 0 {
                f.lag_us.p99
            } else {
                crate::runfile::decode_histogram(&f.histograms.lag.data)
                    .map_err(|e| format!("the lag histogram: {e:#}"))?
                    .value_at_quantile(q)
            };
            let failures = if invisible > 0 {
                format!(", counting {invisible} writes never visible as slower than all")
            } else {
                String::new()
            };
            Ok((
                p99_us as f64 / 1000.0,
                format!(
                    "p99 {} (p50 {}, max {}) from the ack on one server to visible {pairs}{failures} \
                     {context}",
                    fmt_micros(p99_us),
                    fmt_micros(f.lag_us.p50),
                    fmt_micros(f.lag_us.max),
                ),
            ))
        }
        Metric::LostWrites => {
            let c = &f.check;
            if let Some(why) = &c.skipped {
                return Err(format!("the final check did not run: {why}"));
            }
            let servers = c.servers.len();
            if c.lost > 0 {
                return Ok((
                    c.lost as f64,
                    format!(
                        "{} of {} acknowledged writes missing on at least one of {servers} \
                         servers (e.g. {})",
                        c.lost,
                        c.acked,
                        c.lost_examples.join(", ")
                    ),
                ));
            }
            if !c.complete {
                return Err(format!(
                    "the final check was incomplete: {} reads failed (none missing among the \
                     {} acknowledged writes on the reads that answered)",
                    c.read_errors, c.acked
                ));
            }
            let failed: u64 = f.failed.values().sum();
            Ok((
                0.0,
                format!(
                    "0 of {} acknowledged writes missing on each of {servers} servers read back \
                     at version >= {}{isolation} ({failed} writes failed and were not \
                     acknowledged)",
                    c.acked, c.min_version
                ),
            ))
        }
        other => Err(format!("{} is not a sync metric", other.name())),
    }
}

/// Judges every claim against the evidence.
pub fn evaluate(specs: &[ClaimSpec], e: &Evidence) -> Vec<Claim> {
    specs.iter().map(|spec| judge(spec, e)).collect()
}

fn judge(spec: &ClaimSpec, e: &Evidence) -> Claim {
    let mut claim = Claim {
        id: spec.id.clone(),
        title: spec.title.clone(),
        quote: spec.quote.clone(),
        verdict: Verdict::NotMeasured,
        measured: None,
        criterion: format!(
            "{} {} {}",
            spec.metric.name(),
            spec.comparator.symbol(),
            spec.target
        ),
        note: spec.note.clone(),
    };
    let mut notes = Vec::new();
    if let Some(min) = spec.min_servers
        && e.health.servers < min
    {
        notes.push(format!(
            "this run measured {} servers; the claim needs at least {min}",
            e.health.servers
        ));
    } else {
        match e.value(spec.metric) {
            Ok((value, measured)) => {
                claim.verdict = if spec.comparator.holds(value, spec.target) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                claim.measured = Some(measured);
                if matches!(
                    spec.metric,
                    Metric::LatencyMeanMs
                        | Metric::LatencyP50Ms
                        | Metric::LatencyP90Ms
                        | Metric::LatencyP99Ms
                        | Metric::LatencyP999Ms
                        | Metric::LatencyMaxMs
                ) {
                    notes.push(format!(
                        "Latency depends on the load: a closed loop of {} users with one request \
                         in flight each has mean ~ users / throughput (Little's law); here {:.0} \
                         req/s.{}",
                        e.config.users,
                        e.latency.map_or(0.0, |l| l.throughput_rps),
                        match (e.fleet, e.latency.and_then(|l| l.cpu)) {
                            (Some(_), Some(cpu)) => format!(
                                " The embedded fleet and the load generator share this \
                                 machine's CPUs ({:.0} % busy; the generator used {:.0} % of \
                                 the machine).",
                                cpu.machine_busy_percent, cpu.generator_percent_of_machine
                            ),
                            (Some(_), None) => " The embedded fleet and the load generator \
                                                share this machine's CPUs."
                                .to_string(),
                            _ => String::new(),
                        }
                    ));
                }
            }
            Err(why) => notes.push(why),
        }
    }
    for n in notes {
        if !claim.note.is_empty() {
            claim.note.push(' ');
        }
        claim.note.push_str(&n);
    }
    claim
}

/// The verdict table printed at the end of a run.
pub fn text_table(claims: &[Claim]) -> String {
    let width = claims
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<13} {:<width$} MEASURED", "VERDICT", "CLAIM");
    for c in claims {
        let _ = writeln!(
            out,
            "{:<13} {:<width$} {}",
            c.verdict.label(),
            c.title,
            c.measured.as_deref().unwrap_or("-")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use std::collections::BTreeMap;

    use super::*;
    use crate::{mcp::ErrorClass, recorder::Recorder};

    fn config(users: usize) -> Config {
        Config {
            mode: "embedded".into(),
            servers: 500,
            users,
            warmup_s: 0.0,
            duration_s: 1.0,
            timeout_s: 1.0,
            ephemeral_ports: false,
            targets: vec![],
            scenarios: vec!["latency".into()],
            protocol: "auto".into(),
            protocol_version: "2026-07-28".into(),
            load_model: String::new(),
            mix: vec![],
        }
    }

    fn sweep(servers: usize, ok: usize) -> HealthSweep {
        HealthSweep {
            servers,
            checked: servers,
            ok,
            availability: ok as f64 / servers as f64,
            seconds: 0.1,
            interrupted: false,
            failures: vec![],
            protocols: BTreeMap::new(),
        }
    }

    fn verdicts(health: &HealthSweep, recorder: &Recorder) -> Vec<(String, Verdict)> {
        let results = crate::runfile::results(recorder, 1.0).unwrap();
        let config = config(64);
        let e = Evidence {
            config: &config,
            fleet: None,
            health,
            latency: Some(&results),
            connections: None,
            capacity: None,
            sync: None,
            chaos: None,
        };
        let specs = load(None).expect("the shipped claims parse");
        evaluate(&specs, &e)
            .into_iter()
            .map(|c| (c.id, c.verdict))
            .collect()
    }

    fn verdict(v: &[(String, Verdict)], id: &str) -> Verdict {
        v.iter().find(|c| c.0 == id).expect(id).1
    }

    #[test]
    fn verdicts_follow_the_evidence() {
        let mut fast = Recorder::default();
        fast.record(0, Duration::from_millis(2), Ok(()));
        let v = verdicts(&sweep(500, 500), &fast);
        for id in [
            "average_response_21ms",
            "availability_100",
            "success_rate_100",
            "servers_500",
        ] {
            assert_eq!(verdict(&v, id), Verdict::Pass, "{id}");
        }
        for id in [
            "scale_1000_servers",
            "connections_1000",
            "git_memory_sync",
            "recovery_uptime",
        ] {
            assert_eq!(verdict(&v, id), Verdict::NotMeasured, "{id}");
        }

        let mut slow = Recorder::default();
        slow.record(0, Duration::from_millis(40), Ok(()));
        slow.record(0, Duration::from_millis(1), Err(ErrorClass::Timeout));
        let v = verdicts(&sweep(500, 499), &slow);
        for id in [
            "average_response_21ms",
            "availability_100",
            "success_rate_100",
            "servers_500",
        ] {
            assert_eq!(verdict(&v, id), Verdict::Fail, "{id}");
        }

        let v = verdicts(&sweep(10, 10), &fast);
        assert_eq!(
            verdict(&v, "servers_500"),
            Verdict::NotMeasured,
            "a 10-server fleet says nothing about 500"
        );
        let v = verdicts(&sweep(10, 10), &Recorder::default());
        assert_eq!(verdict(&v, "average_response_21ms"), Verdict::NotMeasured);
        assert_eq!(verdict(&v, "success_rate_100"), Verdict::NotMeasured);
    }

    fn chaos_run(errors: u64, recovered: &[Option<u64>]) -> ChaosResult {
        let mut r = Recorder::default();
        for _ in 0..10_000 {
            r.record(0, Duration::from_millis(2), Ok(()));
        }
        for _ in 0..errors {
            r.record(0, Duration::from_millis(2), Err(ErrorClass::Connect));
        }
        let fault = |recovered_ms: Option<u64>| crate::runfile::FaultRecord {
            server: "community-0001".into(),
            action: "kill".into(),
            at_ms: 10,
            at_unix_ms: 1,
            lasted_ms: None,
            fleet_detect_ms: Some(1),
            gateway_detect_ms: Some(1),
            recovered_ms,
            error: None,
        };
        ChaosResult {
            specs: vec!["kill:10%".into()],
            load_target: "http://127.0.0.1:7999/mcp".into(),
            through_gateway: true,
            isolation: Some("process".into()),
            servers: 10,
            faults: recovered.iter().map(|r| fault(*r)).collect(),
            recovery_wait_ms: 15_000,
            results: crate::runfile::results(&r, 10.0).unwrap(),
        }
    }

    #[test]
    fn chaos_claims_judge_recovery_and_success_under_faults() {
        let config = config(64);
        let health = sweep(10, 10);
        let judge = |c: &ChaosResult| {
            let e = Evidence {
                config: &config,
                fleet: None,
                health: &health,
                latency: None,
                connections: None,
                capacity: None,
                sync: None,
                chaos: Some(c),
            };
            let specs = load(None).expect("the shipped claims parse");
            evaluate(&specs, &e)
                .into_iter()
                .map(|c| (c.id, c.verdict))
                .collect::<Vec<_>>()
        };
        let good = judge(&chaos_run(5, &[Some(300), Some(1_900)]));
        assert_eq!(verdict(&good, "recovery_uptime"), Verdict::Pass);
        assert_eq!(verdict(&good, "uptime_999_failover"), Verdict::Pass);
        let slow = judge(&chaos_run(5, &[Some(300), Some(2_100)]));
        assert_eq!(verdict(&slow, "recovery_uptime"), Verdict::Fail);
        let never = judge(&chaos_run(5, &[Some(300), None]));
        assert_eq!(verdict(&never, "recovery_uptime"), Verdict::Fail);
        let failing = judge(&chaos_run(11, &[Some(300)]));
        assert_eq!(verdict(&failing, "uptime_999_failover"), Verdict::Fail);
        let none = judge(&chaos_run(0, &[]));
        assert_eq!(verdict(&none, "recovery_uptime"), Verdict::NotMeasured);
    }

    #[test]
    fn claims_files_are_validated_with_the_file_named() {
        let bad = |text: &str, expect: &str| {
            let err = parse(text, "mine.toml").expect_err(text);
            let msg = format!(
                "{err}: {}",
                std::error::Error::source(&err).map_or(String::new(), |s| s.to_string())
            );
            assert!(msg.contains("mine.toml") && msg.contains(expect), "{msg}");
        };
        let ok = "[[claims]]\nid = \"a\"\ntitle = \"A\"\nquote = \"q\"\nmetric = \"latency_p99_ms\"\ncomparator = \"<\"\ntarget = 5\n";
        assert_eq!(parse(ok, "mine.toml").expect("valid").len(), 1);
        bad(
            &ok.replace("latency_p99_ms", "latency_p42_ms"),
            "latency_p42_ms",
        );
        bad(&ok.replace("\"<\"", "\"=<\""), "=<");
        bad(&format!("{ok}colour = \"red\"\n"), "colour");
        bad(&format!("{ok}{ok}"), "used twice");
        bad("claims = []", "no [[claims]]");
        bad(&ok.replace("id = \"a\"", "id = \"A b\""), "[a-z0-9_]");
        let missing = load(Some(Path::new("/nonexistent/claims.toml"))).expect_err("missing");
        assert!(missing.to_string().contains("/nonexistent/claims.toml"));
    }

    fn sync_verdicts(sync: &SyncResult) -> Vec<Claim> {
        let config = config(64);
        let health = sweep(4, 4);
        let specs = load(None).expect("the shipped claims parse");
        evaluate(
            &specs,
            &Evidence {
                config: &config,
                fleet: None,
                health: &health,
                latency: None,
                connections: None,
                capacity: None,
                sync: Some(sync),
                chaos: None,
            },
        )
        .into_iter()
        .filter(|c| c.id == "git_memory_sync" || c.id == "memory_no_lost_writes")
        .collect()
    }

    fn ran(figures: SyncFigures) -> SyncResult {
        SyncResult {
            available: true,
            ran: true,
            reason: crate::scenario::sync::figures::summary(&figures),
            figures: Some(figures),
        }
    }

    #[test]
    fn sync_claims_judge_lag_and_lost_writes() {
        use crate::scenario::sync::figures::example_figures;
        // 100 writes visible within 1-3 ms, nothing lost: both pass.
        let fast: Vec<u64> = (0..100).map(|i| 1_000 + i * 20).collect();
        let v = sync_verdicts(&ran(example_figures(&fast, 0, 0)));
        assert_eq!(v[0].verdict, Verdict::Pass, "{:?}", v[0]);
        assert!(v[0].measured.as_deref().unwrap().contains("baseline read"));
        assert_eq!(v[1].verdict, Verdict::Pass, "{:?}", v[1]);
        assert!(v[1].measured.as_deref().unwrap().starts_with("0 of 100"));

        // A lost write fails the claim, whatever the lag.
        let v = sync_verdicts(&ran(example_figures(&fast, 0, 1)));
        assert_eq!(v[1].verdict, Verdict::Fail);
        assert!(
            v[1].measured
                .as_deref()
                .unwrap()
                .contains("sync-0a1b2c3d-0")
        );

        // Writes never visible count as slower than all: 2 of 100 push p99 past every lag.
        let v = sync_verdicts(&ran(example_figures(&fast[..98], 2, 0)));
        assert_eq!(v[0].verdict, Verdict::Fail, "{:?}", v[0]);
        assert!(
            v[0].measured
                .as_deref()
                .unwrap()
                .starts_with("p99 not reached")
        );
        // One of 1000 does not: p99 is then a measured lag, the failure named.
        let many: Vec<u64> = (0..999).map(|i| 1_000 + i).collect();
        let v = sync_verdicts(&ran(example_figures(&many, 1, 0)));
        assert_eq!(v[0].verdict, Verdict::Pass, "{:?}", v[0]);
        assert!(v[0].measured.as_deref().unwrap().contains("never visible"));

        // An incomplete check gives no verdict on lost writes (but a loss it saw fails).
        let mut figures = example_figures(&fast, 0, 0);
        figures.check.complete = false;
        figures.check.read_errors = 1;
        let v = sync_verdicts(&ran(figures));
        assert_eq!(v[1].verdict, Verdict::NotMeasured);
        assert!(v[1].note.contains("incomplete"), "{}", v[1].note);

        // Not run: both not measured, with the reason.
        let not_run = SyncResult {
            available: false,
            ran: false,
            reason: "the target x lacks the memory tools".into(),
            figures: None,
        };
        for c in sync_verdicts(&not_run) {
            assert_eq!(c.verdict, Verdict::NotMeasured);
            assert!(c.note.contains("lacks the memory tools"), "{}", c.note);
        }
    }

    #[test]
    fn own_claims_judge_throughput() {
        let specs = parse(
            "[[claims]]\nid = \"rps\"\ntitle = \"Fast\"\nquote = \"q\"\nmetric = \"throughput_rps\"\ncomparator = \">=\"\ntarget = 0.5\n",
            "mine.toml",
        )
        .expect("valid");
        let mut r = Recorder::default();
        r.record(0, Duration::from_millis(2), Ok(()));
        let results = crate::runfile::results(&r, 1.0).unwrap();
        let config = config(1);
        let health = sweep(1, 1);
        let claims = evaluate(
            &specs,
            &Evidence {
                config: &config,
                fleet: None,
                health: &health,
                latency: Some(&results),
                connections: None,
                capacity: None,
                sync: None,
                chaos: None,
            },
        );
        assert_eq!(claims[0].verdict, Verdict::Pass);
        assert_eq!(claims[0].criterion, "throughput_rps >= 0.5");
    }
}
