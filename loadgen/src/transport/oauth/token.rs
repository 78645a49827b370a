//! One client credentials token request (RFC 6749 §4.4, with RFC 8707's `resource`) and its
//! answer: the access token and its lifetime, or the endpoint's error quoted as it gave it.

use std::{sync::Arc, time::Duration};

use reqwest::{
    Client, Url,
    header::{AUTHORIZATION, CONTENT_TYPE},
};
use serde::Deserialize;

use super::{
    credentials::{ClientAuth, Credentials},
    error::OAuthError,
    fetch,
};

/// Longest token lifetime taken as given; `expires_in` beyond it is read as this.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Longest access token used (it goes into every request's headers).
const MAX_TOKEN: usize = 16 * 1024;

/// Everything one token request needs; built once per authorization server and resource.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The authorization server (its metadata's `issuer`).
    pub issuer: String,
    pub endpoint: Url,
    pub method: ClientAuth,
    pub client_id: String,
    pub credentials: Arc<Credentials>,
    /// RFC 8707 `resource`: the MCP server.
    pub resource: String,
    pub scope: Option<String>,
}

/// An access token.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    /// From `expires_in`; `None` when the server did not say.
    pub lifetime: Option<Duration>,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    error_description: Option<String>,
}

impl TokenRequest {
    /// Asks the token endpoint for a token.
    pub async fn send(&self, client: &Client) -> Result<Token, OAuthError> {
        let endpoint = self.endpoint.as_str();
        let proof = self
            .credentials
            .authenticate(self.method, &self.client_id, endpoint)?;
        let mut fields: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("resource", &self.resource),
        ];
        if let Some(scope) = &self.scope {
            fields.push(("scope", scope));
        }
        fields.extend(proof.fields.iter().map(|(k, v)| (*k, v.as_str())));
        let mut request = client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(fetch::form(&fields));
        if let Some(value) = proof.authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let answer = fetch::send(&self.endpoint, request).await?;
        self.read(answer.status, &answer.body)
    }

    fn read(&self, status: u16, body: &[u8]) -> Result<Token, OAuthError> {
        let invalid = |reason: String| OAuthError::Metadata {
            url: self.endpoint.to_string(),
            what: "token response (RFC 6749 §5.1)",
            reason,
        };
        if status != 200 {
            let refusal: Refusal = serde_json::from_slice(body).unwrap_or_else(|_| Refusal {
                error: format!("HTTP {status}"),
                error_description: Some(
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                ),
            });
            return Err(OAuthError::Refused {
                endpoint: self.endpoint.to_string(),
                status,
                error: refusal.error,
                description: refusal
                    .error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
            });
        }
        let granted: Granted = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
        if !granted.token_type.eq_ignore_ascii_case("bearer") {
            return Err(invalid(format!(
                "token_type {:?}, loadgen sends Bearer tokens only",
                granted.token_type
            )));
        }
        if granted.access_token.is_empty() || granted.access_token.len() > MAX_TOKEN {
            return Err(invalid(format!(
                "access_token of {} bytes",
                granted.access_token.len()
            )));
        }
        Ok(Token {
            value: granted.access_token,
            lifetime: granted
                .expires_in
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(MAX_LIFETIME.as_secs_f64()))),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request() -> TokenRequest {
        TokenRequest {
            issuer: "http://127.0.0.1:1".into(),
            endpoint: "http://127.0.0.1:1/token".parse().unwrap(),
            method: ClientAuth::SecretBasic,
            client_id: "c".into(),
            credentials: Arc::new(Credentials::Secret("s".into())),
            resource: "http://127.0.0.1:2/mcp".into(),
            scope: None,
        }
    }

    #[test]
    fn answers_are_read_and_refusals_quoted() {
        let t = request()
            .read(
                200,
                br#"{"access_token":"abc","token_type":"bearer","expires_in":2}"#,
            )
            .unwrap();
        assert_eq!(
            (t.value.as_str(), t.lifetime),
            ("abc", Some(Duration::from_secs(2)))
        );
        let e = request()
            .read(
                401,
                br#"{"error":"invalid_client","error_description":"bad secret"}"#,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"(HTTP 401): "invalid_client": bad secret"#),
            "{e}"
        );
        let e = request().read(500, b"oops").unwrap_err().to_string();
        assert!(e.contains("HTTP 500") && e.contains("oops"), "{e}");
        assert!(
            request()
                .read(200, br#"{"access_token":"a","token_type":"DPoP"}"#)
                .is_err()
        );
    }
}
