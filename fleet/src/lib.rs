//! The reference fleet: real rmcp MCP servers in two profiles, a supervisor that keeps them
//! running (in one process or one process each), a health monitor and an admin API.
//!
//! [`fleet::Fleet::start`] is the entry point shared by the `fleet` binary, `loadgen` (which
//! embeds a fleet to measure) and the integration tests.

pub mod cli;
pub mod control;
pub mod fleet;
pub mod gateway;
pub mod memory;
pub mod profile;
pub mod serve;
pub mod spec;
pub mod tools;
pub mod wire;

pub use fleet::{Endpoint, Fleet, FleetOptions, StartError};
pub use spec::{FleetSpec, GroupSpec, Isolation};

// Old paths, kept until the public face is settled.
pub use control::{admin, child, health, instance, scale, supervisor};
pub use serve::{args, link, listener, local, loopback, registry, server};
