//! The scenarios: each turns the run's arguments into load phases ([`crate::attack::Phase`])
//! and their outcomes into a section of the run file. Claims are judged on these sections
//! ([`crate::claims`]); nothing here decides a verdict. One file (or folder) per scenario; what
//! they share is in [`context`].

pub mod admin;
pub mod capacity;
pub mod chaos;
pub mod connections;
pub mod context;
pub mod latency;
pub mod scale;
pub mod sequence;
pub mod sync;
