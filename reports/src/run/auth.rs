//! How a run authorized its requests, when the targets asked for OAuth tokens: the client
//! credentials method and the token fetches, counted and timed apart from the measured calls
//! (a token fetch is never inside a latency figure, but a run that fetched many, or failed to,
//! says so here).

use serde::{Deserialize, Serialize};

/// The `auth` section of a run file (absent when no target asked for a token).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthFacts {
    /// `oauth_client_credentials`.
    pub scheme: String,
    /// The client authentication methods used (`client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`), one per authorization server.
    pub client_auth: Vec<String>,
    /// The authorization servers (issuers) tokens came from.
    pub authorization_servers: Vec<String>,
    /// Tokens obtained, all told; of them, those fetched after a 401 on a request.
    pub token_fetches: u64,
    pub after_401: u64,
    /// Token requests that failed.
    pub failures: u64,
    /// Time spent in token requests, in all and the longest one (microseconds).
    pub fetch_total_us: u64,
    pub fetch_max_us: u64,
}
