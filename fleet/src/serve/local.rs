//! A task-mode server as the rest of its process reaches it without a socket: the gateway
//! calls the server's HTTP service in-process, so routing through it costs the gateway's own
//! work and not a second loopback HTTP exchange (which on two cores costs about what a trivial
//! tool call does; `benches/README.md`, "Gateway overhead").
//!
//! The in-process path behaves as the socket does where it matters: a server that is stopping
//! refuses new calls (as its closed listener would), a graceful stop lets calls in flight
//! finish (bounded by [`GRACE`]), and a killed server's calls in flight fail at once, streams
//! included, as its dropped connections would.

use std::{
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use axum::{Router, body::Body};
use http::{Request, Response};
use hyper::body::Frame;
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::{TaskTracker, task_tracker::TaskTrackerToken},
};
use tower::ServiceExt as _;

use crate::serve::socket::GRACE;

/// Why an in-process call did not produce an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The instance is stopping or gone: the call never reached the server.
    #[error("the server is not taking calls")]
    Refused,
    /// The instance was killed while the call was in flight.
    #[error("the server ended during the call")]
    Ended,
}

/// The running instance's service, if the server runs in this process: what a registry entry
/// holds for in-process callers. Empty in process mode and between instances.
#[derive(Debug, Default)]
pub struct Slot(RwLock<Option<Arc<Service>>>);

impl Slot {
    /// The current instance's service, while it takes calls.
    pub fn get(&self) -> Option<Arc<Service>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|s| s.taking_calls())
    }

    fn set(&self, service: Arc<Service>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(service);
    }

    /// Empties the slot if it still holds `service` (a newer instance may have taken it).
    fn clear(&self, service: &Arc<Service>) {
        let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
        if held.as_ref().is_some_and(|s| Arc::ptr_eq(s, service)) {
            *held = None;
        }
    }
}

/// One task-mode instance's HTTP service, callable in-process.
#[derive(Debug)]
pub struct Service {
    router: Router,
    /// The instance's stop order: from then on no new calls.
    stop: CancellationToken,
    /// Cancelled when the instance has ended (stopped, or killed): calls and streams still
    /// open fail.
    gone: CancellationToken,
    /// Calls and streams in flight, which a graceful stop waits for.
    calls: TaskTracker,
}

impl Service {
    fn taking_calls(&self) -> bool {
        !self.stop.is_cancelled() && !self.gone.is_cancelled()
    }

    /// Calls the server with `request` as if it had come in on its socket. The answer's body
    /// ends with an error if the instance ends before it is read.
    pub async fn call(&self, request: Request<Body>) -> Result<Response<Body>, CallError> {
        if !self.taking_calls() {
            return Err(CallError::Refused);
        }
        let token = self.calls.token();
        // One wait for the end serves the call and then its body.
        let mut gone = Box::pin(self.gone.clone().cancelled_owned());
        let answer = tokio::select! {
            biased;
            () = gone.as_mut() => return Err(CallError::Ended),
            answer = self.router.clone().oneshot(request) => answer,
        };
        let Ok(answer) = answer;
        Ok(answer.map(|inner| {
            Body::new(UntilGone {
                inner,
                gone,
                _call: token,
            })
        }))
    }
}

/// Puts an instance's service in `slot` for as long as the guard lives. Dropping the guard
/// (the instance's task ending, or aborted) cancels what is still in flight and empties the
/// slot; [`Resident::finish`] first lets calls in flight end, within [`GRACE`].
#[derive(Debug)]
pub struct Resident {
    slot: Arc<Slot>,
    service: Arc<Service>,
}

impl Resident {
    /// Makes `router` callable through `slot` until the guard is dropped; `stop` is the
    /// instance's stop order.
    pub fn enter(slot: Arc<Slot>, router: Router, stop: CancellationToken) -> Self {
        let service = Arc::new(Service {
            router,
            stop,
            gone: CancellationToken::new(),
            calls: TaskTracker::new(),
        });
        slot.set(service.clone());
        Self { slot, service }
    }

