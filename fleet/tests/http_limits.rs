//! The `[http]` limits of every listener, seen from a hostile client's side: connections that
//! send nothing, a request head or a body a byte at a time, or sit idle after a request are
//! closed (a slow body is answered 408 first), while a connection that keeps making requests
//! is not; a listener at its connection cap answers 503 with a JSON-RPC error, its neighbours
//! serve on, and the health monitor does not restart the full server. (Running out of the
//! process's descriptors is `descriptor_budget.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::{Fleet, Isolation};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Short timeouts, so each case ends in well under a second when the limits hold; the test
/// waits [`NEVER`] for what would otherwise never happen.
async fn fleet(max_connections: usize, header: u64) -> Fleet {
    let mut spec = common::spec(2, 0, Isolation::Task);
    spec.http.max_connections = max_connections;
    spec.http.header_read_timeout = Duration::from_millis(header);
    spec.http.body_read_timeout = Duration::from_millis(300);
    spec.http.idle_timeout = Duration::from_millis(400);
    common::start(spec).await
}

const NEVER: Duration = Duration::from_secs(8);

fn addr(fleet: &Fleet, i: usize) -> std::net::SocketAddr {
    fleet.endpoints()[i].addr
}

/// Reads until the server closes the connection, up to [`NEVER`]; `None` if it is still open
/// then. Returns what was read.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut read = Vec::new();
    let closed = tokio::time::timeout(NEVER, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed
        .ok()
        .map(|()| String::from_utf8_lossy(&read).into_owned())
}

/// Sends `head`, then `drip` a byte every 50 ms, until the server closes the connection;
/// what it answered, or `None` if it is still open after [`NEVER`].
async fn dripping(addr: std::net::SocketAddr, head: &[u8], drip: &[u8]) -> Option<String> {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    writer.write_all(head).await.unwrap();
    let trickle = async {
        for b in drip.iter().cycle() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(&[*b]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        closed = until_closed(&mut reader) => closed,
        // The server stopped taking bytes: it closed.
        () = trickle => until_closed(&mut reader).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed() {
    let fleet = fleet(4096, 300).await;
    let addr = addr(&fleet, 0);

    // Sends nothing at all.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        until_closed(&mut silent).await.is_some(),
        "silent connection"
    );

    // HTTP/2 with prior knowledge: the preface and SETTINGS, then no request.
    let mut h2 = TcpStream::connect(addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    assert!(
        until_closed(&mut h2).await.is_some(),
        "idle HTTP/2 connection"
    );

    // A request head a byte every 50 ms (slowloris): never complete.
    let slowloris = dripping(
        addr,
        b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n",
        b"x-a: b\r\n",
    );
    assert!(slowloris.await.is_some(), "slowloris connection");

    // A whole head, then a body a byte every 50 ms: 408 with a JSON-RPC error, then closed.
    let slow_body = dripping(
        addr,
        b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
          accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n{",
        b" ",
    );
    let answer = slow_body.await.expect("slow-body connection closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_read_timeout"), "{answer}");

    // Idle after one request on a kept-alive connection.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle)
        .await
        .expect("idle connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_use_outlives_every_timeout() {
    let fleet = fleet(4096, 300).await;
    let mut stream = TcpStream::connect(addr(&fleet, 0)).await.unwrap();
    // Ten times the idle timeout, one request every 100 ms on the same connection.
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut answered = 0;
    while tokio::time::Instant::now() < until {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 8192];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {answered} answers");
        assert!(buf.starts_with(b"HTTP/1.1 200"));
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_answers_503_and_its_server_is_not_restarted() {
    const CAP: usize = 6;
    // Held connections send nothing; the header timeout lets them stay for the whole test.
    let fleet = fleet(CAP, 30_000).await;
    let (full, other) = (addr(&fleet, 0), fleet.endpoints()[1].mcp_url());
    // Topped up for a second: a connection that met a probe holding a place was refused.
    let entry = fleet.registry().entries()[0].clone();
    let mut held = Vec::new();
    for _ in 0..20 {
        if entry.view().open_connections < CAP as u64 {
            held.push(TcpStream::connect(full).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_held = common::eventually(Duration::from_secs(5), || {
        entry.view().open_connections == CAP as u64
    })
    .await;
    assert!(all_held, "{:?}", entry.view());

    let refused = common::http()
        .get(format!("http://{full}/healthz"))
        .send()
        .await
        .expect("an answer, not a hang or a reset");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("most connections (6"),
        "{error}"
    );

    // Its neighbour serves, and the full server is probed ~15 times meanwhile (every 100 ms,
    // restarted after 3 failures): it stays up.
    let (status, _) = common::post_stateless(&other, "tools/list", serde_json::json!({})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = entry.view();
    assert_eq!(view.restarts, 0, "{view:?}");
    assert_eq!(
        view.open_connections, CAP as u64,
        "held connections survive"
    );

    // Closing them makes room.
    drop(held);
    let room = common::eventually(Duration::from_secs(5), || {
        entry.view().open_connections == 0
    })
    .await;
    assert!(room);
    let (status, _) = common::post_stateless(
        &fleet.endpoints()[0].mcp_url(),
        "tools/list",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200);
}
