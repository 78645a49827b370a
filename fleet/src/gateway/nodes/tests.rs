//! The follower against a node that answers what the test says: a good list, then garbage
//! and then too much (each refused, the previous view kept), then nothing (every server out of
//! rotation), then the list again (back in rotation); and a node that never answers.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, routing::get};

use super::{NodesConfig, follow::Follower, source, table::NodeTable};
use crate::gateway::{Directory, Gateway, session::SessionKey, upstream::Upstream};

/// What the fake node answers to `GET /servers`: a body, or `None` for a 503.
type Answer = Arc<Mutex<Option<String>>>;

async fn fake_node(answer: Answer) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/servers",
            get(|State(a): State<Answer>| async move {
                match a.lock().unwrap().clone() {
                    Some(body) => (http::StatusCode::OK, body),
                    None => (http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                }
            }),
        )
        .with_state(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn list(healthy: &str) -> String {
    format!(
        r#"{{"servers":[
            {{"id":"community-0000","group":"community","port":8000,"state":"healthy"}},
            {{"id":"community-0001","group":"community","port":8001,"state":"{healthy}"}}]}}"#
    )
}

/// Each member of the gateway's pools and whether it is in rotation.
fn rotation(gw: &Gateway) -> Vec<(String, bool)> {
    let mut members: Vec<(String, bool)> = gw
        .backends()
        .into_values()
        .flatten()
        .map(|m| (m.id, m.up))
        .collect();
    members.sort();
    members
}

#[tokio::test]
async fn garbage_is_refused_and_a_silent_node_leaves_rotation() {
    let answer: Answer = Arc::new(Mutex::new(Some(list("healthy"))));
    let addr = fake_node(answer.clone()).await;
    let node = source::parse_node(&format!("a=http://{addr}")).unwrap();
    let table = Arc::new(NodeTable::default());
    let cfg = NodesConfig {
        poll_timeout: Duration::from_millis(500),
        max_answer_bytes: 4096,
        ..NodesConfig::default()
    };
    let source = source::fixed(vec![node]).unwrap();
    let mut follower = Follower::new(source, cfg, table.clone(), None).unwrap();
    follower.round().await;
    assert!(follower.has_view());
    let gw = Gateway::new(
        Directory::new(follower.backends()),
        Upstream::new(Duration::from_secs(1)),
        SessionKey::from_bytes([1; 32]),
    );
    follower.apply(&gw);
    let both_up = vec![
        ("a~community-0000".to_string(), true),
        ("a~community-0001".to_string(), true),
    ];
    assert_eq!(rotation(&gw), both_up);

    // A server the node calls unhealthy leaves rotation alone.
    *answer.lock().unwrap() = Some(list("unhealthy"));
    follower.round().await;
    follower.apply(&gw);
    assert_eq!(rotation(&gw)[1], ("a~community-0001".to_string(), false));

    // Garbage: refused, counted, the previous view kept, the node still up.
    *answer.lock().unwrap() = Some(format!("{}garbage", list("healthy")));
    follower.round().await;
    follower.apply(&gw);
    assert_eq!(rotation(&gw)[1], ("a~community-0001".to_string(), false));
    let row = &table.rows()[0];
    assert_eq!((row.up, row.servers, row.refused), (true, 2, 1));

    // Over the size cap: refused the same way.
    *answer.lock().unwrap() = Some(format!("{}{}", list("healthy"), " ".repeat(4096)));
    follower.round().await;
    follower.apply(&gw);
    assert_eq!(rotation(&gw)[1], ("a~community-0001".to_string(), false));
    assert_eq!(table.rows()[0].refused, 2);

    // Not answering (a 503): every server out of rotation, still known.
    *answer.lock().unwrap() = None;
    follower.round().await;
    follower.apply(&gw);
    assert!(
        rotation(&gw).iter().all(|(_, up)| !up),
        "{:?}",
        rotation(&gw)
    );
    assert!(!table.rows()[0].up);

    // Answering again: back.
    *answer.lock().unwrap() = Some(list("healthy"));
    follower.round().await;
    follower.apply(&gw);
    assert_eq!(rotation(&gw), both_up);
}

#[tokio::test]
async fn a_node_that_never_answers_is_down_within_the_poll_timeout() {
    let silent = crate::testing::SilentServer::start().await.unwrap();
    let node = source::parse_node(&silent.url("")).unwrap();
    let cfg = NodesConfig {
        poll_timeout: Duration::from_millis(200),
        ..NodesConfig::default()
    };
    let table = Arc::new(NodeTable::default());
    let mut follower = Follower::new(source::fixed(vec![node]).unwrap(), cfg, table, None).unwrap();
    let started = std::time::Instant::now();
    follower.round().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!follower.has_view());
}
