//! Merging synthetic shards: exact sums and histograms, seconds lined up by the wall clock,
//! and every malformed shard set refused naming the file.

use hdrhistogram::Histogram;

use super::*;
use crate::{
    run::{ShardFacts, decode_histogram},
    synthetic::{Spec, run},
};

fn shard(index: u32, count: u32, seed: u64) -> ShardRun {
    let mut r = run(&Spec {
        seed,
        sync_lag_median_us: None,
        median_us: 1_000.0 * f64::from(index),
        ..Spec::default()
    });
    r.sync = None;
    r.shard = Some(ShardFacts {
        index,
        count,
        run_id: "run-a".into(),
        host: format!("host-{index}"),
        start_at: None,
        start_late_ms: None,
        clock: None,
    });
    ShardRun {
        name: format!("shard-{index}.json"),
        run: r,
    }
}

fn hist(data: &str) -> Histogram<u64> {
    decode_histogram(data).expect("decodes")
}

#[test]
fn histograms_add_exactly_and_counts_sum() {
    let shards = [shard(1, 3, 11), shard(2, 3, 12), shard(3, 3, 13)];
    let merged = merge(&shards).expect("merges");
    let m = merged.latency.as_ref().expect("latency");
    let parts: Vec<_> = shards
        .iter()
        .map(|s| s.run.latency.as_ref().expect("latency"))
        .collect();
    let mut sum = hist(&parts[0].histogram.data);
    for p in &parts[1..] {
        sum.add(hist(&p.histogram.data)).expect("adds");
    }
    assert_eq!(m.requests, parts.iter().map(|p| p.requests).sum::<u64>());
    assert_eq!(m.ok, parts.iter().map(|p| p.ok).sum::<u64>());
    assert_eq!(m.latency_us.count, sum.len());
    for q in [0.5, 0.9, 0.99, 0.999] {
        let merged_h = hist(&m.histogram.data);
        assert_eq!(
            merged_h.value_at_quantile(q),
            sum.value_at_quantile(q),
            "q {q}"
        );
    }
    assert_eq!(m.latency_us.p99, sum.value_at_quantile(0.99));
    // The shards had medians of 1, 2 and 3 ms: the merged median is the middle one's, not an
    // average of percentiles.
    let p50 = m.latency_us.p50 as f64;
    assert!((1_600.0..2_400.0).contains(&p50), "p50 {p50}");
    // Breakdowns: each server's rows of every shard added.
    let server0 = |r: &crate::run::Results| {
        r.by_server
            .iter()
            .find(|b| b.name == "server-000")
            .map(|b| b.requests)
            .unwrap_or(0)
    };
    assert_eq!(
        m.by_server
            .iter()
            .find(|b| b.name == "server-000")
            .map(|b| b.requests),
        Some(parts.iter().map(|p| server0(p)).sum())
    );
    assert_eq!(merged.merged_from.len(), 3);
    // The configuration is the whole run's (each shard records it); the phases' users sum.
    assert_eq!(merged.config.users, shards[0].run.config.users);
    assert_eq!(
        m.setup.users,
        parts.iter().map(|p| p.setup.users).sum::<usize>()
    );
    assert!(merged.shard.is_none());
}

#[test]
fn seconds_line_up_by_the_wall_clock() {
    let mut late = shard(2, 2, 22);
    let first = shard(1, 2, 21);
    // Shard 2 started 2 s later: its first second is the merged window's third.
    if let Some(l) = late.run.latency.as_mut() {
        l.started_unix_ms = l.started_unix_ms.map(|t| t + 2_000);
    }
    let n = first.run.latency.as_ref().map_or(0, |l| l.per_second.len());
    let merged = merge(&[first, late]).expect("merges");
    let m = merged.latency.expect("latency");
    assert_eq!(m.per_second.len(), n + 2);
    let per = 500; // Spec::default().rps
    assert_eq!(m.per_second[0].ok + m.per_second[0].errors, per);
    assert_eq!(m.per_second[2].ok + m.per_second[2].errors, 2 * per);
    assert_eq!(m.per_second[n + 1].ok + m.per_second[n + 1].errors, per);
}