    /// After a graceful stop: waits up to [`GRACE`] for in-process calls and streams to end.
    pub async fn finish(self) {
        self.slot.clear(&self.service);
        self.service.calls.close();
        let _ = tokio::time::timeout(GRACE, self.service.calls.wait()).await;
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.slot.clear(&self.service);
        self.service.gone.cancel();
    }
}

/// An answer's body that fails once its instance has ended, as a body read from a dropped
/// connection would; it counts as a call in flight until dropped.
struct UntilGone {
    inner: Body,
    gone: Pin<Box<WaitForCancellationFutureOwned>>,
    _call: TaskTrackerToken,
}

impl hyper::body::Body for UntilGone {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.gone.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(CallError::Ended))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use axum::routing::get;
    use futures::StreamExt as _;
    use http_body_util::BodyExt as _;

    use super::*;

    fn request() -> Request<Body> {
        Request::get("/").body(Body::empty()).unwrap()
    }

    /// A router whose `/` answers "hi" and whose `/slow` answers after `delay`, and whose
    /// `/stream` sends one chunk and then nothing.
    fn router() -> Router {
        Router::new()
            .route("/", get(|| async { "hi" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "late"
                }),
            )
            .route(
                "/stream",
                get(|| async {
                    let chunks = futures::stream::once(async {
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"first"))
                    })
                    .chain(futures::stream::pending());
                    Body::from_stream(chunks)
                }),
            )
    }

    #[tokio::test]
    async fn calls_reach_the_router_while_the_instance_lives() {
        let slot = Arc::new(Slot::default());
        assert!(slot.get().is_none());
        let resident = Resident::enter(slot.clone(), router(), CancellationToken::new());
        let answer = slot.get().unwrap().call(request()).await.unwrap();
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hi");
        drop(resident);
        assert!(slot.get().is_none(), "a dropped instance leaves the slot");
    }

    #[tokio::test]
    async fn a_stopping_instance_refuses_new_calls_and_finishes_those_in_flight() {
        let slot = Arc::new(Slot::default());
        let stop = CancellationToken::new();
        let resident = Resident::enter(slot.clone(), router(), stop.clone());
        let service = slot.get().unwrap();
        let slow = Request::get("/slow").body(Body::empty()).unwrap();
        let in_flight = tokio::spawn({
            let service = service.clone();
            async move {
                let answer = service.call(slow).await?;
                Ok::<_, CallError>(answer.into_body().collect().await.unwrap().to_bytes())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.cancel();
        assert_eq!(
            service.call(request()).await.unwrap_err(),
            CallError::Refused
        );
        assert!(slot.get().is_none());
        resident.finish().await;
        assert_eq!(in_flight.await.unwrap().unwrap(), "late");
    }

    #[tokio::test]
    async fn a_killed_instance_fails_calls_and_streams_in_flight() {
        let slot = Arc::new(Slot::default());
        let resident = Resident::enter(slot.clone(), router(), CancellationToken::new());
        let service = slot.get().unwrap();
        let slow = tokio::spawn({
            let service = service.clone();
            async move {
                service
                    .call(Request::get("/slow").body(Body::empty()).unwrap())
                    .await
            }
        });
        let stream = service
            .call(Request::get("/stream").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let mut body = stream.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "first");
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(resident);
        assert_eq!(slow.await.unwrap().unwrap_err(), CallError::Ended);
        assert!(body.frame().await.unwrap().is_err(), "the stream fails");
        assert_eq!(
            service.call(request()).await.unwrap_err(),
            CallError::Refused
        );
    }

    #[tokio::test]
    async fn a_newer_instance_keeps_the_slot_when_an_older_one_ends() {
        let slot = Arc::new(Slot::default());
        let old = Resident::enter(slot.clone(), router(), CancellationToken::new());
        let _new = Resident::enter(slot.clone(), router(), CancellationToken::new());
        drop(old);
        assert!(slot.get().is_some());
    }
}
