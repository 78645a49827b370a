//! Starts, side by side in one process, one fleet community server and a bare axum JSON echo
//! (the ceiling any HTTP JSON service on this machine can reach), prints their URLs and serves
//! until killed or `--seconds` pass. `benches/run-echo.sh` drives them with wrk.
//!
//! It also serves `/rpc`, the most trivial JSON-RPC endpoint: any request gets an empty
//! `result` under its own `id`. MCP clients accept that as an answer to `tools/list`, so
//! `benches/run-loadgen.sh` can drive it with loadgen, oha and wrk alike and compare the load
//! generators rather than the server.

use std::{net::SocketAddr, time::Duration};

use axum::{Json, Router, routing::post};
use clap::Parser;
use fleet::{Fleet, FleetOptions, FleetSpec, GroupSpec, Profile};

/// The same allocator as the `fleet` and `loadgen` binaries, so both servers are measured as
/// they are shipped.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Serve one fleet server and a bare axum JSON echo for side-by-side load")]
struct Args {
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let spec = FleetSpec {
        groups: vec![GroupSpec {
            name: "community".into(),
            profile: Profile::Community,
            count: 1,
            first_port: 0,
        }],
        ..FleetSpec::default()
    }
    .with_ephemeral_ports();
    let fleet = Fleet::start(spec, FleetOptions::default()).await?;
    fleet.wait_healthy(Duration::from_secs(10), |_, _| {}).await;
    let bare = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let bare_addr = bare.local_addr()?;
    let app = Router::new()
        .route(
            "/echo",
            post(|Json(v): Json<serde_json::Value>| async move { Json(v) }),
        )
        .route(
            "/rpc",
            post(|Json(v): Json<serde_json::Value>| async move {
                let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
                Json(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}))
            }),
        );
    tokio::spawn(async move {
        // Same accept loop as the fleet (TCP_NODELAY, connection tasks), so only the
        // per-request work differs.
        fleet::listener::serve(bare, app, Default::default(), Default::default()).await;
    });
    println!("fleet {}", fleet.endpoints()[0].mcp_url());
    println!("bare http://{bare_addr}/echo");
    println!("rpc http://{bare_addr}/rpc");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(Duration::from_secs(args.seconds)) => {}
    }
    fleet.stop().await;
    Ok(())
}
