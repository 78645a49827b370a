//! MCP over stdio: loadgen spawns the server (`--target 'stdio:COMMAND ARG...'`) and speaks
//! newline-delimited JSON-RPC on its stdin and stdout, as an MCP host does. [`lines`] bounds
//! what is read of the server's stdout, [`stderr_log`] keeps its log, [`usage`] samples the
//! processes' CPU and memory.

pub mod lines;
pub mod stderr_log;
pub mod usage;
