//! The messages that start talking to a server: `initialize` (with the version asked for; the
//! server answers with the one it will speak, maybe older) and `notifications/initialized` for
//! the session versions. (2026-07-28 needs none: `server/discover` is an ordinary
//! [`super::Call`].)

use serde_json::{Value, json};

use super::message::result_of;
use crate::runfile::ErrorClass;
use fleet::wire::Version;

/// The `initialize` request with id `id`, asking for `version`.
pub fn initialize_body(id: u64, version: Version) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version.as_str(),
            "capabilities": {"roots": {}, "elicitation": {}},
            "clientInfo": {"name": "mcpfleet-loadgen", "version": env!("CARGO_PKG_VERSION")},
        },
    })
    .to_string()
}

/// The notification that completes the session handshake.
pub const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The version an `InitializeResult` (the response with id `id` in `body`, JSON or SSE) says
/// the server will speak. One loadgen does not know is a protocol error.
pub fn negotiated_version(body: &str, id: u64) -> Result<Version, ErrorClass> {
    let result = result_of(body, id).ok_or(ErrorClass::Protocol)?;
    result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .and_then(Version::parse)
        .ok_or(ErrorClass::Protocol)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_the_negotiated_version() {
        let body = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26","capabilities":{}}}"#;
        assert_eq!(negotiated_version(body, 0), Ok(Version::V2025_03_26));
        let future = body.replace("2025-03-26", "2099-01-01");
        assert_eq!(negotiated_version(&future, 0), Err(ErrorClass::Protocol));
        assert_eq!(negotiated_version(body, 1), Err(ErrorClass::Protocol));
        let asked: Value = serde_json::from_str(&initialize_body(4, Version::V2025_06_18)).unwrap();
        assert_eq!(asked["params"]["protocolVersion"], "2025-06-18");
        assert_eq!(asked["id"], 4);
    }
}
