//! Where the memory socket lives and who may use it. The socket is a path in a directory of
//! its own, created mode 0700 under the temporary directory, so another local user's
//! `connect()` fails before the owner sees anything (an abstract socket, which has no
//! permissions, was readable by every user). Each server process is given a token, an HMAC of
//! its server id under a key drawn when the fleet starts, and must present it first: a
//! connection is bound to the server it proved to be, so no process can write in another
//! server's name.

use std::{
    fs, io,
    os::unix::{
        fs::{DirBuilderExt as _, MetadataExt as _},
        net::UnixListener,
    },
    path::{Path, PathBuf},
    sync::Arc,
};

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the tokens are MACs of, besides the server id: a token made for anything else under
/// the same key is not one of these.
const DOMAIN: &[u8] = b"mcpfleet-memory-access\0";

/// Prefix of the socket directories' names, followed by the owner's pid and a random part.
const DIR_PREFIX: &str = "mcpfleet-memory-";

/// The socket file inside its directory.
const SOCKET_FILE: &str = "memory.sock";

/// Longest socket path the kernel takes (`sun_path` less its terminating zero).
const MAX_SOCKET_PATH: usize = 107;

/// What a server process needs to reach the fleet's memory: the socket, the server it is,
/// and the token that proves it. `Debug` does not print the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct MemoryAccess {
    pub socket: PathBuf,
    pub server: String,
    pub token: String,
}

impl std::fmt::Debug for MemoryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAccess")
            .field("socket", &self.socket)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The owner's memory socket: its private directory (removed when the last clone is dropped)
/// and the key its tokens are made with. `Debug` does not print the key.
#[derive(Clone)]
pub struct MemorySocket {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    path: PathBuf,
    key: [u8; 32],
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for MemorySocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySocket")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl MemorySocket {
    /// Binds a fresh socket in a new private directory under `parent` (the temporary
    /// directory when `None`), first removing such directories left by fleets of this user
    /// that were killed.
    pub fn bind(parent: Option<&Path>) -> io::Result<(MemorySocket, UnixListener)> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        remove_stale(&parent);
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let dir = parent.join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            hex(&random)
        ));
        // Fails if anything is there already: no directory prepared by someone else is used.
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
        let socket = MemorySocket {
            inner: Arc::new(Inner {
                path: dir.join(SOCKET_FILE),
                dir,
                key,
            }),
        };
        check_private(&socket.inner.dir)?;
        let listener = socket.listen()?;
        Ok((socket, listener))
    }

    /// Listens on the socket's path, replacing a socket file left there (the owner's serving
    /// task restarting). Non-blocking, for [`super::serve`] on any runtime.
    pub fn listen(&self) -> io::Result<UnixListener> {
        let path = &self.inner.path;
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the memory socket path {} is over {MAX_SOCKET_PATH} bytes: set TMPDIR to a shorter directory",
                    path.display()
                ),
            ));
        }
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What server `server` is given to reach the memory.
    pub fn access(&self, server: &str) -> MemoryAccess {
        MemoryAccess {
            socket: self.inner.path.clone(),
            server: server.to_string(),
            token: hex(&self.mac(server).finalize().into_bytes()),
        }
    }

    /// Whether `token` is the one made for `server`, compared in constant time.
    pub(super) fn admits(&self, server: &str, token: &str) -> bool {
        unhex(token).is_some_and(|bytes| self.mac(server).verify_slice(&bytes).is_ok())
    }

    fn mac(&self, server: &str) -> HmacSha256 {
        // HMAC pads a key shorter than the hash's block with zeros (RFC 2104), so the 32-byte
        // key zero-padded is the same key, and the fixed-size constructor cannot fail.
        let mut block = hmac::digest::Key::<HmacSha256>::default();
        for (dst, src) in block.iter_mut().zip(self.inner.key.iter()) {
            *dst = *src;
        }
        let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new(&block);
        mac.update(DOMAIN);
        mac.update(server.as_bytes());
        mac
    }
}

/// Refuses a directory that is not this user's own, private, real directory.
fn check_private(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != own_uid() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory only this user can reach (mode {:o}, uid {})",
                dir.display(),
                meta.mode() & 0o7777,
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// Removes socket directories of this user under `parent` whose fleet process is gone (killed
/// before it could remove its own). Best effort: anything unexpected is left alone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours =
            fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_dir() && m.uid() == own_uid());
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The user this process runs as.
pub(super) fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn tokens_admit_their_own_server_only_and_the_directory_is_private() {
        let parent = tempfile::tempdir().unwrap();
        let (socket, _listener) = MemorySocket::bind(Some(parent.path())).unwrap();
        let a = socket.access("srv-a");
        assert!(socket.admits("srv-a", &a.token));
        assert!(!socket.admits("srv-b", &a.token), "bound to its server");
        assert!(!socket.admits("srv-a", "00"));
        assert!(!socket.admits("srv-a", "not hex at all"));
        assert!(
            !format!("{a:?}").contains(&a.token),
            "Debug hides the token"
        );
        let (other, _l) = MemorySocket::bind(Some(parent.path())).unwrap();
        assert!(!other.admits("srv-a", &a.token), "another fleet's key");
        let dir = socket.path().parent().unwrap().to_path_buf();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        drop(socket);
        assert!(!dir.exists(), "removed with the socket");
    }

    #[test]
    fn directories_of_killed_fleets_are_removed_and_others_kept() {
        let parent = tempfile::tempdir().unwrap();
        // No process has pid 0 in /proc; this process is alive.
        let dead = parent.path().join(format!("{DIR_PREFIX}0-abc"));
        let alive = parent
            .path()
            .join(format!("{DIR_PREFIX}{}-abc", std::process::id()));
        let unrelated = parent.path().join("something-else");
        for d in [&dead, &alive, &unrelated] {
            fs::create_dir(d).unwrap();
        }
        remove_stale(parent.path());
        assert!(!dead.exists());
        assert!(alive.exists() && unrelated.exists());
    }
}
