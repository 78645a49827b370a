//! The federated face, `/mcp` without a session: the fleet as one 2026-07-28 server.
//! `tools/list` lists every group's tools under a stable prefix (`community__echo`), a
//! `tools/call` goes to a member of that group's pool with the tool's own name restored, and an
//! `initialize` opens a session ([`super::session_route`]). The body is read once, without
//! building a tree, and forwarded with only the tool name edited.

use std::{sync::atomic::Ordering, time::Instant};

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    forward::{Resend, group_tools, to_group},
    reply::{jsonrpc_error, result},
    routing::Gateway,
    session_route::{in_session, start_session},
};
use crate::wire::{METHOD_HEADER, NAME_HEADER, SESSION_HEADER};

/// The separator between a group and a tool name in federated tool names.
pub const PREFIX_SEPARATOR: &str = "__";

/// `?group=` of `/mcp`: the group whose pool a new session is placed in.
#[derive(Debug, Default, Deserialize)]
pub(super) struct McpQuery {
    pub(super) group: Option<String>,
}

/// `/mcp`: requests of a session go to its server; anything else is federated.
pub(super) async fn mcp(
    State(gw): State<Gateway>,
    Query(query): Query<McpQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(id) = headers.get(SESSION_HEADER).cloned() {
        return in_session(&gw, &id, method, headers, body).await;
    }
    match method {
        // Boxed: a request of a session (above) need not carry the federated path's size.
        Method::POST => Box::pin(federated(gw, query, headers, body)).await,
        // No session, so no stream to resume or session to end.
        Method::GET | Method::DELETE => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "GET and DELETE on /mcp need an Mcp-Session-Id\n",
        )
            .into_response(),
        _ => (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response(),
    }
}

/// A stateless request to the fleet as one server, or the `initialize` of a session.
async fn federated(gw: Gateway, query: McpQuery, headers: HeaderMap, body: Bytes) -> Response {
    // One pass over the body that builds no tree: the id, the method and where the tool name
    // sits, so a call is forwarded with only its name edited.
    let Ok(peek) = serde_json::from_slice::<Peek<'_>>(&body) else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32700,
            "the body is not a JSON-RPC request object",
        );
    };
    let id = peek.id();
    let method = peek.method.as_deref().unwrap_or_default();
    if let Some(said) = headers.get(METHOD_HEADER).and_then(|v| v.to_str().ok())
        && said != method
        && !method.is_empty()
    {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            &format!("the Mcp-Method header says {said:?} but the body's method is {method:?}"),
        );
    }
    let started = Instant::now();
    // A call's tool name, read once here for the metrics' labels and for routing.
    let raw_name = peek.params.as_ref().and_then(|p| p.name);
    let name: Option<String> = (method == "tools/call")
        .then(|| raw_name.and_then(|raw| serde_json::from_str(raw.get()).ok()))
        .flatten();
    let (group_label, tool_label) = match (method, name.as_deref()) {
        ("tools/call", Some(name)) => match name.split_once(PREFIX_SEPARATOR) {
            Some((g, t)) if gw.groups.contains_key(g) => (g, t),
            _ => ("unknown", "unknown"),
        },
        ("tools/call", None) if raw_name.is_some() => ("unknown", "unknown"),
        _ => ("", ""),
    };
    let call = ToolName {
        raw: raw_name,
        text: name.as_deref(),
    };
    let response = dispatch(&gw, query, headers, &body, method, call, id).await;
    let stats = gw.calls.get(group_label, method, tool_label);
    stats.latency.record(started.elapsed());
    if response.status().is_success() {
        stats.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
    }
    response
}

/// Answers one request of `/mcp` by its method.
async fn dispatch(
    gw: &Gateway,
    query: McpQuery,
    headers: HeaderMap,
    body: &Bytes,
    method: &str,
    name: ToolName<'_>,
    id: Value,
) -> Response {
    if method == "initialize" {
        // Boxed, as the other paths that are not a call's: once per session, and held inline
        // they would make every request's future (copied about on each call) their size.
        return Box::pin(start_session(
            gw,
            query.group.as_deref(),
            headers,
            body.clone(),
            id,
        ))
        .await;
    }
    match method {
        "tools/list" => Box::pin(list_tools(gw, id)).await,
        "tools/call" => call_tool(gw, headers, body, name, id).await,
        "ping" => result(id, json!({})),
        "" => jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, "no method"),
        other => jsonrpc_error(
            StatusCode::OK,
            id,
            -32601,
            &format!("method {other:?} is not offered through the gateway's /mcp"),
        ),
    }
}

/// The `params.name` of a `tools/call`: where it sits in the body, and its text when it is a
/// string.
#[derive(Debug, Clone, Copy)]
struct ToolName<'a> {
    pub(super) raw: Option<&'a serde_json::value::RawValue>,
    pub(super) text: Option<&'a str>,
}

