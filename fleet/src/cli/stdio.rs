//! `fleet serve-stdio`: one reference server (the same rmcp handler and tools the fleet runs
//! behind each port) over stdio, newline-delimited JSON-RPC on stdin and stdout, so a load
//! generator measuring stdio servers has a fast, known target of ours beside the third-party
//! ones. Everything but protocol messages goes to stderr: a stray byte on stdout would be a
//! protocol error for the client. The server ends when its client closes stdin.

use anyhow::Context as _;
use rmcp::ServiceExt as _;

use super::args::ServeStdioArgs;
use crate::{
    serve::{handler::McpServer, registry::Identity},
    spec::ServerSpec,
};

/// Serves one server of `args.profile` on this process's stdin and stdout until stdin closes.
pub async fn serve_stdio(args: ServeStdioArgs) -> anyhow::Result<()> {
    let identity = Identity::new(args.profile.as_str(), args.profile, 0);
    // No shared memory: a stdio server is one process of its client's, not part of a fleet.
    let handler = McpServer::new(&identity, &ServerSpec::default(), None);
    let running = handler
        .serve(rmcp::transport::stdio_pipes())
        .await
        .context("the stdio client's first message did not open a session")?;
    tracing::debug!(server = %identity.id, "serving over stdio");
    running
        .waiting()
        .await
        .context("the stdio server stopped abnormally")?;
    Ok(())
}
