//! The MCP side of one request, with no transport in it: the calls loadgen makes (JSON-RPC
//! bodies, serialised once per version), the handshakes that open a session or discover a
//! stateless server, and how each message a server sends is sorted: the answer to our request
//! (and its verdict), a notification, or a server-to-client request that needs a reply. How a
//! call travels (HTTP, SSE, stdio) lives in [`crate::transport`].

mod asides;
mod call;
mod handshake;
mod message;

pub use asides::{Aside, Asides};
pub use call::{Call, Sent};
pub use handshake::{INITIALIZED, initialize_body, negotiated_version};
pub use message::{Incoming, classify_response, listed_tools, result_of, sort_message};

/// Every protocol version loadgen speaks ([`fleet::wire::Version`]): 2026-07-28 stateless,
/// the others opened with `initialize`.
pub use fleet::wire::Version;

pub use crate::runfile::ErrorClass;
