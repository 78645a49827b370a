//! Counts this process's established TCP connections to the targets, from `/proc` (Linux), so a
//! claim of "N simultaneous connections" is checked against sockets that really exist rather
//! than against the number of users asked for.
//!
//! A socket is ours when `/proc/self/fd` links to its inode; it goes to a target when its remote
//! address is one of the targets' addresses; it is held when its state is ESTABLISHED. In
//! embedded mode the servers' accepted sockets are in this process too, but their remote address
//! is the client's ephemeral port, so they are not counted; the fleet's own health probes are
//! client connections of this process, though, and add a few short-lived ones (the servers'
//! count includes them too).
//!
//! Reading `/proc/net/tcp` walks the kernel's whole connection table, however few sockets are
//! open: about 5 ms per table on this project's machine. A load phase counts once a second on a
//! [`Sampler`] thread of its own, at the lowest CPU priority unless the count is the phase's
//! evidence, so that the walk does not take a core a request is waiting for (counted at normal
//! priority beside the requests, it put a stall of some milliseconds into every second, most of
//! an open-model run's p99 on a busy machine: benches/README.md).

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::mpsc,
};

use tokio::sync::oneshot;

/// `st` value of an ESTABLISHED socket in `/proc/net/tcp`.
const ESTABLISHED: &str = "01";

/// Counts established connections from this process to any of `remotes`; `None` where `/proc`
/// cannot be read.
pub fn established_to(remotes: &HashSet<SocketAddr>) -> Option<u64> {
    let ours = socket_inodes()?;
    let mut count = 0;
    // Only the tables the remotes can be in: each read costs a walk of the kernel's table.
    let v6 = remotes.iter().any(SocketAddr::is_ipv6);
    let v4 = remotes.iter().any(SocketAddr::is_ipv4);
    let tables = [(v4, "/proc/self/net/tcp"), (v6, "/proc/self/net/tcp6")];
    for table in tables
        .into_iter()
        .filter_map(|(wanted, t)| wanted.then_some(t))
    {
        // tcp6 is missing when IPv6 is off: that is zero sockets, not an error.
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        count += text
            .lines()
            .skip(1)
            .filter_map(parse_line)
            .filter(|s| s.established && ours.contains(&s.inode) && remotes.contains(&s.remote))
            .count() as u64;
    }
    Some(count)
}

/// The inodes of the sockets this process has open.
fn socket_inodes() -> Option<HashSet<u64>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(|e| {
            let link = std::fs::read_link(e.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect(),
    )
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
    {
        // SAFETY: gettid and setpriority take and return plain integers and touch no memory.
        #[allow(unsafe_code)]
        let done = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
        };
        if done != 0 {
            tracing::debug!(
                "socket-count thread keeps its priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[derive(Debug, PartialEq)]
struct Socket {
    remote: SocketAddr,
    established: bool,
    inode: u64,
}

/// One line of `/proc/net/tcp{,6}`: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode`.
fn parse_line(line: &str) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(Socket {
        remote: parse_addr(fields.get(2)?)?,
        established: *fields.get(3)? == ESTABLISHED,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F40` (IPv4) or 32 hex digits `:PORT` (IPv6). The kernel prints each 32-bit word
/// of the address in host byte order, little-endian here.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_le_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_proc_net_tcp_lines() {
        let v4 = "   3: 0100007F:D2F0 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  \
                  1000        0 123456 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_line(v4),
            Some(Socket {
                remote: "127.0.0.1:8000".parse().unwrap(),
                established: true,
                inode: 123_456,
            })
        );
        let v6 = "   0: 00000000000000000000000001000000:D2F0 \
                  00000000000000000000000001000000:1F41 0A 00000000:00000000 00:00000000 \
                  00000000  1000        0 77 1 0000000000000000 100 0 0 10 0";
        let s = parse_line(v6).unwrap();
        assert_eq!(s.remote, "[::1]:8001".parse().unwrap());
        assert!(!s.established);
        assert_eq!(parse_line("  sl  local_address rem_address   st"), None);
    }

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
        let sampler = Sampler::start(remotes, true);
        assert_eq!(sampler.count().await.unwrap(), Some(before + 2));
        held.pop();
        assert_eq!(sampler.count().await.unwrap(), Some(before + 1));
    }
}
