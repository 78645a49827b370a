//! One peer repository: publishing this node's history to it and what the last attempts
//! said. A publish is fast-forward only (the durable head to `refs/heads/nodes/<id>`, never
//! forced): a node's history only grows, so a refusal means another node publishes under the same id,
//! or the peer's ref was rewritten by hand; both are reported, never overwritten. A failing
//! peer is retried with backoff (1 s doubling to 30 s) so an unreachable one costs nothing.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use git2::{Oid, Repository};
use serde::Serialize;

use super::{
    local::{self, PublishError},
    node::NodeId,
    remote,
};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest error text kept in the status.
const MAX_ERROR: usize = 300;

/// What `fleet status` and `/metrics` show of a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PeerStatus {
    /// The peer's URL, user and password left out.
    pub url: String,
    /// `ok` after a successful push, `failing` after a failed one, `pending` before the first.
    pub state: String,
    /// Version of the last commit pushed (at least).
    pub pushed_version: u64,
    /// When the last push succeeded, in milliseconds since the Unix epoch.
    pub last_success_ms: Option<u64>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// What the last failure said.
    pub last_error: Option<String>,
}

/// A peer and its push state, owned by the publisher thread.
pub(super) struct Peer {
    url: String,
    pushed: Option<Oid>,
    next_try: Instant,
    backoff: Duration,
    /// The last attempt to merge the peer's packs failed (said once, not every round).
    tidy_failing: bool,
    /// Longest one git call to a peer over ssh may take.
    ssh_timeout: Duration,
    pub(super) status: PeerStatus,
}

impl Peer {
    pub(super) fn new(url: String, ssh_timeout: Duration) -> Self {
        Self {
            status: PeerStatus {
                url: redact(&url),
                state: "pending".into(),
                pushed_version: 0,
                last_success_ms: None,
                failures: 0,
                last_error: None,
            },
            url,
            pushed: None,
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            tidy_failing: false,
            ssh_timeout,
        }
    }

    /// True if `head` is not yet on the peer.
    pub(super) fn lacks(&self, head: Oid) -> bool {
        self.pushed != Some(head)
    }

    /// True if no backoff holds the next try.
    pub(super) fn ready(&self) -> bool {
        Instant::now() >= self.next_try
    }

    /// Where this peer's copies of the other nodes' refs live in this repository (`Some`
    /// for a peer over ssh, which cannot be read in place).
    pub(super) fn slot(&self) -> Option<String> {
        remote::is_remote(&self.url).then(|| remote::slot(&self.url))
    }

