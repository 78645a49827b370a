//! What can go wrong between loadgen and an authorization server, each variant carrying the URL
//! or file involved so the one line a user sees says where to look.

use std::path::PathBuf;

/// An OAuth discovery, token or credentials failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The request did not get an answer (connect, time-out, an oversized body).
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    /// Metadata that is not what its RFC says it is.
    #[error("{url}: not valid {what}: {reason}")]
    Metadata {
        url: String,
        what: &'static str,
        reason: String,
    },
    /// None of the protected resource metadata locations answered.
    #[error("no protected resource metadata for {resource} (tried {tried})")]
    NoResourceMetadata { resource: String, tried: String },
    /// None of the authorization server metadata locations answered.
    #[error("no authorization server metadata for the issuer {issuer} (tried {tried})")]
    NoServerMetadata { issuer: String, tried: String },
    /// The server does not accept the kind of client authentication the credentials allow.
    #[error(
        "the authorization server {issuer} accepts none of {wanted} at its token endpoint (it \
         offers: {offered})"
    )]
    NoAuthMethod {
        issuer: String,
        wanted: String,
        offered: String,
    },
    /// The token endpoint answered with an error (RFC 6749 §5.2), quoted.
    #[error(
        "the token endpoint {endpoint} refused the request (HTTP {status}): {error:?}{description}"
    )]
    Refused {
        endpoint: String,
        status: u16,
        error: String,
        /// `: <error_description>` or empty.
        description: String,
    },
    /// A private key file that cannot be used.
    #[error("private key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// The client secret's environment variable is missing.
    #[error("the environment variable {var} (--oauth-client-secret-env) is not set or empty")]
    SecretEnv { var: String },
    /// Signing the client assertion failed.
    #[error("signing the client assertion: {0}")]
    Sign(String),
}
