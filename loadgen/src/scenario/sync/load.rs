//! The write/read load (open model): `--sync-rate` writes per second, each a `create_entities`
//! on a random server A, then an `open_nodes` with `minVersion` on a server B != A and, for every
//! `BASELINE_EVERY`th write, the same read without it (the baseline), tallied per second.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{fmt_micros, lock::lock};

use super::{
    memory::{Seen, payload, seen, version_of},
    pool::Pool,
    tally::{Baseline, Probe, Tally, probe_name},
};

/// Most writes in flight: the open model's users (as the capacity scenario's).
pub(super) const USERS: usize = 256;

/// Writes before the measured window: checked for loss, not in the latencies.
pub(super) const WARMUP: Duration = Duration::from_secs(1);

/// How long before its due time a user wakes (tokio's timer lands up to ~2 ms late; see
/// `attack::EARLY_WAKE`). A write sent early counts its service time, never less.
pub(super) const EARLY_WAKE: Duration = Duration::from_millis(2);

/// One write in this many also takes a baseline read. The baseline is a reference for the
/// read's own round trip, not part of the claim; a read after every write added half again to
/// the load (three calls a write instead of two) and, with 500 server processes on 2 cores,
/// the queueing that extra load caused showed in the very tail being judged. One in four still
/// gives 1250 baseline reads in a default 5 s run.
pub(super) const BASELINE_EVERY: u64 = 4;

/// The type of every probe entity.
pub(super) const PROBE_TYPE: &str = "sync-probe";

/// Runs the users until the end of the window (or the stop), printing a line a second.
pub(super) async fn load(write_load: &Arc<WriteLoad>, users: usize) -> anyhow::Result<()> {
    let workers: Vec<_> = (0..users)
        .map(|w| tokio::spawn(user(write_load.clone(), w as u64)))
        .collect();
    let all = futures::future::join_all(workers);
    tokio::pin!(all);
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at((write_load.start + second).into(), second);
    let mut ticker_line = crate::verbosity::TickerLine::on_stderr();
    let mut last = 0;
    let joined = loop {
        tokio::select! {
            joined = &mut all => break joined,
            _ = ticker.tick() => {
                let (line, done) = progress_line(write_load, last);
                last = done;
                ticker_line.show(&line);
            }
        }
    };
    ticker_line.finish();
    for j in joined {
        j.map_err(|e| anyhow::anyhow!("a user of the sync scenario failed: {e}"))?;
    }
    Ok(())
}

