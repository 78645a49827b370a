//! CPU and memory of the stdio servers, read from `/proc` once a second: every process whose
//! process group is one of the servers' (each server is started as the leader of its own
//! group, so a wrapper such as `npx` or `uvx` and the real server under it are both counted).
//! CPU counts per process from one sample to the next, so a process that exits or restarts
//! neither loses what it used nor makes the sum go backwards.

use std::{collections::HashMap, time::Instant};

use crate::{
    cpu::{USER_HZ, parse_stat},
    runfile::StdioSample,
};

/// Accumulates samples of the processes of some process groups.
#[derive(Debug)]
pub struct UsageSampler {
    started: Instant,
    last_at: Instant,
    /// Ticks each process (by pid and start time) had at the last sample.
    seen: HashMap<(u64, u64), u64>,
    total_ticks: u64,
    samples: Vec<StdioSample>,
}

impl UsageSampler {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            last_at: started,
            seen: HashMap::new(),
            total_ticks: 0,
            samples: Vec::new(),
        }
    }

    /// Reads every process of `groups` now and keeps a sample. A process first seen counts
    /// with all the CPU it has used: it started after the sampler (a server or its child).
    pub fn sample(&mut self, groups: &[u64]) {
        let now = Instant::now();
        let mut current = HashMap::new();
        let mut used = 0;
        let mut rss_bytes = 0;
        for (pid, start, ticks) in group_members(groups) {
            let before = self.seen.get(&(pid, start)).copied().unwrap_or(0);
            used += ticks.saturating_sub(before);
            rss_bytes += u32::try_from(pid)
                .ok()
                .and_then(fleet::proc_memory::rss_bytes)
                .unwrap_or(0);
            current.insert((pid, start), ticks);
        }
        let wall = now.saturating_duration_since(self.last_at).as_secs_f64();
        self.samples.push(StdioSample {
            t_s: now.saturating_duration_since(self.started).as_secs_f64(),
            processes: current.len(),
            cpu_percent: if wall > 0.0 {
                used as f64 / USER_HZ * 100.0 / wall
            } else {
                0.0
            },
            rss_bytes,
        });
        self.total_ticks += used;
        self.seen = current;
        self.last_at = now;
    }

    /// CPU seconds used by the processes over all samples.
    pub fn cpu_s(&self) -> f64 {
        self.total_ticks as f64 / USER_HZ
    }

    pub fn samples(&self) -> &[StdioSample] {
        &self.samples
    }
}

/// (pid, start time, CPU ticks) of every process whose group is in `groups`.
fn group_members(groups: &[u64]) -> Vec<(u64, u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_number))
        .filter_map(|e| {
            // A process listed a moment ago may have exited since: skip it.
            let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let stat = parse_stat(&text)?;
            // A zombie has exited: nothing of it is left to count but its id.
            if text.contains(") Z ") {
                return None;
            }
            groups
                .contains(&stat.group)
                .then_some((stat.id, stat.start, stat.ticks))
        })
        .collect()
}

fn is_number(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::{os::unix::process::CommandExt as _, process::Command, time::Duration};

    use super::*;

    #[test]
    fn samples_a_process_group_that_burns_cpu() {
        // A shell leading its own group, with a child in it that burns CPU until killed.
        let mut child = Command::new("sh")
            .args(["-c", "while :; do :; done & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = u64::from(child.id());
        let mut sampler = UsageSampler::new(Instant::now());
        sampler.sample(&[group]);
        std::thread::sleep(Duration::from_millis(600));
        sampler.sample(&[group]);
        let last = *sampler.samples().last().unwrap();
        // sh, the burning subshell and sleep.
        assert!(last.processes >= 2, "{last:?}");
        assert!(last.rss_bytes > 0, "{last:?}");
        assert!(sampler.cpu_s() > 0.0, "{}", sampler.cpu_s());
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        child.wait().unwrap();
        // The killed subshell and sleep are reaped by init, a moment later.
        for _ in 0..100 {
            sampler.sample(&[group]);
            if sampler.samples().last().unwrap().processes == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sampler.samples().last().unwrap().processes, 0);
    }
}
