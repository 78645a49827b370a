//! What `--target` names and how it becomes a list of MCP endpoints. Three forms:
//!
//! - an MCP endpoint URL, `http://127.0.0.1:8000/mcp` or `https://mcp.example:8443/mcp`;
//! - a port range, `127.0.0.1:8000-8345/mcp` (scheme optional, `http` when absent; path `/mcp`
//!   when absent): one endpoint per port, `https://host:8000-8010/mcp` too;
//! - a fleet admin API, `http://127.0.0.1:7900/servers`: the servers are discovered from its
//!   `GET /servers`, with their ids, groups and profiles, so our own fleet is loaded with the
//!   tool mix of each profile;
//! - a URL without a path (or `/`): a fleet admin API if `GET /servers` answers as one, else
//!   an MCP endpoint at the root path (servers may serve MCP at any path).
//!
//! Endpoints of foreign servers get `tools/list` only, since their tools are unknown.

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context as _;
use fleet::{FleetView, Profile};
use reqwest::Url;

use crate::{measure::Target, mix::Mix};

/// Most endpoints one run may expand to; a typo in a range should not open 60,000 sockets.
pub const MAX_ENDPOINTS: usize = 20_000;

/// One `--target` value, parsed but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Url(Url),
    Range {
        /// `https://` rather than `http://`.
        https: bool,
        host: String,
        first: u16,
        last: u16,
        path: String,
    },
    Admin(Url),
    /// A URL whose path is `/`: an admin API or an MCP endpoint, found out when resolved.
    Root(Url),
    /// `stdio:COMMAND ARG...`: a server loadgen spawns and speaks to on stdin and stdout.
    Stdio(Vec<String>),
}

