//! The one error type tool logic returns for bad arguments, so the server can map it to
//! JSON-RPC -32602 with the offending field named.

/// A tool argument that is present and well-typed but not acceptable (wrong range, bad
/// format, ...). Serde already reports missing or mistyped fields; this covers the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument `{field}`: {message}")]
pub struct ToolInputError {
    /// Path of the offending argument, e.g. `ecosystem` or `files[2].content`.
    pub field: String,
    /// What is wrong with it, written for the caller.
    pub message: String,
}

impl ToolInputError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
