//! How loadgen proves who it is to a token endpoint: a client secret (sent by HTTP Basic, or in
//! the form when that is all the server takes) or a private key signing a short-lived JWT
//! assertion (RFC 7523 `private_key_jwt`, ES256 or RS256 after the key). Secrets are read from
//! the environment, never from the command line, and never printed.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::{error::OAuthError, fetch::form_encode};

/// How long a client assertion is valid.
const ASSERTION_LIFETIME_SECS: u64 = 60;

/// What the client authenticates with.
#[derive(Clone)]
pub enum Credentials {
    /// A client secret.
    Secret(String),
    /// A private key for `private_key_jwt`.
    PrivateKey {
        path: PathBuf,
        key: EncodingKey,
        algorithm: Algorithm,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Secret(_) => f.write_str("Secret(..)"),
            Credentials::PrivateKey {
                path, algorithm, ..
            } => write!(f, "PrivateKey({}, {algorithm:?})", path.display()),
        }
    }
}

/// A client authentication method of RFC 8414's registry that loadgen speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    SecretBasic,
    SecretPost,
    PrivateKeyJwt,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::SecretBasic => "client_secret_basic",
            ClientAuth::SecretPost => "client_secret_post",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method for `credentials` among those the server `offered`: for a secret, Basic
    /// unless only the form post is offered.
    pub fn choose(
        credentials: &Credentials,
        offered: &[String],
        issuer: &str,
    ) -> Result<Self, OAuthError> {
        let wanted: &[ClientAuth] = match credentials {
            Credentials::Secret(_) => &[ClientAuth::SecretBasic, ClientAuth::SecretPost],
            Credentials::PrivateKey { .. } => &[ClientAuth::PrivateKeyJwt],
        };
        wanted
            .iter()
            .copied()
            .find(|m| offered.iter().any(|o| o == m.as_str()))
            .ok_or_else(|| OAuthError::NoAuthMethod {
                issuer: issuer.to_string(),
                wanted: wanted
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                offered: offered.join(", "),
            })
    }
}

/// How one token request proves the client: form fields to add, and an `Authorization` value.
#[derive(Debug, Default)]
pub struct ClientProof {
    pub fields: Vec<(&'static str, String)>,
    pub authorization: Option<String>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl Credentials {
    /// A secret read from the environment variable `var`.
    pub fn secret_from_env(var: &str) -> Result<Self, OAuthError> {
        match std::env::var(var) {
            Ok(secret) if !secret.is_empty() => Ok(Credentials::Secret(secret)),
            _ => Err(OAuthError::SecretEnv { var: var.into() }),
        }
    }

    /// A PEM private key: PKCS#8 P-256 (ES256) or RSA in PKCS#8 or PKCS#1 (RS256). The key is
    /// tried once here, so a key that cannot sign fails before anything starts.
    pub fn private_key(path: &Path) -> Result<Self, OAuthError> {
        let bad = |reason: String| OAuthError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if pem.len() > 64 * 1024 {
            return Err(bad("larger than 64 KiB: not a private key".into()));
        }
        let text = String::from_utf8_lossy(&pem);
        if text.contains("BEGIN EC PRIVATE KEY") {
            return Err(bad(
                "an EC key in SEC1 form; convert it to PKCS#8: `openssl pkcs8 \
                 -topk8 -nocrypt -in KEY -out KEY.p8`"
                    .into(),
            ));
        }
        if text.contains("ENCRYPTED PRIVATE KEY") {
            return Err(bad("encrypted keys are not supported".into()));
        }
        let (key, algorithm) = if let Ok(key) = EncodingKey::from_ec_pem(&pem) {
            (key, Algorithm::ES256)
        } else if let Ok(key) = EncodingKey::from_rsa_pem(&pem) {
            (key, Algorithm::RS256)
        } else {
            return Err(bad(
                "not a PEM private key loadgen can use (PKCS#8 P-256, or RSA)".into(),
            ));
        };
        let credentials = Credentials::PrivateKey {
            path: path.to_path_buf(),
            key,
            algorithm,
        };
        credentials
            .assertion("check", "https://check.invalid/token")
            .map_err(|e| {
                bad(format!(
                    "cannot sign with it ({e}); ES256 needs a P-256 key"
                ))
            })?;
        Ok(credentials)
    }

    /// A signed client assertion for `client_id` at `token_endpoint`.
    fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, OAuthError> {
        let Credentials::PrivateKey { key, algorithm, .. } = self else {
            return Err(OAuthError::Sign("no private key".into()));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: token_endpoint,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: format!("{:032x}", fastrand::u128(..)),
        };
        let mut header = Header::new(*algorithm);
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| OAuthError::Sign(e.to_string()))
    }

    /// The client authentication of one token request by `method`.
    pub fn authenticate(
        &self,
        method: ClientAuth,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<ClientProof, OAuthError> {
        match (method, self) {
            (ClientAuth::SecretBasic, Credentials::Secret(secret)) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Base64.
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                Ok(ClientProof {
                    fields: Vec::new(),
                    authorization: Some(format!("Basic {basic}")),
                })
            }
            (ClientAuth::SecretPost, Credentials::Secret(secret)) => Ok(ClientProof {
                fields: vec![
                    ("client_id", client_id.to_string()),
                    ("client_secret", secret.clone()),
                ],
                authorization: None,
            }),
            (ClientAuth::PrivateKeyJwt, Credentials::PrivateKey { .. }) => Ok(ClientProof {
                fields: vec![
                    ("client_id", client_id.to_string()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                    ),
                    (
                        "client_assertion",
                        self.assertion(client_id, token_endpoint)?,
                    ),
                ],
                authorization: None,
            }),
            _ => Err(OAuthError::Sign(format!(
                "{} does not go with these credentials",
                method.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secret_prefers_basic_and_takes_post_when_that_is_all() {
        let secret = Credentials::Secret("s".into());
        let offered = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ClientAuth::choose(
                &secret,
                &offered(&["client_secret_post", "client_secret_basic"]),
                "i"
            )
            .unwrap(),
            ClientAuth::SecretBasic
        );
        assert_eq!(
            ClientAuth::choose(&secret, &offered(&["client_secret_post"]), "i").unwrap(),
            ClientAuth::SecretPost
        );
        let err = ClientAuth::choose(&secret, &offered(&["private_key_jwt"]), "i").unwrap_err();
        assert!(
            err.to_string()
                .contains("client_secret_basic or client_secret_post")
        );
        let proof = secret
            .authenticate(ClientAuth::SecretBasic, "id:1", "http://t")
            .unwrap();
        assert!(proof.fields.is_empty());
        // "id%3A1:s"
        assert_eq!(proof.authorization.unwrap(), "Basic aWQlM0ExOnM=");
        assert!(format!("{secret:?}").contains(".."), "never printed");
    }

    #[test]
    fn unusable_keys_are_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(
            &path,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Credentials::private_key(&path).unwrap_err().to_string();
        assert!(err.contains("PKCS#8"), "{err}");
        std::fs::write(&path, "not a key").unwrap();
        assert!(Credentials::private_key(&path).is_err());
        assert!(Credentials::private_key(&dir.path().join("missing")).is_err());
    }
}
