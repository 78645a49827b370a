//! The admin API's gate: reads pass; a request that changes something needs the fleet's
//! token (`Authorization: Bearer TOKEN`, see [`super::admin_auth`]) or a signed-in page's
//! session secret on a request from the dashboard's own origin ([`super::browser_auth`]);
//! otherwise 401 (or 403 for a session from elsewhere) with a JSON error.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    admin_auth::AdminToken,
    browser_auth::{BrowserAuth, same_origin},
};

/// A 401 with a JSON error and the challenge RFC 6750 asks for.
fn unauthorized(why: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": why })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mcpfleet admin\""),
    );
    response
}

/// What the admin API accepts as a caller's proof: the token, or a signed-in page's session
/// on a request from the API's own origin ([`super::browser_auth`]).
#[derive(Debug, Clone)]
pub struct AdminAuth {
    pub token: AdminToken,
    pub browser: Arc<BrowserAuth>,
}

/// The check as an axum middleware: reads pass, and `/login`, which checks what it is given
/// itself; everything else needs the token or a page's session from the same origin.
pub async fn require_token(
    State(auth): State<AdminAuth>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) || request.uri().path() == "/login" {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        None if auth.browser.signed_in(request.headers()) => {
            if same_origin(request.headers()) {
                next.run(request).await
            } else {
                (
                    StatusCode::FORBIDDEN,
                    Json(serde_json::json!({
                        "error": "a signed-in page's request must come from the dashboard's \
                                  own origin"
                    })),
                )
                    .into_response()
            }
        }
        None => unauthorized(
            "this admin request needs `Authorization: Bearer TOKEN`; `fleet up` wrote the \
             token to the file it printed (--admin-token-file)",
        ),
        Some(p) if !auth.token.matches(p) => unauthorized("wrong admin token"),
        Some(_) => next.run(request).await,
    }
}
