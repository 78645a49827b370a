//! The tool mix: which calls loadgen makes to which group of servers, and how often. The
//! inputs are small and valid, so any error in a run is the server's or the transport's.

use std::str::FromStr;

use serde_json::{Value, json};

use crate::{mcp::Call, transport::http::HttpCall};

/// One `--tool NAME[@WEIGHT][:JSON-ARGS]`: a tool to call, its arguments and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolChoice {
    pub name: String,
    pub weight: u32,
    pub arguments: Value,
}

impl FromStr for ToolChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, weight, arguments) = weighted(s, "tool name", |c| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        })?;
        Ok(Self {
            name,
            weight,
            arguments,
        })
    }
}

/// One `--request METHOD[@WEIGHT][:JSON-PARAMS]`: any JSON-RPC method in the mix
/// (`resources/read`, `prompts/get`, `completion/complete`, `ping`, ...), its params and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestChoice {
    pub method: String,
    pub weight: u32,
    pub params: Value,
}

impl FromStr for RequestChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (method, weight, params) = weighted(s, "method", |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.')
        })?;
        Ok(Self {
            method,
            weight,
            params,
        })
    }
}

/// Parses `NAME[@WEIGHT][:JSON-OBJECT]`, the name 1-64 characters allowed by `name_char`.
fn weighted(
    s: &str,
    what: &str,
    name_char: impl Fn(char) -> bool,
) -> Result<(String, u32, Value), String> {
    let (head, json) = match s.split_once(':') {
        Some((head, json)) => (head, Some(json)),
        None => (s, None),
    };
    let (name, weight) = match head.split_once('@') {
        Some((name, w)) => {
            let weight = w
                .parse::<u32>()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| format!("`{s}`: weight `{w}` is not a whole number 1-1000"))?;
            (name, weight)
        }
        None => (head, 1),
    };
    if !(1..=64).contains(&name.len()) || !name.chars().all(name_char) {
        return Err(format!(
            "`{s}`: {what} `{name}` must be 1-64 characters of the allowed set"
        ));
    }
    let value = match json {
        None => json!({}),
        Some(j) => serde_json::from_str::<Value>(j)
            .map_err(|e| format!("`{s}`: the JSON is not valid: {e}"))?,
    };
    if !value.is_object() {
        return Err(format!("`{s}`: the JSON must be an object"));
    }
    Ok((name.to_string(), weight, value))
}

/// Weighted calls for one group of servers.
#[derive(Debug, Clone)]
pub struct Mix {
    entries: Vec<(HttpCall, u32)>,
    total: u32,
}

impl Mix {
    fn new(entries: Vec<(HttpCall, u32)>) -> Self {
        let total = entries.iter().map(|e| e.1).sum();
        Self { entries, total }
    }

    /// Community servers: mostly cheap calls, some parsing work.
    pub fn community() -> Self {
        Self::from_tools(community_tools(), |name| name.to_string())
    }

    /// Security servers: scanners over small inputs.
    pub fn security() -> Self {
        Self::from_tools(security_tools(), |name| name.to_string())
    }

    fn from_tools(tools: Vec<(&str, Value, u32)>, name: impl Fn(&str) -> String) -> Self {
        Self::new(
            tools
                .into_iter()
                .map(|(tool, args, weight)| (HttpCall::tool(&name(tool), args), weight))
                .collect(),
        )
    }

    /// A gateway federating groups of reference-fleet servers (`group__tool` names): each
    /// group's mix, weighted by its number of servers, so the load spreads as it would over
    /// the servers themselves.
    pub fn federated(groups: &[(String, fleet::Profile, u32)]) -> Self {
        let mut entries = Vec::new();
        for (group, profile, servers) in groups {
            let tools = match profile {
                fleet::Profile::Community => community_tools(),
                fleet::Profile::Security => security_tools(),
            };
            let total: u32 = tools.iter().map(|t| t.2).sum::<u32>().max(1);
            for (tool, args, weight) in tools {
                let name = format!("{group}{}{tool}", fleet::gateway::PREFIX_SEPARATOR);
                // Per server, the group's weights sum to 100 (as `total`): scale by servers.
                let w = (u64::from(weight) * u64::from(*servers) * 100 / u64::from(total)).max(1);
                entries.push((
                    HttpCall::tool(&name, args),
                    u32::try_from(w).unwrap_or(u32::MAX),
                ));
            }
        }
        if entries.is_empty() {
            return Self::list_only();
        }
        Self::new(entries)
    }

    /// The calls a user chose with `--tool` and `--request`.
    pub fn from_choices(tools: &[ToolChoice], requests: &[RequestChoice]) -> Self {
        let tools = tools
            .iter()
            .map(|c| (HttpCall::tool(&c.name, c.arguments.clone()), c.weight));
        let requests = requests.iter().map(|r| {
            let call = Call::new(&r.method, None, r.params.clone());
            (HttpCall::from(call), r.weight)
        });
        Self::new(tools.chain(requests).collect())
    }

    /// Servers whose tools are unknown (`--target`): only `tools/list`.
    pub fn list_only() -> Self {
        Self::new(vec![(HttpCall::tools_list(), 1)])
    }

