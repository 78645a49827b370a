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
/// never come.
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
    let missed = |handed_over: &AtomicBool| {
        if handed_over.load(Ordering::Relaxed) {
            Miss::Lost
        } else {
            Miss::NotSent
        }
    };
    if *ended {
        return futures::FutureExt::now_or_never(work).ok_or_else(|| missed(handed_over));
    }
    tokio::select! {
        biased;
        _ = driver => {
            *ended = true;
            futures::FutureExt::now_or_never(work).ok_or_else(|| missed(handed_over))
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
        // Ended earlier, and the answer had arrived: it is still delivered.
        assert_eq!(
            drive(&mut gone, &mut ended, async { 7 }, &sent).await,
            Ok(7)
        );
        // Handed over, then the connection ended: lost.
        sent.store(true, Ordering::Relaxed);
        let r = drive(&mut gone, &mut ended, std::future::pending::<u8>(), &sent).await;
        assert_eq!(r, Err(Miss::Lost));
        // A live connection: the exchange finishes while the driver keeps running.
        let mut live = std::future::pending::<()>();
        let mut ended = false;
        assert_eq!(
            drive(&mut live, &mut ended, async { 1 }, &sent).await,
            Ok(1)
        );
        assert!(!ended);
    }
}
