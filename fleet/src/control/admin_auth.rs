//! Who may change the fleet through its admin API. Any local user can reach its port, and a
//! request there can kill, pause, slow, scale or stop every server, so every request but a
//! read (`GET`, `HEAD`: status and metrics stay open) must carry `Authorization: Bearer
//! TOKEN` (or come from a signed-in dashboard: [`super::admin_guard`]). The token is made when the fleet starts and kept
//! by it ([`crate::Fleet::admin_token`]); `fleet up` writes it to a file only its user can read
//! (mode 0600), which `fleet scale`, `fleet down` and loadgen's chaos read back, and an
//! embedded fleet hands it over in-process.

use std::{
    fs::OpenOptions,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Longest token read from a file: a token is 64 hex digits; anything much longer is not one.
const MAX_TOKEN_LEN: usize = 256;

/// The secret mutating admin requests must present. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Why a token could not be made, written or read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot make a random admin token: {0}")]
    Random(getrandom::Error),
    #[error("cannot write the admin token file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot read the admin token file {path} (written by `fleet up`; \
         --admin-token-file names another): {source}"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no admin token (1-{MAX_TOKEN_LEN} visible ASCII characters)")]
    Invalid { path: PathBuf },
}

impl AdminToken {
    /// 32 bytes from the operating system's random source, as 64 hex digits.
    pub fn random() -> Result<Self, TokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self(hex.into()))
    }

    /// The token as sent after `Bearer `.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let own = self.0.as_bytes();
        if own.len() != presented.len() {
            return false;
        }
        let diff = own
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }

    /// Writes the token to `path` (its directory made if missing), readable by this user only.
    /// A file already there is replaced, not written into, so it cannot keep looser
    /// permissions, and a link planted there is not followed.
    pub fn write_to(&self, path: &Path) -> Result<(), TokenError> {
        let failed = |source| TokenError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        writeln!(file, "{}", self.0).map_err(failed)
    }

    /// Reads a token [`AdminToken::write_to`] wrote.
    pub fn read_from(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        let valid = !token.is_empty()
            && token.len() <= MAX_TOKEN_LEN
            && token.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(TokenError::Invalid {
                path: path.to_path_buf(),
            });
        }
        Ok(Self(token.into()))
    }

    /// `Bearer TOKEN`, for an `Authorization` header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (AdminToken::random().unwrap(), AdminToken::random().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert!(a.matches(a.as_str().as_bytes()));
        assert!(!a.matches(b.as_str().as_bytes()));
        assert!(!a.matches(&a.as_str().as_bytes()[..63]));
        assert!(!a.matches(b""));
        assert_eq!(format!("{a:?}"), "AdminToken(..)");
    }

    #[test]
    fn the_file_is_this_users_alone_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/admin-token");
        let token = AdminToken::random().unwrap();
        token.write_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(AdminToken::read_from(&path).unwrap(), token);
        // A file left world-readable is replaced by one that is not.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let next = AdminToken::random().unwrap();
        next.write_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(AdminToken::read_from(&path).unwrap(), next);
        std::fs::write(&path, "\n").unwrap();
        let err = AdminToken::read_from(&path).unwrap_err().to_string();
        assert!(err.contains("holds no admin token"), "{err}");
        let err = AdminToken::read_from(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--admin-token-file"), "{err}");
    }
}
