//! Preparation (not measured): finds the servers offering the memory tools, opens a
//! connection to each with a `memory_version` call, and learns the fleet's isolation mode.

use std::sync::{Mutex, atomic::AtomicU64};

use futures::StreamExt as _;
use serde_json::json;

use crate::{
    mcp::ErrorClass, scenario::context::Context, target::TargetSpec, transport::http::HttpClient,
};

use super::{
    memory::{payload, version_of},
    pool::{Client, PREP_CONCURRENCY, Pool},
};

/// Tools a server must offer for the sync scenario (the memory server's, plus ours).
pub const MEMORY_TOOLS: [&str; 3] = ["create_entities", "open_nodes", "memory_version"];

/// Everything ready for the load.
pub(super) struct Prepared {
    pub(super) pool: Pool,
    /// Targets not taking part.
    pub(super) left_out: usize,
    /// Indexes (into the pool) of the servers offering `memory_history` / `delete_entities`.
    pub(super) history_servers: Vec<usize>,
    pub(super) delete_servers: Vec<usize>,
}

/// Finds the servers offering the memory tools and opens a connection to each with a
/// `memory_version` call; or says why the scenario cannot run.
pub(super) async fn prepare(cx: &Context<'_>) -> Result<Prepared, String> {
    let settings = &cx.settings;
    let listed: Vec<(usize, Result<Vec<String>, ErrorClass>)> =
        futures::stream::iter(cx.targets.iter().enumerate())
            .map(|(i, t)| async move {
                let names = match HttpClient::new(&t.url, settings, t.version) {
                    Ok(mut client) => {
                        let names = client.tool_names().await;
                        client.close().await;
                        names
                    }
                    Err(class) => Err(class),
                };
                (i, names)
            })
            .buffer_unordered(PREP_CONCURRENCY)
            .take_until(cx.stop.cancelled())
            .collect()
            .await;
    let mut offering = Vec::new();
    let mut lacking: Option<(usize, Vec<&str>)> = None;
    let mut unlisted: Option<(usize, ErrorClass)> = None;
    for (i, names) in &listed {
        match names {
            Ok(names) => {
                let missing: Vec<&str> = MEMORY_TOOLS
                    .iter()
                    .copied()
                    .filter(|t| !names.iter().any(|n| n == t))
                    .collect();
                if missing.is_empty() {
                    let has = |tool: &str| names.iter().any(|n| n == tool);
                    offering.push((*i, has("memory_history"), has("delete_entities")));
                } else if lacking.as_ref().is_none_or(|(j, _)| i < j) {
                    lacking = Some((*i, missing));
                }
            }
            Err(class) => {
                if unlisted.as_ref().is_none_or(|(j, _)| i < j) {
                    unlisted = Some((*i, *class));
                }
            }
        }
    }
    offering.sort_unstable();
    if offering.is_empty() {
        let all = cx.targets.len();
        let prefix = if all > 1 {
            format!("none of the {all} targets offers the memory tools: ")
        } else {
            String::new()
        };
        return Err(match (lacking, unlisted) {
            (Some((i, missing)), _) => format!(
                "{prefix}the target {} lacks the memory tools ({} missing): the sync scenario \
                 needs servers with a shared memory (the memory server's tools plus \
                 memory_version and minVersion reads)",
                cx.targets[i].url,
                missing.join(", ")
            ),
            (None, Some((i, class))) => format!(
                "{prefix}could not list the tools of {} ({}: {})",
                cx.targets[i].url,
                class.name(),
                class.describe()
            ),
            (None, None) => "interrupted before the servers' tools were listed".into(),
        });
    }
    // One connection per server, opened by a call that shows the server keeps the contract.
    type Ready = (usize, bool, bool, Result<(Client, Option<String>), String>);
    let ready: Vec<Ready> = futures::stream::iter(offering)
        .map(|(i, history, delete)| async move {
            let t = &cx.targets[i];
            let client = match Client::new(t, settings) {
                Err(class) => Err(class.name().to_string()),
                Ok(mut c) => {
                    let answer = c.call("memory_version", json!({})).await;
                    match answer.outcome {
                        Ok(r) if payload(&r).and_then(|p| version_of(&p)).is_some() => {
                            let node = payload(&r).and_then(|p| {
                                p.get("node").and_then(|n| n.as_str()).map(String::from)
                            });
                            Ok((c, node))
                        }
                        Ok(_) => Err("memory_version answered without a version".into()),
                        Err(f) => Err(format!("memory_version failed: {}", f.describe())),
                    }
                }
            };
            (i, history, delete, client)
        })
        .buffer_unordered(PREP_CONCURRENCY)
        .take_until(cx.stop.cancelled())
        .collect()
        .await;
    let mut ready = ready;
    ready.sort_by_key(|r| r.0);
    let mut targets = Vec::new();
    let mut nodes = Vec::new();
    let mut idle = Vec::new();
    let (mut history_servers, mut delete_servers) = (Vec::new(), Vec::new());
    let mut refused = None;
    for (i, history, delete, client) in ready {
        match client {
            Ok((c, node)) => {
                nodes.push(node);
                if history {
                    history_servers.push(targets.len());
                }
                if delete {
                    delete_servers.push(targets.len());
                }
                targets.push(cx.targets[i].clone());
                idle.push(Mutex::new(vec![c]));
            }
            Err(why) => {
                if refused.is_none() {
                    refused = Some(format!("{}: {why}", cx.targets[i].url));
                }
            }
        }
    }
    if targets.is_empty() {
        return Err(format!(
            "no server offering the memory tools answered memory_version (e.g. {})",
            refused.unwrap_or_else(|| "interrupted".into())
        ));
    }
    Ok(Prepared {
        left_out: cx.targets.len() - targets.len(),
        pool: Pool {
            targets,
            distinct_nodes: super::pool::distinct_nodes(&nodes),
            nodes,
            idle,
            settings: settings.clone(),
            opened: AtomicU64::new(0),
        },
        history_servers,
        delete_servers,
    })
}

/// The isolation mode of the fleet measured, where known: the embedded fleet's, or what the
/// admin APIs among the targets report.
pub(super) async fn isolation(cx: &Context<'_>) -> Option<String> {
    if let Some(embedded) = cx.fleet {
        return Some(embedded.fleet.spec().isolation.name().to_string());
    }
    let client = reqwest::Client::builder()
        .timeout(cx.args.timeout)
        .no_proxy()
        .build()
        .ok()?;
    let mut seen = Vec::new();
    for spec in &cx.args.targets {
        if let TargetSpec::Admin(admin) | TargetSpec::Root(admin) = spec
            && let Ok(url) = admin.join("servers")
            && let Ok(response) = client.get(url).send().await
            && let Ok(view) = response.json::<fleet::FleetView>().await
            && !seen.contains(&view.isolation.name())
        {
            seen.push(view.isolation.name());
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop().map(String::from),
        _ => Some(seen.join("+")),
    }
}
