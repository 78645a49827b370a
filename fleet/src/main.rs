//! The `fleet` binary: a process-mode server child when started as one, else the command line
//! ([`fleet::cli`]). Everything it does lives in the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the servers' per-request work is allocation-heavy (rmcp builds a service per
/// stateless request); measured +13-17 % `echo` throughput over glibc malloc (benches/README.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A process-mode server child serves and exits here.
    let result = match fleet::run_if_child() {
        Some(result) => result,
        None => run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line: "what failed: why".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    fleet::init_logging();
    let cli = fleet::cli::Cli::parse();
    tokio::runtime::Runtime::new()?.block_on(fleet::cli::run(cli))
}
