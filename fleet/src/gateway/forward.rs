//! Sending a request to a member of a group's pool: the balancer picks the member, the
//! outcome is recorded for it, and a request that could not be answered is sent once more to
//! another member when that is safe ([`Resend`]). Also the requests the gateway composes
//! itself (a group's `tools/list`), asked of one member and cached for the group.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::Value;

use super::{
    balance::{FailureKind, Lease, Outcome},
    group::{Group, GroupTools},
    member,
    reply::{jsonrpc_error, outcome, relay, upstream_failed},
    restate,
    routing::{Gateway, rng_word},
    upstream::UpstreamError,
};
use crate::wire;

/// The JSON-RPC id of the `tools/list` the gateway sends a member itself.
const TOOLS_LIST_ID: u64 = 1;

/// A group's tools, asked of one of its members the first time.
pub(super) async fn group_tools(gw: &Gateway, group: &Group) -> Result<Arc<GroupTools>, String> {
    group
        .tools
        .get_or_try_init(|| async {
            let mut tried: Vec<String> = Vec::new();
            for _ in 0..3 {
                let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
                let Some(lease) = group.pool.pick(&exclude, Instant::now(), rng_word(gw)) else {
                    break;
                };
                tried.push(lease.id().to_string());
                let body = wire::stateless_request(TOOLS_LIST_ID, "tools/list");
                let headers = restate::stateless_headers("tools/list");
                let Some((answer, _)) = exchange(
                    gw,
                    lease,
                    &headers,
                    Bytes::from(body.to_string()),
                    TOOLS_LIST_ID,
                )
                .await
                else {
                    continue;
                };
                if let Some(tools) = answer.pointer("/result/tools").and_then(Value::as_array) {
                    return Ok(Arc::new(GroupTools::new(tools.clone())));
                }
            }
            Err("no member answered tools/list".to_string())
        })
        .await
        .cloned()
}

/// Sends a request the gateway composed (JSON-RPC id `id`) to the lease's member and reads
/// the whole answer; `None` when that failed (the lease records why).
async fn exchange(
    gw: &Gateway,
    lease: Lease,
    headers: &HeaderMap,
    body: Bytes,
    id: u64,
) -> Option<(Value, StatusCode)> {
    let started = Instant::now();
    let backend = gw.backend(lease.id())?;
    let response = match member::send(gw, &backend, headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            lease.finish(outcome(e), started.elapsed(), Instant::now());
            return None;
        }
    };
    let status = response.status();
    let text = match gw.upstream.read(response.into_body()).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            lease.finish(outcome(e), started.elapsed(), Instant::now());
            return None;
        }
    };
    match wire::message_with_id(&text, id) {
        Some(v) if !status.is_server_error() => {
            lease.finish(Outcome::Success, started.elapsed(), Instant::now());
            Some((v, status))
        }
        _ => {
            let kind = if status.is_server_error() {
                FailureKind::Status5xx
            } else {
                FailureKind::BadResponse
            };
            lease.finish(Outcome::Failure(kind), started.elapsed(), Instant::now());
            None
        }
    }
}

/// Which requests [`to_group`] may send a second time, to another member.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resend<'a> {
    /// Whenever the first member could not answer: an `initialize` has no effect worth
    /// keeping.
    Always,
    /// A `tools/call` of this tool: it may have had effects, so only when it never reached its
    /// server, or when the group's servers annotate the tool read-only or idempotent. Counted
    /// in the group's retries.
    Call(&'a str),
}

/// Sends `body` to a member of `group` chosen by the balancer and relays the answer, its
/// outcome recorded for the balancer; once more to another member when the first could not
/// answer and `resend` allows. Gives the member and its answer, or the error to send back.
pub(super) async fn to_group(
    gw: &Gateway,
    group_name: &str,
    group: &Group,
    headers: &HeaderMap,
    body: &Bytes,
    id: &Value,
    resend: Resend<'_>,
) -> Result<(String, Response), Response> {
    let mut tried: Option<String> = None;
    for _ in 0..2 {
        // A resend avoids the member that failed, and its node's other servers (a standalone
        // gateway's node that failed one call has likely failed whole), unless no other node
        // has a member: then another server of the same node, as inside one fleet.
        let shunned = tried
            .as_deref()
            .map_or_else(Vec::new, |t| gw.with_node_siblings(t));
        let exclude: Vec<&str> = shunned.iter().map(String::as_str).collect();
        let failed: Vec<&str> = tried.iter().map(String::as_str).collect();
        let picked = group
            .pool
            .pick(&exclude, Instant::now(), rng_word(gw))
            .or_else(|| {
                (exclude.len() > failed.len())
                    .then(|| group.pool.pick(&failed, Instant::now(), rng_word(gw)))
                    .flatten()
            });
        let Some(lease) = picked else {
            break;
        };
        let Some(backend) = gw.backend(lease.id()) else {
            break;
        };
        let server = lease.id().to_string();
        let started = Instant::now();
        match member::send(gw, &backend, headers, body).await {
            Ok(response) => {
                let server_error = response.status().is_server_error();
                let relayed = relay(&server, response, body).await;
                let outcome = match (&relayed, server_error) {
                    (Err(_), _) => Outcome::Failure(FailureKind::BadResponse),
                    (Ok(_), true) => Outcome::Failure(FailureKind::Status5xx),
                    (Ok(_), false) => Outcome::Success,
                };
                lease.finish(outcome, started.elapsed(), Instant::now());
                return relayed.map(|answer| (server, answer));
            }
            Err(e) => {
                lease.finish(outcome(e), started.elapsed(), Instant::now());
                // Too large an answer would be as large from any member.
                let again = e != UpstreamError::TooLarge
                    && match resend {
                        Resend::Always => true,
                        Resend::Call(tool) => {
                            e.never_sent() || Box::pin(retry_safe(gw, group, tool)).await
                        }
                    };
                if !again || tried.is_some() {
                    return Err(upstream_failed(&server, e, body));
                }
                if let Resend::Call(_) = resend {
                    group.retries.fetch_add(1, Ordering::Relaxed);
                }
                tried = Some(server);
            }
        }
    }
    Err(jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id.clone(),
        -32603,
        &format!("no healthy server in group {group_name:?}"),
    ))
}