#[test]
fn malformed_shard_sets_are_refused_naming_the_file() {
    let msg = |shards: &[ShardRun]| {
        merge(shards)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(msg(&[shard(1, 2, 1)]).contains("shard(s) [2] of 2 missing"));
    let e = msg(&[shard(1, 2, 1), shard(1, 2, 2)]);
    assert!(
        e.contains("shard-1.json and shard-1.json are both shard 1"),
        "{e}"
    );
    let mut other = shard(2, 2, 2);
    other.name = "other.json".into();
    if let Some(f) = other.run.shard.as_mut() {
        f.run_id = "run-b".into();
    }
    assert!(msg(&[shard(1, 2, 1), other]).contains("other.json belongs to run \"run-b\""));
    let mut plain = shard(2, 2, 2);
    plain.run.shard = None;
    assert!(msg(&[shard(1, 2, 1), plain]).contains("shard-2.json is not a shard"));
    let mut longer = shard(2, 2, 2);
    longer.run.config.duration_s += 5.0;
    let e = msg(&[shard(1, 2, 1), longer]);
    assert!(
        e.contains("shard-2.json was run with another configuration") && e.contains("duration_s"),
        "{e}"
    );
    let e = msg(&[shard(1, 2, 1), shard(3, 2, 2)]);
    assert!(e.contains("shard 3 of 2"), "{e}");
    let e = msg(&[shard(1, 2, 1), shard(2, 3, 2)]);
    assert!(e.contains("shard-2.json is shard 2 of 3"), "{e}");
    let mut old = shard(2, 2, 2);
    old.run.schema_version -= 1;
    assert!(msg(&[shard(1, 2, 1), old]).contains("schema version"));
    let merged = merge(&[shard(1, 2, 1), shard(2, 2, 2)]).expect("merges");
    let again = ShardRun {
        name: "merged.json".into(),
        run: merged,
    };
    assert!(msg(&[again]).contains("merged.json is already a merged run"));
    let mut bare = shard(2, 2, 2);
    if let Some(l) = bare.run.latency.as_mut() {
        l.service_histogram = None;
    }
    let e = msg(&[shard(1, 2, 1), bare]);
    assert!(
        e.contains("shard-2.json: service_histogram has no histogram"),
        "{e}"
    );
}

#[test]
fn a_saturated_or_short_shard_is_flagged() {
    let mut slow = shard(2, 2, 2);
    if let Some(l) = slow.run.latency.as_mut() {
        l.requests /= 2;
        if let Some(c) = l.cpu.as_mut() {
            c.generator_percent_of_machine = 97.0;
        }
    }
    let merged = merge(&[shard(1, 2, 1), slow]).expect("merges");
    let flags = &merged.merged_from[1].flags;
    assert!(
        flags.iter().any(|f| f.contains("generator saturated")),
        "{flags:?}"
    );
    assert!(
        flags.iter().any(|f| f.contains("of its share")),
        "{flags:?}"
    );
    assert!(merged.merged_from[0].flags.is_empty());
    // The report shows the shards, the flagged one marked.
    let html = crate::html::render(&merged);
    assert!(html.contains("<section id=\"shards\">"));
    assert!(html.contains("class=\"flagged\"") && html.contains("generator saturated"));
    let one = crate::html::render(&shard(1, 2, 1).run);
    assert!(one.contains("<section id=\"shard\">") && one.contains("Shard 1 of 2"));
}

#[test]
fn a_shard_whose_clock_is_off_is_flagged() {
    let with_clock = |index, offset_ms| {
        let mut s = shard(index, 3, u64::from(index));
        if let Some(f) = s.run.shard.as_mut() {
            f.clock = Some(crate::run::ClockOffset {
                offset_ms,
                error_ms: 15.0,
            });
        }
        s
    };
    let merged = merge(&[
        with_clock(1, 3.0),
        with_clock(2, -8.0),
        with_clock(3, 640.0),
    ])
    .expect("merges");
    let flagged: Vec<u32> = merged
        .merged_from
        .iter()
        .filter(|s| s.flags.iter().any(|f| f.contains("its clock is")))
        .map(|s| s.index)
        .collect();
    assert_eq!(flagged, [3]);
}

#[test]
fn shards_that_did_not_run_together_are_refused() {
    let mut late = shard(2, 2, 2);
    // 10 s windows, the second starting 8 s after the first: 2 s together.
    if let Some(l) = late.run.latency.as_mut() {
        l.started_unix_ms = l.started_unix_ms.map(|t| t + 8_000);
    }
    let e = merge(&[shard(1, 2, 1), late])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("shard-2.json") && e.contains("did not run together"),
        "{e}"
    );
}

#[test]
fn an_uneven_share_of_users_is_no_short_shard() {
    // The closed loop with 7 users over 4 shards: 2, 2, 2 and 1 user.
    let shards: Vec<ShardRun> = (1..=4u32)
        .map(|i| {
            let mut s = shard(i, 4, u64::from(i));
            let users = if i == 4 { 1 } else { 2 };
            if let Some(l) = s.run.latency.as_mut() {
                l.setup.target_rps = None;
                l.setup.users = users;
                l.requests = 1000 * users as u64;
            }
            s
        })
        .collect();
    let merged = merge(&shards).expect("merges");
    assert!(
        merged.merged_from.iter().all(|s| s.flags.is_empty()),
        "{:?}",
        merged.merged_from
    );
}

#[test]
fn shards_of_another_rate_or_user_count_are_refused() {
    let msg = |shards: &[ShardRun]| {
        merge(shards)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let mut other = shard(2, 2, 2);
    other.run.config.users += 1;
    assert!(msg(&[shard(1, 2, 1), other]).contains("users differs"));
    let mut faster = shard(2, 2, 2);
    if let Some(l) = faster.run.latency.as_mut() {
        l.setup.target_rps = Some(9_999.0);
    }
    let e = msg(&[shard(1, 2, 1), faster]);
    assert!(e.contains("latency differs"), "{e}");
}
