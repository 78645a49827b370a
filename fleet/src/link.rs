//! An HTTP/1 client connection polled by the task that uses it (`hyper::client::conn::http1`):
//! no task per connection, no hand-off of every request and answer between tasks. The
//! gateway's upstream pool and loadgen's connections both work this way; this is the one rule
//! they share for running an exchange while the connection's I/O is driven alongside it.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
};

/// How an exchange run with [`drive`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven<T> {
    /// The exchange finished (possibly just as the connection ended).
    Done(T),
    /// The connection ended before the request was handed to it: it never left, so sending it
    /// again on another connection is safe.
    NotSent,
    /// The connection ended after the request was handed over: the answer will never come,
    /// and whether the peer acted on the request is unknown.
    Lost,
}

/// Runs `work` (an exchange on the connection whose I/O future is `driver`) while polling
/// `driver`, unless the connection has `ended` already. The driver is polled first, so a
/// kept-alive connection the peer closed while idle is found closed before a request is
/// handed over. `handed_over` is set by `work` once its request is given to the connection.
/// If the connection ends, what it delivered before ending is ready now; anything else will
/// never come.
pub async fn drive<D, T>(
    driver: &mut D,
    ended: &mut bool,
    work: impl Future<Output = T>,
    handed_over: &AtomicBool,
) -> Driven<T>
where
    D: Future + Unpin,
{
    let mut work = std::pin::pin!(work);
    let lost = |handed_over: &AtomicBool| {
        if handed_over.load(Ordering::Relaxed) {
            Driven::Lost
        } else {
            Driven::NotSent
        }
    };
    if *ended {
        return futures::FutureExt::now_or_never(work)
            .map_or_else(|| lost(handed_over), Driven::Done);
    }
    tokio::select! {
        biased;
        _ = driver => {
            *ended = true;
            futures::FutureExt::now_or_never(work).map_or_else(|| lost(handed_over), Driven::Done)
        }
        done = &mut work => Driven::Done(done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ends_tell_whether_the_request_left() {
        let sent = AtomicBool::new(false);
        // The connection is over before anything was handed to it.
        let mut ended = false;
        let mut gone = std::future::ready(());
        let r = drive(&mut gone, &mut ended, std::future::pending::<u8>(), &sent).await;
        assert_eq!(r, Driven::NotSent);
        assert!(ended);
        // Ended earlier, and the answer had arrived: it is still delivered.
        assert_eq!(
            drive(&mut gone, &mut ended, async { 7 }, &sent).await,
            Driven::Done(7)
        );
        // Handed over, then the connection ended: lost.
        sent.store(true, Ordering::Relaxed);
        let r = drive(&mut gone, &mut ended, std::future::pending::<u8>(), &sent).await;
        assert_eq!(r, Driven::Lost);
        // A live connection: the exchange finishes while the driver keeps running.
        let mut live = std::future::pending::<()>();
        let mut ended = false;
        assert_eq!(
            drive(&mut live, &mut ended, async { 1 }, &sent).await,
            Driven::Done(1)
        );
        assert!(!ended);
    }
}
