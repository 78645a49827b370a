//! An HTTP/1 client connection polled by the task that uses it (`hyper::client::conn::http1`):
//! no task per connection, no hand-off of every request and answer between tasks. The
//! gateway's upstream pool and loadgen's connections both work this way; these are the rules
//! they share for sending a request and running an exchange while the connection's I/O is
//! driven alongside it.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
};

use http::{Request, Response};
use hyper::{
    body::{Body, Incoming},
    client::conn::http1::SendRequest,
};

/// Why an exchange got no answer: the connection ended (or refused the request) before or
/// after the request was handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The request never left, so sending it again on another connection is safe.
    NotSent,
    /// The request was handed over and the answer will never come; whether the peer acted on
    /// it is unknown.
    Lost,
}

/// Hands `request` to the connection once it can take one, setting `handed_over` as it does
/// (how [`drive`] tells [`Miss::NotSent`] from [`Miss::Lost`]), and waits for the answer's
/// head. Run it as (part of) the `work` of [`drive`], which polls the connection meanwhile.
pub async fn send<B>(
    sender: &mut SendRequest<B>,
    request: Request<B>,
    handed_over: &AtomicBool,
) -> Result<Response<Incoming>, Miss>
where
    B: Body + 'static,
{
    if sender.ready().await.is_err() {
        return Err(Miss::NotSent);
    }
    handed_over.store(true, Ordering::Relaxed);
    match sender.send_request(request).await {
        Ok(response) => Ok(response),
        Err(e) if e.is_canceled() => Err(Miss::NotSent),
        Err(_) => Err(Miss::Lost),
    }
}

/// Runs `work` (an exchange on the connection whose I/O future is `driver`) while polling
/// `driver`, unless the connection has `ended` already. The driver is polled first, so a
/// kept-alive connection the peer closed while idle is found closed before a request is
/// handed over. `handed_over` is set by `work` once its request is given to the connection.
/// If the connection ends, what it delivered before ending is ready now; anything else will
/// never come. A request not handed over before the end never left: `work` is not polled
/// then, since it would hand its request to the dead connection (which takes it and never
/// answers) and turn a safe retry into an unknown outcome.
pub async fn drive<D, T>(
    driver: &mut D,
    ended: &mut bool,
    work: impl Future<Output = T>,
    handed_over: &AtomicBool,
) -> Result<T, Miss>
where
    D: Future + Unpin,
{
    let mut work = std::pin::pin!(work);
    let after_end = |work| {
        if handed_over.load(Ordering::Relaxed) {
            futures::FutureExt::now_or_never(work).ok_or(Miss::Lost)
        } else {
            Err(Miss::NotSent)
        }
    };
    if *ended {
        return after_end(work);
    }
    tokio::select! {
        biased;
        _ = driver => {
            *ended = true;
            after_end(work)
        }
        done = &mut work => Ok(done),
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
        assert_eq!(r, Err(Miss::NotSent));
        assert!(ended);
        // Handed over, then the connection ended: lost.
        sent.store(true, Ordering::Relaxed);
        let r = drive(&mut gone, &mut ended, std::future::pending::<u8>(), &sent).await;
        assert_eq!(r, Err(Miss::Lost));
        // Handed over, and the answer had arrived before the end: it is still delivered.
        assert_eq!(
            drive(&mut gone, &mut ended, async { 7 }, &sent).await,
            Ok(7)
        );
        // A live connection: the exchange finishes while the driver keeps running.
        let mut live = std::future::pending::<()>();
        let mut ended = false;
        assert_eq!(
            drive(&mut live, &mut ended, async { 1 }, &sent).await,
            Ok(1)
        );
        assert!(!ended);
    }

    /// A kept-alive connection the peer closed while it sat idle: the driver ends on its first
    /// poll. The exchange, had it run, would hand its request to the dead connection (hyper's
    /// sender still says ready) and never hear back; it must not run, and the miss is one a
    /// caller may safely retry.
    #[tokio::test]
    async fn a_request_is_not_handed_to_a_connection_found_closed() {
        let sent = AtomicBool::new(false);
        let mut ended = false;
        let mut gone = std::future::ready(());
        let work = async {
            sent.store(true, Ordering::Relaxed);
            std::future::pending::<u8>().await
        };
        assert_eq!(
            drive(&mut gone, &mut ended, work, &sent).await,
            Err(Miss::NotSent)
        );
        assert!(!sent.load(Ordering::Relaxed), "the request was handed over");
    }
}