/// Whether the group's servers annotate `tool` read-only or idempotent (asking them once, if
/// the gateway has not yet).
async fn retry_safe(gw: &Gateway, group: &Group, tool: &str) -> bool {
    group_tools(gw, group)
        .await
        .is_ok_and(|t| t.retry_safe.contains(tool))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::{net::SocketAddr, time::Duration};

    use http_body_util::BodyExt as _;
    use serde_json::json;

    use super::*;
    use crate::{
        gateway::{
            backend::{Backend, Directory},
            session::SessionKey,
            upstream::Upstream,
        },
        testing::CannedServer,
    };

    fn gateway(member: SocketAddr, max_answer: usize) -> Gateway {
        let backend = Backend {
            id: "security-0000".into(),
            group: "security".into(),
            addr: member,
            local: None,
        };
        Gateway::new(
            Directory::new([backend]),
            Upstream::new(Duration::from_secs(2)).with_max_answer(max_answer),
            SessionKey::from_bytes([7; 32]),
        )
    }

    /// A `tools/call` of `scan_iac` (id 7) sent to the security group.
    async fn call(gw: &Gateway) -> Result<(String, Response), Response> {
        let body = Bytes::from(
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "scan_iac", "arguments": {}}})
            .to_string(),
        );
        let group = &gw.groups["security"];
        let call = Resend::Call("scan_iac");
        to_group(
            gw,
            "security",
            group,
            &HeaderMap::new(),
            &body,
            &json!(7),
            call,
        )
        .await
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused_without_ejecting_its_server() {
        // A healthy member whose answer (100 bytes) is over a 64-byte limit, as a 65 MiB
        // answer is over the real one: a client asked for too much, the server is fine.
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n\
             {{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{{\"text\":\"{}\"}}}}",
            "x".repeat(100 - 45)
        );
        let server = CannedServer::start(100, answer.leak()).await.unwrap();
        let gw = gateway(server.addr(), 64);
        let group = &gw.groups["security"];
        for _ in 0..5 {
            let refused = call(&gw).await.unwrap_err();
            assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
            let text = refused.into_body().collect().await.unwrap().to_bytes();
            let error: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(error["id"], 7);
            let message = error["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("larger than the gateway's limit"),
                "{message}"
            );
        }
        // Asked once per call (not again elsewhere), and counted as answers, not failures.
        assert_eq!(server.requests().len(), 5);
        let member = &group.pool.snapshot()[0];
        assert_eq!(member.failures_total, 0);
        assert!(!member.ejected);
        assert_eq!(member.successes_total, 5);

        // The same answer under the limit is passed on.
        let gw = gateway(server.addr(), 1024);
        let (_, answer) = call(&gw).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_resend_avoids_the_failed_members_whole_node() {
        // Node a's ten servers are gone with their node (connections refused), node b's one
        // answers: a call that first lands on node a is sent again to node b, never to
        // another of node a's servers.
        let body = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let good = CannedServer::start(100, answer.leak()).await.unwrap();
        let dead = crate::testing::closed_port().unwrap();
        let member = |id: String, addr| Backend {
            id,
            group: "security".into(),
            addr,
            local: None,
        };
        let mut backends: Vec<Backend> = (0..10)
            .map(|i| member(format!("a~security-{i:04}"), dead))
            .collect();
        backends.push(member("b~security-0000".into(), good.addr()));
        let gw = Gateway::new(
            Directory::new(backends),
            Upstream::new(Duration::from_secs(2)),
            SessionKey::from_bytes([7; 32]),
        );
        for _ in 0..5 {
            let (server, answer) = call(&gw).await.expect("node b answers");
            assert_eq!(server, "b~security-0000");
            assert_eq!(answer.status(), StatusCode::OK);
        }
        // With no other node in the group, the resend goes to another server of the same one.
        let only_a = Gateway::new(
            Directory::new([
                member("a~security-0000".into(), dead),
                member("a~security-0001".into(), good.addr()),
            ]),
            Upstream::new(Duration::from_secs(2)),
            SessionKey::from_bytes([7; 32]),
        );
        for _ in 0..5 {
            let (server, _) = call(&only_a)
                .await
                .expect("the node's other server answers");
            assert_eq!(server, "a~security-0001");
        }
        // Inside one fleet (no node in the ids) a resend avoids the failed server alone.
        assert_eq!(gw.with_node_siblings("security-0000"), ["security-0000"]);
        assert_eq!(gw.with_node_siblings("a~security-0003").len(), 10);
    }
}
