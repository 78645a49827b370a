//! The balancer's behaviour end to end through its public surface: picks, health, discovery,
//! leases and the config's TOML.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use super::*;

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("s{i}")).collect()
}

fn stats(pool: &Pool, id: &str) -> MemberStats {
    pool.snapshot()
        .into_iter()
        .find(|s| s.id == id)
        .expect("member exists")
}

/// Finishes a lease on `id` (forced by excluding everyone else) with `outcome`.
fn on(pool: &Pool, id: &str, now: Instant, outcome: Outcome, latency: Duration) {
    let others: Vec<String> = pool
        .snapshot()
        .into_iter()
        .map(|s| s.id)
        .filter(|s| s != id)
        .collect();
    let exclude: Vec<&str> = others.iter().map(String::as_str).collect();
    let lease = pool.pick(&exclude, now, 7).expect("member is pickable");
    assert_eq!(lease.id(), id);
    lease.finish(outcome, latency, now);
}

fn pickable(pool: &Pool, id: &str, now: Instant) -> bool {
    let mut rng = fastrand::Rng::with_seed(1);
    (0..64).any(|_| {
        pool.pick(&[], now, rng.u64(..))
            .is_some_and(|l| l.id() == id)
    })
}

#[test]
fn prefers_the_less_loaded_of_two() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    let held = pool.pick(&["b"], now, 1).unwrap();
    assert_eq!(held.id(), "a");
    let mut rng = fastrand::Rng::with_seed(42);
    for _ in 0..100 {
        let l = pool.pick(&[], now, rng.u64(..)).unwrap();
        assert_eq!(l.id(), "b");
    }
    drop(held);
    assert_eq!(stats(&pool, "a").outstanding, 0);
}

#[test]
fn prefers_the_faster_of_two() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    for _ in 0..10 {
        on(&pool, "a", now, Outcome::Success, 100 * US);
        on(&pool, "b", now, Outcome::Success, 1000 * US);
    }
    assert!(stats(&pool, "a").ewma_us < stats(&pool, "b").ewma_us);
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..100 {
        let l = pool.pick(&[], now, rng.u64(..)).unwrap();
        assert_eq!(l.id(), "a");
    }
}

#[test]
fn slow_members_get_far_less_traffic() {
    let names = ids(10);
    let pool = Pool::new(&names);
    let latency = |id: &str| {
        if id == "s3" || id == "s7" {
            5000 * US
        } else {
            500 * US
        }
    };
    let t0 = Instant::now();
    for id in &names {
        for _ in 0..5 {
            on(&pool, id, t0, Outcome::Success, latency(id));
        }
    }
    // 10k picks with eight requests in flight, each finishing after the next seven picks.
    let mut rng = fastrand::Rng::with_seed(99);
    let mut in_flight = VecDeque::new();
    let mut count: HashMap<String, u32> = HashMap::new();
    for i in 0..10_000u32 {
        let now = t0 + (i + 1) * 100 * US;
        let lease = pool.pick(&[], now, rng.u64(..)).unwrap();
        *count.entry(lease.id().to_owned()).or_default() += 1;
        in_flight.push_back(lease);
        if in_flight.len() > 8 {
            let l = in_flight.pop_front().unwrap();
            let lat = latency(l.id());
            l.finish(Outcome::Success, lat, now);
        }
    }
    drop(in_flight);
    let slow = count.get("s3").copied().unwrap_or(0) + count.get("s7").copied().unwrap_or(0);
    // Uniform would give the two 2000; p2c gives them little more than the pairs in which
    // both candidates are slow (1/45 of picks).
    assert!(slow < 500, "slow members got {slow} of 10000: {count:?}");
    for id in &names {
        if id != "s3" && id != "s7" {
            assert!(
                count.get(id.as_str()).copied().unwrap_or(0) > 800,
                "{count:?}"
            );
        }
    }
    assert!(pool.snapshot().iter().all(|s| s.outstanding == 0));
}

#[test]
fn exclusion_sends_retries_elsewhere() {
    let pool = Pool::new(&["a", "b", "c"]);
    let now = Instant::now();
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..200 {
        let l = pool.pick(&["a"], now, rng.u64(..)).unwrap();
        assert_ne!(l.id(), "a");
        let l = pool.pick(&["a", "b"], now, rng.u64(..)).unwrap();
        assert_eq!(l.id(), "c");
    }
    assert!(pool.pick(&["a", "b", "c"], now, rng.u64(..)).is_none());
}

