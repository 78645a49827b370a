//! What a run tells the person watching it on stderr, and `--quiet`, which silences that
//! progress for the whole process while errors and warnings still go to stderr (they are
//! printed with `eprintln!` directly, never through here). A process-wide switch rather than a
//! flag passed down: progress is printed from every scenario, the engine's tick and the
//! embedded fleet's start-up, and `--quiet` means all of them.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences (or restores) progress output for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `eprintln!` for progress: nothing under `--quiet`.
macro_rules! progress {
    ($($arg:tt)*) => {
        if !$crate::verbosity::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use progress;

/// A progress line printed once a second: rewritten in place on a terminal, plain lines in CI
/// and when stderr is a file, nothing under `--quiet`.
pub struct TickerLine {
    live: bool,
    shown: bool,
}

impl TickerLine {
    pub fn on_stderr() -> Self {
        Self {
            live: std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("CI").is_none(),
            shown: false,
        }
    }

    pub fn show(&mut self, line: &str) {
        if quiet() {
            return;
        }
        if self.live {
            eprint!("\r\x1b[2K{}", line.trim_start());
        } else {
            eprintln!("{line}");
        }
        self.shown = true;
    }

    /// Ends a line left open on a terminal.
    pub fn finish(self) {
        if self.live && self.shown {
            eprintln!();
        }
    }
}
