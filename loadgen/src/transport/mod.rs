//! How calls travel. Streamable HTTP over HTTP/1.1: [`conn`] is one connection, [`http`] the
//! requests, headers and session of the binding, [`stream_reader`] reads an answer message by
//! message, [`settings`] is what every HTTP request of a run carries, [`oauth`] the tokens of
//! protected targets; [`socket`] is the plain TCP or TLS under a connection, [`tls`] what
//! `https://` targets are trusted by. [`sse`] is the legacy HTTP+SSE transport (2024-11-05);
//! [`stdio`] spawns the server and speaks to it on its stdin and stdout. [`client`] is the one
//! face the load and the health sweep use, whatever the transport. What a call *is* and how
//! its answer is judged stays in [`crate::mcp`].

pub mod client;
pub mod conn;
pub mod http;
pub mod oauth;
pub mod settings;
pub mod socket;
pub mod sse;
pub mod stdio;
pub mod stream_reader;
pub mod tls;
