//! A peer repository on another machine, reached over ssh (`ssh://[user@]host[:port]/path`)
//! through the `git` program: this build's libgit2 has no network transport, and git's own
//! ssh is what operators already configure (keys, agents, `~/.ssh/config`, `known_hosts`,
//! `GIT_SSH_COMMAND`). Publishing is a fast-forward-only `git push` of the durable head to
//! this node's ref; reading is a `git fetch` of every node's ref into
//! `refs/peers/<slot>/<node>` of this repository, where the merge reads them (a remote peer
//! cannot be read in place). Each call is bounded in time, never prompts, and its output is
//! bounded.

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use git2::{Oid, Repository};

use super::{local::PublishError, node::NodeId};

/// Longest a push or fetch may take before it is killed (and retried with backoff).
const TIMEOUT: Duration = Duration::from_secs(120);
/// Most bytes of a git command's output kept (the rest is read and dropped).
const MAX_OUTPUT: usize = 64 << 10;

/// True for the URLs this module serves.
pub(super) fn is_remote(url: &str) -> bool {
    url.starts_with("ssh://")
}

/// Where this peer's copies of the other nodes' refs live in this repository: a name made
/// from the URL, so adding or removing peers never mixes their copies up.
pub(super) fn slot(url: &str) -> String {
    // FNV-1a: stable across builds and machines (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("ssh-{h:016x}")
}

/// Pushes `head` to `refs/heads/nodes/<node>` at `url`, fast-forward only.
pub(super) fn push(gitdir: &Path, url: &str, node: &NodeId, head: Oid) -> Result<(), PublishError> {
    let refspec = format!("{head}:refs/heads/nodes/{node}");
    let out = git(
        gitdir,
        &[
            "push",
            "--porcelain",
            "--quiet",
            "--no-verify",
            url,
            &refspec,
        ],
    )
    .map_err(PublishError::Failed)?;
    if out.ok {
        return Ok(());
    }
    // `--porcelain`: "!\t<from>:<to>\t[rejected] (non-fast-forward)" for a refused ref.
    match out
        .stdout
        .lines()
        .find(|l| l.starts_with('!') && l.contains("[rejected]"))
    {
        Some(line) => Err(PublishError::Refused(
            line.rsplit('\t').next().unwrap_or(line).trim().to_string(),
        )),
        None => Err(PublishError::Failed(out.error())),
    }
}

/// Fetches every node's ref at `url` into `refs/peers/<slot>/*` (forced and pruned: the copy
/// follows the peer) and lists them.
pub(super) fn fetch(
    repo: &Repository,
    url: &str,
    slot: &str,
) -> Result<Vec<(String, Oid)>, String> {
    let refspec = format!("+refs/heads/nodes/*:refs/peers/{slot}/*");
    let out = git(
        repo.path(),
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            "--no-write-fetch-head",
            url,
            &refspec,
        ],
    )?;
    if !out.ok {
        return Err(out.error());
    }
    let prefix = format!("refs/peers/{slot}/");
    let mut heads = Vec::new();
    for r in repo
        .references_glob(&format!("{prefix}*"))
        .map_err(|e| e.message().to_string())?
        .flatten()
    {
        if let (Ok(name), Some(oid)) = (r.name(), r.target()) {
            heads.push((name.trim_start_matches(&prefix).to_string(), oid));
        }
    }
    Ok(heads)
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Output {
    fn error(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let last: Vec<&str> = text.lines().rev().take(3).collect();
        let last: Vec<&str> = last.into_iter().rev().collect();
        format!("git: {}", last.join(" / "))
    }
}

/// Runs `git --git-dir=<gitdir> <args>` with no terminal prompt (ssh in batch mode unless the
/// operator chose an ssh command), killed after [`TIMEOUT`].
fn git(gitdir: &Path, args: &[&str]) -> Result<Output, String> {
    let mut cmd = Command::new("git");
    // No `git gc --auto` here: the committer manages this repository's packs and would race
    // a repack. Whatever a fetch brings stays one pack, never thousands of loose objects.
    cmd.args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
        .args(["-c", "fetch.unpackLimit=1", "-c", "transfer.unpackLimit=1"])
        .arg("--git-dir")
        .arg(gitdir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run git (needed for ssh:// peers): {e}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let stdout = child.stdout.take().map(|o| drain(Box::new(o)));
    let stderr = child.stderr.take().map(|e| drain(Box::new(e)));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (text(stdout), text(stderr));
    match status {
        Some(status) => Ok(Output {
            ok: status.success(),
            stdout,
            stderr,
        }),
        None => Err(format!(
            "git {} took longer than {} s and was stopped",
            args.first().copied().unwrap_or_default(),
            TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_distinct() {
        assert_eq!(slot("ssh://a/x"), slot("ssh://a/x"));
        assert_ne!(slot("ssh://a/x"), slot("ssh://a/y"));
        assert!(slot("ssh://h/p").starts_with("ssh-"));
        assert_eq!(slot("ssh://h/p").len(), 20);
    }
}
