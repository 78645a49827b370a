//! The scenario's section of the run file: the tally turned into figures (summaries and
//! encoded histograms), and the outcome in one line.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::{
    cpu::CpuUse,
    fmt_micros,
    mcp::ErrorClass,
    runfile::{
        EncodedHistogram, HistogramError, LatencySummary, SyncCheck, SyncCleanup, SyncFigures,
        SyncHistograms, SyncHistory, SyncSecond, encode_histogram,
    },
};

#[cfg(test)]
use std::collections::BTreeMap;

#[cfg(test)]
use super::tally::{Baseline, Probe, probe_name};
use super::{
    load::WARMUP,
    tally::{SecondTally, Tally, millis},
};

/// What the figures are made of.
pub(super) struct FiguresInput {
    pub(super) tally: Tally,
    /// The run's probe tag.
    pub(super) tag: String,
    /// Servers taking part.
    pub(super) servers: usize,
    /// Nodes they belong to (0: not replicating).
    pub(super) nodes: usize,
    pub(super) rate_wps: f64,
    /// The measured window asked for.
    pub(super) duration: Duration,
    /// Connections opened during the load, beyond one per server.
    pub(super) connections_opened: u64,
    pub(super) isolation: Option<String>,
    pub(super) left_out: usize,
    pub(super) users: usize,
    pub(super) visible_wait: Duration,
    pub(super) measured: Duration,
    pub(super) check: SyncCheck,
    pub(super) history: Option<SyncHistory>,
    pub(super) cleanup: Option<SyncCleanup>,
    pub(super) cpu: Option<CpuUse>,
    /// When the load started, by the wall clock.
    pub(super) started_at: std::time::SystemTime,
}

impl FiguresInput {
    /// The run file's figures of the load, the check and what followed.
    pub(super) fn figures(self) -> anyhow::Result<SyncFigures> {
        let mut tally = self.tally;
        let measured_s = self.measured.as_secs_f64();
        let seconds = measured_s.ceil() as usize;
        if tally.seconds.len() < seconds {
            tally.seconds.resize_with(seconds, SecondTally::default);
        }
        let encoded = EncodedHistogram::of::<u64>;
        let quantile = |h: &Histogram<u32>, q| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        Ok(SyncFigures {
            tag: self.tag,
            isolation: self.isolation,
            servers: self.servers,
            nodes: self.nodes,
            servers_left_out: self.left_out,
            same_server: self.servers == 1,
            rate_wps: self.rate_wps,
            users: self.users,
            warmup_s: WARMUP.as_secs_f64(),
            duration_s: self.duration.as_secs_f64(),
            measured_s,
            achieved_wps: if measured_s > 0.0 {
                tally.writes as f64 / measured_s
            } else {
                0.0
            },
            visible_wait_ms: millis(self.visible_wait),
            writes: tally.writes,
            acked: tally.acked,
            failed: ErrorClass::ALL
                .iter()
                .map(|c| (*c, tally.failed.get(c).copied().unwrap_or(0)))
                .collect(),
            warmup_writes: tally.warmup_writes,
            warmup_acked: tally.warmup_acked,
            visible: tally.visible,
            visibility_failures: tally.visibility_failures.clone(),
            ack_us: LatencySummary::of(&tally.ack),
            ack_service_us: LatencySummary::of(&tally.ack_service),
            lag_us: LatencySummary::of(&tally.lag),
            server_lag_us: (!tally.server_lag.is_empty())
                .then(|| LatencySummary::of(&tally.server_lag)),
            server_lag_unknown: tally.server_lag_unknown,
            baseline_read_us: LatencySummary::of(&tally.baseline),
            baseline_failures: tally.baseline_failures,
            histograms: SyncHistograms {
                ack: encoded(&tally.ack)?,
                lag: encoded(&tally.lag)?,
                baseline_read: encoded(&tally.baseline)?,
                server_lag: if tally.server_lag.is_empty() {
                    None
                } else {
                    Some(encoded(&tally.server_lag)?)
                },
            },
            per_second: tally
                .seconds
                .iter()
                .map(|s| {
                    Ok(SyncSecond {
                        writes: s.writes,
                        acked: s.acked,
                        visibility_failures: s.visibility_failures,
                        ack_p50_us: quantile(&s.ack, 0.5),
                        ack_p99_us: quantile(&s.ack, 0.99),
                        lag_p50_us: quantile(&s.lag, 0.5),
                        lag_p99_us: quantile(&s.lag, 0.99),
                        ack_histogram: encode_histogram(&s.ack)?,
                    })
                })
                .collect::<Result<_, HistogramError>>()?,
            connections_opened: self.connections_opened,
            check: self.check,
            history: self.history,
            cleanup: self.cleanup,
            cpu: self.cpu,
            started_unix_ms: crate::runfile::unix_ms(self.started_at),
        })
    }
}

