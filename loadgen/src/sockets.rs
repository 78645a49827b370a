//! Counts this process's established TCP connections to the targets, so a claim of "N
//! simultaneous connections" is checked against sockets that really exist rather than against
//! the number of users asked for.
//!
//! Each open descriptor of this process (`/proc/self/fd`, Linux) is asked of the kernel: a
//! socket counts when it is TCP in state ESTABLISHED (`TCP_INFO`) and its peer is one of the
//! targets' addresses. In embedded mode the servers' accepted sockets are in this process too,
//! but their peer is the client's ephemeral port, so they are not counted; the fleet's own
//! health probes are client connections of this process, though, and add a few short-lived ones
//! (the servers' count includes them too).
//!
//! The cost grows with this process's descriptors only. An earlier version read
//! `/proc/net/tcp`, which walks the kernel's whole connection table however few sockets are
//! open (about 5 ms per table on this project's machine, in stretches the kernel does not
//! preempt); done once a second beside the requests, that stall was most of an open-model run's
//! p99 (benches/README.md). A load phase also counts on a [`Sampler`] thread of its own, at the
//! lowest CPU priority unless the count is the phase's evidence.

use std::{collections::HashSet, net::SocketAddr, sync::mpsc};

use tokio::sync::oneshot;

/// Counts established connections from this process to any of `remotes`; `None` where the
/// process's descriptors cannot be listed (not Linux, or no `/proc`).
pub fn established_to(remotes: &HashSet<SocketAddr>) -> Option<u64> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    let count = fds
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(established_peer)
        .filter(|peer| remotes.contains(peer))
        .count();
    Some(count as u64)
}

/// The peer of descriptor `fd` when it is a TCP socket in state ESTABLISHED. Anything else (a
/// file, a listening or closing socket, a descriptor closed since it was listed) is `None`.
#[cfg(target_os = "linux")]
fn established_peer(fd: std::os::fd::RawFd) -> Option<SocketAddr> {
    use std::{mem::ManuallyDrop, os::fd::FromRawFd as _};
    /// `tcpi_state` of an established connection (`TCP_ESTABLISHED` in the kernel).
    const TCP_ESTABLISHED: u8 = 1;
    // SAFETY: an all-zero `tcp_info` is a valid value (plain integers).
    #[allow(unsafe_code)]
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large. `fd` may
    // have been closed, or even reused, since it was listed: the call then fails or describes
    // the descriptor's new socket, a momentary miscount, never a memory error.
    #[allow(unsafe_code)]
    let asked = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if asked != 0 || len < 1 || info.tcpi_state != TCP_ESTABLISHED {
        return None;
    }
    // SAFETY: the stream only borrows `fd` to ask its peer's address and is never dropped, so
    // the descriptor is not closed here (its owner keeps it).
    #[allow(unsafe_code)]
    let stream = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    stream.peer_addr().ok()
}

#[cfg(not(target_os = "linux"))]
fn established_peer(_fd: i32) -> Option<SocketAddr> {
    None
}

/// A thread that counts [`established_to`] the remotes when asked, at normal or at the lowest
/// CPU priority (nice 19). At the lowest it runs when the threads doing requests leave a core
/// free, and one of them that wakes takes the core back at once; on a saturated machine a count
/// may then wait seconds. Dropping the sampler ends the thread after its current count.
pub struct Sampler {
    asks: mpsc::Sender<oneshot::Sender<Option<u64>>>,
}

impl Sampler {
    /// Starts the thread. Where it cannot be started, every count answers `None` (unknown).
    pub fn start(remotes: HashSet<SocketAddr>, lowest_priority: bool) -> Self {
        let (asks, asked) = mpsc::channel::<oneshot::Sender<Option<u64>>>();
        let spawned = std::thread::Builder::new()
            .name("socket-count".into())
            .spawn(move || {
                if lowest_priority {
                    lower_priority();
                }
                for answer in asked {
                    let _ = answer.send(established_to(&remotes));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the socket-count thread ({e}): client sockets unknown");
        }
        Self { asks }
    }

    /// Asks for a count; the answer is `None` where `/proc` cannot be read (or the thread is
    /// gone). A count the thread is still working on when the next is asked is answered first.
    pub fn count(&self) -> oneshot::Receiver<Option<u64>> {
        let (answer, receiver) = oneshot::channel();
        // A thread that is gone dropped the channel's end; the receiver then reads as unknown.
        let _ = self.asks.send(answer);
        receiver
    }
}

/// Lowers the calling thread to nice 19 (Linux: the nice value is per thread). Best effort: a
/// count at normal priority is still correct, only costlier to the run.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!("socket-count thread keeps its priority: {e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn counts_only_our_established_connections_to_the_remotes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let remotes = HashSet::from([addr]);
        let before = established_to(&remotes).unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            held.push((client, server));
        }
        // The accepted ends are ours too, but their remote is the client's port: not counted.
        assert_eq!(established_to(&remotes).unwrap(), before + 3);
        held.pop();
        assert_eq!(established_to(&remotes).unwrap(), before + 2);
        let elsewhere = HashSet::from(["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(established_to(&elsewhere).unwrap(), 0);
        // The same count from the sampler's thread.
        let sampler = Sampler::start(remotes.clone(), true);
        assert_eq!(sampler.count().await.unwrap(), Some(before + 2));
        held.pop();
        assert_eq!(sampler.count().await.unwrap(), Some(before + 1));
        // The server closes its end: the client's socket is still open but no longer held
        // (CLOSE_WAIT), so it stops counting once the FIN has arrived.
        let (_client, server) = held.pop().unwrap();
        drop(server);
        let mut now = u64::MAX;
        for _ in 0..100 {
            now = established_to(&remotes).unwrap();
            if now == before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(now, before);
    }
}
