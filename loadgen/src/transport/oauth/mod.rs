//! OAuth 2.1 client credentials for protected HTTP targets, as the MCP authorization spec
//! describes it for machine-to-machine clients: on a 401, the `WWW-Authenticate` challenge (or
//! the well-known locations) leads to the protected resource metadata (RFC 9728), that to the
//! authorization server's metadata (RFC 8414 / OpenID discovery), and its token endpoint gives
//! an access token for the client credentials grant. A load generator must not time any of
//! this: tokens are fetched before measuring and renewed ahead of expiry in the background, and
//! their fetches are counted apart ([`TokenStats`]).
//!
//! Everything here talks to authorization servers, which are few and slow-moving, through
//! reqwest with bounded sizes and times; the hot path ([`super::conn`]) only reads the cached
//! `Authorization` header value.

mod bearer;
mod challenge;
mod client;
mod credentials;
mod discovery;
mod error;
mod fetch;
mod setup;
mod source;
mod token;

pub use bearer::Bearer;
pub use client::OAuthClient;
pub use setup::{client_from_args, facts, prepare_targets};

#[cfg(test)]
mod tests;
