//! Store-level tests: restart, crash recovery, locks, failures, foreign repositories, clones,
//! verify, history, and the store served to server processes over its socket.

#![allow(clippy::unwrap_used)]

mod durability;
mod remote;
mod repositories;
mod support;
mod verifying;