#[test]
fn picks_are_spread_uniformly_when_idle() {
    let names = ids(5);
    let pool = Pool::new(&names);
    let now = Instant::now();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut count = HashMap::new();
    for _ in 0..10_000 {
        let l = pool.pick(&[], now, rng.u64(..)).unwrap();
        *count.entry(l.id().to_owned()).or_insert(0u32) += 1;
    }
    // Equal costs: the first candidate wins, which is uniform.
    for id in &names {
        let c = count[id.as_str()];
        assert!((1700..2300).contains(&c), "{count:?}");
    }
}

#[test]
fn connect_failure_ejects_then_half_open_probe_readmits() {
    let pool = Pool::new(&["a", "b"]);
    let t0 = Instant::now();
    on(&pool, "a", t0, Outcome::Failure(FailureKind::Connect), MS);
    let s = stats(&pool, "a");
    assert!(s.ejected);
    assert_eq!((s.ejections_total, s.failures.connect), (1, 1));

    // Not picked during the 200 ms backoff, not even as a retry's last resort.
    assert!(!pickable(&pool, "a", t0 + 199 * MS));
    assert!(pool.pick(&["b"], t0 + 199 * MS, 1).is_none());
    assert_eq!(pool.available(t0 + 199 * MS), 1);

    // Half-open: exactly one lease at a time.
    let t = t0 + 200 * MS;
    let probe = pool.pick(&["b"], t, 1).unwrap();
    assert_eq!(probe.id(), "a");
    assert!(probe.is_probe());
    assert!(pool.pick(&["b"], t, 2).is_none());
    assert!(!pickable(&pool, "a", t));
    // A cancelled probe lets the next request probe.
    drop(probe);
    let probe = pool.pick(&["b"], t, 3).unwrap();
    assert!(probe.is_probe());
    probe.finish(Outcome::Success, MS, t);

    let s = stats(&pool, "a");
    assert!(!s.ejected);
    let l1 = pool.pick(&["b"], t, 4).unwrap();
    let l2 = pool.pick(&["b"], t, 5).unwrap();
    assert!(!l1.is_probe() && !l2.is_probe());
    assert_eq!(stats(&pool, "a").outstanding, 2);
}

#[test]
fn repeated_ejections_double_the_backoff_up_to_the_max() {
    let config = PoolConfig {
        eject_max: Duration::from_secs(1),
        ..PoolConfig::default()
    };
    let pool = Pool::with_config(&["a"], config);
    let mut t = Instant::now();
    on(&pool, "a", t, Outcome::Failure(FailureKind::Connect), MS);
    for expected in [200u64, 400, 800, 1000, 1000] {
        let backoff = Duration::from_millis(expected);
        assert!(pool.pick(&[], t + backoff - MS, 1).is_none(), "{expected}");
        t += backoff;
        let probe = pool.pick(&[], t, 1).expect("half-open");
        assert!(probe.is_probe());
        probe.finish(Outcome::Failure(FailureKind::Connect), MS, t);
    }
    assert_eq!(stats(&pool, "a").ejections_total, 6);
    // A success resets the backoff: the next ejection is short again.
    t += Duration::from_secs(1);
    pool.pick(&[], t, 1)
        .unwrap()
        .finish(Outcome::Success, MS, t);
    on(&pool, "a", t, Outcome::Failure(FailureKind::Connect), MS);
    assert!(pool.pick(&[], t + 199 * MS, 1).is_none());
    assert!(pool.pick(&[], t + 200 * MS, 1).is_some());
}

#[test]
fn other_failures_eject_after_three_in_a_row() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    let fail = |kind| on(&pool, "a", now, Outcome::Failure(kind), MS);
    fail(FailureKind::Timeout);
    fail(FailureKind::Status5xx);
    on(&pool, "a", now, Outcome::Success, MS);
    fail(FailureKind::BadResponse);
    fail(FailureKind::Timeout);
    assert!(!stats(&pool, "a").ejected);
    fail(FailureKind::Status5xx);
    let s = stats(&pool, "a");
    assert!(s.ejected);
    assert_eq!(s.failures_total, 5);
    assert_eq!(s.successes_total, 1);
    assert_eq!(s.failures.get(FailureKind::Timeout), 2);
    // Two slow failures then a refused connection: the connection error decides.
    on(&pool, "b", now, Outcome::Failure(FailureKind::Timeout), MS);
    assert!(!stats(&pool, "b").ejected);
    on(&pool, "b", now, Outcome::Failure(FailureKind::Connect), MS);
    assert!(stats(&pool, "b").ejected);
}

