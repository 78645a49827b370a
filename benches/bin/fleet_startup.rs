//! Measures fleet start-up time (until every server passes a health probe) and idle memory
//! (PSS of this process plus, in process mode, every server process), repeated for a median.
//!
//! `cargo run --release -p benches --bin fleet-startup -- --isolation task --repeat 5`

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use fleet::{Fleet, FleetOptions, FleetSpec, Isolation};

#[derive(Debug, Parser)]
#[command(about = "Measure fleet start-up time and idle memory (PSS)")]
struct Args {
    #[arg(long, value_enum, default_value = "task")]
    isolation: Isolation,
    /// Total servers (the default groups scaled).
    #[arg(long, default_value_t = 500)]
    servers: u32,
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Seconds to stay idle before reading memory.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
}

/// mimalloc: the servers' per-request work is allocation-heavy (rmcp builds a service per
/// stateless request); measured +13-17 % `echo` throughput over glibc malloc (benches/README.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    if let Some(r) = fleet::run_if_child() {
        return r;
    }
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut starts = Vec::new();
    let mut idle_pss = Vec::new();
    println!("isolation={:?} servers={}", args.isolation, args.servers);
    for round in 1..=args.repeat {
        let mut spec = FleetSpec::default().scaled_to(args.servers)?;
        spec.isolation = args.isolation;
        let total = spec.server_count();
        let t = Instant::now();
        let fleet = Fleet::start(spec, FleetOptions::default())
            .await
            .context("starting the fleet (are the default ports free?)")?;
        let healthy = fleet.wait_healthy(Duration::from_secs(60), |_, _| {}).await;
        let took = t.elapsed().as_secs_f64();
        if healthy != total {
            fleet.stop().await;
            bail!("only {healthy}/{total} healthy");
        }
        tokio::time::sleep(Duration::from_secs_f64(args.idle)).await;
        let pids: Vec<u32> = std::iter::once(std::process::id())
            .chain(
                fleet
                    .registry()
                    .entries()
                    .iter()
                    .filter_map(|e| e.view().pid),
            )
            .collect();
        let sum = |f: fn(u32) -> Option<u64>| pids.iter().filter_map(|p| f(*p)).sum::<u64>();
        let (rss_sum, pss_sum) = (sum(benches::rss_bytes), sum(benches::pss_bytes));
        let mb = pss_sum as f64 / 1e6;
        println!(
            "round {round}: {total}/{total} healthy in {took:.3} s, idle PSS {mb:.1} MB over {} process(es) (sum of RSS {:.1} MB counts shared pages once per process)",
            pids.len(),
            rss_sum as f64 / 1e6
        );
        starts.push(took);
        idle_pss.push(mb);
        fleet.stop().await;
        // Let the kernel release the ports' TIME_WAIT-free listeners before the next round.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "median: healthy in {:.3} s, idle PSS {:.1} MB",
        benches::median(&starts).unwrap_or(f64::NAN),
        benches::median(&idle_pss).unwrap_or(f64::NAN)
    );
    Ok(())
}
