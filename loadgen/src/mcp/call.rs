//! The calls loadgen makes: method, tool name and params, serialised once per kind of version
//! (a load run sends the same few calls hundreds of thousands of times), and what sending one
//! gave.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use super::asides::Asides;
use crate::runfile::ErrorClass;
use fleet::wire::Version;

/// One kind of request: method, tool name and params.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Arc<str>,
    pub tool: Option<Arc<str>>,
    /// Params with the 2026-07-28 `_meta` client context.
    stateless: String,
    /// Params as a session-era request sends them.
    session: String,
}

impl Call {
    /// A request of `method` with `params` (an object; anything else is sent as given).
    pub fn new(method: &str, tool: Option<Arc<str>>, params: Value) -> Self {
        let session = params.to_string();
        let mut with_meta = params;
        if let Some(obj) = with_meta.as_object_mut() {
            obj.insert("_meta".into(), fleet::wire::stateless_meta());
        }
        Self {
            method: method.into(),
            tool,
            stateless: with_meta.to_string(),
            session,
        }
    }

    pub fn tools_list() -> Self {
        Self::new("tools/list", None, json!({}))
    }

    pub fn tool(name: &str, arguments: Value) -> Self {
        Self::new(
            "tools/call",
            Some(name.into()),
            json!({ "name": name, "arguments": arguments }),
        )
    }

    /// What the report calls this request: the tool name, or the method.
    pub fn label(&self) -> &str {
        self.tool.as_deref().unwrap_or(&self.method)
    }

    /// The JSON-RPC request text (one line) with the given id, as `version` sends it.
    pub fn body(&self, id: u64, version: Version) -> String {
        let params = if version.is_stateless() {
            &self.stateless
        } else {
            &self.session
        };
        // The method went through serde_json in `new` only as a key; quote it as JSON.
        let method = Value::from(&*self.method);
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{method},"params":{params}}}"#)
    }
}

/// What sending one call gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// From sending to having the answer (the JSON-RPC response).
    pub elapsed: Duration,
    /// From sending to the response headers (HTTP). In the session era the headers leave
    /// before the tool has run, so this is not the tool's latency.
    pub ttfb: Option<Duration>,
    /// The HTTP status, when a response arrived over HTTP.
    pub status: Option<u16>,
    pub outcome: Result<(), ErrorClass>,
    /// Notifications and server-to-client requests that came before the answer.
    pub asides: Asides,
}

impl Sent {
    /// A call that failed before any response, `class` saying why, `elapsed` after it started.
    pub fn failed(elapsed: Duration, class: ErrorClass) -> Self {
        Sent {
            elapsed,
            ttfb: None,
            status: None,
            outcome: Err(class),
            asides: Asides::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bodies_are_jsonrpc_with_meta_only_when_stateless() {
        let call = Call::tool("echo", json!({"text": "hi"}));
        let body: Value = serde_json::from_str(&call.body(42, Version::V2026_07_28)).unwrap();
        assert_eq!(body["id"], 42);
        assert_eq!(body["method"], "tools/call");
        assert_eq!(body["params"]["name"], "echo");
        assert!(body["params"]["_meta"].is_object());
        for v in [Version::V2024_11_05, Version::V2025_11_25] {
            let body: Value = serde_json::from_str(&call.body(43, v)).unwrap();
            assert_eq!(body["params"]["arguments"]["text"], "hi");
            assert!(body["params"].get("_meta").is_none());
        }
        assert_eq!(call.label(), "echo");
        assert_eq!(Call::tools_list().label(), "tools/list");
        let odd = Call::new("x\"y", None, json!({}));
        let body: Value = serde_json::from_str(&odd.body(1, Version::V2025_06_18)).unwrap();
        assert_eq!(body["method"], "x\"y");
    }
}
