//! How calls travel. Streamable HTTP over HTTP/1.1: [`conn`] is one connection, [`http`] the
//! requests, headers and session of the binding, [`stream_reader`] reads an answer message by
//! message, [`settings`] is what every HTTP request of a run carries. [`stdio`] spawns the server and speaks
//! to it on its stdin and stdout. [`client`] is the one
//! face the load and the health sweep use, whatever the transport. What a call *is* and how
//! its answer is judged stays in [`crate::mcp`].

pub mod client;
pub mod conn;
pub mod http;
pub mod settings;
pub mod stdio;
pub mod stream_reader;
