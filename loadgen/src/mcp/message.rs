//! Sorting what a server sends: each JSON-RPC message is the answer to our request (judged
//! here), a notification, a server-to-client request (which gets a well-formed reply so the
//! server does not hang), or something else (an answer to another id). The answer is the
//! message whose id is ours, wherever it sits in a body or stream.

use std::borrow::Cow;

use serde::{Deserialize, de::IgnoredAny};
use serde_json::{Value, json};

use super::asides::{Aside, Asides};
use crate::runfile::ErrorClass;

/// What one message from the server is, for the request with our id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The response to our request, judged.
    Answer(Result<(), ErrorClass>),
    /// A server-to-client request: send this JSON-RPC response text back to the server.
    Reply(String),
    /// A notification (counted), an answer to another id, or not a JSON-RPC message.
    Skip,
}

/// The parts of a message its sorting needs, borrowed from the text: parsing into this costs a
/// fraction of a `serde_json::Value` of the whole result.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    id: Option<Value>,
    error: Option<IgnoredAny>,
    result: Option<ResultHead>,
}

/// A result must be an object; `isError: true` marks a failed tool call.
#[derive(Deserialize)]
struct ResultHead {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

/// Just the id and method, for a message whose result is not an object.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    id: Option<Value>,
}

/// Sorts one message (`text`, one JSON-RPC message) for the request with id `id`, counting
/// notifications and server-to-client requests in `asides`.
pub fn sort_message(text: &str, id: u64, asides: &mut Asides) -> Incoming {
    let message: Message = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(_) => {
            // Only our answer with a malformed result matters; anything else is skipped.
            return match serde_json::from_str::<Envelope>(text) {
                Ok(e)
                    if e.method.is_none() && e.id.as_ref().and_then(Value::as_u64) == Some(id) =>
                {
                    Incoming::Answer(Err(ErrorClass::Protocol))
                }
                _ => Incoming::Skip,
            };
        }
    };
    match (message.method, message.id) {
        (Some(method), Some(request_id)) => {
            let kind = Aside::of_request(&method);
            asides.add(kind);
            Incoming::Reply(reply_to(kind, request_id))
        }
        (Some(method), None) => {
            asides.add(Aside::of_notification(&method));
            Incoming::Skip
        }
        (None, Some(answer_id)) if answer_id.as_u64() == Some(id) => Incoming::Answer(verdict(
            message.jsonrpc.as_deref(),
            message.error,
            message.result,
        )),
        (None, _) => Incoming::Skip,
    }
}

fn verdict(
    jsonrpc: Option<&str>,
    error: Option<IgnoredAny>,
    result: Option<ResultHead>,
) -> Result<(), ErrorClass> {
    if jsonrpc != Some("2.0") {
        return Err(ErrorClass::Protocol);
    }
    if error.is_some() {
        return Err(ErrorClass::JsonrpcError);
    }
    match result {
        Some(ResultHead {
            is_error: Some(true),
        }) => Err(ErrorClass::ToolError),
        Some(_) => Ok(()),
        None => Err(ErrorClass::Protocol),
    }
}

/// The reply to a server-to-client request: no roots, elicitations declined, sampling refused
/// (loadgen has no model), pings answered, anything else unknown.
fn reply_to(kind: Aside, id: Value) -> String {
    let outcome = match kind {
        Aside::Roots => json!({"result": {"roots": []}}),
        Aside::Elicitation => json!({"result": {"action": "decline"}}),
        Aside::Ping => json!({"result": {}}),
        Aside::Sampling => json!({"error": {"code": -1, "message": "loadgen declines sampling"}}),
        _ => json!({"error": {"code": -32601, "message": "Method not found"}}),
    };
    let mut reply = json!({"jsonrpc": "2.0", "id": id});
    if let (Some(r), Some(o)) = (reply.as_object_mut(), outcome.as_object()) {
        r.extend(o.clone());
    }
    reply.to_string()
}

/// Judges a complete HTTP response to the request with id `id` (a JSON body or a whole SSE
/// stream), counting what came before the answer. Server-to-client requests in a buffered body
/// cannot be answered any more; they are counted.
pub fn classify_response(
    status: u16,
    body: &str,
    id: u64,
    asides: &mut Asides,
) -> Result<(), ErrorClass> {
    if !(200..300).contains(&status) {
        return Err(ErrorClass::HttpStatus);
    }
    for text in fleet::wire::message_texts(body) {
        if let Incoming::Answer(verdict) = sort_message(text, id, asides) {
            return verdict;
        }
    }
    Err(ErrorClass::Protocol)
}

