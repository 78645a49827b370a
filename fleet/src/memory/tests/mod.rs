//! Store-level tests: restart, crash recovery, locks, failures, foreign repositories, clones,
//! verify, history, and following the store from another view.

#![allow(clippy::unwrap_used)]

mod durability;
mod following;
mod repositories;
mod support;
mod verifying;
