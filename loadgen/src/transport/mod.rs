//! How calls travel: today MCP's streamable HTTP over plain HTTP/1.1 ([`conn`] is one
//! connection, [`http`] the requests and headers of the binding). Further transports (TLS,
//! stdio, legacy SSE) get a file of their own beside these; what a call *is* and how its answer
//! is judged stays in [`crate::mcp`].

pub mod conn;
pub mod http;
pub mod stdio;
