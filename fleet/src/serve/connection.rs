//! One accepted connection, served until it ends or must be closed: a connection that never
//! starts a request, sits with no request in flight (`[http] idle_timeout`), or sends a body too
//! slowly (`[http] body_read_timeout`) is closed, so a client that opens connections and then
//! trickles bytes, or nothing, cannot hold them for ever. A slow request head on HTTP/1.1 is
//! hyper's `header_read_timeout`, set by the listener.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::server::graceful::GracefulConnection;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::Service as _;

use crate::{serve::socket::GRACE, spec::HttpSpec};

/// Whether a connection has a request in flight, and since when it has had none.
pub(super) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request; `u64::MAX` before any.
    last_end_ms: AtomicU64,
}

/// Held by a request from its head until its answer is sent or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis();
        self.0
            .last_end_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX - 1), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(u64::MAX),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once the connection has gone `first` from its opening without a request, or
    /// `idle` with no request in flight. Wakes at most once per `idle` while requests run.
    async fn quiet(&self, first: Duration, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(idle).await;
                continue;
            }
            let deadline = match self.last_end_ms.load(Ordering::Acquire) {
                u64::MAX => self.opened + first,
                ms => self.opened + Duration::from_millis(ms) + idle,
            };
            if Instant::now() >= deadline && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The router as one connection's service: counts its requests in flight and puts a deadline
/// on each request's body.
#[derive(Clone)]
pub(super) struct Tracked {
    pub(super) router: Router,
    pub(super) activity: Arc<Activity>,
    pub(super) body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let deadline = Instant::now() + self.body_timeout;
        let timeout = self.body_timeout;
        let request = request.map(|inner| {
            Body::new(DeadlineBody {
                inner,
                deadline,
                timeout,
                timer: None,
            })
        });
        let answer = self.router.clone().call(request);
        Box::pin(async move {
            let answer = answer.await?;
            Ok(answer.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// An answer's body, which keeps its request in flight until it is sent (a stream's, until
/// the stream ends).
pub(super) struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must arrive whole by a deadline. Hand-written because tower-http's
/// `TimeoutBody` restarts its timer on every frame, so a body trickled a byte at a time is
/// never cut. The timer is only set if the body is not already there when first read.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

/// A request body that did not arrive within `[http] body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} ([http] body_read_timeout)")]
pub struct BodyTimedOut(pub Duration);

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `conn` until it ends, or until it goes quiet (see [`Activity::quiet`]) or `stop`:
/// then it is asked to finish what is in flight and close, and dropped after [`GRACE`].
pub(super) async fn drive<C>(
    conn: C,
    activity: &Activity,
    http: &HttpSpec,
    stop: &CancellationToken,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => {
            if let Err(e) = ended {
                tracing::trace!("connection ended with error: {e}");
            }
            return;
        }
        () = stop.cancelled() => {}
        () = activity.quiet(http.header_read_timeout, http.idle_timeout) => {}
    }
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(GRACE, conn).await.is_err() {
        tracing::trace!("connection still busy after the grace period, dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    /// Whether `quiet` has resolved after `after` more of (paused) time.
    async fn quiet_after(activity: &Arc<Activity>, after: Duration) -> bool {
        tokio::time::timeout(after, activity.quiet(FIRST, IDLE))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_quiet_after_the_first_timeout() {
        let activity = Activity::new();
        assert!(!quiet_after(&activity, FIRST - Duration::from_millis(5)).await);
        assert!(quiet_after(&activity, Duration::from_millis(10)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_open_however_long() {
        let activity = Activity::new();
        let request = activity.begin();
        assert!(!quiet_after(&activity, IDLE * 5).await);
        drop(request);
        // Idle counts from the end of the request, not from the opening.
        assert!(!quiet_after(&activity, IDLE - Duration::from_millis(5)).await);
        assert!(quiet_after(&activity, Duration::from_millis(10)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_ends_later_moves_the_idle_deadline() {
        let activity = Activity::new();
        drop(activity.begin());
        tokio::time::advance(IDLE / 2).await;
        drop(activity.begin());
        assert!(!quiet_after(&activity, IDLE - Duration::from_millis(5)).await);
        assert!(quiet_after(&activity, Duration::from_millis(10)).await);
    }
}
