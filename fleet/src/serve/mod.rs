//! One server's data plane: the router with its HTTP layers ([`server`]), the rmcp handler
//! and its tools ([`handler`], [`memory_handler`], with [`args`] for tool arguments, and
//! [`heavy`] for where the security tools' work runs), where its sessions live
//! ([`sessions`], [`session_book`]), the
//! [`registry`] of every server's identity, counters and faults, the socket it listens on
//! ([`socket`]), the accept loop that serves it ([`listener`]) within the connection
//! [`limits`] and timeouts of each [`connection`], the in-process path of task-mode servers
//! ([`local`]), the HTTP/1 client
//! connection rules shared by the gateway and loadgen ([`link`]) and the loopback guard of
//! every HTTP surface ([`loopback`]).

pub mod args;
pub mod connection;
pub mod handler;
pub mod heavy;
pub mod limits;
pub mod link;
pub mod listener;
pub mod local;
pub mod loopback;
pub mod memory_handler;
pub mod registry;
pub mod server;
pub mod session_book;
pub mod sessions;
pub mod socket;
mod timing;