/// What the gateway reads of a request body, borrowed from it.
#[derive(Debug, Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    pub(super) method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) params: Option<PeekParams<'a>>,
}

#[derive(Debug, Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow, default)]
    pub(super) name: Option<&'a serde_json::value::RawValue>,
}

impl Peek<'_> {
    pub(super) fn id(&self) -> Value {
        self.id
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    }
}

/// `body` with the JSON string at `raw` (a slice of it) replaced by `replacement`, quoted.
fn splice(body: &[u8], raw: &serde_json::value::RawValue, replacement: &str) -> Option<Bytes> {
    let start = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start + raw.get().len();
    if end > body.len() {
        return None;
    }
    let quoted = serde_json::to_string(replacement).ok()?;
    let mut out = Vec::with_capacity(body.len() - (end - start) + quoted.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(Bytes::from(out))
}

/// Every group's tools under `{group}__{tool}`.
async fn list_tools(gw: &Gateway, id: Value) -> Response {
    let mut tools = Vec::new();
    for (name, group) in gw.groups.iter() {
        match group_tools(gw, group).await {
            Ok(group_tools) => tools.extend(group_tools.list.iter().filter_map(|t| {
                let mut t = t.clone();
                let tool = t.get("name")?.as_str()?.to_string();
                t["name"] = Value::String(format!("{name}{PREFIX_SEPARATOR}{tool}"));
                Some(t)
            })),
            Err(why) => {
                return jsonrpc_error(
                    StatusCode::BAD_GATEWAY,
                    id,
                    -32603,
                    &format!("group {name}: {why}"),
                );
            }
        }
    }
    result(id, json!({"tools": tools}))
}

/// `tools/call` of `{group}__{tool}`: to a member of the group's pool, the tool's own name
/// restored; once more to another member when the first could not be reached.
async fn call_tool(
    gw: &Gateway,
    headers: HeaderMap,
    body: &Bytes,
    name: ToolName<'_>,
    id: Value,
) -> Response {
    let Some(raw) = name.raw else {
        return jsonrpc_error(StatusCode::OK, id, -32602, "tools/call without params.name");
    };
    let Some(name) = name.text else {
        return jsonrpc_error(StatusCode::OK, id, -32602, "params.name is not a string");
    };
    let Some((group_name, tool)) = name.split_once(PREFIX_SEPARATOR) else {
        return jsonrpc_error(
            StatusCode::OK,
            id,
            -32602,
            &format!("unknown tool {name:?}: gateway tools are named group{PREFIX_SEPARATOR}tool"),
        );
    };
    let Some(group) = gw.groups.get(group_name) else {
        return jsonrpc_error(
            StatusCode::OK,
            id,
            -32602,
            &format!("unknown tool {name:?}: no group {group_name:?} behind this gateway"),
        );
    };
    if let Some(said) = headers.get(NAME_HEADER)
        && said.as_bytes() != name.as_bytes()
    {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            &format!("the Mcp-Name header does not match the tool name {name:?}"),
        );
    }
    let Some(body) = splice(body, raw, tool) else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32700,
            "cannot edit the request",
        );
    };
    let mut headers = headers;
    match HeaderValue::from_str(tool) {
        Ok(v) => {
            headers.insert(NAME_HEADER, v);
        }
        Err(_) => {
            headers.remove(NAME_HEADER);
        }
    }
    group.calls.fetch_add(1, Ordering::Relaxed);
    match to_group(
        gw,
        group_name,
        group,
        &headers,
        &body,
        &id,
        Resend::Call(tool),
    )
    .await
    {
        Ok((_, answer)) | Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_id_method_and_where_the_name_sits() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"community__echo","arguments":{}}}"#;
        let peek: Peek<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(peek.id(), json!(7));
        assert_eq!(peek.method.as_deref(), Some("tools/call"));
        let raw = peek.params.as_ref().and_then(|p| p.name).unwrap();
        assert_eq!(raw.get(), "\"community__echo\"");
        let edited = splice(body, raw, "echo").unwrap();
        let v: Value = serde_json::from_slice(&edited).unwrap();
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(v["id"], 7);
        assert_eq!(v["params"]["arguments"], json!({}));
    }

    #[test]
    fn peek_without_an_id_answers_null() {
        let peek: Peek<'_> = serde_json::from_slice(br#"{"method":"ping"}"#).unwrap();
        assert_eq!(peek.id(), Value::Null);
        assert!(peek.params.is_none());
    }

    #[test]
    fn splice_refuses_a_slice_of_another_buffer() {
        let other: Box<serde_json::value::RawValue> = serde_json::from_str("\"x\"").unwrap();
        assert!(splice(b"{}", &other, "y").is_none());
    }
}
