//! Tool logic, kept free of transport concerns so benches and tests call it directly.

pub mod community;
pub mod error;
pub mod memory;
pub mod security;
