//! MCP over stdio: loadgen spawns the server (`--target 'stdio:COMMAND ARG...'`) and speaks
//! newline-delimited JSON-RPC on its stdin and stdout, as an MCP host does. The [`pool`] keeps
//! the processes running (one per user, or a few shared, restarting those that exit) and
//! samples their CPU and memory ([`usage`]); a [`process`] routes the answers of its pipelined
//! calls by id ([`lines`] bounds what it reads, [`stderr_log`] keeps the server's log, the
//! [`handshake`] opens it); a [`client`] is one user's handle on its process; [`run`] starts
//! the pool of a run's `stdio:` target.

pub mod client;
pub mod handshake;
pub mod lines;
pub mod pool;
pub mod process;
pub mod run;
pub mod stderr_log;
pub mod usage;

#[cfg(test)]
mod tests;

pub use self::{
    client::StdioClient,
    pool::{StdioHandle, StdioPool, StdioSettings},
};
