//! CPU use during the load run, read from `/proc` (Linux): this process's CPU time, split per
//! thread into the load generator's and the embedded fleet's, and the whole machine's busy
//! share, so a saturated load generator can be told apart from a slow server.
//!
//! In embedded mode the fleet runs in this process on its own runtime, whose threads are named
//! [`FLEET_THREAD_NAME`]; the process totals include it (and the run file says so), the
//! `generator_*` figures do not.

use std::time::Instant;

pub use crate::embedded::FLEET_THREAD_NAME;

/// Ticks per second of `/proc` CPU times: `USER_HZ`, fixed at 100 by the Linux user ABI.
pub(crate) const USER_HZ: f64 = 100.0;

/// A reading taken at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    process_ticks: u64,
    machine_busy_ticks: u64,
    machine_total_ticks: u64,
    /// Every thread alive at `at`, sorted by [`ThreadTicks::key`] for lookup.
    threads: Vec<ThreadTicks>,
}

/// One thread's CPU ticks so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ThreadTicks {
    tid: u64,
    /// Start time (ticks after boot): with `tid`, names a thread even if the kernel reuses its id.
    start: u64,
    /// Whether the thread is one of the embedded fleet's (by name).
    fleet: bool,
    /// utime + stime.
    ticks: u64,
}

impl ThreadTicks {
    fn key(&self) -> (u64, u64) {
        (self.tid, self.start)
    }
}

pub use crate::runfile::CpuUse;

impl CpuSample {
    /// Reads `/proc/self/stat`, `/proc/self/task/*/stat` and `/proc/stat`; `None` where they are
    /// not available.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let process_ticks = parse_stat(&stat)?.ticks;
        let threads = read_threads()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, total) = parse_machine(machine.lines().next()?)?;
        Some(Self {
            at: Instant::now(),
            process_ticks,
            machine_busy_ticks: busy,
            machine_total_ticks: total,
            threads,
        })
    }

    /// CPU use from `self` to `later`.
    pub fn until(&self, later: &CpuSample, requests: u64, embedded: bool) -> CpuUse {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share_of_machine = |cpu_s: f64| {
            if wall > 0.0 {
                cpu_s * 100.0 / (wall * cpus)
            } else {
                0.0
            }
        };
        let per_request = |cpu_s: f64| {
            if requests > 0 {
                cpu_s * 1e6 / requests as f64
            } else {
                0.0
            }
        };
        let process_cpu_s = later.process_ticks.saturating_sub(self.process_ticks) as f64 / USER_HZ;
        let (generator_ticks, fleet_ticks) = self.thread_ticks_until(later);
        let generator_cpu_s = generator_ticks as f64 / USER_HZ;
        let busy = later
            .machine_busy_ticks
            .saturating_sub(self.machine_busy_ticks) as f64;
        let total = later
            .machine_total_ticks
            .saturating_sub(self.machine_total_ticks) as f64;
        CpuUse {
            process_cpu_s,
            process_percent_of_machine: share_of_machine(process_cpu_s),
            machine_busy_percent: if total > 0.0 {
                busy * 100.0 / total
            } else {
                0.0
            },
            cpu_us_per_request: per_request(process_cpu_s),
            includes_embedded_fleet: embedded,
            generator_cpu_s,
            generator_percent_of_machine: share_of_machine(generator_cpu_s),
            generator_cpu_us_per_request: per_request(generator_cpu_s),
            fleet_cpu_s: embedded.then_some(fleet_ticks as f64 / USER_HZ),
        }
    }

    /// (generator, fleet) ticks from `self` to `later`, thread by thread: a thread started
    /// since `self` counts from zero, one that has exited by `later` is not seen.
    fn thread_ticks_until(&self, later: &CpuSample) -> (u64, u64) {
        let (mut generator, mut fleet) = (0, 0);
        for t in &later.threads {
            let before = self
                .threads
                .binary_search_by_key(&t.key(), ThreadTicks::key)
                .map_or(0, |i| self.threads[i].ticks);
            let used = t.ticks.saturating_sub(before);
            if t.fleet {
                fleet += used;
            } else {
                generator += used;
            }
        }
        (generator, fleet)
    }
}

/// Every thread of this process, sorted by key; `None` without `/proc/self/task`.
fn read_threads() -> Option<Vec<ThreadTicks>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread listed a moment ago may have exited since: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(s) = parse_stat(&stat) {
            threads.push(ThreadTicks {
                tid: s.id,
                start: s.start,
                // The fleet's memory store runs its own threads (`memory-owner`,
                // `memory-committer`): they are the fleet's work too.
                fleet: s.comm.starts_with(FLEET_THREAD_NAME) || s.comm.starts_with("memory-"),
                ticks: s.ticks,
            });
        }
    }
    threads.sort_unstable_by_key(ThreadTicks::key);
    Some(threads)
}

