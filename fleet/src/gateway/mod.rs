//! The gateway: one MCP endpoint in front of the whole fleet. This file only wires its parts:
//! the routes below, and the items other modules use re-exported.
//!
//! - `/mcp/{server-id}` pins a client to one server: requests, sessions and streams pass
//!   through unchanged.
//! - `/mcp` federates the fleet (2026-07-28, stateless requests): `tools/list` lists every
//!   group's tools under a stable prefix (`community__echo`, `security__scan_secrets`), and a
//!   `tools/call` goes to a healthy member of that group's pool, chosen by power of two
//!   choices ([`balance`]); a call that could not reach its server is sent once more, to
//!   another member.
//!
//! - 2025-11-25 sessions on `/mcp`: an `initialize` goes to a member of one group's pool
//!   (`/mcp?group=NAME`, by default the first group by name) and the session stays on that
//!   server, its tools unprefixed. The session id the client gets names the server and the
//!   server's own session, authenticated ([`session`]): no table to share or expire. When the
//!   server is gone the client gets a 404 and, as the spec asks, initializes again, landing on
//!   a healthy member.
//! - [`follow_registry`] keeps the pools in step with the supervisor: a server that is not
//!   healthy (killed, restarting, failing its probes) leaves rotation the moment its state
//!   changes, and comes back once healthy.
//!
//! - Servers that run in the gateway's own process (task mode) are called there
//!   (`serve::local`): the same service, faults and sessions as over their sockets, without a
//!   second HTTP exchange per call; other servers over pooled HTTP/1.1 ([`upstream`]).
//!
//! Failures answer as MCP clients expect: an unknown server or a forged session id is a 404,
//! a backend that cannot be reached or answers garbage a 502 with a JSON-RPC error, an
//! unknown tool prefix the JSON-RPC error for invalid params.
//!
//! The parts: the faces `federated` (`/mcp`), `pinned` (`/mcp/{id}`) and `session_route`
//! (requests of a session); `forward` (sending to a group's member, with one resend),
//! `reply` (answers and errors), `routing` ([`Gateway`], [`follow_registry`]), `backend`,
//! `group` and `calls` (the state they use); `metrics` and `views` (what `/metrics` and
//! `/backends` show); [`balance`], [`histogram`], [`session`] (signed session ids) and
//! [`upstream`] (the HTTP client to servers).

pub mod balance;
pub mod histogram;
pub mod session;
pub mod upstream;

mod backend;
mod calls;
mod federated;
mod forward;
mod group;
mod metrics;
mod pinned;
mod reply;
mod routing;
mod session_route;
mod views;

use axum::{Router, routing::any};

pub use self::{
    backend::{Backend, Directory},
    federated::PREFIX_SEPARATOR,
    metrics::render_metrics,
    reply::jsonrpc_error,
    routing::{Gateway, follow_registry},
    views::{BackendView, BackendsView},
};

impl Gateway {
    /// The gateway's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/mcp", any(federated::mcp))
            .route("/mcp/{server}", any(pinned::pinned))
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/metrics", axum::routing::get(metrics::metrics))
            .route("/backends", axum::routing::get(views::backends))
            .with_state(self)
    }
}
