//! Locking a mutex whose holder may have panicked: what it guards (counts, histograms, idle
//! connections) is still worth using, so a poisoned lock is taken as it is.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`; a panicked holder left counts that are still worth reporting.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