/// One user: takes the next write of the timetable, waits until it is due, makes it.
pub(super) async fn user(write_load: Arc<WriteLoad>, w: u64) {
    let mut rng = fastrand::Rng::with_seed(
        w.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ write_load.start.elapsed().as_nanos() as u64,
    );
    loop {
        let k = write_load.next.fetch_add(1, Ordering::Relaxed);
        let due = write_load.start + Duration::from_secs_f64(k as f64 / write_load.rate);
        if due >= write_load.deadline || write_load.stop.is_cancelled() {
            return;
        }
        if let Some(wake) = due.checked_sub(EARLY_WAKE)
            && wake > Instant::now()
        {
            tokio::select! {
                biased;
                () = write_load.stop.cancelled() => return,
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        write_load.write(k, due, &mut rng).await;
    }
}

/// The write load's timetable, connections and tally, shared by its users.
pub(super) struct WriteLoad {
    pub(super) pool: Pool,
    pub(super) tag: String,
    pub(super) rate: f64,
    pub(super) start: Instant,
    /// Writes due before this are warm-up.
    pub(super) measure_from: Instant,
    /// No write is due at or after this.
    pub(super) deadline: Instant,
    pub(super) wait_ms: u64,
    pub(super) stop: CancellationToken,
    /// The next write of the timetable.
    pub(super) next: AtomicU64,
    pub(super) tally: Mutex<Tally>,
}

impl WriteLoad {
    /// Write `k`, due at `due`: create on A, read with `minVersion` on B, maybe a baseline read on B.
    pub(super) async fn write(&self, k: u64, due: Instant, rng: &mut fastrand::Rng) {
        let n = self.pool.len();
        let a = rng.usize(..n);
        let b = self.pool.reader_for(a, rng);
        let slot = due
            .checked_duration_since(self.measure_from)
            .map(|d| d.as_secs() as usize);
        let name = probe_name(&self.tag, k);
        let unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let writer = &self.pool.targets[a].id;
        let args = json!({"entities": [{
            "name": name,
            "entityType": PROBE_TYPE,
            "observations": [format!("written on {writer} at unix ms {unix_ms}")],
        }]});
        let wrote = self.pool.call(a, "create_entities", args).await;
        let result = match wrote.outcome {
            Ok(result) => result,
            Err(f) => {
                lock(&self.tally).write_failed(k, slot, f.class);
                return;
            }
        };
        let version = payload(&result).and_then(|p| version_of(&p));
        let acked_at_us = payload(&result).and_then(|p| p.get("ackedAtUs").and_then(Value::as_u64));
        let ack = wrote
            .done_at
            .saturating_duration_since(due)
            .max(wrote.elapsed);
        lock(&self.tally).acked(
            Probe {
                k,
                version,
                writer: a,
            },
            slot,
            ack,
            wrote.elapsed,
        );
        let Some(version) = version else {
            lock(&self.tally).not_visible(slot, "unversioned".into());
            return;
        };
        let mut client = match self.pool.take(b) {
            Ok(c) => c,
            Err(class) => {
                lock(&self.tally).not_visible(slot, Seen::ReadFailed(class).kind());
                return;
            }
        };
        let mut args = self.pool.wait_args(a, b, version);
        args["names"] = json!([name]);
        args["timeoutMs"] = json!(self.wait_ms);
        let read = client.call("open_nodes", args).await;
        match seen(&read.outcome, &name) {
            Seen::Visible => {
                let lag = read.done_at.saturating_duration_since(wrote.done_at);
                // The servers' own clocks, where they report them: A's ack to B's view holding
                // the version, with no read's round trip in it.
                let visible_at_us = read.outcome.as_ref().ok().and_then(|r| {
                    payload(r).and_then(|p| p.get("visibleAtUs").and_then(Value::as_u64))
                });
                let server_lag = acked_at_us
                    .zip(visible_at_us)
                    .map(|(acked, visible)| Duration::from_micros(visible.saturating_sub(acked)));
                let base = if k.is_multiple_of(BASELINE_EVERY) {
                    let base = client.call("open_nodes", json!({"names": [name]})).await;
                    match seen(&base.outcome, &name) {
                        Seen::Visible => Baseline::Read(base.elapsed),
                        _ => Baseline::Failed,
                    }
                } else {
                    Baseline::NotSampled
                };
                lock(&self.tally).visible(slot, lag, server_lag, base);
            }
            other => lock(&self.tally).not_visible(slot, other.kind()),
        }
        self.pool.give(b, client);
    }
}

/// The progress line of the second that just ended, and the writes done so far.
pub(super) fn progress_line(write_load: &WriteLoad, last: u64) -> (String, u64) {
    let t = write_load.start.elapsed().as_secs_f64();
    let tally = lock(&write_load.tally);
    let done = tally.done;
    let rate = done - last;
    if Instant::now() < write_load.measure_from + Duration::from_millis(500) {
        return (
            format!("  sync {t:>4.0} s  warm-up  {rate:>6} writes/s"),
            done,
        );
    }
    let at = |h: &Histogram<u64>, q| {
        if h.is_empty() {
            "-".to_string()
        } else {
            fmt_micros(h.value_at_quantile(q))
        }
    };
    let failed: u64 = tally.failed.values().sum();
    let invisible: u64 = tally.visibility_failures.values().sum();
    (
        format!(
            "  sync {t:>4.0} s  {rate:>6} writes/s  ack p50 {} p99 {}  lag p50 {} p99 {}  \
             failed {failed}  not visible {invisible}",
            at(&tally.ack, 0.5),
            at(&tally.ack, 0.99),
            at(&tally.lag, 0.5),
            at(&tally.lag, 0.99),
        ),
        done,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::scenario::sync::tally::run_tag;

    #[test]
    fn pairs_are_distinct_and_spread() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut hits = [0u32; 4];
        for _ in 0..4000 {
            hits[rng.usize(..4)] += 1;
        }
        assert!(hits.iter().all(|h| (800..1200).contains(h)), "{hits:?}");
        assert_eq!(probe_name("0a1b2c3d", 12), "sync-0a1b2c3d-12");
        assert_eq!(run_tag().len(), 8);
    }
}