    /// One round with this peer: publishes `head` (the commit of `version`) if the peer lacks
    /// it, then, unless this is the `last` round, finds every node's head there. Returns the
    /// heads with the repository to read them from (the peer itself on a path; this node's
    /// repository, which fetched them, over ssh), or nothing when the peer failed (recorded,
    /// with backoff).
    pub(super) fn exchange(
        &mut self,
        gitdir: &Path,
        repo: &Repository,
        node: &NodeId,
        (head, version): (Oid, u64),
        last: bool,
    ) -> Option<(Vec<(String, Oid)>, Repository)> {
        if let Some(slot) = self.slot() {
            if self.lacks(head) {
                let pushed = remote::push(gitdir, &self.url, node, head, self.ssh_timeout);
                // Unreachable: no fetch this round (each would wait for the same timeout).
                let unreachable = matches!(pushed, Err(PublishError::Failed(_)));
                self.published(pushed, node, head, version);
                if unreachable {
                    return None;
                }
            }
            if last {
                return None;
            }
            // Even after a refused push: the heads show whether this node's own history
            // there is newer (a node restored from an older copy).
            let found = remote::fetch(repo, &self.url, &slot, self.ssh_timeout).and_then(|heads| {
                let reader = Repository::open(gitdir).map_err(|e| e.message().to_string())?;
                Ok((heads, reader))
            });
            return match found {
                Ok(found) => {
                    self.reachable(head);
                    Some(found)
                }
                Err(e) => {
                    self.failed(e);
                    None
                }
            };
        }
        let peer = match local::open(&self.url) {
            Ok(peer) => peer,
            Err(e) => {
                self.failed(e);
                return None;
            }
        };
        if self.lacks(head) {
            let pushed = local::publish(repo, &peer, node, head).map(|_| ());
            self.published(pushed, node, head, version);
            self.tidy(&peer);
        }
        if last {
            return None;
        }
        match local::heads(&peer) {
            Ok(heads) => {
                self.reachable(head);
                Some((heads, peer))
            }
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    /// A round that reached the peer and had nothing left to publish shows it as ok again
    /// (a failed earlier try would otherwise stay on show, and back off, until the next write).
    fn reachable(&mut self, head: Oid) {
        if self.lacks(head) || self.status.state == "ok" {
            return;
        }
        tracing::info!(peer = %self.status.url, "memory peer reachable again");
        self.backoff = FIRST_BACKOFF;
        self.status.state = "ok".into();
        self.status.failures = 0;
        self.status.last_error = None;
    }

    /// Records how a publish went.
    fn published(
        &mut self,
        outcome: Result<(), PublishError>,
        node: &NodeId,
        head: Oid,
        version: u64,
    ) {
        match outcome {
            Ok(()) => {
                if self.status.state != "ok" {
                    tracing::info!(peer = %self.status.url, "memory peer reachable: publishing");
                }
                self.pushed = Some(head);
                self.backoff = FIRST_BACKOFF;
                self.status.state = "ok".into();
                self.status.pushed_version = version;
                self.status.last_success_ms = Some(crate::memory::hlc::now_ms());
                self.status.failures = 0;
                self.status.last_error = None;
            }
            Err(PublishError::Refused(why)) => self.failed(refusal(node, &why)),
            Err(PublishError::Failed(e)) => self.failed(e),
        }
    }

    /// Keeps a peer's packs few (said once while it fails, not every round).
    fn tidy(&mut self, peer: &Repository) {
        match local::tidy(peer.path()) {
            Ok(_) => self.tidy_failing = false,
            Err(e) => {
                if !self.tidy_failing {
                    tracing::warn!(peer = %self.status.url, error = %e, "cannot merge the peer's packs; trying again after later publishes");
                }
                self.tidy_failing = true;
            }
        }
    }

    fn failed(&mut self, e: String) {
        let e: String = e.chars().take(MAX_ERROR).collect();
        if self.status.failures == 0 {
            tracing::warn!(peer = %self.status.url, error = %e, "cannot exchange the memory with a peer; retrying with backoff");
        }
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.status.state = "failing".into();
        self.status.failures = self.status.failures.saturating_add(1);
        self.status.last_error = Some(e);
    }
}

fn refusal(node: &NodeId, why: &str) -> String {
    format!(
        "the peer refused refs/heads/nodes/{node} ({why}): its history there is not an \
         ancestor of this node's, so another node publishes under the id {node:?} (give each \
         node its own --memory-node-id) or the ref was rewritten"
    )
}

/// Whether `url` names a peer this build can reach: a path or a `file://` URL (a repository
/// on a local or shared volume, read and written in place), or `ssh://[user@]host[:port]/path`
/// (another machine, through the `git` program and the operator's ssh set-up).
pub fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("peer {:?}: {why}", redact(url)));
    match url.split_once("://") {
        None if !url.is_empty() => Ok(()),
        Some(("file", rest)) if !rest.is_empty() => Ok(()),
        Some(("ssh", rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or_default();
            if host.is_empty() || path.len() < 2 {
                bad("an ssh peer is ssh://[user@]host[:port]/path")
            } else if host.starts_with('-') || url.chars().any(char::is_control) {
                bad("not a host name")
            } else {
                Ok(())
            }
        }
        _ => bad(
            "a peer is a path or file:// URL (a repository on a local or shared volume) or an \
             ssh://[user@]host[:port]/path URL; there is no https:// transport",
        ),
    }
}

/// `url` without a password or user (`https://user:secret@host/x` -> `https://host/x`) or a
/// query (`?token=...`).
pub(super) fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_status() {
        assert_eq!(
            redact("https://me:tok@git.example/m.git"),
            "https://git.example/m.git"
        );
        assert_eq!(redact("ssh://git@host:22/x"), "ssh://host:22/x");
        assert_eq!(redact("/srv/peer.git"), "/srv/peer.git");
        assert_eq!(redact("file:///srv/p"), "file:///srv/p");
        assert_eq!(redact("https://h/x?token=abc#f"), "https://h/x");
    }

    #[test]
    fn peers_on_paths_and_over_ssh_are_accepted() {
        assert!(check_url("/srv/peer.git").is_ok());
        assert!(check_url("peer.git").is_ok());
        assert!(check_url("file:///srv/peer.git").is_ok());
        assert!(check_url("ssh://git@host:2222/srv/peer.git").is_ok());
        assert!(check_url("ssh://host/p").is_ok());
        for bad in [
            "",
            "ssh://",
            "ssh://host",
            "ssh://host/",
            "ssh://-oProxyCommand=x/p",
            "ssh://u@-oProxyCommand=x/p",
            "https://h/x?token=s3cret",
            "file://",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
