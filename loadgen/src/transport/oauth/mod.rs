//! OAuth 2.1 client credentials for protected HTTP targets, as the MCP authorization spec
//! describes it for machine-to-machine clients: on a 401, the `WWW-Authenticate` challenge (or
//! the well-known locations) leads to the protected resource metadata (RFC 9728), that to the
//! authorization server's metadata (RFC 8414 / OpenID discovery), and its token endpoint gives
//! an access token for the client credentials grant. A load generator must not time any of
//! this: tokens are fetched before measuring and renewed ahead of expiry in the background, and
//! their fetches are counted apart ([`source::TokenStats`]).
//!
//! Everything here talks to authorization servers, which are few and slow-moving, through
//! reqwest with bounded sizes and times; the hot path ([`super::conn`]) only reads the cached
//! `Authorization` header value.

pub mod bearer;
mod challenge;
pub mod client;
mod credentials;
mod discovery;
mod error;
mod fetch;
pub mod setup;
mod source;
mod token;

#[cfg(test)]
mod tests;
