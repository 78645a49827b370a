//! CPU use during the load run, read from `/proc` (Linux): this process's CPU time and the
//! whole machine's busy share, so a saturated load generator can be told apart from a slow
//! server. In embedded mode the fleet runs in this process, so its CPU is included and the run
//! file says so.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Ticks per second of `/proc` CPU times: `USER_HZ`, fixed at 100 by the Linux user ABI.
const USER_HZ: f64 = 100.0;

/// A reading taken at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    process_ticks: u64,
    machine_busy_ticks: u64,
    machine_total_ticks: u64,
}

/// CPU use between two samples, as the run file carries it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// CPU seconds this process used (user + system).
    pub process_cpu_s: f64,
    /// That as a share of all cores over the window (100 % = every core busy).
    pub process_percent_of_machine: f64,
    /// How busy all cores were, whoever used them.
    pub machine_busy_percent: f64,
    /// Process CPU per completed request, in microseconds.
    pub cpu_us_per_request: f64,
    /// True when the measured servers ran in this process (embedded fleet).
    pub includes_embedded_fleet: bool,
}

impl CpuSample {
    /// Reads `/proc/self/stat` and `/proc/stat`; `None` where they are not available.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let process_ticks =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, total) = parse_machine(machine.lines().next()?)?;
        Some(Self {
            at: Instant::now(),
            process_ticks,
            machine_busy_ticks: busy,
            machine_total_ticks: total,
        })
    }

    /// CPU use from `self` to `later`.
    pub fn until(&self, later: &CpuSample, requests: u64, embedded: bool) -> CpuUse {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let process_cpu_s = later.process_ticks.saturating_sub(self.process_ticks) as f64 / USER_HZ;
        let busy = later
            .machine_busy_ticks
            .saturating_sub(self.machine_busy_ticks) as f64;
        let total = later
            .machine_total_ticks
            .saturating_sub(self.machine_total_ticks) as f64;
        CpuUse {
            process_cpu_s,
            process_percent_of_machine: if wall > 0.0 {
                process_cpu_s * 100.0 / (wall * cpus)
            } else {
                0.0
            },
            machine_busy_percent: if total > 0.0 {
                busy * 100.0 / total
            } else {
                0.0
            },
            cpu_us_per_request: if requests > 0 {
                process_cpu_s * 1e6 / requests as f64
            } else {
                0.0
            },
            includes_embedded_fleet: embedded,
        }
    }
}

/// (busy, total) ticks from the `cpu` line of `/proc/stat`; idle and iowait are not busy.
fn parse_machine(line: &str) -> Option<(u64, u64)> {
    let mut parts = line.split_whitespace();
    if parts.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = parts.take(8).filter_map(|v| v.parse().ok()).collect();
    if ticks.len() < 5 {
        return None;
    }
    let total: u64 = ticks.iter().sum();
    let idle = ticks[3] + ticks[4];
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_measures_own_work() {
        let (busy, total) = parse_machine("cpu  100 5 50 800 20 1 2 3 0 0").expect("parses");
        assert_eq!((busy, total), (161, 981));
        assert!(parse_machine("intr 1 2 3").is_none());

        // Burn CPU until this process's CPU time has grown by 0.1 s (bounded by 20 s of wall
        // time, so a reading of the wrong fields fails instead of hanging).
        let before = CpuSample::now().expect("linux /proc");
        let t = Instant::now();
        let mut x = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            let now = CpuSample::now().expect("linux /proc");
            let used = before.until(&now, 1000, false);
            if used.process_cpu_s >= 0.1 || t.elapsed().as_secs() >= 20 {
                break used;
            }
        };
        std::hint::black_box(x);
        assert!(used.process_cpu_s >= 0.1, "{used:?}");
        assert!((0.0..=100.0).contains(&used.machine_busy_percent));
        assert!(used.cpu_us_per_request > 0.0);
    }
}
