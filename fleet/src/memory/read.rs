//! A read of the shared memory, answered from the owner's view: the same function serves a
//! server in the owner's process (task mode) and, one local-socket round trip away, a server
//! process (process mode), so both see exactly the same state. There is one view per fleet,
//! whatever the number of server processes: a write is applied once, not once per process.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{error::Timeout, graph::KnowledgeGraph, view::View};

/// What a read asks for: one of the official memory server's reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// `read_graph`: every entity and relation.
    ReadGraph,
    /// `search_nodes`: case-insensitive substring over name, type and observations.
    Search(String),
    /// `open_nodes`: the named entities and the relations among them.
    Open(Vec<String>),
}

impl Query {
    fn run(&self, view: &View) -> KnowledgeGraph {
        match self {
            Query::ReadGraph => view.read_graph(),
            Query::Search(query) => view.search_nodes(query),
            Query::Open(names) => view.open_nodes(names),
        }
    }
}

/// What a read waits for before answering: a version of this memory, or, naming another
/// node, that node's writes up to its version merged here (versions are per node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinVersion {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl From<u64> for MinVersion {
    fn from(version: u64) -> MinVersion {
        MinVersion {
            version,
            node: None,
        }
    }
}

/// A read's answer: the graph it found, the version it holds at least, and, for a read that
/// waited for a version, when that version became visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAnswer {
    pub graph: KnowledgeGraph,
    pub version: u64,
    /// Wall µs (see [`super::view::wall_us`]) at which the awaited version became readable:
    /// the moment its write was acknowledged. `None` without a wait, or when that was too long
    /// ago to be remembered.
    pub visible_at_us: Option<u64>,
}

/// Why a read has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The version asked for (`minVersion`) did not become durable in time.
    #[error(transparent)]
    Timeout(#[from] Timeout),
    /// A server process cannot reach the fleet's memory (its owner stopped or is restarting).
    #[error("the fleet's memory is not reachable: {0}")]
    Unavailable(String),
}

/// Answers `query` from `view`, first waiting (at most `timeout`) until the view holds
/// `min_version` if one is given.
pub(crate) async fn answer(
    view: &View,
    query: &Query,
    min_version: Option<(MinVersion, Duration)>,
) -> Result<ReadAnswer, Timeout> {
    let mut visible_at_us = None;
    match min_version {
        None => {}
        Some((MinVersion { version, node }, timeout)) => match node {
            Some(node) if node != view.node() => {
                view.wait_for_merged(&node, version, timeout).await?;
            }
            _ => {
                view.wait_for(version, timeout).await?;
                visible_at_us = view.visible_at(version);
            }
        },
    }
    // The version is read before the query: the answer holds at least that version.
    let version = view.version();
    Ok(ReadAnswer {
        graph: query.run(view),
        version,
        visible_at_us,
    })
}