    /// The mix for a reference-fleet server of this profile (its tools are known).
    pub fn for_profile(profile: fleet::Profile) -> Self {
        match profile {
            fleet::Profile::Community => Self::community(),
            fleet::Profile::Security => Self::security(),
        }
    }

    /// Picks a call for a random number `r`, in proportion to the weights.
    pub fn pick(&self, r: u64) -> &HttpCall {
        let mut slot = (r % u64::from(self.total.max(1))) as u32;
        for (call, weight) in &self.entries {
            if slot < *weight {
                return call;
            }
            slot -= weight;
        }
        &self.entries[0].0
    }

    /// `(label, share in percent)` for the run file.
    pub fn shares(&self) -> Vec<(String, f64)> {
        self.entries
            .iter()
            .map(|(c, w)| {
                let share = f64::from(*w) * 100.0 / f64::from(self.total);
                (c.label().to_string(), share)
            })
            .collect()
    }
}

/// The community mix: (tool, arguments, weight).
fn community_tools() -> Vec<(&'static str, Value, u32)> {
    let document = json!({"servers": [
        {"id": "community-0000", "port": 8000, "healthy": true},
        {"id": "security-0000", "port": 9346, "healthy": true},
    ]});
    vec![
        ("echo", json!({"text": "hello from loadgen"}), 40),
        ("add", json!({"a": 19.5, "b": 1.5}), 20),
        (
            "text_stats",
            json!({"text": "Five hundred servers answer. Each answer is timed. \
                            The timing is honest, and the report says so."}),
            20,
        ),
        (
            "json_query",
            json!({"document": document, "pointer": "/servers/1/port"}),
            20,
        ),
    ]
}

/// The security mix: (tool, arguments, weight).
fn security_tools() -> Vec<(&'static str, Value, u32)> {
    let config = "region = \"eu-west-1\"\naws_access_key_id = \"AKIAIOSFODNN7EXAMPLE\"\n";
    let dockerfile = "FROM ubuntu:latest\nUSER root\nRUN curl -s https://example.invalid/x | sh\n";
    vec![
        ("scan_secrets", json!({"content": config}), 40),
        (
            "check_package",
            json!({"ecosystem": "npm", "name": "lodash", "version": "4.17.11"}),
            40,
        ),
        ("scan_iac", json!({"content": dockerfile}), 20),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_choices_parse_and_reject_with_reasons() {
        let c: ToolChoice = "scan_secrets@5:{\"content\":\"x: y\"}"
            .parse()
            .expect("valid");
        assert_eq!((c.name.as_str(), c.weight), ("scan_secrets", 5));
        assert_eq!(c.arguments["content"], "x: y");
        for (bad, why) in [
            ("", "tool name"),
            ("bad name", "tool name"),
            ("echo@0", "weight"),
            ("echo@x", "weight"),
            ("echo:{nope", "not valid"),
            ("echo:[1]", "an object"),
            ("resources/read", "tool name"),
        ] {
            let err = bad.parse::<ToolChoice>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let r: RequestChoice = "resources/read@2:{\"uri\":\"file:///a\"}"
            .parse()
            .expect("valid");
        assert_eq!((r.method.as_str(), r.weight), ("resources/read", 2));
        assert_eq!(r.params["uri"], "file:///a");
        assert!("bad method".parse::<RequestChoice>().is_err());
    }

    #[test]
    fn mixes_follow_their_weights() {
        let mix = Mix::community();
        let echoes = (0..100).filter(|r| mix.pick(*r).label() == "echo").count();
        assert_eq!(echoes, 40);
        let total: f64 = Mix::security().shares().iter().map(|s| s.1).sum();
        assert!((total - 100.0).abs() < 1e-9);
        assert_eq!(Mix::list_only().pick(3).label(), "tools/list");
        let chosen = Mix::from_choices(
            &[
                "echo@3:{\"text\":\"a:b\"}".parse().expect("valid"),
                "ping_tool".parse().expect("valid"),
            ],
            &["ping@4".parse().expect("valid")],
        );
        assert_eq!(
            chosen.shares(),
            [
                ("echo".to_string(), 37.5),
                ("ping_tool".to_string(), 12.5),
                ("ping".to_string(), 50.0)
            ]
        );
        let security = Mix::for_profile(fleet::Profile::Security);
        assert_eq!(security.shares(), Mix::security().shares());
    }

    #[test]
    fn a_federated_mix_prefixes_tools_and_weighs_groups_by_servers() {
        use fleet::Profile;
        let mix = Mix::federated(&[
            ("community".into(), Profile::Community, 3),
            ("security".into(), Profile::Security, 1),
        ]);
        let shares = mix.shares();
        let share = |label: &str| shares.iter().find(|s| s.0 == label).map(|s| s.1);
        assert_eq!(share("community__echo"), Some(30.0));
        assert_eq!(share("security__scan_secrets"), Some(10.0));
        let total: f64 = shares.iter().map(|s| s.1).sum();
        assert!((total - 100.0).abs() < 1e-9);
        assert_eq!(Mix::federated(&[]).pick(0).label(), "tools/list");
    }
}
