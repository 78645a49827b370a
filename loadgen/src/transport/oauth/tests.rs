//! Discovery, token requests and renewal against a fake authorization server and protected
//! resource (an axum app on loopback that the test controls), for the paths the interop test's
//! real servers do not take: no `resource_metadata` in the challenge, OpenID discovery under an
//! issuer with a path, `client_secret_post` only, renewal before expiry and after a 401, and a
//! connection that sends the token, renews it after a 401 and sends the request once more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use reqwest::Url;
use serde_json::json;

use super::{
    client::{OAuthClient, OAuthSettings},
    credentials::Credentials,
};

#[derive(Clone)]
struct Fake {
    base: String,
    issued: Arc<AtomicU64>,
}

async fn mcp(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    let current = format!("Bearer tok-{}", fake.issued.load(Ordering::SeqCst));
    if headers
        .get("authorization")
        .is_some_and(|v| v == current.as_str())
    {
        return (StatusCode::OK, "{}").into_response();
    }
    (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")]).into_response()
}

async fn resource(State(fake): State<Fake>) -> Json<serde_json::Value> {
    Json(json!({
        "resource": format!("{}/api/mcp", fake.base),
        "authorization_servers": [format!("{}/tenant", fake.base)],
    }))
}

async fn openid(State(fake): State<Fake>) -> Json<serde_json::Value> {
    Json(json!({
        "issuer": format!("{}/tenant", fake.base),
        "token_endpoint": format!("{}/token", fake.base),
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }))
}

async fn token(State(fake): State<Fake>, body: String) -> Response {
    let resource = super::fetch::form_encode(&format!("{}/api/mcp", fake.base));
    let expected = [
        "grant_type=client_credentials".to_string(),
        format!("resource={resource}"),
        "client_id=c".into(),
        "client_secret=s".into(),
        "scope=mcp%3Aall".into(),
    ];
    let fields: Vec<&str> = body.split('&').collect();
    if !expected.iter().all(|e| fields.contains(&e.as_str())) {
        let error = json!({"error": "invalid_client", "error_description": body});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let n = fake.issued.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 1}))
        .into_response()
}

async fn start() -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        base: format!("http://{}", listener.local_addr().unwrap()),
        issued: Arc::default(),
    };
    let app = Router::new()
        .route("/api/mcp", post(mcp))
        .route("/.well-known/oauth-protected-resource", get(resource))
        .route("/.well-known/openid-configuration/tenant", get(openid))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake
}

fn client(secret: &str) -> OAuthClient {
    OAuthClient::new(OAuthSettings {
        client_id: "c".into(),
        credentials: Arc::new(Credentials::Secret(secret.into())),
        scope: Some("mcp:all".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn discovery_falls_back_and_tokens_are_renewed_before_expiry_and_after_a_401() {
    let fake = start().await;
    let target: Url = format!("{}/api/mcp", fake.base).parse().unwrap();
    let oauth = client("s");
    assert!(oauth.prepare(&target).await.unwrap(), "protected");
    let source = oauth.source_for(&target).unwrap();
    assert_eq!(source.bearer().unwrap(), "Bearer tok-1");
    assert_eq!(oauth.stats().fetches, 1);

    // The renewing task replaces it at 3/4 of its 1 s lifetime; the old one is answered
    // meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    while source.bearer().unwrap() == "Bearer tok-1" {
        assert!(Instant::now() < deadline, "no renewal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renewed = source.bearer().unwrap();
    assert_eq!(renewed, "Bearer tok-2");

    // Two requests that both saw a 401 with the same token cause one fetch.
    let after = source.renew_after_401(Some(&renewed)).await.unwrap();
    let again = source.renew_after_401(Some(&renewed)).await.unwrap();
    assert_eq!(
        (after.clone(), again),
        ("Bearer tok-3".parse().unwrap(), after)
    );
    let stats = oauth.stats();
    assert_eq!((stats.fetches, stats.after_401, stats.failures), (3, 1, 0));
    assert!(stats.longest <= stats.total);
}

#[tokio::test]
async fn a_refused_client_is_quoted_and_an_open_target_needs_no_token() {
    let fake = start().await;
    let target: Url = format!("{}/api/mcp", fake.base).parse().unwrap();
    let err = client("wrong")
        .prepare(&target)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"invalid_client\""), "{err}");
    assert!(err.contains("/token"), "{err}");

    let open: Url = format!("{}/elsewhere", fake.base).parse().unwrap();
    assert!(!client("s").prepare(&open).await.unwrap());
}

/// One POST on `conn`: its status.
async fn post_status(conn: &mut crate::transport::conn::Conn) -> u16 {
    conn.exchange(
        http::Method::POST,
        http::HeaderMap::new(),
        bytes::Bytes::from_static(b"{}"),
    )
    .await
    .unwrap()
    .status
}

#[tokio::test]
async fn a_connection_sends_the_token_and_renews_it_once_after_a_401() {
    use crate::transport::{conn::Conn, settings::HttpSettings};

    let fake = start().await;
    let target: Url = format!("{}/api/mcp", fake.base).parse().unwrap();
    let oauth = Arc::new(client("s"));
    assert!(oauth.prepare(&target).await.unwrap());
    let settings = Arc::new(HttpSettings {
        auth: Some(oauth.clone()),
        ..HttpSettings::with_timeout(Duration::from_secs(5))
    });
    let mut conn = Conn::new(&target, &settings).unwrap();
    assert_eq!(
        post_status(&mut conn).await,
        200,
        "the prepared token is sent"
    );

    // The server stops taking that token (as after a revocation): one 401, one new token, and
    // the request sent again gets through.
    fake.issued.store(10, Ordering::SeqCst);
    assert_eq!(post_status(&mut conn).await, 200);
    let stats = oauth.stats();
    assert_eq!((stats.fetches, stats.after_401), (2, 1));

    // With `-H Authorization` the user's header is sent as it is: its 401 stands, no fetch.
    let mut fixed = HttpSettings::with_timeout(Duration::from_secs(5));
    fixed.auth = Some(oauth.clone());
    fixed
        .headers
        .insert("authorization", "Bearer fixed".parse().unwrap());
    let mut conn = Conn::new(&target, &Arc::new(fixed)).unwrap();
    assert_eq!(post_status(&mut conn).await, 401);
    assert_eq!(oauth.stats().fetches, 2);
}
