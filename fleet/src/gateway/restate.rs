//! Requests in the stateless (2026-07-28) form members serve: the headers every such request
//! the gateway sends carries, and a call made in one of the gateway's sessions restated in
//! that form: the tool's own name, the stateless client context in `_meta` (the client's own
//! `_meta` keys, such as a progress token, kept), and the stateless headers in place of the
//! session's. And back: a stateless request in the form of a session the gateway holds on a
//! member that speaks only the session eras.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, header},
};
use serde_json::Value;

use crate::wire::{
    ACCEPT_JSON_OR_SSE, CONTEXT_META_PREFIX, Era, METHOD_HEADER, NAME_HEADER,
    PROTOCOL_VERSION_HEADER, SESSION_HEADER, stateless_meta,
};

/// `body` (a `tools/call` of a session) as a stateless call of `tool`; `None` when it is not a
/// JSON object with object params.
pub(super) fn call_body(body: &[u8], tool: &str) -> Option<Bytes> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let params = request.get_mut("params")?.as_object_mut()?;
    params.insert("name".into(), Value::String(tool.to_string()));
    let mut meta = match params.remove("_meta") {
        Some(Value::Object(own)) => own,
        _ => serde_json::Map::new(),
    };
    if let Value::Object(required) = stateless_meta() {
        for (k, v) in required {
            meta.entry(k).or_insert(v);
        }
    }
    params.insert("_meta".into(), Value::Object(meta));
    serde_json::to_vec(&request).ok().map(Bytes::from)
}

/// The headers of a 2026-07-28 request of `method`: what it accepts, its version and method,
/// and its JSON body.
pub(super) fn stateless_headers(method: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_JSON_OR_SSE));
    h.insert(
        PROTOCOL_VERSION_HEADER,
        HeaderValue::from_static(Era::Stateless.version()),
    );
    h.insert(METHOD_HEADER, HeaderValue::from_static(method));
    h
}

/// `Mcp-Name` set to `tool`, or a client's removed when `tool` cannot be a header value.
pub(super) fn set_tool_name(headers: &mut HeaderMap, tool: &str) {
    match HeaderValue::from_str(tool) {
        Ok(v) => {
            headers.insert(NAME_HEADER, v);
        }
        Err(_) => {
            headers.remove(NAME_HEADER);
        }
    }
}

/// The session request's `headers` as a stateless call's: no session id, the stateless
/// version, and the method and tool named for routing.
pub(super) fn call_headers(mut headers: HeaderMap, tool: &str) -> HeaderMap {
    headers.remove(SESSION_HEADER);
    // A HeaderMap extended by another takes the other's values for the names both have.
    headers.extend(stateless_headers("tools/call"));
    set_tool_name(&mut headers, tool);
    headers
}

/// A stateless request `body` as a request in a session: the stateless client context left
/// out of `_meta` (the client's own keys, such as a progress token, kept), `_meta` dropped when
/// nothing is left; and whether it asks for progress notifications (has a progress token).
/// `None` when the body is not a JSON object.
pub(super) fn session_body(body: &[u8]) -> Option<(Bytes, bool)> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let mut progress = false;
    if let Some(params) = request.get_mut("params").and_then(Value::as_object_mut)
        && let Some(Value::Object(meta)) = params.get_mut("_meta")
    {
        meta.retain(|k, _| !k.starts_with(CONTEXT_META_PREFIX));
        progress = meta.contains_key("progressToken");
        if meta.is_empty() {
            params.remove("_meta");
        }
    }
    if !request.is_object() {
        return None;
    }
    let body = serde_json::to_vec(&request).ok()?;
    Some((Bytes::from(body), progress))
}

/// A stateless request's `headers` as those of a request in the session `session` of
/// `version`: the stateless routing headers left out.
pub(super) fn session_headers(
    headers: &HeaderMap,
    session: &HeaderValue,
    version: &HeaderValue,
) -> HeaderMap {
    let mut headers = headers.clone();
    headers.remove(METHOD_HEADER);
    headers.remove(NAME_HEADER);
    headers.insert(SESSION_HEADER, session.clone());
    headers.insert(PROTOCOL_VERSION_HEADER, version.clone());
    headers
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn a_session_call_becomes_a_stateless_one() {
        let body = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"community__echo","arguments":{"text":"hi"},"_meta":{"progressToken":3}}}"#;
        let out: Value = serde_json::from_slice(&call_body(body, "echo").unwrap()).unwrap();
        assert_eq!(out["id"], "a");
        assert_eq!(out["params"]["name"], "echo");
        assert_eq!(out["params"]["arguments"], json!({"text": "hi"}));
        assert_eq!(out["params"]["_meta"]["progressToken"], 3);
        assert_eq!(
            out["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert!(call_body(br#"{"params":[1]}"#, "echo").is_none());
        assert!(call_body(b"nope", "echo").is_none());

        let mut h = HeaderMap::new();
        h.insert(SESSION_HEADER, HeaderValue::from_static("s"));
        h.insert(
            PROTOCOL_VERSION_HEADER,
            HeaderValue::from_static("2025-11-25"),
        );
        let h = call_headers(h, "echo");
        assert!(h.get(SESSION_HEADER).is_none());
        assert_eq!(h[PROTOCOL_VERSION_HEADER], "2026-07-28");
        assert_eq!(h[NAME_HEADER], "echo");
        assert_eq!(h[METHOD_HEADER], "tools/call");
    }

    #[test]
    fn a_stateless_request_becomes_one_in_a_session() {
        let stateless = call_body(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p"}}}"#,
            "echo",
        )
        .unwrap();
        let (out, progress) = session_body(&stateless).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["params"]["_meta"], json!({"progressToken": "p"}));
        assert_eq!(out["params"]["name"], "echo");
        assert!(progress);
        let bare = call_body(br#"{"id":1,"params":{"name":"x"}}"#, "echo").unwrap();
        let (out, progress) = session_body(&bare).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert!(out["params"].get("_meta").is_none());
        assert!(!progress);
        assert!(session_body(b"[1]").is_none());

        let h = session_headers(
            &stateless_headers("tools/call"),
            &HeaderValue::from_static("s1"),
            &HeaderValue::from_static("2025-06-18"),
        );
        assert_eq!(h[SESSION_HEADER], "s1");
        assert_eq!(h[PROTOCOL_VERSION_HEADER], "2025-06-18");
        assert!(h.get(METHOD_HEADER).is_none());
    }
}
