//! What a run measured, as the claims need it ([`Evidence`]), and each metric's value read from
//! it with a description in words, or why this run did not measure it. The sync scenario's
//! metrics are in [`super::sync_metrics`], the scale step's in [`super::scale_metrics`].

use crate::{
    fmt_micros,
    measure::HealthSweep,
    runfile::{
        CapacityResult, ChaosResult, Config, ConnectionsResult, FleetFacts, Results, RunFile,
        ScaleResult, SyncResult,
    },
};

use super::{
    scale_metrics::{scale_missing, scale_servers, scale_value},
    spec::Metric,
    sync_metrics::sync_value,
};

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
    pub scale: Option<&'a ScaleResult>,
}

impl<'a> Evidence<'a> {
    /// What `run` measured: the evidence a finished run (or a merge of shards) is judged on.
    pub fn of(run: &'a RunFile) -> Self {
        Self {
            config: &run.config,
            fleet: run.fleet.as_ref(),
            health: &run.health,
            latency: run.latency.as_ref(),
            connections: run.connections.as_ref(),
            capacity: run.capacity.as_ref(),
            sync: run.sync.as_ref(),
            chaos: run.chaos.as_ref(),
            scale: run.scale.as_ref(),
        }
    }
}

impl Evidence<'_> {
    /// The servers the sweep behind `metric` covered: what a claim's `min_servers` is checked
    /// against.
    pub(crate) fn servers_measured(&self, metric: Metric) -> usize {
        match metric {
            Metric::ScaleServersAnswered => scale_servers(self.scale, self.health),
            _ => self.health.servers,
        }
    }

    /// Why `metric` was measured on fewer servers than it could have been, when a step that
    /// grows the fleet was left out or could not run.
    pub(crate) fn too_few_why(&self, metric: Metric) -> Option<String> {
        match metric {
            Metric::ScaleServersAnswered => scale_missing(self.scale),
            _ => None,
        }
    }

    /// The metric's value with a human description, or why this run did not measure it.
    pub(crate) fn value(&self, metric: Metric) -> Result<(f64, String), String> {
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
                let sync = self.sync.ok_or_else(|| not_run("sync"))?;
                match (&sync.figures, sync.ran) {
                    (Some(f), true) => sync_value(metric, f),
                    _ => Err(format!("the sync scenario did not run: {}", sync.reason)),
                }
            }
            "chaos" => {
                let c = self.chaos.ok_or_else(|| not_run("chaos"))?;
                chaos_value(metric, c)
            }
            "scale" => scale_value(self.scale, h),
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
