//! The DNS-rebinding guard shared by every HTTP surface of the fleet (MCP servers, the gateway
//! and the admin API): a request must be addressed to `localhost` or an IP address (a loopback
//! one, or any literal address: what a fleet node on a network is called by, e.g. the pod IP a
//! gateway on another machine uses) and, when it carries an `Origin`, come from a loopback
//! origin; otherwise 403. Without it a web page could have a browser on this machine call tools
//! or kill servers through a rebound DNS name. Rebinding needs a DNS name in the `Host` (the
//! page's own, re-pointed at this machine); a browser sends an IP literal only to that very
//! address, so letting literals through opens nothing to a page, while names stay refused.
//!
//! "Addressed to" covers every place an HTTP request names its host: each `Host` header (two
//! are refused outright: RFC 9110 allows one, and a proxy and a server may each read another),
//! and the request target's authority, which is where HTTP/2 carries it (`:authority`, often
//! with no `Host` at all) and where an absolute-form HTTP/1.1 target (`GET http://evil/ ...`)
//! puts it. Every `Origin` header is checked too.

use std::net::IpAddr;

use axum::{
    extract::Request,
    http::{HeaderMap, StatusCode, Uri, header},
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

/// Whether an authority names this machine ([`is_loopback_authority`]) or is an IP literal
/// (`10.1.2.3:8000`, `[fd00::1]`), which no rebound name can be.
fn is_own_or_literal_authority(authority: &str) -> bool {
    if is_loopback_authority(authority) {
        return true;
    }
    let a = authority.trim();
    match a.strip_prefix('[') {
        Some(rest) => rest.split_once(']').is_some_and(|(h, port)| {
            (port.is_empty() || port.starts_with(':')) && h.parse::<std::net::Ipv6Addr>().is_ok()
        }),
        None => a
            .split_once(':')
            .map_or(a, |(h, _)| h)
            .parse::<std::net::Ipv4Addr>()
            .is_ok(),
    }
}

fn forbidden(what: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("Forbidden: {what} is not this machine"),
    )
        .into_response()
}

/// Host names a listener answers to besides `localhost` and IP literals: the names a proxy or
/// a Kubernetes Service gives it (`fleet-gateway.mcpfleet.svc`), compared without the port and
/// case. Naming one vouches that it cannot be rebound to a page's origin.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(std::sync::Arc<[String]>);

impl AllowedHosts {
    /// Checks each name (a DNS name, no port, scheme or path) and keeps it lower-cased.
    pub fn new(names: &[String]) -> Result<Self, String> {
        let mut kept = Vec::with_capacity(names.len());
        for n in names {
            let valid = !n.is_empty()
                && n.len() <= 253
                && n.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid {
                return Err(format!(
                    "--allowed-host {n:?}: give a host name such as fleet-gateway.mcpfleet.svc \
                     (letters, digits, '-' and dots; no port, scheme or path)"
                ));
            }
            kept.push(n.to_ascii_lowercase());
        }
        Ok(Self(kept.into()))
    }
}

/// Whether an authority names this machine, an IP address or one of `names` (lower-cased).
fn allows(names: &[String], authority: &str) -> bool {
    if is_own_or_literal_authority(authority) {
        return true;
    }
    let a = authority.trim().to_ascii_lowercase();
    let host = a.split_once(':').map_or(a.as_str(), |(h, _)| h);
    names.iter().any(|n| n == host)
}

/// A 403 response when the request's target authority, a `Host` or an `Origin` names anything
/// but this machine (or there are two `Host` headers); `None` to go on.
pub fn refuse_foreign(uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    refuse_unless(uri, headers, &[])
}

/// [`refuse_foreign`], also letting through a target or `Host` that names one of `allowed`.
pub fn refuse_foreign_but(
    uri: &Uri,
    headers: &HeaderMap,
    allowed: &AllowedHosts,
) -> Option<Response> {
    refuse_unless(uri, headers, &allowed.0)
}

