#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use super::sampler::{SERIES_POINTS, Sampler, Sources};
use crate::{
    profile::Profile,
    serve::registry::{Entry, Identity, Registry, ServerState},
    spec::Isolation,
};

fn registry(servers: &[(&str, u32)]) -> Arc<Registry> {
    let registry = Arc::new(Registry::new(vec!["community".into(), "security".into()]));
    let entries = servers
        .iter()
        .map(|(group, index)| {
            let e = Entry::new(
                Identity::new(group, Profile::Community, *index),
                9000 + *index as u16,
                registry.changes(),
            );
            e.set_state(ServerState::Healthy, "probe ok");
            Arc::new(e)
        })
        .collect();
    registry.update(entries, &[]);
    registry
}

fn sampler(registry: &Arc<Registry>) -> Sampler {
    Sampler::new(Sources {
        registry: registry.clone(),
        isolation: Isolation::Task,
        memory: None,
        gateway: None,
    })
}

/// `n` answered requests of `ms` each (and `errors` of them failed) on `id`.
fn traffic(registry: &Registry, id: &str, n: u64, ms: u64, errors: u64) {
    let c = registry.get(id).unwrap().counters();
    for _ in 0..n {
        c.latency.record(Duration::from_millis(ms));
    }
    c.errors.fetch_add(errors, Ordering::Relaxed);
}

#[test]
fn rates_and_quantiles_come_from_the_window_not_the_lifetime() {
    let reg = registry(&[("community", 0), ("community", 1), ("security", 0)]);
    let mut s = sampler(&reg);
    let t0 = Instant::now();
    // Traffic before the first frame is history, not rate.
    traffic(&reg, "community-0000", 1000, 50, 0);
    let f = s.tick(t0, 1_000);
    assert_eq!(f.servers.id.len(), 3);
    assert_eq!(f.servers.rps[0], 0.0);
    assert_eq!(f.groups.len(), 2);
    assert_eq!((f.groups[0].servers, f.groups[1].servers), (2, 1));

    traffic(&reg, "community-0000", 200, 2, 10);
    let f = s.tick(t0 + Duration::from_secs(2), 3_000);
    assert_eq!(f.servers.rps[0], 100.0, "200 requests in 2 s");
    assert_eq!(f.servers.eps[0], 5.0);
    let p50 = f.servers.p50_ms[0].unwrap();
    assert!(
        (1.0..=2.5).contains(&p50),
        "the 2 ms bucket, not the old 50 ms: {p50}"
    );
    assert_eq!(f.servers.p50_ms[1], None, "no requests, no quantile");
    let g = &f.groups[0];
    assert_eq!(g.point.rps, 100.0);
    assert!((g.point.error_rate - 0.05).abs() < 1e-9);
    assert_eq!(f.groups[1].point.rps, 0.0);
}

#[test]
fn a_server_that_came_back_between_frames_shows_what_it_went_through() {
    let reg = registry(&[("community", 0), ("community", 1)]);
    let mut s = sampler(&reg);
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let t0 = Instant::now();
    s.tick(t0, now_ms());
    std::thread::sleep(Duration::from_millis(5));
    let e = reg.get("community-0001").unwrap();
    e.set_state(ServerState::Restarting, "killed");
    e.set_state(ServerState::Starting, "respawned");
    e.set_state(ServerState::Healthy, "probe ok");
    std::thread::sleep(Duration::from_millis(5));
    let f = s.tick(t0 + Duration::from_secs(1), now_ms());
    assert_eq!(f.servers.state, ["healthy", "starting"]);
    std::thread::sleep(Duration::from_millis(5));
    let f = s.tick(t0 + Duration::from_secs(2), now_ms());
    assert_eq!(f.servers.state, ["healthy", "healthy"], "one frame only");
    // Faults show as their own states.
    e.faults.send_modify(|f| f.added_latency_ms = 100);
    reg.get("community-0000")
        .unwrap()
        .faults
        .send_modify(|f| f.paused = true);
    let f = s.tick(t0 + Duration::from_secs(3), now_ms());
    assert_eq!(f.servers.state, ["paused", "faulted"]);
}

#[test]
fn series_are_bounded_and_follow_the_groups() {
    let reg = registry(&[("community", 0), ("security", 0)]);
    let mut s = sampler(&reg);
    let t0 = Instant::now();
    for i in 0..SERIES_POINTS as u64 + 20 {
        s.tick(t0 + Duration::from_secs(i), 1_000 * i);
    }
    let h = s.history();
    assert_eq!(h.groups.len(), 2);
    assert!(h.groups.iter().all(|g| g.points.len() == SERIES_POINTS));
    assert_eq!(h.groups[0].points[0].at_ms, 20_000, "oldest dropped first");
    // A group whose servers all left stops having a series; a server that left is gone.
    reg.update(Vec::new(), &["security-0000"]);
    let f = s.tick(t0 + Duration::from_secs(10_000), 10_000_000);
    assert_eq!(f.servers.id, ["community-0000"]);
    assert_eq!(s.history().groups.len(), 1);
}

#[tokio::test]
async fn a_frame_is_made_once_for_every_viewer_and_nobody_sees_a_stale_one() {
    let reg = registry(&[("community", 0)]);
    let tracker = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let d = super::Dashboard::start(
        Sources {
            registry: reg.clone(),
            isolation: Isolation::Task,
            memory: None,
            gateway: None,
        },
        &tracker,
        stop.clone(),
    );
    d.sample();
    assert!(d.shared.frames.borrow().is_none(), "no viewer, no frame");
    let mut a = d.shared.frames.subscribe();
    let b = d.shared.frames.subscribe();
    d.sample();
    a.changed().await.unwrap();
    let frame = a.borrow_and_update().clone().unwrap();
    assert!(
        Arc::ptr_eq(&frame, b.borrow().as_ref().unwrap()),
        "one copy for all"
    );
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(v["servers"]["id"][0], "community-0000");
    drop((a, b));
    d.sample();
    assert!(d.shared.frames.borrow().is_none());
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}
