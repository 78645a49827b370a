//! The memory across processes: in process mode the supervisor's process owns the store and
//! every server process reaches it over a local socket, holding no copy of the graph.
//!
//! Each memory call of a server process is one round trip: a write goes to the owner and is
//! answered once durable; a read (with its `minVersion` wait, if any) is answered by the owner
//! from its own view, the one every server in task mode reads too. So a write is applied once
//! in the whole fleet, not once per process, read-your-writes and `minVersion` hold across
//! servers because there is only one view, and a server process costs no graph's worth of
//! memory. (Before this, each process kept a replica caught up from the owner's log at every
//! call: 500 processes replayed every write 500 times, and at 1000 writes/s on two cores acks
//! took seconds.)
//!
//! The socket is a Unix socket in a private directory carrying length-delimited JSON frames:
//! a hello proving which server a process is, then requests with an id, answers carrying it.
//! Only processes of the fleet's own user reach it, and each writes only as the server it
//! proved to be.
//!
//! Its parts: `socket` is where the socket lives and who may use it (directory, tokens),
//! `frames` the framing (bounded, grown as data arrives), `protocol` what crosses the socket,
//! [`serve`] the owner's side (accepting and the hello), `requests` a process's requests
//! there, `remote_memory` what a server process calls, `client` that process's requests in
//! flight, `connection` connecting, reconnecting and handing the owner's answers to the calls
//! waiting for them.

mod client;
mod connection;
mod frames;
mod protocol;
mod remote_memory;
mod requests;
mod serve;
mod socket;

pub use connection::RemoteError;
pub use remote_memory::RemoteMemory;
pub use serve::{serve, serve_on_thread};
pub use socket::{MemoryAccess, MemorySocket};
