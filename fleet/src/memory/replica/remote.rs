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

use super::{
    MAX_NODES,
    local::{self, PublishError},
    node::NodeId,
};
use crate::memory::archive;

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
pub(super) fn push(
    gitdir: &Path,
    url: &str,
    node: &NodeId,
    head: Oid,
    timeout: Duration,
) -> Result<(), PublishError> {
    let refspec = format!("{head}:{}", local::node_ref(node.as_str()));
    let out = git(
        gitdir,
        timeout,
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
        None => {
            // A hook's refusal ("[remote rejected] (pre-receive hook declined)") is on stdout.
            let why: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('!')).collect();
            Err(PublishError::Failed(if why.is_empty() {
                out.error()
            } else {
                format!("git push: {}", why.join(" / "))
            }))
        }
    }
}

/// Fetches the nodes' refs at `url` into `refs/peers/<slot>/<node>` (forced: the copy
/// follows the peer; copies of refs gone from the peer are dropped) and lists them. Only refs
/// whose names are node ids are taken, at most [`MAX_NODES`] of them: the peer is not trusted
/// to hold a sane number.
pub(super) fn fetch(
    repo: &Repository,
    url: &str,
    slot: &str,
    timeout: Duration,
) -> Result<Vec<(String, Oid)>, String> {
    clear_stale_locks(repo.path(), slot);
    let published = local::node_ref("");
    let listed = git(
        repo.path(),
        timeout,
        &["ls-remote", "--refs", url, &format!("{published}*")],
    )?;
    if !listed.ok {
        return Err(listed.error());
    }
    let mut wanted: Vec<String> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(_, name)| name.strip_prefix(published.as_str()))
        .filter(|node| NodeId::parse(node).is_ok())
        .map(str::to_string)
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted.truncate(MAX_NODES);
    let prefix = format!("refs/peers/{slot}/");
    if !wanted.is_empty() {
        let refspecs: Vec<String> = wanted
            .iter()
            .map(|n| format!("+{published}{n}:{prefix}{n}"))
            .collect();
        let mut args = vec![
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            url,
        ];
        args.extend(refspecs.iter().map(String::as_str));
        let out = git(repo.path(), timeout, &args)?;
        if !out.ok {
            return Err(out.error());
        }
    }
    let (heads, gone): (Vec<_>, Vec<_>) = local::refs_under(repo, &prefix)?
        .into_iter()
        .partition(|(node, _)| wanted.contains(node));
    for (node, _) in gone {
        if let Ok(mut r) = repo.find_reference(&format!("{prefix}{node}")) {
            let _ = r.delete();
        }
    }
    Ok(heads)
}

/// Lock files a git stopped at its time limit left: only this thread runs git here, one at a
/// time, so any lock on the copies or on `packed-refs` older than a few seconds is stale (and
/// would fail every later fetch).
fn clear_stale_locks(gitdir: &Path, slot: &str) {
    let mut locks = vec![gitdir.join("packed-refs.lock")];
    if let Ok(dir) = std::fs::read_dir(gitdir.join("refs/peers").join(slot)) {
        locks.extend(
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "lock")),
        );
    }
    for lock in locks {
        if archive::older_than(&lock, Duration::from_secs(10)) {
            let _ = std::fs::remove_file(&lock);
        }
    }
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
/// operator chose an ssh command), killed with everything it started after `timeout`.
fn git(gitdir: &Path, timeout: Duration, args: &[&str]) -> Result<Output, String> {
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
    // Only this repository, whatever the fleet's environment says.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_INDEX_FILE",
        "GIT_CONFIG_PARAMETERS",
    ] {
        cmd.env_remove(var);
    }
    if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
        cmd.env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 \
             -o ServerAliveCountMax=4",
        );
    }
    // A process group of its own: at the time limit git, ssh and index-pack go together
    // (killing git alone leaves ssh holding the pipes), and a terminal's signals stay away.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
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
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
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
            "git {} took longer than {} ms and was stopped",
            args.first().copied().unwrap_or_default(),
            timeout.as_millis()
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
