//! The DNS-rebinding guard on every HTTP surface (a server, the gateway, the admin API), against
//! every way a request can name its host: an absolute-form HTTP/1.1 target, two `Host`
//! headers, and HTTP/2's `:authority` (h2c, which the listeners accept, carries no `Host`).
//! Each foreign one is a 403; the same request addressed to loopback is served, so the test
//! fails on a guard that refuses everything as on one that lets anything through. `/healthz`
//! is guarded like the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use fleet::Isolation;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The status code of a raw HTTP/1.1 request (`head` without the final blank line).
async fn raw_status(addr: SocketAddr, head: &str) -> u16 {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {answer}"))
}

/// The status code of an HTTP/2 (prior knowledge) request to `path` with `:authority`
/// `authority` and no `Host` header.
async fn h2_status(addr: SocketAddr, method: &str, authority: &str, path: &str) -> u16 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{authority}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"ms\": 600000}")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_refuses_a_foreign_host_wherever_it_is_named() {
    let fleet = common::start_with(common::spec(1, 0, Isolation::Task), true).await;
    let server = fleet.endpoints()[0].addr;
    let surfaces = [
        ("server", server, "GET", "/healthz"),
        ("gateway", fleet.gateway_addr().unwrap(), "GET", "/healthz"),
        ("gateway", fleet.gateway_addr().unwrap(), "GET", "/backends"),
        ("admin", fleet.admin_addr().unwrap(), "GET", "/healthz"),
    ];
    for (name, addr, method, path) in surfaces {
        let own = format!("127.0.0.1:{}", addr.port());
        let ok = raw_status(addr, &format!("{method} {path} HTTP/1.1\r\nHost: {own}")).await;
        assert_eq!(ok, 200, "{name} {path} addressed to loopback");
        let absolute = format!("{method} http://evil.example{path} HTTP/1.1\r\nHost: {own}");
        assert_eq!(raw_status(addr, &absolute).await, 403, "{name}: {absolute}");
        let twice = format!("{method} {path} HTTP/1.1\r\nHost: {own}\r\nHost: evil.example");
        assert_eq!(raw_status(addr, &twice).await, 403, "{name}: {twice}");
        let foreign = format!("{method} {path} HTTP/1.1\r\nHost: evil.example");
        assert_eq!(raw_status(addr, &foreign).await, 403, "{name} {path}: Host");
        assert_eq!(h2_status(addr, method, &own, path).await, 200, "{name}: h2");
        let h2 = h2_status(addr, method, "evil.example", path).await;
        assert_eq!(h2, 403, "{name} {path}: h2 :authority");
    }
    // What the review did over h2c: a ten-minute latency for the server, refused.
    let admin = fleet.admin_addr().unwrap();
    let id = &fleet.endpoints()[0].id;
    let path = format!("/servers/{id}/latency");
    assert_eq!(h2_status(admin, "POST", "evil.example", &path).await, 403);
    let view: serde_json::Value = common::get_json(&format!("http://{admin}/servers/{id}")).await;
    assert_eq!(view["faults"]["added_latency_ms"], 0, "{view}");
    fleet.stop().await;
}
