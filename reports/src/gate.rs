//! The CI gate (being written).
