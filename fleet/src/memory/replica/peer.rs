//! One peer repository: pushing this node's history to it and what the last attempts said.
//! A push is fast-forward only (`refs/heads/main` to `refs/heads/nodes/<id>`, never forced):
//! a node's history only grows, so a refusal means another node publishes under the same id,
//! or the peer's ref was rewritten by hand; both are reported, never overwritten. A failing
//! peer is retried with backoff (1 s doubling to 30 s) so an unreachable one costs nothing.

use std::{
    cell::RefCell,
    time::{Duration, Instant},
};

use git2::{Oid, PushOptions, RemoteCallbacks, Repository};
use serde::Serialize;

use super::node::NodeId;

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

    /// Fetches every node's published history at the peer into `refs/peers/<index>/<node>`;
    /// returns the nodes and heads found, or records the failure (with backoff) and returns
    /// nothing.
    pub(super) fn fetch(&mut self, repo: &Repository, index: usize) -> Vec<(String, Oid)> {
        match fetch(repo, &self.url, index) {
            Ok(heads) => heads,
            Err(e) => {
                self.failed(e);
                Vec::new()
            }
        }
    }

    /// Pushes `head` (the commit of `version`) and records the outcome.
    pub(super) fn push(&mut self, repo: &Repository, node: &NodeId, head: Oid, version: u64) {
        match push(repo, &self.url, node, head) {
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
            Err(e) => self.failed(e),
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

/// Fetches `refs/heads/nodes/*` at `url` into `refs/peers/<index>/*` (forced: the local copy
/// follows the peer), and lists what it holds.
fn fetch(repo: &Repository, url: &str, index: usize) -> Result<Vec<(String, Oid)>, String> {
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| format!("bad peer URL: {}", e.message()))?;
    let refspec = format!("+refs/heads/nodes/*:refs/peers/{index}/*");
    remote
        .fetch(&[refspec.as_str()], None, None)
        .map_err(|e| e.message().to_string())?;
    let prefix = format!("refs/peers/{index}/");
    let mut heads = Vec::new();
    for r in repo
        .references_glob(&format!("{prefix}*"))
        .map_err(|e| e.message().to_string())?
    {
        let Ok(r) = r else { continue };
        if let (Ok(name), Some(oid)) = (r.name(), r.target()) {
            heads.push((name.trim_start_matches(&prefix).to_string(), oid));
        }
    }
    Ok(heads)
}

/// Pushes `refs/heads/main` to `refs/heads/nodes/<node>` at `url`, fast-forward only.
/// The local ref a push sends: the durable head at the time.
const PUBLISHED: &str = "refs/mcpfleet/published";

fn push(repo: &Repository, url: &str, node: &NodeId, head: Oid) -> Result<(), String> {
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| format!("bad peer URL: {}", e.message()))?;
    // The durable head, not `main`: the committer moves `main` before its fsync, and a head
    // lost to a power cut must never have left this node.
    repo.reference(PUBLISHED, head, true, "memory: publish the durable head")
        .map_err(|e| format!("cannot point {PUBLISHED} at {head}: {}", e.message()))?;
    let refspec = format!("{PUBLISHED}:refs/heads/nodes/{node}");
    let refused = RefCell::new(None);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.push_update_reference(|_, status| {
        if let Some(s) = status {
            *refused.borrow_mut() = Some(s.to_string());
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let pushed = remote.push(&[refspec.as_str()], Some(&mut options));
    drop(options);
    match (pushed, refused.into_inner()) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(why)) => Err(refusal(node, &why)),
        // libgit2 checks fast-forward itself before sending: the peer's ref holds commits
        // this history lacks.
        (Err(e), _)
            if e.code() == git2::ErrorCode::NotFastForward
                || e.message().contains("not present locally")
                || e.message().contains("non-fastforward") =>
        {
            Err(refusal(node, e.message()))
        }
        (Err(e), _) => Err(e.message().to_string()),
    }
}

fn refusal(node: &NodeId, why: &str) -> String {
    format!(
        "the peer refused refs/heads/nodes/{node} ({why}): its history there is not an \
         ancestor of this node's, so another node publishes under the id {node:?} (give each \
         node its own --memory-node-id) or the ref was rewritten"
    )
}

/// Whether this build can reach `url`: a path or a `file://` URL (libgit2 is built without
/// its network transports, so `ssh://` and `https://` peers would only ever fail).
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
