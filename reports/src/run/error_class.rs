//! Why a request failed, by kind: the classes every count of errors in the run file uses.

use serde::{Deserialize, Serialize};

/// Why a request failed. Counted by kind, never stored one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Could not connect, or the connection broke before the response was complete.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The server answered with an HTTP status other than 2xx.
    HttpStatus,
    /// A JSON-RPC error response (e.g. invalid params, unknown method).
    JsonrpcError,
    /// The tool ran and reported failure (`result.isError: true`).
    ToolError,
    /// HTTP 2xx without a well-formed JSON-RPC response to our request.
    Protocol,
    /// The server process (a stdio target) exited while the request was in flight.
    Exited,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::HttpStatus,
        ErrorClass::JsonrpcError,
        ErrorClass::ToolError,
        ErrorClass::Protocol,
        ErrorClass::Exited,
    ];

    /// The name used in the run file and the report.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::JsonrpcError => "jsonrpc_error",
            ErrorClass::ToolError => "tool_error",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Exited => "exited",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ErrorClass::Connect => "could not connect, or the connection broke mid-request",
            ErrorClass::Timeout => "no complete response within the request timeout",
            ErrorClass::HttpStatus => "HTTP status other than 2xx",
            ErrorClass::JsonrpcError => "JSON-RPC error response",
            ErrorClass::ToolError => "tool reported failure (result.isError)",
            ErrorClass::Protocol => "2xx without a well-formed JSON-RPC response to the request",
            ErrorClass::Exited => "the server process exited while the request was in flight",
        }
    }
}
