//! The gateway's per-request statistics for `/metrics`: latency and outcomes of `/mcp`
//! requests by group, method and tool, bounded in the number of series so clients inventing
//! tool names cannot grow the gateway's memory.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use crate::histogram;

/// Most distinct (group, method, tool) series `/metrics` keeps; requests beyond count under
/// `other`, so clients inventing tool names cannot grow the gateway's memory.
const MAX_CALL_SERIES: usize = 1024;

/// What `/metrics` reports per group, method and tool.
#[derive(Debug, Default)]
pub(super) struct CallStats {
    pub(super) latency: histogram::Histogram,
    pub(super) ok: AtomicU64,
    pub(super) failed: AtomicU64,
}

pub(super) type CallKey = (String, String, String);

#[derive(Debug, Default)]
pub(super) struct CallTable {
    series: std::sync::RwLock<std::collections::HashMap<CallKey, Arc<CallStats>>>,
}

impl CallTable {
    pub(super) fn get(&self, group: &str, method: &str, tool: &str) -> Arc<CallStats> {
        let key = (group.to_string(), method.to_string(), tool.to_string());
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return s.clone();
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let key = if series.len() >= MAX_CALL_SERIES && !series.contains_key(&key) {
            (
                "other".to_string(),
                "other".to_string(),
                "other".to_string(),
            )
        } else {
            key
        };
        series.entry(key).or_default().clone()
    }

    pub(super) fn snapshot(&self) -> Vec<(CallKey, histogram::Snapshot, u64, u64)> {
        let mut all: Vec<_> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.latency.snapshot(),
                    s.ok.load(Ordering::Relaxed),
                    s.failed.load(Ordering::Relaxed),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, method: &str, tool: &str) -> CallKey {
        (group.into(), method.into(), tool.into())
    }

    /// One request of `tool` in `group`, answered (`ok`) or not.
    fn count(table: &CallTable, group: &str, tool: &str, ok: bool) {
        let stats = table.get(group, "tools/call", tool);
        let counter = if ok { &stats.ok } else { &stats.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_same_series_is_one_entry() {
        let table = CallTable::default();
        count(&table, "community", "echo", true);
        count(&table, "community", "echo", false);
        let all = table.snapshot();
        assert_eq!(all.len(), 1);
        let (series, _, ok, failed) = &all[0];
        assert_eq!(series, &key("community", "tools/call", "echo"));
        assert_eq!((*ok, *failed), (1, 1));
    }

    #[test]
    fn series_beyond_the_bound_count_under_other() {
        let table = CallTable::default();
        for i in 0..MAX_CALL_SERIES {
            table.get("g", "tools/call", &format!("t{i}"));
        }
        count(&table, "g", "one-too-many", true);
        count(&table, "g", "and-another", true);
        // A series already known still gets its own entry.
        count(&table, "g", "t0", true);
        let all = table.snapshot();
        assert_eq!(all.len(), MAX_CALL_SERIES + 1);
        let other = all
            .iter()
            .find(|(k, ..)| k == &key("other", "other", "other"))
            .unwrap();
        assert_eq!(other.2, 2);
        let t0 = all.iter().find(|(k, ..)| k.2 == "t0").unwrap();
        assert_eq!(t0.2, 1);
    }
}