/// What is used of a `/proc/.../stat` line (of a process or of one thread).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stat<'a> {
    /// Process or thread id.
    pub(crate) id: u64,
    /// Command or thread name (at most 15 bytes; may hold spaces and parentheses).
    pub(crate) comm: &'a str,
    /// The process group.
    pub(crate) group: u64,
    /// utime + stime.
    pub(crate) ticks: u64,
    /// starttime, ticks after boot.
    pub(crate) start: u64,
}

pub(crate) fn parse_stat(line: &str) -> Option<Stat<'_>> {
    let (id, rest) = line.split_once(" (")?;
    // The name may contain ')': the fields after it start after the last one.
    let (comm, after) = rest.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n)?.parse::<u64>().ok();
    // pgrp, utime, stime and starttime are fields 5, 14, 15 and 22 of the line: 2, 12, 13 and
    // 20 after the name.
    Some(Stat {
        id: id.trim().parse().ok()?,
        comm,
        group: field(2)?,
        ticks: field(11)? + field(12)?,
        start: field(19)?,
    })
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
    use std::sync::mpsc;

    use super::*;

    /// A little CPU work the optimizer cannot remove.
    fn burn(x: &mut u64) {
        for _ in 0..100_000 {
            *x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(*x);
    }

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
            burn(&mut x);
            let now = CpuSample::now().expect("linux /proc");
            let used = before.until(&now, 1000, false);
            if used.process_cpu_s >= 0.1 || t.elapsed().as_secs() >= 20 {
                break used;
            }
        };
        assert!(used.process_cpu_s >= 0.1, "{used:?}");
        assert!((0.0..=100.0).contains(&used.machine_busy_percent));
        assert!(used.cpu_us_per_request > 0.0);
        // This thread is not the fleet's, and no fleet runs outside embedded mode.
        assert!(used.generator_cpu_s > 0.0 && used.generator_cpu_us_per_request > 0.0);
        assert_eq!(used.fleet_cpu_s, None);
    }

    #[test]
    fn parses_a_thread_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (fleet-rt) (x y) S 4200 4200 4200 0 -1 4194624 10 0 0 0 \
                    37 5 0 0 20 0 12 0 98765 0 0\n";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(
            stat,
            Stat {
                id: 4242,
                comm: "fleet-rt) (x y",
                group: 4200,
                ticks: 42,
                start: 98765,
            }
        );
        assert!(stat.comm.starts_with(FLEET_THREAD_NAME));
        assert!(parse_stat("4242 (short) S 1 2").is_none());
        assert!(parse_stat("no name here").is_none());
    }

    /// Spawns a thread named `name` that burns until its own CPU time reaches 0.2 s (or 20 s of
    /// wall time pass), then reports its id and stays alive until released: a thread that has
    /// exited would lose its ticks.
    fn busy_thread(
        name: &str,
    ) -> (
        std::thread::JoinHandle<()>,
        mpsc::Receiver<u64>,
        mpsc::Sender<()>,
    ) {
        let (done_tx, done_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let own = || {
                    parse_stat(&std::fs::read_to_string("/proc/thread-self/stat").unwrap())
                        .map(|s| (s.id, s.ticks))
                        .unwrap()
                };
                let (t, mut x) = (Instant::now(), 0u64);
                while own().1 < 20 && t.elapsed().as_secs() < 20 {
                    burn(&mut x);
                }
                done_tx.send(own().0).unwrap();
                let _ = release_rx.recv();
            })
            .unwrap();
        (thread, done_rx, release_tx)
    }

    #[test]
    fn attributes_threads_to_the_fleet_by_name() {
        let before = CpuSample::now().expect("linux /proc");
        let fleet_name = format!("{FLEET_THREAD_NAME}-test");
        let (fleet_thread, fleet_done, fleet_release) = busy_thread(&fleet_name);
        let (other_thread, other_done, other_release) = busy_thread("cpu-test-gen");
        let fleet_tid = fleet_done.recv().unwrap();
        let other_tid = other_done.recv().unwrap();
        let after = CpuSample::now().expect("linux /proc");
        drop((fleet_release, other_release));
        fleet_thread.join().unwrap();
        other_thread.join().unwrap();

        let find = |tid| {
            after
                .threads
                .iter()
                .find(|t| t.tid == tid)
                .copied()
                .unwrap()
        };
        let (fleet, other) = (find(fleet_tid), find(other_tid));
        assert!(fleet.fleet && !other.fleet, "{fleet:?} {other:?}");
        // Both threads started after `before`, so all of their (at least 20) ticks fall in the
        // window; other tests' threads can only add to these sums.
        assert!(
            fleet.ticks >= 20 && other.ticks >= 20,
            "{fleet:?} {other:?}"
        );
        let used = before.until(&after, 1, true);
        let fleet_cpu_s = used.fleet_cpu_s.unwrap();
        assert!(fleet_cpu_s >= 0.2 - 1e-9, "{used:?}");
        assert!(used.generator_cpu_s >= 0.2 - 1e-9, "{used:?}");
        // Process times round utime and stime down separately, so allow a little slack.
        assert!(used.process_cpu_s >= 0.3, "{used:?}");
    }
}
