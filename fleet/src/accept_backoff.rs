//! How every accept loop of the fleet (its HTTP listeners, the memory socket) waits after a
//! failed accept, so a shortage of descriptors neither spins a core nor floods the log.

use std::time::Duration;

/// Longest pause between accept attempts while accepting fails (EMFILE and the like).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How an accept loop waits after a failed accept (EMFILE/ENFILE, aborted handshakes): 10 ms,
/// doubling to [`MAX_ACCEPT_BACKOFF`] while failures last, so a lasting shortage neither spins
/// nor floods the log (one warning per run of failures).
#[derive(Default)]
pub(crate) struct AcceptBackoff {
    delay: Duration,
}

impl AcceptBackoff {
    pub(crate) async fn wait(&mut self, e: &std::io::Error) {
        if self.delay.is_zero() {
            tracing::warn!("accept failed: {e}; retrying with backoff");
        } else {
            tracing::debug!("accept failed again: {e}");
        }
        self.delay = (self.delay * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
        tokio::time::sleep(self.delay).await;
    }

    pub(crate) fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }
}
