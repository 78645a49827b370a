//! `/mcp`, by what a request carries: a session id the gateway holds itself goes to
//! [`own_session`], one pinned to a server to [`session_route`], an id the gateway did not issue
//! is a 404; a POST without a session is the federated face's ([`federated`]).

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    federated::{Face, McpQuery, federated},
    own_session,
    routing::Gateway,
    session::{self, Opened},
    session_route::{in_session, session_gone},
};
use crate::wire::SESSION_HEADER;

/// `/mcp`.
pub(super) async fn mcp(
    State(gw): State<Gateway>,
    Query(query): Query<McpQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(id) = headers.get(SESSION_HEADER) {
        let Ok(id) = id.to_str() else {
            return session_gone(&body, "the session id is not visible ASCII");
        };
        return match session::open_any(&gw.key, id) {
            Ok(Opened::Own(version)) => {
                Box::pin(own_session::serve(&gw, version, method, headers, body)).await
            }
            Ok(Opened::Pinned(affinity)) => in_session(&gw, affinity, method, headers, body).await,
            Err(e) => session_gone(&body, &e.to_string()),
        };
    }
    match method {
        // Boxed: a request of a session (above) need not carry the federated path's size.
        Method::POST => Box::pin(federated(gw, query, headers, body, Face::Stateless)).await,
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
