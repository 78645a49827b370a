use clap::Parser;

fn main() -> anyhow::Result<()> {
    // A process-mode server child serves and exits here.
    if let Some(result) = fleet::child::run_if_child() {
        return result;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = fleet::cli::Cli::parse();
    tokio::runtime::Runtime::new()?.block_on(fleet::cli::run(cli))
}
