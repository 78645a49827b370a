//! A server's listening socket: how its port is bound (the fleet's backlog, `SO_REUSEADDR`, so a
//! restarted server gets its port back at once) and how long a graceful stop lets the requests
//! in flight on it finish. The fleet binds every port before anything starts; the scaler binds
//! the ports of servers it adds; the accept loop, the in-process path and the instances all
//! honour the same grace. Binding hundreds of them needs the open-file limit raised first.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpSocket;

/// Backlog of every listening socket: connection storms of 1000+ clients must not be dropped.
const BACKLOG: u32 = 1024;

/// How long a graceful stop waits for in-flight requests before dropping connections.
pub const GRACE: Duration = Duration::from_secs(2);

/// A listening socket with the fleet's backlog, handed to a server's instances.
pub fn bind_server(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)?.into_std()
}

/// Raises the soft open-file limit to the hard limit: 500 listeners plus 1000+ client
/// connections need more than the usual 1024 descriptors.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("could not raise the open-file limit: {e}");
            0
        }
    }
}
