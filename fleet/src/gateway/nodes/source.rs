//! Where the standalone gateway's nodes are, as the command line names them, checked once at
//! the edge: `--node [NAME=]http://HOST:PORT` (a fleet's admin API; repeatable) or `--discover
//! dns:NAME:PORT` (every A/AAAA record of NAME is one node's admin API on PORT, resolved again
//! and again so nodes can come and go, as a Kubernetes headless Service's pods do).
//!
//! A node's name qualifies its servers' ids ([`super::qualified_id`]), so it must be stable and
//! short: given, or its URL's `HOST:PORT` (a discovered node's `IP:PORT`).

use std::net::{IpAddr, SocketAddr};

/// Longest node name: a qualified id (`NODE~SERVER`) must fit the gateway's session ids,
/// which carry at most [`crate::gateway::session::MAX_BACKEND_LEN`] bytes of server id.
pub const MAX_NODE_NAME: usize = 40;

/// One node: its name and where its admin API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// The admin API's base URL, without a trailing slash (`http://127.0.0.1:7900`).
    pub url: String,
    /// The URL's host and port, resolved before each poll: the node's servers listen on the
    /// address its admin API does.
    pub host: String,
    pub port: u16,
}

/// A DNS name whose every address is a node's admin API on `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSource {
    pub name: String,
    pub port: u16,
}

/// Where the nodes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Fixed(Vec<Node>),
    Dns(DnsSource),
}

/// A node or discovery spec that cannot be used; each names the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("{input:?} is not a node's admin URL ({why}); expected [NAME=]http://HOST:PORT")]
    BadUrl { input: String, why: String },
    #[error("{input:?} is not a node name: 1-{MAX_NODE_NAME} letters, digits and `.-_:[]`")]
    BadName { input: String },
    #[error("{input:?} is not a discovery spec ({why}); expected dns:NAME:PORT")]
    BadDns { input: String, why: String },
    #[error("two nodes are named {0:?}: give them names (--node NAME=URL)")]
    Duplicate(String),
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NODE_NAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// `[NAME=]http://HOST:PORT` (a trailing `/` or `/servers` is allowed).
pub fn parse_node(input: &str) -> Result<Node, SourceError> {
    let bad = |why: &str| SourceError::BadUrl {
        input: input.to_string(),
        why: why.to_string(),
    };
    let (name, url) = match input.split_once('=') {
        Some((name, url)) if !name.contains("://") => (Some(name), url),
        _ => (None, input),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "http" {
        return Err(bad("only http:// admin APIs are followed"));
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
        _ => return Err(bad("no host")),
    }
    .to_string();
    let port = parsed
        .port()
        .ok_or_else(|| bad("no port: the admin API's port, e.g. :7900"))?;
    if !matches!(parsed.path(), "" | "/" | "/servers" | "/servers/")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(bad(
            "a node is named by its admin API's root, without a path",
        ));
    }
    let authority = authority(&host, port);
    let name = name.map_or_else(|| authority.clone(), str::to_string);
    if !valid_name(&name) {
        return Err(SourceError::BadName { input: name });
    }
    Ok(Node {
        name,
        url: format!("http://{authority}"),
        host,
        port,
    })
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// `dns:NAME:PORT`.
pub fn parse_discover(input: &str) -> Result<DnsSource, SourceError> {
    let bad = |why: &str| SourceError::BadDns {
        input: input.to_string(),
        why: why.to_string(),
    };
    let rest = input
        .strip_prefix("dns:")
        .ok_or_else(|| bad("only dns: discovery exists"))?;
    let (name, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port is not a number in 1-65535"))?;
    let hostname = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !hostname {
        return Err(bad("the name is not a DNS name"));
    }
    Ok(DnsSource {
        name: name.to_string(),
        port,
    })
}

/// Fixed nodes, refused when two share a name (their servers' ids would collide).
pub fn fixed(nodes: Vec<Node>) -> Result<Source, SourceError> {
    let mut names = std::collections::HashSet::new();
    for n in &nodes {
        if !names.insert(n.name.as_str()) {
            return Err(SourceError::Duplicate(n.name.clone()));
        }
    }
    Ok(Source::Fixed(nodes))
}

/// The node at a discovered address: named by it.
pub fn discovered(addr: SocketAddr) -> Node {
    let name = addr.to_string();
    Node {
        url: format!("http://{name}"),
        host: addr.ip().to_string(),
        port: addr.port(),
        name,
    }
}

/// Every address of `dns`, each a node, in a stable order.
pub async fn resolve(dns: &DnsSource) -> std::io::Result<Vec<Node>> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((dns.name.as_str(), dns.port))
        .await?
        .collect();
    addrs.sort();
    addrs.dedup();
    Ok(addrs.into_iter().map(discovered).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_by_their_url_or_by_the_user() {
        let n = parse_node("http://127.0.0.1:7900").unwrap();
        assert_eq!(
            (n.name.as_str(), n.url.as_str(), n.port),
            ("127.0.0.1:7900", "http://127.0.0.1:7900", 7900)
        );
        let n = parse_node("a=http://fleet-0.fleet:7900/servers").unwrap();
        assert_eq!((n.name.as_str(), n.host.as_str()), ("a", "fleet-0.fleet"));
        let n = parse_node("http://[::1]:7900/").unwrap();
        assert_eq!((n.name.as_str(), n.host.as_str()), ("[::1]:7900", "::1"));
        for bad in [
            "127.0.0.1:7900",
            "https://h:7900",
            "http://h",
            "http://h:7900/mcp",
            "http://h:7900?x=1",
            "nope",
        ] {
            let err = parse_node(bad).unwrap_err();
            assert!(matches!(err, SourceError::BadUrl { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = parse_node("a b=http://h:1").unwrap_err();
        assert!(matches!(err, SourceError::BadName { .. }), "{err}");
        let two = vec![
            parse_node("http://h:1").unwrap(),
            parse_node("http://h:1/").unwrap(),
        ];
        assert_eq!(fixed(two), Err(SourceError::Duplicate("h:1".into())));
    }

    #[test]
    fn discovery_specs_are_checked() {
        let d = parse_discover("dns:fleet.default.svc.cluster.local:7900").unwrap();
        assert_eq!(
            (d.name.as_str(), d.port),
            ("fleet.default.svc.cluster.local", 7900)
        );
        for bad in [
            "fleet:7900",
            "dns:fleet",
            "dns:fleet:0",
            "dns::7900",
            "dns:a b:1",
        ] {
            let err = parse_discover(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        let n = discovered("[::1]:7900".parse().unwrap());
        assert_eq!(
            (n.name.as_str(), n.url.as_str()),
            ("[::1]:7900", "http://[::1]:7900")
        );
    }
}