/// The outcome in one line, for the summary and the run file's `reason`.
pub fn summary(f: &SyncFigures) -> String {
    let failed: u64 = f.failed.values().sum();
    let invisible: u64 = f.visibility_failures.values().sum();
    let server = f.server_lag_us.map_or(String::new(), |l| {
        format!(
            "; by the servers' clocks p50 {} p99 {}",
            fmt_micros(l.p50),
            fmt_micros(l.p99)
        )
    });
    let check = &f.check;
    let lost = match &check.skipped {
        Some(why) => format!("final check skipped ({why})"),
        None if check.lost > 0 => format!(
            "LOST {} of {} acknowledged writes (read back on {} servers)",
            check.lost,
            check.acked,
            check.servers.len()
        ),
        None if !check.complete => format!(
            "final check incomplete ({} reads failed; none missing among the rest)",
            check.read_errors
        ),
        None => format!(
            "no loss: all {} acknowledged writes on each of {} servers",
            check.acked,
            check.servers.len()
        ),
    };
    format!(
        "{} writes in {:.1} s ({:.0}/s), {} acknowledged, {failed} failed; ack p50 {} p99 {}; \
         write-to-visible lag p50 {} p99 {} (baseline read p50 {} p99 {}){server}, {invisible} \
         not visible; {lost}",
        f.writes,
        f.measured_s,
        f.achieved_wps,
        f.acked,
        fmt_micros(f.ack_us.p50),
        fmt_micros(f.ack_us.p99),
        fmt_micros(f.lag_us.p50),
        fmt_micros(f.lag_us.p99),
        fmt_micros(f.baseline_read_us.p50),
        fmt_micros(f.baseline_read_us.p99),
    )
}

/// Figures as a run would give them, for the tests of the claims and the report.
#[cfg(test)]
pub(crate) fn example_figures(lags_us: &[u64], invisible: u64, lost: u64) -> SyncFigures {
    let mut tally = Tally::default();
    for (k, lag) in lags_us.iter().enumerate() {
        let probe = Probe {
            k: k as u64,
            version: Some(k as u64 + 1),
            writer: 0,
        };
        tally.acked(
            probe,
            Some(0),
            Duration::from_micros(900),
            Duration::from_micros(800),
        );
        tally.visible(
            Some(0),
            Duration::from_micros(*lag),
            None,
            Baseline::Read(Duration::from_micros(150)),
        );
    }
    for _ in 0..invisible {
        tally.not_visible(Some(0), "wait_timeout".into());
    }
    let acked = lags_us.len() as u64 + invisible;
    let check = SyncCheck {
        skipped: None,
        servers: vec!["community-0001".into(), "security-0001".into()],
        min_version: acked,
        node_versions: BTreeMap::new(),
        acked,
        complete: true,
        read_errors: 0,
        lost,
        lost_examples: (0..lost.min(3))
            .map(|k| probe_name("0a1b2c3d", k))
            .collect(),
        missing_by_server: BTreeMap::new(),
        duplicates: 0,
        seconds: 0.1,
    };
    let figures = FiguresInput {
        tally,
        tag: "0a1b2c3d".into(),
        servers: 4,
        nodes: 0,
        rate_wps: 1000.0,
        duration: Duration::from_secs(1),
        connections_opened: 0,
        isolation: Some("task".into()),
        left_out: 0,
        users: 64,
        visible_wait: Duration::from_secs(2),
        measured: Duration::from_secs(1),
        check,
        history: None,
        cleanup: None,
        cpu: None,
        started_at: std::time::SystemTime::UNIX_EPOCH,
    }
    .figures()
    .expect("figures");
    // The writes never visible count as acknowledged writes of the window (their acks were
    // not recorded), and no per-second detail.
    SyncFigures {
        achieved_wps: acked as f64,
        writes: acked,
        acked,
        per_second: vec![],
        ..figures
    }
}