impl FromStr for TargetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = s.trim();
        if let Some(command) = raw.strip_prefix("stdio:") {
            let words = shlex::split(command)
                .ok_or_else(|| format!("`{raw}`: unbalanced quotes in the command"))?;
            if words.is_empty() {
                return Err(format!("`{raw}` names no command (`stdio:COMMAND ARG...`)"));
            }
            return Ok(TargetSpec::Stdio(words));
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some((scheme, _)) => {
                return Err(format!("`{raw}`: scheme `{scheme}` is not http or https"));
            }
            None => ("http", raw),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if let Some((host, ports)) = authority.rsplit_once(':')
            && let Some((a, b)) = ports.split_once('-')
        {
            let port = |p: &str| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{raw}`: `{p}` is not a port"))
            };
            let (first, last) = (port(a)?, port(b)?);
            if first > last {
                return Err(format!("`{raw}`: the range {first}-{last} is empty"));
            }
            if host.is_empty() {
                return Err(format!("`{raw}` has no host"));
            }
            Url::parse(&format!("{scheme}://{host}:{first}"))
                .map_err(|e| format!("`{raw}`: bad host `{host}`: {e}"))?;
            return Ok(TargetSpec::Range {
                https: scheme == "https",
                host: host.to_string(),
                first,
                last,
                path: if path.is_empty() {
                    "/mcp".into()
                } else {
                    path.into()
                },
            });
        }
        let url = Url::parse(&format!("{scheme}://{rest}"))
            .map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
        if url.host().is_none() {
            return Err(format!("`{raw}` has no host"));
        }
        match url.path() {
            "/servers" | "/servers/" => {
                let mut admin = url;
                admin.set_path("");
                Ok(TargetSpec::Admin(admin))
            }
            "/" => Ok(TargetSpec::Root(url)),
            _ => Ok(TargetSpec::Url(url)),
        }
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSpec::Url(u) => write!(f, "{u}"),
            TargetSpec::Range {
                https,
                host,
                first,
                last,
                path,
            } => write!(f, "{}://{host}:{first}-{last}{path}", scheme(*https)),
            TargetSpec::Admin(u) => write!(f, "{}servers", u.as_str()),
            TargetSpec::Root(u) => write!(f, "{u}"),
            TargetSpec::Stdio(words) => {
                let joined = shlex::try_join(words.iter().map(String::as_str));
                write!(f, "stdio:{}", joined.unwrap_or_else(|_| words.join(" ")))
            }
        }
    }
}

/// The tool mixes for servers of our fleet, one per profile, shared by all its servers.
#[derive(Debug, Clone)]
pub struct Mixes {
    community: Arc<Mix>,
    security: Arc<Mix>,
}

impl Default for Mixes {
    fn default() -> Self {
        Self {
            community: Arc::new(Mix::for_profile(Profile::Community)),
            security: Arc::new(Mix::for_profile(Profile::Security)),
        }
    }
}

impl Mixes {
    pub fn get(&self, profile: Profile) -> Arc<Mix> {
        match profile {
            Profile::Community => self.community.clone(),
            Profile::Security => self.security.clone(),
        }
    }
}

/// Expands every spec into endpoints, asking fleet admin APIs for their servers.
pub async fn resolve(specs: &[TargetSpec], timeout: Duration) -> anyhow::Result<Arc<[Target]>> {
    let list_only = Arc::new(Mix::list_only());
    let mixes = Mixes::default();
    let mut targets = Vec::new();
    for spec in specs {
        match spec {
            TargetSpec::Root(url) => match discover(url, timeout, &mixes).await {
                Ok(found) => targets.extend(found),
                Err(_) => targets.push(endpoint(url, &list_only)),
            },
            TargetSpec::Url(url) => targets.push(endpoint(url, &list_only)),
            TargetSpec::Range {
                https,
                host,
                first,
                last,
                path,
            } => {
                for port in *first..=*last {
                    let url: Url = format!("{}://{host}:{port}{path}", scheme(*https))
                        .parse()
                        .with_context(|| format!("building an endpoint of {spec}"))?;
                    targets.push(Target {
                        id: format!("{host}:{port}"),
                        group: format!("{host}:{first}-{last}"),
                        url,
                        mix: list_only.clone(),
                        version: crate::mcp::Version::V2026_07_28,
                        transport: crate::transport::client::Transport::default(),
                    });
                }
            }
            TargetSpec::Admin(admin) => targets.extend(discover(admin, timeout, &mixes).await?),
            // The process pool is attached when the run starts it (transport::stdio::run).
            TargetSpec::Stdio(_) => targets.push(Target {
                id: spec.to_string(),
                group: "stdio".into(),
                url: Url::parse("stdio:").context("the stdio pseudo-URL")?,
                mix: list_only.clone(),
                version: crate::mcp::Version::V2026_07_28,
                transport: crate::transport::client::Transport::Stdio(None),
            }),
        }
        if targets.len() > MAX_ENDPOINTS {
            anyhow::bail!(
                "--target expands to more than {MAX_ENDPOINTS} endpoints (at {spec}); narrow it"
            );
        }
    }
    Ok(targets.into())
}

/// An MCP endpoint of a server whose tools are unknown.
fn endpoint(url: &Url, list_only: &Arc<Mix>) -> Target {
    Target {
        id: url.to_string(),
        group: "target".into(),
        url: url.clone(),
        mix: list_only.clone(),
        version: crate::mcp::Version::V2026_07_28,
        transport: crate::transport::client::Transport::default(),
    }
}

/// Reads a fleet admin API's `GET /servers` and turns every server into a target.
async fn discover(admin: &Url, timeout: Duration, mixes: &Mixes) -> anyhow::Result<Vec<Target>> {
    let url = admin.join("servers").context("admin URL")?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("the fleet admin API at {url} did not answer"))?;
    if !response.status().is_success() {
        anyhow::bail!(
            "the fleet admin API at {url} answered {}",
            response.status()
        );
    }
    let text = response.text().await?;
    let view: FleetView = serde_json::from_str(&text)
        .with_context(|| format!("{url} did not return a fleet's server list"))?;
    let host = admin
        .host_str()
        .with_context(|| format!("{admin} has no host"))?;
    view.servers
        .into_iter()
        .map(|s| {
            let url: Url = format!("http://{}:{}/mcp", bracket(host), s.port)
                .parse()
                .with_context(|| format!("endpoint of {}", s.id))?;
            Ok(Target {
                mix: mixes.get(s.profile),
                id: s.id,
                group: s.group,
                url,
                version: crate::mcp::Version::V2026_07_28,
                transport: crate::transport::client::Transport::default(),
            })
        })
        .collect()
}

/// The URL scheme of a range's endpoints.
fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

/// `host_str` gives IPv6 hosts without brackets; URLs need them.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> TargetSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("http://127.0.0.1:8000/mcp"),
            TargetSpec::Url("http://127.0.0.1:8000/mcp".parse().expect("url"))
        );
        assert_eq!(
            parse("127.0.0.1:8001/mcp"),
            TargetSpec::Url("http://127.0.0.1:8001/mcp".parse().expect("url"))
        );
        assert_eq!(
            parse("127.0.0.1:8000-8345/mcp"),
            TargetSpec::Range {
                https: false,
                host: "127.0.0.1".into(),
                first: 8000,
                last: 8345,
                path: "/mcp".into()
            }
        );
        assert_eq!(
            parse("http://localhost:9000-9001"),
            TargetSpec::Range {
                https: false,
                host: "localhost".into(),
                first: 9000,
                last: 9001,
                path: "/mcp".into()
            }
        );
        assert_eq!(
            parse("http://127.0.0.1:7900"),
            TargetSpec::Root("http://127.0.0.1:7900/".parse().expect("url"))
        );
        assert_eq!(
            parse("127.0.0.1:7900/servers"),
            TargetSpec::Admin("http://127.0.0.1:7900".parse().expect("url"))
        );
        assert_eq!(
            parse("127.0.0.1:8000-8003/x").to_string(),
            "http://127.0.0.1:8000-8003/x"
        );
    }

    #[test]
    fn parses_stdio_commands_like_a_shell() {
        let spec = parse(r#"stdio:python3 "my server.py" --flag 'a b'"#);
        assert_eq!(
            spec,
            TargetSpec::Stdio(vec![
                "python3".into(),
                "my server.py".into(),
                "--flag".into(),
                "a b".into()
            ])
        );
        assert_eq!(
            spec.to_string(),
            "stdio:python3 'my server.py' --flag 'a b'"
        );
        assert_eq!(parse(&spec.to_string()), spec);
        assert!(
            "stdio:"
                .parse::<TargetSpec>()
                .unwrap_err()
                .contains("no command")
        );
        assert!(
            "stdio:python3 'x"
                .parse::<TargetSpec>()
                .unwrap_err()
                .contains("unbalanced quotes")
        );
    }

    #[test]
    fn rejects_bad_targets_with_the_reason() {
        for (bad, why) in [
            ("ftp://x/mcp", "not http or https"),
            ("127.0.0.1:9000-8000/mcp", "empty"),
            ("127.0.0.1:0-5/mcp", "not a port"),
            ("127.0.0.1:8000-99999/mcp", "not a port"),
            (":8000-8001/mcp", "no host"),
            ("http://", "not a URL"),
        ] {
            let err = bad.parse::<TargetSpec>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn https_urls_and_ranges_keep_their_scheme() {
        assert_eq!(
            parse("https://localhost:8443/mcp"),
            TargetSpec::Url("https://localhost:8443/mcp".parse().expect("url"))
        );
        let range = parse("https://127.0.0.1:8000-8001/x");
        assert_eq!(range.to_string(), "https://127.0.0.1:8000-8001/x");
        let t = resolve(&[range], Duration::from_secs(1))
            .await
            .expect("resolves");
        let urls: Vec<String> = t.iter().map(|t| t.url.to_string()).collect();
        assert_eq!(
            urls,
            ["https://127.0.0.1:8000/x", "https://127.0.0.1:8001/x"]
        );
    }

    #[tokio::test]
    async fn ranges_expand_and_are_bounded() {
        let t = resolve(&[parse("127.0.0.1:8000-8002/mcp")], Duration::from_secs(1))
            .await
            .expect("resolves");
        let urls: Vec<String> = t.iter().map(|t| t.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8000/mcp",
                "http://127.0.0.1:8001/mcp",
                "http://127.0.0.1:8002/mcp"
            ]
        );
        let huge = [parse("127.0.0.1:1-30000/mcp")];
        assert!(resolve(&huge, Duration::from_secs(1)).await.is_err());
    }

    /// A root URL that does not answer as an admin API is an MCP endpoint at `/`.
    #[tokio::test]
    async fn a_root_url_without_an_admin_api_is_an_endpoint() {
        let t = resolve(&[parse("http://127.0.0.1:9")], Duration::from_secs(1))
            .await
            .expect("resolves");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].url.as_str(), "http://127.0.0.1:9/");
    }

    #[tokio::test]
    async fn dead_admin_api_is_a_clear_error() {
        let err = resolve(
            &[parse("http://127.0.0.1:9/servers")],
            Duration::from_secs(1),
        )
        .await
        .expect_err("nothing listens on port 9");
        assert!(
            format!("{err:#}").contains("admin API at http://127.0.0.1:9/servers"),
            "{err:#}"
        );
    }
}
