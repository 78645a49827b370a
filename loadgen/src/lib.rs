//! loadgen (filled in by its issue).