#[test]
fn requests_in_flight_at_ejection_do_not_escalate_the_backoff() {
    let pool = Pool::new(&["a", "b"]);
    let t0 = Instant::now();
    let leases: Vec<Lease> = (0..20).map(|i| pool.pick(&["b"], t0, i).unwrap()).collect();
    for l in leases {
        l.finish(Outcome::Failure(FailureKind::Connect), MS, t0);
    }
    let s = stats(&pool, "a");
    assert_eq!(
        (s.ejections_total, s.failures_total, s.outstanding),
        (1, 20, 0)
    );
    assert!(pool.pick(&["b"], t0 + 200 * MS, 1).is_some());
}

#[test]
fn set_up_excludes_and_readmits() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    assert!(pool.set_up("a", false));
    assert!(!pickable(&pool, "a", now));
    assert!(!stats(&pool, "a").up);
    assert!(pool.set_up("b", false));
    assert!(pool.pick(&[], now, 1).is_none());
    assert_eq!(pool.available(now), 0);
    assert!(pool.set_up("a", true));
    assert!(pickable(&pool, "a", now));
    assert!(!pool.set_up("nope", true));
}

#[test]
fn set_up_after_down_clears_an_ejection() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    on(&pool, "a", now, Outcome::Failure(FailureKind::Connect), MS);
    pool.set_up("a", false);
    pool.set_up("a", true);
    let s = stats(&pool, "a");
    assert!(s.up && !s.ejected);
    let l = pool.pick(&["b"], now, 1).unwrap();
    assert!(!l.is_probe());
}

#[test]
fn set_up_while_up_makes_an_ejected_member_half_open() {
    let pool = Pool::new(&["a", "b"]);
    let now = Instant::now();
    for _ in 0..4 {
        on(&pool, "a", now, Outcome::Failure(FailureKind::Connect), MS);
        pool.set_up("a", true);
    }
    // Each probe failed; the healthy active check lets one request try again at once.
    let probe = pool.pick(&["b"], now, 1).unwrap();
    assert!(probe.is_probe());
    assert!(pool.pick(&["b"], now, 2).is_none());
    probe.finish(Outcome::Success, MS, now);
    assert!(!stats(&pool, "a").ejected);
}

#[test]
fn down_while_probing_ignores_the_stale_probe() {
    let pool = Pool::new(&["a", "b"]);
    let t0 = Instant::now();
    on(&pool, "a", t0, Outcome::Failure(FailureKind::Connect), MS);
    let t = t0 + 200 * MS;
    let probe = pool.pick(&["b"], t, 1).unwrap();
    pool.set_up("a", false);
    pool.set_up("a", true);
    // Re-admitted by the active check; the old probe's failure is stale evidence.
    probe.finish(Outcome::Failure(FailureKind::Connect), MS, t);
    let s = stats(&pool, "a");
    assert!(!s.ejected);
    assert_eq!(s.failures_total, 2);
    assert_eq!(s.outstanding, 0);
}

#[test]
fn empty_pool_picks_nothing() {
    let pool = Pool::new::<String>(&[]);
    assert!(pool.is_empty());
    assert!(pool.pick(&[], Instant::now(), 1).is_none());
}

