//! One peer repository: publishing this node's history to it and what the last attempts
//! said. A publish is fast-forward only (the durable head to `refs/heads/nodes/<id>`, never
//! forced): a node's history only grows, so a refusal means another node publishes under the same id,
//! or the peer's ref was rewritten by hand; both are reported, never overwritten. A failing
//! peer is retried with backoff (1 s doubling to 30 s) so an unreachable one costs nothing.

use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use serde::Serialize;

use super::{
    local::{self, PublishError},
    node::NodeId,
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
    pub(super) status: PeerStatus,
}

impl Peer {
    pub(super) fn new(url: String) -> Self {
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

    /// Opens the peer repository for this round, or records why it cannot be (with backoff).
    pub(super) fn open(&mut self) -> Option<Repository> {
        match local::open(&self.url) {
            Ok(peer) => Some(peer),
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    /// Every node's head published at the peer, or nothing (the failure recorded).
    pub(super) fn heads(&mut self, peer: &Repository) -> Vec<(String, Oid)> {
        match local::heads(peer) {
            Ok(heads) => heads,
            Err(e) => {
                self.failed(e);
                Vec::new()
            }
        }
    }

    /// Publishes `head` (the commit of `version`) and records the outcome; then keeps the
    /// peer's packs few.
    pub(super) fn push(
        &mut self,
        repo: &Repository,
        peer: &Repository,
        node: &NodeId,
        head: Oid,
        version: u64,
    ) {
        match local::publish(repo, peer, node, head) {
            Ok(_) => {
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

/// Whether `url` names a peer this build can reach: a path or a `file://` URL (peers are
/// repositories on a local or shared volume; there is no ssh:// or https:// transport).
pub fn check_url(url: &str) -> Result<(), String> {
    match url.split_once("://") {
        None if !url.is_empty() => Ok(()),
        Some(("file", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(format!(
            "peer {:?}: only a path or a file:// URL is supported (a repository on a local or \
             shared volume); this build has no ssh:// or https:// transport",
            redact(url)
        )),
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
    fn only_local_peers_are_accepted() {
        assert!(check_url("/srv/peer.git").is_ok());
        assert!(check_url("peer.git").is_ok());
        assert!(check_url("file:///srv/peer.git").is_ok());
        for bad in [
            "",
            "ssh://git@host/x",
            "https://h/x?token=s3cret",
            "file://",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
