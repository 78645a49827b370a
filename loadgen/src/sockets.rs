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

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

/// `st` value of an ESTABLISHED socket in `/proc/net/tcp`.
const ESTABLISHED: &str = "01";

/// Counts established connections from this process to any of `remotes`; `None` where `/proc`
/// cannot be read.
pub fn established_to(remotes: &HashSet<SocketAddr>) -> Option<u64> {
    let ours = socket_inodes()?;
    let mut count = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
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
    }
}
