//! Store-level tests: restart, crash recovery, locks, failures, foreign repositories, clones,
//! verify, history, following the store from another view, and a damaged write-ahead log.

#![allow(clippy::unwrap_used)]

mod durability;
mod following;
mod repositories;
mod support;
mod wal_damage;
