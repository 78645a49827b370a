//! Measures the heap one idle 2025-11-25 session holds in a fleet server, exactly: a counting
//! allocator (over the system allocator) tracks live bytes and blocks while a task-mode fleet
//! of one community server serves, in this process, sessions opened by a plain blocking HTTP
//! client (`initialize` + `notifications/initialized`, then left idle), read once right after
//! a batch (sessions still resident: rmcp's worker, tasks and channels) and once past
//! `session_resident` (idle: what the server keeps to restore them). The RSS of a whole fleet
//! mixes these bytes with allocator caching; live heap is what the sessions themselves keep,
//! so changes to what a session holds can be compared to the byte. Run it under `heaptrack`
//! to see which allocations those are.
//!
//! `cargo run --release -p benches --bin session-bytes -- --sessions 2000`

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Parser;
use fleet::{Fleet, FleetOptions};

/// The system allocator, counting what is live.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Debug, Parser)]
#[command(about = "Measure the live heap bytes one idle session holds in a fleet server")]
struct Args {
    /// Sessions per measured batch.
    #[arg(long, default_value_t = 2000)]
    sessions: usize,
    /// Measured batches (each adds `--sessions` more idle sessions).
    #[arg(long, default_value_t = 2)]
    batches: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut spec = benches::one_community_server();
    spec.server.max_sessions = args.sessions * (args.batches + 1) + 1000;
    let spec_resident = spec.server.session_resident;
    let fleet = Fleet::start(spec, FleetOptions::default()).await?;
    fleet.wait_healthy(Duration::from_secs(10), |_, _| {}).await;
    let addr = fleet.endpoints()[0].addr;
    let (sessions, batches) = (args.sessions, args.batches);
    let resident = spec_resident.as_secs();
    // One client thread and one connection for the whole run: warm-up, then the batches.
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let mut conn = BufReader::new(stream);
        // Warm-up: the first sessions grow the session map and the runtime's pools.
        open_sessions(&mut conn, addr, 200)?;
        std::thread::sleep(Duration::from_secs(resident + 2));
        let (mut bytes, mut blocks) = live();
        println!("warm: live heap {bytes} bytes in {blocks} blocks");
        for batch in 1..=batches {
            open_sessions(&mut conn, addr, sessions)?;
            // Right after: every session still resident; past `session_resident`: idle.
            for (when, wait) in [("resident", 1), ("idle", resident + 2)] {
                std::thread::sleep(Duration::from_secs(wait));
                let (now_bytes, now_blocks) = live();
                let n = sessions as i64;
                println!(
                    "batch {batch} {when}: +{sessions} sessions, live heap {now_bytes} bytes \
                     ({} per session, {:.1} blocks per session), RSS {} kB",
                    (now_bytes - bytes) / n,
                    (now_blocks - blocks) as f64 / n as f64,
                    benches::rss_bytes(std::process::id()).unwrap_or(0) / 1024,
                );
            }
            (bytes, blocks) = live();
        }
        Ok(())
    })
    .await?
    .inspect_err(|_| eprintln!("server: {}", view(&fleet)))?;
    let open = fleet.registry().entries()[0].view().open_sessions;
    println!("open sessions counted by the server: {open}");
    fleet.stop().await;
    Ok(())
}

/// The server's state, restarts and counters, for an error message.
fn view(fleet: &Fleet) -> String {
    let v = fleet.registry().entries()[0].view();
    format!(
        "{:?}, {} restarts, {} open sessions",
        v.state, v.restarts, v.open_sessions
    )
}

fn live() -> (i64, i64) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

/// Opens `n` sessions on `conn`, one after another.
fn open_sessions(
    conn: &mut BufReader<TcpStream>,
    addr: SocketAddr,
    n: usize,
) -> anyhow::Result<()> {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"session-bytes","version":"0"}}}"#;
    let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    for _ in 0..n {
        let (status, sid) = post(conn, addr, None, init)?;
        let sid = sid.with_context(|| format!("initialize answered {status} without a session"))?;
        let (status, _) = post(conn, addr, Some(&sid), done)?;
        if status != 202 {
            bail!("notifications/initialized answered {status}");
        }
    }
    Ok(())
}

/// One POST to `/mcp`; (status, `mcp-session-id`). The body is read and dropped.
fn post(
    conn: &mut BufReader<TcpStream>,
    addr: SocketAddr,
    session: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    let session = session.map_or(String::new(), |s| format!("mcp-session-id: {s}\r\n"));
    // One write per request: written piecemeal, Nagle's algorithm would hold each piece back
    // for the server's delayed ACK (~40 ms a request).
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: \
         application/json, text/event-stream\r\nmcp-protocol-version: 2025-11-25\r\n{session}\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(request.as_bytes())?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut sid, mut length, mut chunked) = (None, 0usize, false);
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "mcp-session-id" => sid = Some(value.to_string()),
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
        }
    } else {
        conn.read_exact(&mut vec![0; length])?;
    }
    Ok((status, sid))
}
