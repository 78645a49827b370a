//! The gateway: one MCP endpoint in front of the whole fleet. This file only wires its parts:
//! the routes below, and the items other modules use re-exported.
//!
//! - `/mcp/{server-id}` pins a client to one server: requests, sessions and streams pass
//!   through unchanged.
//! - `/mcp` is the fleet as one MCP server to clients of every era: the gateway answers
//!   `initialize` itself (a session it holds, its id signed and stateless: [`session`]) and
//!   `server/discover`; `tools/list` lists every group's tools under a stable prefix
//!   (`community__echo`, `security__scan_secrets`), paginated; a `tools/call`, stateless or in
//!   a session, goes to a healthy member of that group's pool, chosen by power of two choices
//!   ([`balance`]), as a stateless request, or, to a member that speaks only the session
//!   eras, in a session the gateway holds on it; a call that could not reach its server is
//!   sent once more, to another member when that is safe. A session's GET stream carries
//!   `notifications/tools/list_changed` when servers join or leave; DELETE answers 204.
//! - `/mcp?group=NAME` pins a session to one server of that group: the `initialize` goes to a
//!   member and the session stays there, its tools unprefixed. The session id the client gets
//!   names the server and the server's own session, authenticated ([`session`]): no table to
//!   share or expire. When the server is gone the client gets a 404 and, as the spec asks,
//!   initializes again, landing on a healthy member.
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
//! The parts: `entry` (`/mcp` by session kind), the faces `federated` (`/mcp`), `pinned`
//! (`/mcp/{id}`), `session_route` (requests of a pinned session) and `own_session` (of the
//! gateway's own sessions); `own` (what the
//! gateway answers as a server), `restate` (the stateless request form: its headers, and a
//! session's call restated in it, and back); `forward` (sending to a group's member, with one
//! resend), `member` (to one member in the era it speaks, learnt into `eras`),
//! `upstream_session` (sessions held on members that speak only the session eras) and
//! `session_answer` (their answers in the stateless form),
//! `reply` (answers and errors), `routing` ([`Gateway`], [`follow_registry`]), `backend`,
//! `group` and `calls` (the state they use); `metrics` and `views` (what `/metrics` and
//! `/backends` show); [`balance`], [`session`] (signed session ids) and
//! [`upstream`] (the HTTP client to servers); [`nodes`] fills a standalone gateway
//! (`fleet gateway`) from other fleets' admin APIs instead of a registry.

pub mod balance;
pub mod nodes;
pub mod session;
pub mod upstream;

mod backend;
mod calls;
mod entry;
mod eras;
mod federated;
mod forward;
mod group;
mod member;
mod metrics;
mod own;
mod own_session;
mod pinned;
mod reply;
mod restate;
mod routing;
mod session_answer;
mod session_route;
mod upstream_session;
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
    /// The gateway's routes. Every one refuses a foreign `Host`, `Origin` or request target
    /// (403), as the servers do: a web page must not reach the fleet through a rebound name.
    pub fn router(self) -> Router {
        self.router_allowing(crate::serve::loopback::AllowedHosts::default())
    }

    /// [`Gateway::router`], also answering requests addressed to the host names in `allowed`
    /// (the names a proxy or a Kubernetes Service gives the gateway).
    pub fn router_allowing(self, allowed: crate::serve::loopback::AllowedHosts) -> Router {
        Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/mcp", any(entry::mcp))
            .route("/mcp/{server}", any(pinned::pinned))
            .route("/metrics", axum::routing::get(metrics::metrics))
            .route("/backends", axum::routing::get(views::backends))
            .layer(axum::middleware::from_fn_with_state(
                allowed,
                crate::serve::loopback::layer_allowing,
            ))
            .with_state(self)
    }
}
