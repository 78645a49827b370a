//! Logging set-up shared by every process of the fleet: the `fleet` binary, `loadgen` and
//! process-mode server children all log the same way, so it sits at the bottom of the stack
//! where a child can reach it without reaching the command line.

use std::io::IsTerminal;

/// What is logged when `RUST_LOG` does not say: warnings, but rmcp's only from errors up. rmcp
/// warns of what a peer did wrong (every error answer, "response error"; a rejected request),
/// once per request, so one careless or hostile client would flood the log;
/// `RUST_LOG=warn` brings them back.
pub const DEFAULT_FILTER: &str = "warn,rmcp=error";

/// Logs to stderr (`RUST_LOG` filters, [`DEFAULT_FILTER`] by default), coloured only on a
/// terminal. Shared by the `fleet` and `loadgen` binaries.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| DEFAULT_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
