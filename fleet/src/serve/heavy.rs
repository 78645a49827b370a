//! Where a security tool's work runs, so that no input can stall the servers around it.
//!
//! The tools are CPU work on caller-supplied text (up to 1 MiB): run on an async worker, one
//! slow call holds that worker and every connection it serves, and in task mode those belong to
//! other servers too (two CPU-heavy calls once stalled an unrelated server's `echo` for 10 s).
//! So a call with more than [`INLINE_BYTES`] of input runs on tokio's blocking threads, at most
//! [`slots`] such calls at a time in this process (a flood of them waits for a slot instead of
//! taking every blocking thread), and is answered within the server's `tool_deadline`, its wait
//! for a slot included. A call past its deadline is answered with an error at once; its work,
//! which cannot be interrupted, finishes on its thread, still holding its slot, so abandoned
//! work counts against the bound too. Small inputs are checked in place: their cost (linear in
//! the input, depth-limited) is below what a hand-off to another thread costs.

use std::{
    num::NonZeroUsize,
    sync::LazyLock,
    time::{Duration, Instant},
};

use rmcp::ErrorData;
use tokio::sync::Semaphore;

use crate::tools::error::ToolInputError;

/// Inputs up to this size are checked on the calling task.
pub const INLINE_BYTES: usize = 16 * 1024;

/// Slots for heavy calls, shared by every server of this process.
static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(slots()));

/// How many heavy calls run at once in one process: one per CPU (at least two), so they can
/// keep every core busy but never queue more threads than cores for the async workers to
/// compete with.
pub fn slots() -> usize {
    std::thread::available_parallelism()
        .map_or(2, NonZeroUsize::get)
        .max(2)
}

/// Runs `work` (a tool on `input_bytes` of input) where the module docs say, answering within
/// `deadline`: what the tool answered (its output or its input error), or -32603 naming the
/// deadline.
pub async fn run<T, F>(
    tool: &str,
    input_bytes: usize,
    deadline: Duration,
    work: F,
) -> Result<Result<T, ToolInputError>, ErrorData>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ToolInputError> + Send + 'static,
{
    if input_bytes <= INLINE_BYTES {
        return Ok(work());
    }
    let started = Instant::now();
    let job = async {
        let slot = SLOTS
            .acquire()
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| ErrorData::internal_error(format!("`{tool}` failed: {e}"), None))
    };
    match tokio::time::timeout(deadline, job).await {
        Ok(done) => done,
        Err(_) => Err(ErrorData::internal_error(
            format!(
                "`{tool}` did not finish within the server's tool deadline of {} ms \
                 (`tool_deadline`); its work was abandoned: send a smaller input",
                deadline.as_millis()
            ),
            Some(serde_json::json!({
                "tool": tool,
                "deadlineMs": u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "waitedMs": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn small_inputs_run_in_place_and_large_ones_on_another_thread() {
        let here = std::thread::current().id();
        let small = run("t", 10, Duration::from_secs(5), move || {
            Ok(std::thread::current().id())
        });
        assert_eq!(small.await.unwrap().unwrap(), here);
        let large = run("t", INLINE_BYTES + 1, Duration::from_secs(5), move || {
            Ok(std::thread::current().id())
        });
        assert_ne!(large.await.unwrap().unwrap(), here);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn input_errors_come_back_as_they_are() {
        let answer = run::<(), _>("t", INLINE_BYTES + 1, Duration::from_secs(5), || {
            Err(ToolInputError::new("content", "too deep"))
        })
        .await
        .unwrap();
        assert_eq!(answer, Err(ToolInputError::new("content", "too deep")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_past_its_deadline_is_answered_while_its_work_goes_on() {
        let release = Arc::new(AtomicBool::new(false));
        let spin = release.clone();
        let err = run::<(), _>(
            "scan_iac",
            INLINE_BYTES + 1,
            Duration::from_millis(50),
            move || {
                while !spin.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            },
        )
        .await
        .unwrap_err();
        release.store(true, Ordering::Relaxed);
        assert_eq!(err.code, rmcp::model::ErrorCode::INTERNAL_ERROR);
        assert!(
            err.message.contains("tool deadline of 50 ms"),
            "{}",
            err.message
        );
        assert_eq!(err.data.unwrap()["tool"], "scan_iac");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_runs_at_most_one_call_per_slot_at_a_time() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..slots() * 3 {
            let (running, most) = (running.clone(), most.clone());
            calls.spawn(run(
                "t",
                INLINE_BYTES + 1,
                Duration::from_secs(30),
                move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                },
            ));
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap().unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=slots()).contains(&most), "{most} at once");
    }
}