#[test]
fn set_members_keeps_survivors_and_adds_and_drops() {
    let pool = Pool::new(&["a", "b", "c"]);
    let now = Instant::now();
    on(&pool, "a", now, Outcome::Success, 100 * US);
    on(&pool, "b", now, Outcome::Success, 300 * US);
    on(&pool, "c", now, Outcome::Success, 900 * US);
    on(&pool, "c", now, Outcome::Failure(FailureKind::Connect), MS);
    let a = stats(&pool, "a");
    let c = stats(&pool, "c");
    let median = stats(&pool, "b").ewma_us;
    let held_a = pool.pick(&["b", "c"], now, 1).unwrap();
    let held_b = pool.pick(&["a", "c"], now, 1).unwrap();

    pool.set_members(&["d", "c", "a", "d"]);
    let snap = pool.snapshot();
    let order: Vec<&str> = snap.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(order, ["d", "c", "a"]);
    assert_eq!(stats(&pool, "a").successes_total, a.successes_total);
    assert_eq!(stats(&pool, "a").outstanding, 1);
    assert_eq!(stats(&pool, "c"), c);
    let d = stats(&pool, "d");
    assert_eq!((d.successes_total, d.ejected, d.up), (0, false, true));
    assert_eq!(d.ewma_us, median);

    // Leases survive the change: a's finds its member at its new index, b's is a no-op.
    held_a.finish(Outcome::Success, 100 * US, now);
    drop(held_b);
    assert_eq!(stats(&pool, "a").outstanding, 0);
    assert_eq!(stats(&pool, "a").successes_total, 2);
    assert!(pool.snapshot().iter().all(|s| s.id != "b"));
    // The new member looks typical (median), so it gets traffic as soon as the faster a is
    // busy.
    let busy = pool.pick(&["c", "d"], now, 1).unwrap();
    assert!(pickable(&pool, "d", now));
    drop(busy);
}

#[test]
fn leases_release_on_drop_and_finish() {
    let pool = Pool::new(&["a"]);
    let now = Instant::now();
    let l1 = pool.pick(&[], now, 1).unwrap();
    let l2 = pool.pick(&[], now, 2).unwrap();
    {
        let _l3 = pool.pick(&[], now, 3).unwrap();
        assert_eq!(stats(&pool, "a").outstanding, 3);
    }
    assert_eq!(stats(&pool, "a").outstanding, 2);
    l1.finish(Outcome::Success, MS, now);
    assert_eq!(stats(&pool, "a").outstanding, 1);
    drop(l2);
    let s = stats(&pool, "a");
    // The dropped leases were cancelled requests: neither success nor failure.
    assert_eq!(
        (s.outstanding, s.successes_total, s.failures_total),
        (0, 1, 0)
    );
    // The pool may go away before its leases.
    let l = pool.pick(&[], now, 4).unwrap();
    drop(pool);
    l.finish(Outcome::Success, MS, now);
}

#[test]
fn a_starved_slow_member_is_tried_again_after_idling() {
    let pool = Pool::new(&["a", "b"]);
    let t0 = Instant::now();
    for _ in 0..20 {
        on(&pool, "b", t0, Outcome::Success, 10 * MS);
        on(&pool, "a", t0, Outcome::Success, 100 * US);
    }
    let busy = pool.pick(&["b"], t0, 1).unwrap();
    // With a one request busy, b still costs far more.
    let mut rng = fastrand::Rng::with_seed(8);
    let t = t0 + MS;
    assert!((0..50).all(|_| pool.pick(&[], t, rng.u64(..)).unwrap().id() == "a"));
    // Twenty half-lives later both estimates are "typical" and load decides.
    let t = t0 + Duration::from_secs(20);
    assert!((0..50).all(|_| pool.pick(&[], t, rng.u64(..)).unwrap().id() == "b"));
    drop(busy);
}

#[test]
fn concurrent_picks_and_finishes_balance_out() {
    let names = ids(16);
    let pool = Pool::new(&names);
    let t0 = Instant::now();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                let mut done = 0u64;
                for i in 0..5_000u32 {
                    let now = t0 + i * US;
                    let Some(lease) = pool.pick(&[], now, rng.u64(..)) else {
                        continue;
                    };
                    match rng.u64(..) % 10 {
                        0 => drop(lease),
                        1 => {
                            let kind = FailureKind::ALL[(i % 4) as usize];
                            lease.finish(Outcome::Failure(kind), 50 * US, now);
                            done += 1;
                        }
                        _ => {
                            lease.finish(Outcome::Success, 50 * US, now);
                            done += 1;
                        }
                    }
                }
                done
            })
        })
        .collect();
    let done: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let snap = pool.snapshot();
    assert!(snap.iter().all(|s| s.outstanding == 0), "{snap:?}");
    let counted: u64 = snap
        .iter()
        .map(|s| s.successes_total + s.failures_total)
        .sum();
    assert_eq!(counted, done);
}
