//! The answers the gateway makes itself or passes on: JSON-RPC errors and results with their
//! HTTP status, a backend's answer relayed (a JSON body checked, a stream passed through), and
//! an upstream failure mapped to a 502 and to the balancer's failure kind. Every face of the
//! gateway answers through these, so failures look alike wherever they happen.

use axum::{
    body::Body,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use super::{
    balance::{FailureKind, Outcome},
    upstream::{self, UpstreamError},
};

/// A JSON-RPC error response with an HTTP status, for requests the gateway answers itself.
pub fn jsonrpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The JSON-RPC id of a request body, or `null` when there is none to echo.
pub(super) fn request_id(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

/// A backend's answer, passed on: an event stream as it arrives; a JSON body (which
/// [`Upstream::send`](super::upstream::Upstream::send) has read whole) checked first, so a
/// server that answers garbage gives the client a 502 with a JSON-RPC error (the `Err`)
/// instead of the garbage.
pub(super) async fn relay(
    server: &str,
    response: http::Response<Body>,
    request: &[u8],
) -> Result<Response, Response> {
    if !upstream::is_json(response.headers()) {
        return Ok(pass_on(response));
    }
    let (parts, body) = response.into_parts();
    let garbage = |why: &str| {
        jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            request_id(request),
            -32603,
            &format!("server {server} {why}"),
        )
    };
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(garbage("broke off its answer")),
    };
    let parses = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
    if parts.status.is_success() && !parses {
        return Err(garbage("answered with something that is not JSON"));
    }
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONNECTION
            && name != header::TRANSFER_ENCODING
            && name != header::CONTENT_LENGTH
        {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(out)
}

/// A backend's answer, streamed back as it arrives (SSE included).
fn pass_on(response: http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONNECTION && name != header::TRANSFER_ENCODING {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// 502 with a JSON-RPC error naming the server and what went wrong.
pub(super) fn upstream_failed(server: &str, e: UpstreamError, body: &[u8]) -> Response {
    jsonrpc_error(
        StatusCode::BAD_GATEWAY,
        request_id(body),
        -32603,
        &format!("server {server}: {e}"),
    )
}

pub(super) fn result(id: Value, result: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// What a failed request says about its server, for the balancer: an answer too large for the
/// gateway was the request's doing (a client asked for it), so it counts as answered, not as a
/// failure that would eject a healthy server.
pub(super) fn outcome(e: UpstreamError) -> Outcome {
    Outcome::Failure(match e {
        UpstreamError::Connect => FailureKind::Connect,
        UpstreamError::Timeout => FailureKind::Timeout,
        UpstreamError::Broken => FailureKind::BadResponse,
        UpstreamError::TooLarge => return Outcome::Success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_and_results_are_json_rpc() {
        let (status, v) = body_of(jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            json!(3),
            -32603,
            "down",
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32603, "message": "down"}})
        );
        let (status, v) = body_of(result(json!("a"), json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v, json!({"jsonrpc": "2.0", "id": "a", "result": {}}));
    }

    #[test]
    fn request_id_is_echoed_or_null() {
        assert_eq!(request_id(br#"{"id": 5}"#), json!(5));
        assert_eq!(request_id(b"not json"), Value::Null);
        assert_eq!(request_id(br#"{"method": "x"}"#), Value::Null);
    }

    #[test]
    fn upstream_errors_map_to_outcomes() {
        let failed = |kind| Outcome::Failure(kind);
        assert_eq!(
            outcome(UpstreamError::Connect),
            failed(FailureKind::Connect)
        );
        assert_eq!(
            outcome(UpstreamError::Timeout),
            failed(FailureKind::Timeout)
        );
        assert_eq!(
            outcome(UpstreamError::Broken),
            failed(FailureKind::BadResponse)
        );
        assert_eq!(outcome(UpstreamError::TooLarge), Outcome::Success);
    }
}
