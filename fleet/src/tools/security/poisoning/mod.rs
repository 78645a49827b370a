//! `audit_tool_descriptions`: looks for MCP tool-poisoning patterns in the tools a server
//! advertises (the `tools` array of a `tools/list` result).
//!
//! Tool poisoning hides instructions for the model in metadata the user rarely reads: the
//! description, parameter descriptions, or invisible characters. Heuristics (rule ids):
//!
//! | rule | looks for | severity |
//! | --- | --- | --- |
//! | `hidden-instruction-tag` | `<IMPORTANT>`, `<SYSTEM>`, `<instructions>`, `[SYSTEM]`, HTML comments | high |
//! | `prompt-override` | "ignore/disregard previous instructions", "you are now", "new instructions:" | high |
//! | `sensitive-file-access` | `~/.ssh`, `id_rsa`, `.env`, `mcp.json`, `.aws/credentials`, `/etc/passwd`, … (high with a read/send verb in the same sentence, else medium) | high/medium |
//! | `exfiltration-instruction` | a sentence that tells the model to send/pass/include data into a parameter, URL or address (high when the data is secret-like: keys, tokens, passwords, credentials, conversation history) | high/medium |
//! | `conceal-from-user` | "do not tell the user", "without the user's knowledge", "secretly" | high/medium |
//! | `tool-shadowing` | a description naming another listed tool in a sentence that changes its behaviour ("must", "always", "instead", …); high with a redirect target (URL/email) or override wording | high/medium |
//! | `invisible-unicode` | zero-width, bidi control or Unicode tag characters anywhere (tags: critical) | critical/high |
//! | `long-description` | descriptions over 1500 characters (medium over 4000) | low/medium |
//! | `invalid-tool-name` | a name outside `[A-Za-z0-9_-]{1,64}` | medium |
//! | `duplicate-tool-name` | two tools with the same name | medium |
//! | `suspicious-parameter` | parameters named like covert channels (`sidenote`, `hidden`, `system_prompt`, …: medium) or whose description asks for file contents, secrets or the conversation (high) | high/medium |
//! | `external-url` | a URL in a description | low |
//!
//! Parameter descriptions and titles inside `inputSchema` (nested `properties`, `items`,
//! `anyOf`/`oneOf`/`allOf`, `$defs`) get the same text checks. Each (tool, rule, location) is
//! reported once, with the first match as evidence (at most 120 characters, invisible
//! characters shown as `\u{…}` escapes).
//!
//! Its parts: `schema` holds the tool's arguments, output and limits, `patterns` the rule
//! table of regexes and word lists, `audit` the tool itself, `text_rules` the checks on
//! one text (a description, a title, a parameter description), `metadata` the checks on a
//! tool's name and its `inputSchema`, `spans` sentences, words and evidence excerpts.

mod audit;
#[cfg(test)]
mod bounds_tests;
mod metadata;
mod patterns;
mod schema;
mod spans;
#[cfg(test)]
mod tests;
mod text_rules;

pub use audit::audit_tool_descriptions;
pub use schema::{
    AuditSummary, AuditToolDescriptionsArgs, AuditToolDescriptionsOutput, LONG_DESCRIPTION_CHARS,
    MAX_TOOLS, PoisoningFinding, ToolDescription, VERY_LONG_DESCRIPTION_CHARS,
};
