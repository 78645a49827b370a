//! Timing one MCP request for its server's latency histogram and error count: from its arrival
//! (injected faults included: that is what a client sees) to its answer. A JSON answer is timed
//! when it is handed back; an event stream (a session-era request's answer) when its last event
//! has been written. An answer with HTTP status 400 or above is an error, and so is a request
//! or a stream dropped before its end (the client gave up, or its connection closed while the
//! server was paused), at the time it took.

use std::{
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::header,
    response::Response,
};

use super::registry::Counters;

/// One request being timed; recorded once, when answered or dropped.
pub(super) struct Timed {
    counters: Arc<Counters>,
    started: Instant,
    done: bool,
}

impl Timed {
    pub(super) fn start(counters: &Arc<Counters>) -> Self {
        Self {
            counters: counters.clone(),
            started: Instant::now(),
            done: false,
        }
    }

    /// The response, timed: now, or, for an event stream, at its end.
    pub(super) fn answered(self, response: Response) -> Response {
        let error = response.status().as_u16() >= 400;
        let stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if stream && !error {
            let (parts, body) = response.into_parts();
            let body = TimedBody {
                inner: body,
                timed: Some(self),
            };
            return Response::from_parts(parts, Body::new(body));
        }
        self.finish(error);
        response
    }

    fn finish(mut self, error: bool) {
        self.done = true;
        self.record(error);
    }

    fn record(&self, error: bool) {
        self.counters.latency.record(self.started.elapsed());
        if error {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        if !self.done {
            self.record(true);
        }
    }
}

/// An event stream whose end (or failure, or being dropped first) finishes its request's timing.
struct TimedBody {
    inner: Body,
    timed: Option<Timed>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(t) = this.timed.take() {
                    t.finish(false);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(t) = this.timed.take() {
                    t.finish(true);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn answer(content_type: &str, status: u16) -> Response {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from("data: {}\n\n"))
            .unwrap()
    }

    #[tokio::test]
    async fn json_at_once_streams_at_their_end_and_drops_as_errors() {
        let counters = Arc::new(Counters::default());
        let count = || counters.latency.snapshot().count;
        let errors = || counters.errors.load(Ordering::Relaxed);
        Timed::start(&counters).answered(answer("application/json", 200));
        assert_eq!((count(), errors()), (1, 0));
        Timed::start(&counters).answered(answer("application/json", 503));
        assert_eq!((count(), errors()), (2, 1));
        let stream = Timed::start(&counters).answered(answer("text/event-stream", 200));
        assert_eq!(count(), 2, "not before the stream ends");
        let _ = stream.into_body().collect().await.unwrap();
        assert_eq!((count(), errors()), (3, 1));
        drop(Timed::start(&counters).answered(answer("text/event-stream", 200)));
        assert_eq!(
            (count(), errors()),
            (4, 2),
            "a stream dropped before its end"
        );
        drop(Timed::start(&counters));
        assert_eq!(
            (count(), errors()),
            (5, 3),
            "a request dropped before its answer"
        );
    }
}
