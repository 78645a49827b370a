//! The DNS-rebinding guard shared by every HTTP surface of the fleet (MCP servers and the admin
//! API): a request must be addressed to a loopback host and, when it carries an `Origin`, come
//! from a loopback origin; otherwise 403. Without it a web page could have a browser on this
//! machine call tools or kill servers through a rebound DNS name.

use std::net::IpAddr;

use axum::{
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Whether an authority (`host[:port]`, `[v6][:port]`) names this machine: `localhost` or a
/// loopback address (127.0.0.0/8, ::1).
fn is_loopback_authority(authority: &str) -> bool {
    let a = authority.trim().to_ascii_lowercase();
    let host = match a.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        },
        None => a.split_once(':').map_or(a.as_str(), |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn forbidden(what: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("Forbidden: {what} header is not allowed"),
    )
        .into_response()
}

/// A 403 response when `Host` or `Origin` names anything but this machine; `None` to go on.
pub fn refuse_foreign(headers: &HeaderMap) -> Option<Response> {
    if let Some(host) = headers.get(header::HOST)
        && !is_loopback_authority(host.to_str().unwrap_or_default())
    {
        return Some(forbidden("Host"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(is_loopback_authority) {
            return Some(forbidden("Origin"));
        }
    }
    None
}

/// The guard as an axum middleware.
pub async fn layer(request: Request, next: Next) -> Response {
    match refuse_foreign(request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn refused(host: &str, origin: Option<&str>) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("header"));
        }
        refuse_foreign(&h).is_some()
    }

    #[test]
    fn loopback_passes_and_foreign_is_refused() {
        assert!(!refused("127.0.0.1:8000", None));
        assert!(!refused("localhost:7900", Some("http://localhost:3000")));
        assert!(!refused("[::1]:8000", None));
        assert!(!refused("127.0.0.2:8000", Some("https://127.0.0.1")));
        assert!(refused("evil.example:8000", None));
        assert!(refused("127.0.0.1:8000", Some("http://evil.example")));
        assert!(refused("127.0.0.1.evil.example", None));
        assert!(refused("127.0.0.1:8000", Some("null")));
        assert!(refused("[::1]evil:80", None));
        assert!(!refused("LOCALHOST", None));
    }
}
