//! Keeping servers alive, as a straight stack where each layer uses only those below it:
//! the admin API ([`admin`]: JSON, [`fleet_metrics`], the dashboard; its requests that change
//! something checked by [`admin_guard`] against the [`admin_auth`] token or a
//! [`browser_auth`] cookie) asks the [`scale`]r to add or remove servers, which starts their
//! health monitors ([`health`]) and keepers ([`supervisor`]); a keeper runs one [`instance`]
//! at a time, a task or a process-mode [`child`]. [`logging`] is shared by every process.

pub mod admin;
pub mod admin_auth;
pub mod admin_guard;
pub mod browser_auth;
pub mod child;
pub mod fleet_metrics;
pub mod health;
pub mod instance;
pub mod logging;
pub mod memory_metrics;
pub mod scale;
pub mod supervisor;
