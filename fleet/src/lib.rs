//! The reference fleet: real rmcp MCP servers in two profiles, a supervisor that keeps them
//! running (in one process or one process each), a health monitor and an admin API.
//!
//! [`Fleet::start`] is the entry point shared by the `fleet` binary, `loadgen` (which embeds a
//! fleet to measure) and the integration tests.
//!
//! The layout follows the architecture: [`wire`] is the MCP vocabulary every side speaks;
//! `serve` is one server's data plane; `control` keeps servers alive (admin -> scale -> health
//! -> supervisor -> instance -> child); [`gateway`] is the one endpoint in front of the fleet;
//! [`memory`] and [`tools`] are what the servers offer; `fleet` and [`cli`] assemble it all.
//! Public are only the modules other crates use, and the items below.

mod accept_backoff;
mod causes;
pub mod cli;
mod control;
mod dashboard;
mod fleet;
pub mod gateway;
mod histogram;
pub mod memory;
pub mod proc_memory;
mod profile;
mod serve;
mod spec;
mod spec_memory;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timespan;
pub mod tools;
pub mod wire;

pub use control::{
    admin::{FleetView, HistoryView},
    admin_auth::{AdminToken, TokenError},
    child::run_if_child,
    instance::ChildProgram,
    logging::init_logging,
    scale::ScaleOutcome,
};
pub use fleet::{Endpoint, Fleet, FleetOptions, StartError};
pub use profile::Profile;
pub use serve::{
    connection::BodyTimedOut,
    limits::ConnectionLimits,
    link, listener,
    registry::{Counters, ServerState, Transition},
    socket::raise_fd_limit,
};
pub use spec::{FleetSpec, GroupSpec, HttpSpec, Isolation};
