//! The `fleet` command line: `up` runs a fleet in the foreground; `status`, `scale` and `down`
//! talk to a running one through its admin API; `memory verify` checks a repository offline and
//! `memory salvage-wal` sets a damaged write-ahead log aside.
//! `serve-stdio` runs one server over stdio; `gateway` serves one endpoint over many fleets
//! (`gateway`). `args` holds what clap parses, `commands` what
//! each subcommand does, `output` what is printed about a fleet (shared with loadgen), `stdio`
//! the stdio server.

mod args;
mod commands;
mod gateway;
mod output;
mod salvage;
mod stdio;

pub use self::{
    args::{Cli, default_admin_token_file, default_memory_repo},
    commands::run,
    output::{describe, progress_printer, render_status},
};
