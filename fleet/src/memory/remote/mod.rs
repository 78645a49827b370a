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
//! The socket is a Unix socket in the Linux abstract namespace (no file to clean up), carrying
//! length-delimited JSON frames: requests with an id, answers carrying it. Only processes of
//! the fleet's own user are served.
//!
//! Its parts: `frames` is the framing (bounded, grown as data arrives), `protocol` what
//! crosses the socket, [`serve`] the owner's side of it, `remote_memory` what a server process
//! calls, `client` that process's requests in flight, `connection` connecting, reconnecting
//! and handing the owner's answers to the calls waiting for them.

mod client;
mod connection;
mod frames;
mod protocol;
mod remote_memory;
mod serve;

pub use connection::RemoteError;
pub use remote_memory::RemoteMemory;
pub use serve::{listen, serve, socket_name};
