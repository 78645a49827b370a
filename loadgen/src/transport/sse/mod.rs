//! MCP's legacy HTTP+SSE transport (protocol 2024-11-05), still common in deployments: the
//! client holds one `GET` event stream per session, learns from its first `endpoint` event where
//! to POST, and every answer arrives on that stream, matched by id. [`events`] reads the
//! stream, `waiters` hands each answer to the call waiting for it, [`client`] is a user's
//! session with one server.

pub mod client;
pub mod events;
mod waiters;

pub use client::SseClient;