/// The guard itself, with `names` (lower-cased) allowed besides this machine and IP addresses.
fn refuse_unless(uri: &Uri, headers: &HeaderMap, names: &[String]) -> Option<Response> {
    if uri.authority().is_some_and(|a| !allows(names, a.as_str())) {
        return Some(forbidden("the request target's host"));
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    if let Some(host) = hosts.next()
        && (hosts.next().is_some() || !allows(names, host.to_str().unwrap_or_default()))
    {
        return Some(forbidden("Host"));
    }
    for origin in headers.get_all(header::ORIGIN) {
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
    match refuse_foreign(request.uri(), request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// The guard with names allowed, as an axum middleware (`from_fn_with_state`).
pub async fn layer_allowing(
    axum::extract::State(allowed): axum::extract::State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    match refuse_foreign_but(request.uri(), request.headers(), &allowed) {
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
        refuse_foreign(&Uri::from_static("/mcp"), &h).is_some()
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

    #[test]
    fn an_ip_literal_host_passes_a_name_does_not_and_origins_stay_loopback() {
        // How a gateway on another machine addresses a node: by its IP.
        assert!(!refused("10.1.2.3:7900", None));
        assert!(!refused("10.1.2.3", None));
        assert!(!refused("[fd00::1]:8000", None));
        assert!(refused("10.1.2.3.evil.example:7900", None));
        assert!(refused("10.1.2.3:7900", Some("http://10.1.2.3:7900")));
        assert!(refused("[fd00::1]evil:80", None));
        assert!(refused("fleet-0.fleet-nodes:7900", None));
        let target =
            |uri: &'static str| refuse_foreign(&Uri::from_static(uri), &HeaderMap::new()).is_none();
        assert!(target("http://10.1.2.3:8000/mcp"));
        assert!(!target("http://node.example:8000/mcp"));
    }

    #[test]
    fn named_hosts_pass_only_when_allowed() {
        let allowed = AllowedHosts::new(&["fleet-gateway.mcpfleet.svc".into()]).expect("valid");
        let passes = |host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
            refuse_foreign_but(&Uri::from_static("/mcp"), &h, &allowed).is_none()
        };
        assert!(passes("fleet-gateway.mcpfleet.svc:7990"));
        assert!(passes("FLEET-GATEWAY.mcpfleet.svc"));
        assert!(passes("127.0.0.1:7990"));
        assert!(!passes("fleet-gateway.mcpfleet.svc.evil.example"));
        assert!(!passes("evil.example"));
        for bad in ["", "a b", "host:80", "http://x", "a..b", "x/y"] {
            assert!(AllowedHosts::new(&[bad.to_string()]).is_err(), "{bad}");
        }
        // An Origin is never allowed by name: a page's origin is exactly what rebinding uses.
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("fleet-gateway.mcpfleet.svc"),
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://fleet-gateway.mcpfleet.svc"),
        );
        assert!(refuse_foreign_but(&Uri::from_static("/mcp"), &h, &allowed).is_some());
    }

    #[test]
    fn every_place_a_request_names_its_host_is_checked() {
        let loopback =
            |uri: &'static str| refuse_foreign(&Uri::from_static(uri), &HeaderMap::new()).is_none();
        // HTTP/2's :authority and absolute-form targets, with no Host header.
        assert!(loopback("http://127.0.0.1:8000/mcp"));
        assert!(loopback("/mcp"));
        assert!(!loopback("http://evil.example:8000/mcp"));
        assert!(!loopback("http://user@evil.example/mcp"));
        // A second Host (even a loopback one) or a second, foreign Origin.
        let mut h = HeaderMap::new();
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1"));
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1"));
        assert!(refuse_foreign(&Uri::from_static("/"), &h).is_some());
        let mut h = HeaderMap::new();
        h.append(header::ORIGIN, HeaderValue::from_static("http://localhost"));
        h.append(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(refuse_foreign(&Uri::from_static("/"), &h).is_some());
    }
}
