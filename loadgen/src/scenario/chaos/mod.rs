//! The chaos scenario: load runs (through the gateway when the fleet has one) while a share of
//! the servers is killed, paused or slowed through the fleet's admin API; then, per fault, when
//! the fleet noticed (the server's state history), when the gateway took the server out of
//! rotation (its `/backends`) and when the server was healthy again. The client side, success
//! rate and failures by class, is the load's own result.

pub mod fault;
pub mod inject;
mod run;

pub use run::run;
