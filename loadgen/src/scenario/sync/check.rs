//! The loss check after the load: every acknowledged probe read back with `minVersion` (the
//! highest acknowledged version) on up to [`CHECK_SERVERS`] servers, one of each group first.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{measure::Target, runfile::SyncCheck};

use super::{
    memory::listed_names,
    pool::Pool,
    tally::{Probe, millis, probe_name},
};

/// Servers the final check reads every probe on (more when there are more groups).
pub(super) const CHECK_SERVERS: usize = 5;

/// Names per `open_nodes` (and `delete_entities`) call of the check and clean-up.
pub(super) const CHECK_CHUNK: usize = 200;

/// `timeoutMs` of a check read (at most half the request timeout).
pub(super) const CHECK_WAIT: Duration = Duration::from_secs(5);

/// How long the check waits, in all, for a server's node to merge another node's writes.
const CROSS_NODE_CHECK_WAIT: Duration = Duration::from_secs(60);

/// Lost probes named in the run file.
pub(super) const LOST_EXAMPLES: usize = 10;

/// Reads every acknowledged probe back on up to [`CHECK_SERVERS`] servers (one of each group
/// first), with `minVersion` the highest acknowledged version.
pub(super) async fn final_check(
    pool: &Pool,
    tag: &str,
    probes: &[Probe],
    rng: &mut fastrand::Rng,
    timeout: Duration,
) -> SyncCheck {
    if probes.is_empty() {
        return SyncCheck {
            skipped: Some("no write was acknowledged".into()),
            ..SyncCheck::default()
        };
    }
    let started = Instant::now();
    // Versions are per node: the newest acknowledged one of each node that wrote.
    let mut newest: HashMap<Option<&str>, u64> = HashMap::new();
    for p in probes {
        if let Some(v) = p.version {
            let node = pool.nodes[p.writer].as_deref();
            let e = newest.entry(node).or_default();
            *e = (*e).max(v);
        }
    }
    let newest = &newest;
    let wait_ms = millis(CHECK_WAIT.min(timeout / 2));
    let servers = check_servers(&pool.targets, rng);
    let names: Vec<String> = probes.iter().map(|p| probe_name(tag, p.k)).collect();
    let per_server = futures::future::join_all(servers.iter().map(|&i| {
        let names = &names;
        async move {
            let mut outcome = ServerCheck::default();
            let here = pool.nodes[i].as_deref();
            // Other nodes' writes: first wait until this server's node has merged them (each
            // wait one request long, for up to CROSS_NODE_CHECK_WAIT in all: replication lags
            // by seconds by design).
            for (&node, &version) in newest {
                if let Some(node) = node.filter(|n| Some(*n) != here) {
                    let args = json!({"names": [], "minVersion": version,
                        "minVersionNode": node, "timeoutMs": wait_ms});
                    let until = Instant::now() + CROSS_NODE_CHECK_WAIT;
                    loop {
                        if pool
                            .call(i, "open_nodes", args.clone())
                            .await
                            .outcome
                            .is_ok()
                        {
                            break;
                        }
                        if Instant::now() >= until {
                            outcome.read_errors += 1;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            let own = newest
                .iter()
                .filter(|(node, _)| node.is_none() || **node == here)
                .map(|(_, v)| *v)
                .max();
            for chunk in names.chunks(CHECK_CHUNK) {
                let mut args = json!({"names": chunk, "timeoutMs": wait_ms});
                if let Some(own) = own {
                    args["minVersion"] = json!(own);
                }
                let mut found = None;
                for _try in 0..2 {
                    let answer = pool.call(i, "open_nodes", args.clone()).await;
                    if let Some(listed) = answer.outcome.ok().as_ref().and_then(listed_names) {
                        found = Some(listed);
                        break;
                    }
                }
                match found {
                    None => outcome.read_errors += 1,
                    Some(listed) => {
                        let (missing, duplicates) = compare(chunk, &listed);
                        outcome.missing.extend(missing);
                        outcome.duplicates += duplicates;
                    }
                }
            }
            (i, outcome)
        }
    }))
    .await;
    let mut lost: Vec<String> = Vec::new();
    let mut seen_lost = HashSet::new();
    let mut check = SyncCheck {
        skipped: None,
        servers: servers
            .iter()
            .map(|&i| pool.targets[i].id.clone())
            .collect(),
        min_version: newest.values().copied().max().unwrap_or(0),
        node_versions: newest
            .iter()
            .filter_map(|(n, v)| Some(((*n)?.to_string(), *v)))
            .collect(),
        acked: probes.len() as u64,
        complete: true,
        ..SyncCheck::default()
    };
    for (i, outcome) in per_server {
        check.read_errors += outcome.read_errors;
        check.duplicates += outcome.duplicates;
        if !outcome.missing.is_empty() {
            check
                .missing_by_server
                .insert(pool.targets[i].id.clone(), outcome.missing.len() as u64);
        }
        for name in outcome.missing {
            if seen_lost.insert(name.clone()) {
                lost.push(name);
            }
        }
    }
    check.complete = check.read_errors == 0;
    check.lost = lost.len() as u64;
    lost.sort_unstable();
    lost.truncate(LOST_EXAMPLES);
    check.lost_examples = lost;
    check.seconds = started.elapsed().as_secs_f64();
    check
}

/// What one server's part of the check found.
#[derive(Default)]
pub(super) struct ServerCheck {
    pub(super) missing: Vec<String>,
    pub(super) duplicates: u64,
    pub(super) read_errors: u64,
}

/// The servers of the final check: one of each group (in random order), then random others
/// up to [`CHECK_SERVERS`]; indexes into `targets`.
pub(super) fn check_servers(targets: &[Target], rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    rng.shuffle(&mut order);
    let mut picked = Vec::new();
    let mut groups = HashSet::new();
    for &i in &order {
        if groups.insert(targets[i].group.as_str()) {
            picked.push(i);
        }
    }
    for &i in &order {
        if picked.len() >= CHECK_SERVERS {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked
}

/// The names of `wanted` absent from `listed`, and how many of `wanted` are listed twice or
/// more.
pub(super) fn compare(wanted: &[String], listed: &[String]) -> (Vec<String>, u64) {
    let mut count: HashMap<&str, u64> = HashMap::new();
    for name in listed {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let missing = wanted
        .iter()
        .filter(|n| !count.contains_key(n.as_str()))
        .cloned()
        .collect();
    let duplicates = wanted
        .iter()
        .filter(|n| count.get(n.as_str()).is_some_and(|c| *c > 1))
        .count() as u64;
    (missing, duplicates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_check_finds_missing_and_duplicated_names() {
        let wanted: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let listed: Vec<String> = ["a", "c", "c", "z"].map(String::from).to_vec();
        let (missing, duplicates) = compare(&wanted, &listed);
        assert_eq!(missing, ["b"]);
        assert_eq!(duplicates, 1);
    }

    #[test]
    fn check_servers_cover_every_group() {
        let target = |i: usize, group: &str| Target {
            id: format!("{group}-{i}"),
            group: group.into(),
            url: format!("http://127.0.0.1:{}/mcp", 8000 + i)
                .parse()
                .unwrap(),
            mix: Arc::new(crate::mix::Mix::list_only()),
            version: crate::mcp::Version::V2026_07_28,
            transport: crate::transport::client::Transport::default(),
        };
        let mut targets: Vec<Target> = (0..20).map(|i| target(i, "community")).collect();
        targets.push(target(20, "security"));
        for seed in 0..50 {
            let picked = check_servers(&targets, &mut fastrand::Rng::with_seed(seed));
            assert_eq!(picked.len(), CHECK_SERVERS);
            assert!(picked.contains(&20), "the one security server");
            let unique: HashSet<_> = picked.iter().collect();
            assert_eq!(unique.len(), picked.len());
        }
        assert_eq!(
            check_servers(&targets[..2], &mut fastrand::Rng::with_seed(1)).len(),
            2
        );
    }
}
