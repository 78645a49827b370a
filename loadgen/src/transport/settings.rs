//! What every HTTP request of a run carries, whatever it is for (health sweep, session set-up,
//! calls, session end): the per-request timeout and the user's `-H` headers. Built once from
//! the command line and shared by every connection.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Settings shared by all HTTP connections of a run.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Every exchange must finish within this, connecting included.
    pub timeout: Duration,
    /// Extra headers (`-H`), sent on every request; they replace a header of the same name
    /// loadgen would send.
    pub headers: HeaderMap,
}

impl HttpSettings {
    /// Settings with `timeout` and no extra headers.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }

    /// Puts the extra headers into `headers`, replacing any of the same name.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut last = None;
        for (name, value) in &self.headers {
            if last != Some(name) {
                headers.remove(name);
                last = Some(name);
            }
            headers.append(name, value.clone());
        }
    }
}

/// A `-H 'Name: value'` argument.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn extra_headers_replace_ours_and_may_repeat() {
        let mut settings = HttpSettings::with_timeout(Duration::from_secs(1));
        for h in ["Accept: text/event-stream", "X-Team: a", "x-team: b"] {
            let (n, v) = parse_header(h).unwrap();
            settings.headers.append(n, v);
        }
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        settings.apply(&mut headers);
        assert_eq!(headers["accept"], "text/event-stream");
        assert_eq!(headers.get_all("x-team").iter().count(), 2);
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .contains("Name: value")
        );
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X-A: line\nbreak").is_err());
    }
}
