//! A stdio server's stderr, copied to `stdio-<n>.log` in the run folder: it is the server's
//! log and the first thing to read when it misbehaves. Bounded: after [`MAX_LOG`] bytes the
//! copy stops (the log says so) and the rest is read and dropped, so a chatty server can
//! neither fill the disk nor block on a full pipe.

use std::path::Path;

use tokio::{
    fs::File,
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
};

/// Most bytes of one log file.
pub const MAX_LOG: u64 = 64 * 1024 * 1024;

/// Opens (appending: a restarted process continues its slot's log) the log at `path`.
pub async fn open(path: &Path) -> std::io::Result<File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// Copies `stderr` into `log` until it ends, stopping the copy once the file holds `max`
/// bytes. Write errors stop the copy too (the reading goes on: the server must not block).
pub async fn copy_bounded<R: AsyncRead + Unpin>(mut stderr: R, mut log: File, max: u64) {
    let mut written = log.metadata().await.map_or(0, |m| m.len());
    let mut writing = written < max;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !writing {
            continue;
        }
        let room = usize::try_from(max - written).unwrap_or(usize::MAX);
        let take = n.min(room);
        if log.write_all(&buf[..take]).await.is_err() {
            writing = false;
            continue;
        }
        written += take as u64;
        if written >= max {
            writing = false;
            let _ = log
                .write_all(
                    format!("\n[loadgen: log limit of {max} bytes reached; the rest is dropped]\n")
                        .as_bytes(),
                )
                .await;
        }
    }
    let _ = log.flush().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn stops_at_the_limit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdio-0.log");
        let input = vec![b'x'; 1000];
        copy_bounded(&input[..], open(&path).await.unwrap(), 100).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&"x".repeat(100)), "{text}");
        assert!(!text.starts_with(&"x".repeat(101)));
        assert!(text.contains("log limit of 100 bytes reached"), "{text}");
        // A restarted process appends to a full log without writing more.
        copy_bounded(&b"more"[..], open(&path).await.unwrap(), 100).await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
