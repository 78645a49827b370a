//! Carrying the faults out and timing them: injected at their planned times (pauses and
//! slow-downs lifted when due), then, after the load, when the fleet noticed, when the gateway
//! took the server out and when it was healthy again.
//!
//! Every time is taken against the wall clock of this machine, which the fleet shares (chaos
//! needs the admin API, which answers on loopback only).

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use fleet::{HistoryView, ServerState};
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::{runfile::FaultRecord, scenario::admin::Admin};

use super::fault::{Action, Planned};

/// How long, after the load, loadgen waits for faulted servers to be healthy again.
pub const RECOVERY_WAIT: Duration = Duration::from_secs(15);

/// A fault as it was carried out.
#[derive(Debug, Clone)]
pub struct Injected {
    pub planned: Planned,
    pub at_ms: u64,
    pub at_unix_ms: u64,
    pub lasted_ms: Option<u64>,
    pub error: Option<String>,
}

/// Injects the planned faults at their times after `window_start`, lifting pauses and
/// slow-downs when they are due. Cancelling `stop` injects no more, but still lifts what was
/// injected: no server is left paused.
pub async fn inject(
    admin: Arc<Admin>,
    planned: Vec<Planned>,
    window_start: Instant,
    stop: CancellationToken,
) -> Vec<Injected> {
    let mut lifts = tokio::task::JoinSet::new();
    let mut done = Vec::with_capacity(planned.len());
    for p in planned {
        tokio::select! {
            () = tokio::time::sleep_until((window_start + p.at).into()) => {}
            () = stop.cancelled() => break,
        }
        let now = Instant::now();
        let at_unix_ms = unix_ms(SystemTime::now());
        let error = admin.inject(&p.server, p.action).await.err();
        if let Some(e) = &error {
            eprintln!("chaos: {} {} failed: {e}", p.action.name(), p.server);
        }
        let index = done.len();
        if let (Some(lasting), None) = (p.action.lasting(), &error) {
            let admin = admin.clone();
            let (server, action) = (p.server.clone(), p.action);
            lifts.spawn(async move {
                tokio::time::sleep(lasting).await;
                let lifted = admin.lift(&server, action).await;
                if let Err(e) = &lifted {
                    eprintln!("chaos: lifting {} of {server} failed: {e}", action.name());
                }
                (index, now.elapsed())
            });
        }
        done.push(Injected {
            at_ms: now.saturating_duration_since(window_start).as_millis() as u64,
            at_unix_ms,
            planned: p,
            lasted_ms: None,
            error,
        });
    }
    while let Some(lifted) = lifts.join_next().await {
        if let Ok((index, lasted)) = lifted
            && let Some(d) = done.get_mut(index)
        {
            d.lasted_ms = Some(lasted.as_millis() as u64);
        }
    }
    done
}

/// Waits (up to `wait`) until every server that was killed or paused is healthy again, then
/// reads the histories and the gateway's view, and times each fault. Gives the records and how
/// long it waited.
pub async fn collect(
    admin: &Admin,
    injected: &[Injected],
    gateway: Option<&Url>,
    wait: Duration,
) -> (Vec<FaultRecord>, Duration) {
    let started = Instant::now();
    let must_recover: Vec<&str> = injected
        .iter()
        .filter(|i| i.error.is_none() && !matches!(i.planned.action, Action::Slow { .. }))
        .map(|i| i.planned.server.as_str())
        .collect();
    while started.elapsed() < wait {
        match admin.servers().await {
            Ok(view) => {
                let healthy = view.servers.iter().filter(|s| {
                    must_recover.contains(&s.id.as_str()) && s.state == ServerState::Healthy
                });
                if healthy.count() == must_recover.len() {
                    break;
                }
            }
            Err(e) => eprintln!("chaos: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    let backends = match gateway {
        Some(url) => admin.gateway_backends(url).await,
        None => None,
    };
    let mut records = Vec::with_capacity(injected.len());
    for i in injected {
        let mut r = FaultRecord {
            server: i.planned.server.clone(),
            action: i.planned.action.name().into(),
            at_ms: i.at_ms,
            at_unix_ms: i.at_unix_ms,
            lasted_ms: i.lasted_ms,
            fleet_detect_ms: None,
            gateway_detect_ms: None,
            recovered_ms: None,
            error: i.error.clone(),
        };
        if i.error.is_none() {
            match admin.history(&i.planned.server).await {
                Ok(h) => time_fault(&mut r, &h),
                Err(e) => r.error = Some(format!("history: {e:#}")),
            }
            r.gateway_detect_ms = backends.as_ref().and_then(|b| {
                b.groups
                    .values()
                    .flatten()
                    .find(|m| m.id == r.server)?
                    .taken_out_at_ms
                    .iter()
                    .find(|&&t| t >= r.at_unix_ms)
                    .map(|t| t - r.at_unix_ms)
            });
        }
        records.push(r);
    }
    (records, waited)
}

/// Fills in when the fleet noticed the fault and when the server was healthy again, from its
/// state transitions.
pub fn time_fault(r: &mut FaultRecord, history: &HistoryView) {
    let after: Vec<_> = history
        .transitions
        .iter()
        .filter(|t| t.at_ms >= r.at_unix_ms)
        .collect();
    let down = after.iter().find(|t| t.state != ServerState::Healthy);
    r.fleet_detect_ms = down.map(|t| t.at_ms - r.at_unix_ms);
    r.recovered_ms = match (down, r.action.as_str()) {
        (Some(d), _) => after
            .iter()
            .find(|t| t.at_ms >= d.at_ms && t.state == ServerState::Healthy)
            .map(|t| t.at_ms - r.at_unix_ms),
        // A pause too short for the health monitor to notice ended when it was lifted.
        (None, "pause") => r.lasted_ms,
        (None, _) => None,
    };
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use fleet::Transition;

    fn transition(at_ms: u64, state: ServerState) -> Transition {
        Transition {
            at_ms,
            state,
            reason: String::new(),
        }
    }

    #[test]
    fn faults_are_timed_from_the_servers_history() {
        let mut r = FaultRecord {
            server: "s".into(),
            action: "kill".into(),
            at_ms: 100,
            at_unix_ms: 10_000,
            lasted_ms: None,
            fleet_detect_ms: None,
            gateway_detect_ms: None,
            recovered_ms: None,
            error: None,
        };
        let history = HistoryView {
            id: "s".into(),
            transitions: vec![
                transition(9_000, ServerState::Healthy),
                transition(10_002, ServerState::Restarting),
                transition(10_015, ServerState::Starting),
                transition(10_040, ServerState::Healthy),
            ],
        };
        time_fault(&mut r, &history);
        assert_eq!(r.fleet_detect_ms, Some(2));
        assert_eq!(r.recovered_ms, Some(40));

        // Never healthy again: no recovery time.
        let mut r2 = r.clone();
        let mut h2 = history.clone();
        h2.transitions.pop();
        time_fault(&mut r2, &h2);
        assert_eq!((r2.fleet_detect_ms, r2.recovered_ms), (Some(2), None));

        // A pause the monitor never noticed recovered when it was lifted.
        let mut p = r.clone();
        p.action = "pause".into();
        p.lasted_ms = Some(2_000);
        time_fault(
            &mut p,
            &HistoryView {
                id: "s".into(),
                transitions: vec![transition(9_000, ServerState::Healthy)],
            },
        );
        assert_eq!((p.fleet_detect_ms, p.recovered_ms), (None, Some(2_000)));
    }
}
