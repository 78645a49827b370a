//! Starts, side by side in one process, one fleet community server and a bare axum JSON echo
//! (the ceiling any HTTP JSON service on this machine can reach), prints their URLs and serves
//! until killed or `--seconds` pass. `benches/run-echo.sh` drives them with wrk.
//!
//! It also serves `/rpc`, the most trivial JSON-RPC endpoint: any request gets an empty
//! `result` under its own `id`. MCP clients accept that as an answer to `tools/list`, so
//! `benches/run-loadgen.sh` can drive it with loadgen, oha and wrk alike and compare the load
//! generators rather than the server. With `--tls-cert`/`--tls-key` the same `/rpc` is also
//! served over TLS (rustls, HTTP/1.1), for `benches/run-tls.sh`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use axum::{Json, Router, routing::post};
use clap::Parser;
use fleet::{Fleet, FleetOptions};

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
    /// Also serve `/rpc` over TLS with this certificate chain (PEM)...
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ...and this private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let spec = benches::one_community_server();
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
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        println!("rpcs https://{}/rpc", listener.local_addr()?);
        tokio::spawn(tls::serve(listener, tls::acceptor(cert, key)?, app.clone()));
    }
    tokio::spawn(async move {
        // Same accept loop as the fleet (TCP_NODELAY, connection tasks), so only the
        // per-request work differs.
        fleet::listener::serve(
            bare,
            app,
            Default::default(),
            Default::default(),
            Default::default(),
        )
        .await;
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

/// The TLS side: a rustls acceptor from PEM files and an accept loop that serves each
/// connection's HTTP/1.1 with hyper, as the plain listener does over TCP.
mod tls {
    use std::{path::Path, sync::Arc};

    use anyhow::Context as _;
    use axum::Router;
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};
    use rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    };
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading {}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading {}", key.display()))?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .await;
            });
        }
    }
}
