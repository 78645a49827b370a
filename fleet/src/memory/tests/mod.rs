//! Store-level tests: restart, crash recovery, locks, failures, foreign repositories, clones,
//! verify, history, the store served to server processes over its socket, and a damaged
//! write-ahead log.

#![allow(clippy::unwrap_used)]

mod durability;
mod layouts;
mod remote;
mod repositories;
mod stamps;
pub(super) mod support;
mod verifying;
mod wal_damage;
