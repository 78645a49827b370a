//! The few HTTP requests OAuth needs (metadata GETs, token POSTs), bounded: every request has
//! the run's time-out, at most a few redirects, and a body larger than [`MAX_BODY`] is refused
//! rather than buffered. reqwest is fine here; these requests are not measured.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Url, header::HeaderMap};

use super::error::OAuthError;

/// Largest metadata or token response read.
pub const MAX_BODY: usize = 256 * 1024;

/// An answer: its status, headers and (bounded) body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The client for OAuth requests: `timeout` per request, connecting included.
pub fn client(timeout: Duration) -> Result<Client, OAuthError> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("mcpfleet-loadgen/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OAuthError::Fetch {
            url: String::new(),
            reason: format!("building the HTTP client: {e}"),
        })
}

/// Sends `request` (to `url`, for messages) and reads the whole answer.
pub async fn send(url: &Url, request: RequestBuilder) -> Result<Answer, OAuthError> {
    let failed = |reason: String| OAuthError::Fetch {
        url: url.to_string(),
        reason,
    };
    let mut response = request.send().await.map_err(|e| failed(describe(&e)))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(failed(format!("answer larger than {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// GETs `url` as JSON.
pub async fn get_json(client: &Client, url: &Url) -> Result<Answer, OAuthError> {
    send(
        url,
        client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json"),
    )
    .await
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        // The chain says more than the top error ("error sending request").
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value (RFC 6749 appendix B).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A form body from name/value pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_the_oauth_appendix() {
        assert_eq!(form_encode("a b+c/é"), "a+b%2Bc%2F%C3%A9");
        assert_eq!(
            form(&[("grant_type", "client_credentials"), ("scope", "a b")]),
            "grant_type=client_credentials&scope=a+b"
        );
    }
}
