//! Statistics for comparing runs (being written).
