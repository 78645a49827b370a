//! A session-era server's answer in the stateless (2026-07-28) form: a result there names its
//! kind (`"resultType": "complete"`), which session-era results lack and 2026-07-28 clients
//! require (the Python SDK refuses a call's result without it). Clients of the older versions
//! ignore the field, so every answer from a session held on a member is restated so, whoever
//! asked. An event stream is restated event by event as it arrives, so progress notifications
//! before the result still reach the client when they are sent.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde_json::Value;

/// The answer body `body`, JSON (`json`) or an event stream, restated.
pub(super) fn restate(body: Body, json: bool) -> Body {
    if json {
        // Read whole already (`Upstream::send`): the one message is restated when it passes.
        return Body::from_stream(
            body.into_data_stream()
                .map(|chunk| chunk.map(|b| message(&b).unwrap_or(b))),
        );
    }
    let events = futures::stream::unfold(
        (body.into_data_stream(), BytesMut::new(), false),
        |(mut inner, mut pending, mut ended)| async move {
            loop {
                if let Some(end) = event_end(&pending) {
                    let event = pending.split_to(end).freeze();
                    return Some((Ok(event_restated(&event)), (inner, pending, ended)));
                }
                if ended {
                    // What is left has no blank line after it: passed on as it is.
                    return (!pending.is_empty())
                        .then(|| (Ok(pending.split().freeze()), (inner, pending, ended)));
                }
                match inner.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (inner, pending, true))),
                    None => ended = true,
                }
            }
        },
    );
    Body::from_stream(events)
}

/// Where the first event in `buf` ends, past its blank line (`\n\n` or `\r\n\r\n`).
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One event with its `data:` line restated when it carries a result.
fn event_restated(event: &Bytes) -> Bytes {
    let Ok(text) = std::str::from_utf8(event) else {
        return event.clone();
    };
    let mut changed = false;
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\r', '\n']);
            let Some(data) = body.strip_prefix("data:") else {
                return line.to_string();
            };
            match message(data.trim_start().as_bytes()) {
                Some(restated) => {
                    changed = true;
                    let end = &line[body.len()..];
                    format!("data: {}{end}", String::from_utf8_lossy(&restated))
                }
                None => line.to_string(),
            }
        })
        .collect();
    if changed {
        Bytes::from(lines.concat())
    } else {
        event.clone()
    }
}

/// A JSON-RPC result message with `resultType` added; `None` when there is nothing to add
/// (a notification, an error, a result that names its type already, not JSON).
pub(super) fn message(text: &[u8]) -> Option<Bytes> {
    let mut message: Value = serde_json::from_slice(text).ok()?;
    let result = message.get_mut("result")?.as_object_mut()?;
    if result.contains_key("resultType") {
        return None;
    }
    result.insert("resultType".into(), Value::String("complete".into()));
    serde_json::to_vec(&message).ok().map(Bytes::from)
}

/// Whether `text` is a JSON-RPC answer (an id, and a result or an error), not a notification
/// or a request of the server's.
pub(super) fn is_answer(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Answer {
        id: Option<serde::de::IgnoredAny>,
        result: Option<serde::de::IgnoredAny>,
        error: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Answer>(text)
        .is_ok_and(|a| a.id.is_some() && (a.result.is_some() || a.error.is_some()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use http_body_util::BodyExt as _;
    use serde_json::json;

    use super::*;

    async fn text(body: Body) -> String {
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn results_gain_their_type_and_nothing_else_changes() {
        let json_answer = Body::from(r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#);
        let out: Value = serde_json::from_str(&text(restate(json_answer, true)).await).unwrap();
        assert_eq!(out["result"]["resultType"], "complete");
        assert_eq!(out["id"], 7);
        let error = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"x"}}"#;
        assert_eq!(text(restate(Body::from(error), true)).await, error);

        // An event stream split at awkward places: priming event, progress, result.
        let stream = "id: 0\nretry: 3000\ndata: \n\n\
                      data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                      id: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{}}\r\n\r\n";
        let chunks: Vec<Result<Bytes, std::io::Error>> = stream
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let out = text(restate(
            Body::from_stream(futures::stream::iter(chunks)),
            false,
        ))
        .await;
        let messages: Vec<Value> = crate::wire::message_texts(&out)
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(messages.len(), 2, "{out}");
        assert_eq!(messages[0]["method"], "notifications/progress");
        assert!(messages[0].get("resultType").is_none());
        assert_eq!(messages[1]["result"], json!({"resultType": "complete"}));
        assert!(out.starts_with("id: 0\nretry: 3000\ndata: \n\n"), "{out}");
        assert!(out.contains("id: 1\r\ndata: "), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(is_answer(r#"{"id":1,"error":{}}"#));
        assert!(!is_answer(r#"{"id":1,"method":"roots/list"}"#));
        assert!(!is_answer(r#"{"method":"notifications/progress"}"#));
    }
}
