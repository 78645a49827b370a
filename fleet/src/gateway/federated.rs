//! The federated face, `/mcp`: the fleet as one server, to stateless (2026-07-28) requests and
//! in the gateway's own sessions (2025-11-25 and older) alike. `tools/list` lists every group's
//! tools under a stable prefix (`community__echo`), a `tools/call` goes to a member of that
//! group's pool with the tool's own name restored (a session's call restated as a stateless one,
//! [`super::restate`]), and `initialize`, `server/discover`, `ping` and `logging/setLevel` are
//! answered by the gateway ([`super::own`]); `initialize` with `?group=NAME` opens a session on
//! one server instead ([`super::session_route`]). A stateless call's body is read once, without
//! building a tree, and forwarded with only the tool name edited.

use std::{sync::atomic::Ordering, time::Instant};

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    forward::{Resend, group_tools, to_group},
    own,
    reply::{jsonrpc_error, result},
    restate,
    routing::Gateway,
    session,
    session_route::start_session,
};
use crate::wire::{METHOD_HEADER, NAME_HEADER, SESSION_HEADER, Version};

/// Which requests a `/mcp` request is one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Face {
    /// Without a session: 2026-07-28 requests, or the `initialize` that opens a session.
    Stateless,
    /// In one of the gateway's own sessions, of this protocol version.
    Session(Version),
}

/// The separator between a group and a tool name in federated tool names.
pub const PREFIX_SEPARATOR: &str = "__";

/// `?group=` of `/mcp`: the group whose pool a new session is placed in.
#[derive(Debug, Default, Deserialize)]
pub struct McpQuery {
    pub(super) group: Option<String>,
}

/// A request to the fleet as one server: stateless, the `initialize` of a session, or a
/// request in one of the gateway's own sessions.
pub(super) async fn federated(
    gw: Gateway,
    query: McpQuery,
    headers: HeaderMap,
    body: Bytes,
    face: Face,
) -> Response {
    // What no server would take is refused here, as the servers do: a batch, another JSON-RPC
    // version, an id or params of the wrong type.
    if let Err(bad) = crate::wire::check_message(&body) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            bad.code(),
            &bad.to_string(),
        );
    }
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
    if peek.id.is_none() && !method.is_empty() {
        // A notification (`notifications/initialized`, `notifications/cancelled`, ...):
        // nothing to answer, nothing held that it could change.
        return StatusCode::ACCEPTED.into_response();
    }
    let request = Request {
        method,
        id,
        call,
        params: peek.params.as_ref(),
        face,
    };
    let response = dispatch(&gw, query, headers, &body, request).await;
    let stats = gw.calls.get(group_label, method, tool_label);
    stats.latency.record(started.elapsed());
    if response.status().is_success() {
        stats.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
    }
    response
}

/// What [`dispatch`] needs of a request besides its body and headers.
struct Request<'a> {
    method: &'a str,
    id: Value,
    call: ToolName<'a>,
    params: Option<&'a PeekParams<'a>>,
    face: Face,
}

/// Answers one request of `/mcp` by its method.
async fn dispatch(
    gw: &Gateway,
    query: McpQuery,
    headers: HeaderMap,
    body: &Bytes,
    request: Request<'_>,
) -> Response {
    let Request {
        method,
        id,
        call,
        params,
        face,
    } = request;
    match method {
        "tools/call" => call_tool(gw, headers, body, call, id, face).await,
        // Boxed, as the other paths that are not a call's: held inline they would make every
        // request's future (copied about on each call) their size.
        "tools/list" => {
            let cursor = params.and_then(|p| p.cursor.as_deref());
            Box::pin(list_tools(gw, id, cursor, face)).await
        }
        "initialize" if face == Face::Stateless && query.group.is_some() => {
            Box::pin(start_session(
                gw,
                query.group.as_deref(),
                headers,
                body.clone(),
                id,
            ))
            .await
        }
        "initialize" if face == Face::Stateless => {
            let asked = params.and_then(|p| p.protocol_version.as_deref());
            open_own_session(gw, id, asked)
        }
        "initialize" => jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            "this session is already initialized; send initialize without Mcp-Session-Id",
        ),
        "server/discover" => result(id, own::discover_result()),
        // Nothing to change: the gateway logs nothing to its clients, and members are asked
        // statelessly, per call.
        "ping" | "logging/setLevel" => result(id, json!({})),
        "" => jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, "no method"),
        other => jsonrpc_error(
            StatusCode::OK,
            id,
            -32601,
            &format!("method {other:?} is not offered through the gateway's /mcp"),
        ),
    }
}

/// `initialize` on `/mcp`: a session the gateway holds, in the version negotiated with the
/// client, its id signed and stateless ([`session::issue_own`]).
fn open_own_session(gw: &Gateway, id: Value, asked: Option<&str>) -> Response {
    let version = own::negotiate(asked);
    let session = session::issue_own(&gw.key, version)
        .ok()
        .and_then(|s| HeaderValue::from_str(&s).ok());
    let Some(session) = session else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            id,
            -32603,
            "could not draw a session id",
        );
    };
    let mut answer = result(id, own::initialize_result(version));
    answer.headers_mut().insert(SESSION_HEADER, session);
    answer
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
    /// Of `tools/list`.
    #[serde(borrow, default)]
    pub(super) cursor: Option<std::borrow::Cow<'a, str>>,
    /// Of `initialize`.
    #[serde(borrow, default, rename = "protocolVersion")]
    pub(super) protocol_version: Option<std::borrow::Cow<'a, str>>,
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

/// Every group's tools under `{group}__{tool}`, a page from `cursor`. A group without members
/// lists nothing (its tools come back when a member does).
async fn list_tools(gw: &Gateway, id: Value, cursor: Option<&str>, face: Face) -> Response {
    let mut tools = Vec::new();
    for (name, group) in gw.groups.iter() {
        if group.pool.is_empty() {
            continue;
        }
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
    match own::tools_page(tools, cursor, own::TOOLS_PAGE) {
        Ok(mut page) => {
            if face == Face::Stateless {
                own::stateless_list(&mut page);
            }
            result(id, page)
        }
        Err(bad) => jsonrpc_error(StatusCode::OK, id, -32602, &bad.to_string()),
    }
}

/// `tools/call` of `{group}__{tool}`: to a member of the group's pool, the tool's own name
/// restored; once more to another member when the first could not be reached.
async fn call_tool(
    gw: &Gateway,
    headers: HeaderMap,
    body: &Bytes,
    name: ToolName<'_>,
    id: Value,
    face: Face,
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
    let (body, headers) = match face {
        Face::Stateless => {
            let mut headers = headers;
            restate::set_tool_name(&mut headers, tool);
            (splice(body, raw, tool), headers)
        }
        Face::Session(_) => (
            restate::call_body(body, tool),
            restate::call_headers(headers, tool),
        ),
    };
    let Some(body) = body else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32700,
            "cannot edit the request",
        );
    };
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
