//! `phases.csv`: every second of every load phase's measured window as one row, so a
//! spreadsheet or a script plots a run without reading JSON. Columns: `phase`, `second` (since
//! the measured window began, by request start), `requests`, `ok`, `errors`, errors by class
//! (`errors_<class>`, empty when the run file does not split them), `p50_ms` .. `max_ms` of the
//! successful requests (empty in a second without one), and the connections sampled in that
//! second (`connections_client`, `connections_server`, empty where not known). The sync
//! scenario's seconds follow as phase `sync`: writes as requests, acknowledged writes as ok,
//! the rest as errors (not split by class), and the acknowledgement latency's p50 and p99.

use std::fmt::Write as _;

use crate::run::{ErrorClass, LoadPhase, Results, RunFile, SyncFigures};

/// The table of every load phase of `run`, header first; lines end in `\n`.
pub fn render(run: &RunFile) -> String {
    let mut out = String::from("phase,second,requests,ok,errors");
    for class in ErrorClass::ALL {
        let _ = write!(out, ",errors_{}", class.name());
    }
    out.push_str(",p50_ms,p90_ms,p99_ms,max_ms,connections_client,connections_server\n");
    for phase in run.load_phases() {
        rows(&phase, &mut out);
    }
    if let Some(figures) = run.sync.as_ref().and_then(|s| s.figures.as_ref()) {
        sync_rows(figures, &mut out);
    }
    out
}

fn sync_rows(f: &SyncFigures, out: &mut String) {
    let no_classes = ",".repeat(ErrorClass::ALL.len());
    for (second, s) in f.per_second.iter().enumerate() {
        let failed = s.writes.saturating_sub(s.acked);
        let _ = write!(
            out,
            "sync,{second},{},{},{failed}{no_classes}",
            s.writes, s.acked
        );
        if s.acked > 0 {
            let (p50, p99) = (s.ack_p50_us as f64 / 1000.0, s.ack_p99_us as f64 / 1000.0);
            let _ = writeln!(out, ",{p50:.3},,{p99:.3},,,");
        } else {
            out.push_str(",,,,,,\n");
        }
    }
}

fn rows(phase: &LoadPhase<'_>, out: &mut String) {
    let key = phase.key();
    let r = phase.results;
    for (second, s) in r.per_second.iter().enumerate() {
        let _ = write!(
            out,
            "{key},{second},{},{},{}",
            s.ok + s.errors,
            s.ok,
            s.errors
        );
        // Files written before errors were split by class have none; a second without errors
        // has all zero either way.
        let split = s.errors == 0 || !s.errors_by_class.is_empty();
        for class in ErrorClass::ALL {
            out.push(',');
            if split {
                let n = s.errors_by_class.get(&class).copied().unwrap_or(0);
                let _ = write!(out, "{n}");
            }
        }
        for us in [s.p50_us, s.p90_us, s.p99_us, s.max_us] {
            out.push(',');
            if s.ok > 0 {
                let _ = write!(out, "{:.3}", us as f64 / 1000.0);
            }
        }
        let (client, server) = connections_in(r, second);
        let shown = |n: Option<u64>| n.map_or(String::new(), |n| n.to_string());
        let _ = writeln!(out, ",{},{}", shown(client), shown(server));
    }
}

/// The last connection sample taken during `second` of the measured window, if any.
fn connections_in(r: &Results, second: usize) -> (Option<u64>, Option<u64>) {
    let from = r.window_s[0] + second as f64;
    r.connections
        .iter()
        .rfind(|c| c.t >= from && c.t < from + 1.0)
        .map_or((None, None), |c| (c.client, c.server))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::synthetic::{Spec, run};

    #[test]
    fn a_row_per_second_with_its_counts() {
        let spec = Spec::default();
        let mut file = run(&spec);
        let table = render(&file);
        let lines: Vec<&str> = table.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header[..3], ["phase", "second", "requests"]);
        assert!(header.contains(&"errors_timeout") && header.contains(&"p99_ms"));
        let latency = file.latency.as_ref().unwrap();
        let sync = file.sync.as_ref().unwrap().figures.as_ref().unwrap();
        assert_eq!(
            lines.len(),
            1 + latency.per_second.len() + sync.per_second.len()
        );
        for line in &lines[1 + latency.per_second.len()..] {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            assert_eq!((cells[0], cells[2], cells[3]), ("sync", "200", "200"));
        }
        let mut requests = 0;
        for (i, line) in lines[1..=latency.per_second.len()].iter().enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            assert_eq!((cells[0], cells[1]), ("latency", i.to_string().as_str()));
            requests += cells[2].parse::<u64>().unwrap();
            let s = &latency.per_second[i];
            let p99: f64 = cells[header.iter().position(|h| *h == "p99_ms").unwrap()]
                .parse()
                .unwrap();
            assert_eq!(p99, s.p99_us as f64 / 1000.0);
            let client = cells[header.len() - 2];
            assert_eq!(client, spec.connections.to_string(), "sampled each second");
        }
        assert_eq!(requests, latency.requests);

        // A file written before errors were split by class leaves those cells empty.
        let second = &mut file.latency.as_mut().unwrap().per_second[0];
        second.errors = 3;
        second.errors_by_class.clear();
        let table = render(&file);
        let row: Vec<&str> = table.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(row[4], "3");
        assert!(
            row[5..5 + ErrorClass::ALL.len()]
                .iter()
                .all(|c| c.is_empty())
        );
    }
}
