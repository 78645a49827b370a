//! Keeping servers alive, as a straight stack where each layer uses only those below it:
//! the admin API ([`admin`], its requests that change something checked by [`admin_auth`]) asks the [`scale`]r to add or remove servers, which starts their
//! health monitors ([`health`]) and keepers ([`supervisor`]); a keeper runs one [`instance`]
//! at a time, a task or a process-mode [`child`]. [`logging`] is shared by every process.

pub mod admin;
pub mod admin_auth;
pub mod child;
pub mod health;
pub mod instance;
pub mod logging;
pub mod memory_metrics;
pub mod scale;
pub mod supervisor;
