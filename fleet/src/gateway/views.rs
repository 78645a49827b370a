//! `GET /backends`: every group's members as the balancer sees them, in the shape loadgen's
//! chaos runs and the tests read.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{eras::Speaks, routing::Gateway};

/// Body of `GET /backends`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendsView {
    /// Group name to its members, as the balancer sees them.
    pub groups: BTreeMap<String, Vec<BackendView>>,
}

/// One member in `GET /backends` (the fields of
/// [`MemberStats`](super::balance::MemberStats) a client needs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendView {
    pub id: String,
    pub up: bool,
    pub ejected: bool,
    pub outstanding: u32,
    pub ewma_us: u64,
    pub ejections_total: u64,
    pub failures_total: u64,
    pub successes_total: u64,
    /// When the member last left rotation, ms since the Unix epoch, oldest first.
    pub taken_out_at_ms: Vec<u64>,
    /// The era the gateway found the member to speak: `stateless`, or `sessions` (only the
    /// session eras: called over sessions the gateway holds on it). Absent until learnt: a
    /// member is called statelessly until it refuses that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaks: Option<String>,
    /// Sessions the gateway holds on the member now, and has opened on it in all.
    #[serde(default)]
    pub upstream_sessions: usize,
    #[serde(default)]
    pub upstream_sessions_opened: u64,
}

pub(super) async fn backends(State(gw): State<Gateway>) -> axum::Json<BackendsView> {
    let groups = gw
        .backends()
        .into_iter()
        .map(|(name, members)| {
            let members = members
                .into_iter()
                .map(|m| {
                    let speaks = gw.eras.get(&m.id);
                    let (upstream_sessions, upstream_sessions_opened) = match &speaks {
                        Some(Speaks::Sessions(s)) => s.counts(),
                        _ => (0, 0),
                    };
                    BackendView {
                        speaks: speaks.map(|s| match s {
                            Speaks::Stateless => "stateless".to_string(),
                            Speaks::Sessions(_) => "sessions".to_string(),
                        }),
                        upstream_sessions,
                        upstream_sessions_opened,
                        id: m.id,
                        up: m.up,
                        ejected: m.ejected,
                        outstanding: m.outstanding,
                        ewma_us: m.ewma_us,
                        ejections_total: m.ejections_total,
                        failures_total: m.failures_total,
                        successes_total: m.successes_total,
                        taken_out_at_ms: m.taken_out_at_ms,
                    }
                })
                .collect();
            (name, members)
        })
        .collect();
    axum::Json(BackendsView { groups })
}