/// The JSON-RPC `result` of the message with id `id` in a body (JSON or SSE), if it has one.
pub fn result_of(body: &str, id: u64) -> Option<Value> {
    fleet::wire::message_with_id(body, id).and_then(|mut m| m.get_mut("result").map(Value::take))
}

/// The names in a `tools/list` result with id `id` (`body` is the whole response).
pub fn listed_tools(body: &[u8], id: u64) -> Result<Vec<String>, ErrorClass> {
    let text = std::str::from_utf8(body).map_err(|_| ErrorClass::Protocol)?;
    let result = result_of(text, id).ok_or(ErrorClass::Protocol)?;
    let tools = result
        .get("tools")
        .and_then(Value::as_array)
        .ok_or(ErrorClass::Protocol)?;
    Ok(tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(String::from))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn classify(status: u16, body: &str, id: u64) -> Result<(), ErrorClass> {
        classify_response(status, body, id, &mut Asides::default())
    }

    #[test]
    fn classifies_responses() {
        let ok = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}"#;
        assert_eq!(classify(200, ok, 7), Ok(()));
        let sse = format!("event: message\ndata: \n\ndata: {ok}\n\n");
        assert_eq!(classify(200, &sse, 7), Ok(()));
        let tool_err = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}"#;
        assert_eq!(classify(200, tool_err, 7), Err(ErrorClass::ToolError));
        let rpc_err = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad"}}"#;
        assert_eq!(classify(200, rpc_err, 7), Err(ErrorClass::JsonrpcError));
        assert_eq!(classify(400, rpc_err, 7), Err(ErrorClass::HttpStatus));
        assert_eq!(classify(503, "busy", 7), Err(ErrorClass::HttpStatus));
        assert_eq!(
            classify(200, ok, 8),
            Err(ErrorClass::Protocol),
            "id mismatch"
        );
        assert_eq!(classify(200, "", 7), Err(ErrorClass::Protocol));
        assert_eq!(classify(200, "<html>", 7), Err(ErrorClass::Protocol));
        let no_result = r#"{"jsonrpc":"2.0","id":7}"#;
        assert_eq!(classify(200, no_result, 7), Err(ErrorClass::Protocol));
        let old = r#"{"jsonrpc":"1.0","id":7,"result":{}}"#;
        assert_eq!(classify(200, old, 7), Err(ErrorClass::Protocol));
        let not_object = r#"{"jsonrpc":"2.0","id":7,"result":3}"#;
        assert_eq!(classify(200, not_object, 7), Err(ErrorClass::Protocol));
    }

    /// Notifications and server requests before the answer are counted, never taken for it.
    #[test]
    fn the_answer_is_the_message_with_our_id() {
        let stream = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n\
            data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
            data: {\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"roots/list\"}\n\n\
            data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n\
            data: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"isError\":true}}\n\n";
        let mut asides = Asides::default();
        assert_eq!(
            classify_response(200, stream, 9, &mut asides),
            Err(ErrorClass::ToolError)
        );
        assert_eq!(asides.get(Aside::Log), 1);
        assert_eq!(asides.get(Aside::Progress), 1);
        assert_eq!(asides.get(Aside::Roots), 1);
    }

    #[test]
    fn server_requests_get_well_formed_replies() {
        let mut asides = Asides::default();
        let reply = |text: &str, asides: &mut Asides| match sort_message(text, 1, asides) {
            Incoming::Reply(r) => serde_json::from_str::<Value>(&r).unwrap(),
            other => panic!("{other:?}"),
        };
        let r = reply(
            r#"{"jsonrpc":"2.0","id":"a","method":"roots/list"}"#,
            &mut asides,
        );
        assert_eq!(r, json!({"jsonrpc":"2.0","id":"a","result":{"roots":[]}}));
        let r = reply(
            r#"{"jsonrpc":"2.0","id":5,"method":"elicitation/create","params":{}}"#,
            &mut asides,
        );
        assert_eq!(r["result"]["action"], "decline");
        let r = reply(
            r#"{"jsonrpc":"2.0","id":6,"method":"sampling/createMessage"}"#,
            &mut asides,
        );
        assert_eq!(
            (r["id"].as_u64(), r["error"]["code"].as_i64()),
            (Some(6), Some(-1))
        );
        let r = reply(
            r#"{"jsonrpc":"2.0","id":7,"method":"x/unknown"}"#,
            &mut asides,
        );
        assert_eq!(r["error"]["code"], -32601);
        assert_eq!(asides.iter().count(), 4);
        assert_eq!(sort_message("not json", 1, &mut asides), Incoming::Skip);
    }
}
