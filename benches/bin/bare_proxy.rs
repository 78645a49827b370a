//! The least a reverse proxy can do, as a yardstick for the gateway's overhead: hyper server,
//! hyper-util pooled client (like the gateway's upstream, `TCP_NODELAY` on both sides), every
//! request forwarded unchanged to the next backend in turn and the answer streamed back. No
//! parsing, no balancing, no health: whatever the gateway costs beyond this is its own.
//! `benches/run-gateway.sh` measures direct calls, this and the gateway side by side.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::Context as _;
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
};
use clap::Parser;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "A bare round-robin HTTP reverse proxy (the yardstick for gateway overhead)")]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Backends, `127.0.0.1:PORT`, used in turn.
    #[arg(required = true)]
    backends: Vec<SocketAddr>,
}

#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, Body>,
    backends: Arc<[SocketAddr]>,
    next: Arc<AtomicUsize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let proxy = Proxy {
        client: Client::builder(TokioExecutor::new()).build(connector),
        backends: args.backends.into(),
        next: Arc::default(),
    };
    let app = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .context("bind")?;
    println!("proxy http://{}/mcp", listener.local_addr()?);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}

async fn forward(State(p): State<Proxy>, mut req: Request) -> Response {
    let i = p.next.fetch_add(1, Ordering::Relaxed) % p.backends.len();
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(uri) = format!("http://{}{path}", p.backends[i]).parse::<Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    *req.uri_mut() = uri;
    match p.client.request(req).await {
        Ok(r) => r.map(Body::new).into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
