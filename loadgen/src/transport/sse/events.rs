//! Reading a legacy SSE stream: the events of a long-lived `GET` response as they arrive
//! (parsed incrementally by `sse-stream`, the parser rmcp uses), with the connection's I/O
//! polled alongside, since the body only moves while it runs. A peer decides how much it sends,
//! so no event may grow past [`MAX_EVENT`] bytes; and where the `endpoint` event points is
//! checked here, because a server must not send our requests (and their headers, tokens
//! included) to another origin.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use http_body_util::{BodyDataStream, BodyExt as _};
use reqwest::Url;
use sse_stream::{Error as SseError, Sse, SseStream};

use crate::mcp::ErrorClass;

/// Most bytes read without an event completing (so the largest event, and what the parser
/// buffers); the same bound as a response body of the other HTTP transport.
pub const MAX_EVENT: usize = crate::transport::conn::MAX_BODY;

/// The connection I/O future of a streamed response.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why the body stopped giving bytes.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("more than {MAX_EVENT} bytes without a complete event")]
    TooLarge,
    #[error("reading the stream: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

type Bytestream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// The events of one streamed response.
pub struct EventStream {
    events: SseStream<sse_stream::ByteStreamBody<Bytestream, Bytes>>,
    /// Bytes read since the last complete event.
    unfinished: Arc<AtomicUsize>,
    driver: Option<Driver>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("unfinished", &self.unfinished.load(Ordering::Relaxed))
            .field("driving", &self.driver.is_some())
            .finish()
    }
}

impl EventStream {
    /// The events of `body`, whose bytes arrive while `driver` is polled.
    pub fn new<B>(body: B, driver: Driver) -> Self
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let unfinished = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&unfinished);
        let bytes: Bytestream = Box::pin(BodyDataStream::new(body.map_err(Into::into)).map(
            move |chunk| {
                let chunk = chunk.map_err(BodyError::Read)?;
                let read = counted.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
                if read > MAX_EVENT {
                    return Err(BodyError::TooLarge);
                }
                Ok(chunk)
            },
        ));
        Self {
            events: SseStream::from_bytes_stream(bytes),
            unfinished,
            driver: Some(driver),
        }
    }

    /// The next event; `Ok(None)` when the stream ended, an error class when it broke
    /// (`connect`) or the peer sent something that is not an event stream (`protocol`).
    pub async fn next(&mut self) -> Result<Option<Sse>, ErrorClass> {
        let event = match &mut self.driver {
            Some(driver) => tokio::select! {
                biased;
                event = self.events.next() => event,
                () = driver => {
                    // The connection is over: what it delivered before is still readable.
                    self.driver = None;
                    self.events.next().await
                }
            },
            None => self.events.next().await,
        };
        match event {
            Some(Ok(event)) => {
                self.unfinished.store(0, Ordering::Relaxed);
                Ok(Some(event))
            }
            None => Ok(None),
            Some(Err(SseError::Body(e)))
                if e.downcast_ref::<BodyError>()
                    .is_some_and(|e| matches!(e, BodyError::TooLarge)) =>
            {
                Err(ErrorClass::Protocol)
            }
            Some(Err(SseError::Body(_))) => Err(ErrorClass::Connect),
            Some(Err(_)) => Err(ErrorClass::Protocol),
        }
    }

    /// Reads events until `event: endpoint` and gives the URL it announces, resolved against
    /// `stream_url` (the `GET`'s). Other events before it are skipped; a stream that ends first
    /// is `connect`, an endpoint on another origin (or no URL at all) `protocol`.
    pub async fn endpoint(&mut self, stream_url: &Url) -> Result<Url, ErrorClass> {
        loop {
            let Some(event) = self.next().await? else {
                return Err(ErrorClass::Connect);
            };
            if event.event.as_deref() == Some("endpoint") {
                return resolve_endpoint(stream_url, event.data.as_deref().unwrap_or(""));
            }
        }
    }
}

/// Whether an event carries a JSON-RPC message (`event: message`, or no event name, which SSE
/// reads as `message`).
pub fn is_message(event: &Sse) -> bool {
    matches!(event.event.as_deref(), None | Some("message"))
}

/// The URL an `endpoint` event announces, resolved against the stream's URL; refused
/// (`protocol`) unless it is on the stream's own origin.
pub fn resolve_endpoint(stream_url: &Url, data: &str) -> Result<Url, ErrorClass> {
    let endpoint = stream_url
        .join(data.trim())
        .map_err(|_| ErrorClass::Protocol)?;
    if endpoint.origin() != stream_url.origin() {
        return Err(ErrorClass::Protocol);
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use http_body_util::StreamBody;

    use super::*;

    fn stream_of(chunks: Vec<Vec<u8>>) -> EventStream {
        let frames = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(c)))),
        );
        EventStream::new(StreamBody::new(frames), Box::pin(std::future::pending()))
    }

    #[test]
    fn endpoints_resolve_against_the_stream_and_stay_on_its_origin() {
        let base: Url = "http://127.0.0.1:8000/sse".parse().unwrap();
        let got = resolve_endpoint(&base, "/messages/?session_id=ab\n").unwrap();
        assert_eq!(
            got.as_str(),
            "http://127.0.0.1:8000/messages/?session_id=ab"
        );
        let got = resolve_endpoint(&base, "message?sessionId=1").unwrap();
        assert_eq!(got.as_str(), "http://127.0.0.1:8000/message?sessionId=1");
        let same = resolve_endpoint(&base, "http://127.0.0.1:8000/m?s=1").unwrap();
        assert_eq!(same.path(), "/m");
        for elsewhere in [
            "http://127.0.0.1:8001/m",
            "http://evil.example/m",
            "https://127.0.0.1:8000/m",
            "//other:8000/m",
        ] {
            assert_eq!(
                resolve_endpoint(&base, elsewhere),
                Err(ErrorClass::Protocol),
                "{elsewhere}"
            );
        }
    }

    #[tokio::test]
    async fn events_are_read_across_chunks_and_the_stream_end_is_seen() {
        let base: Url = "http://127.0.0.1:8000/sse".parse().unwrap();
        let mut events = stream_of(vec![
            b": ping\r\n\r\nevent: endpoint\r\ndata: /messages/?session_id=".to_vec(),
            b"x1\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":".to_vec(),
            b"\"2.0\",\"id\":1,\"result\":{}}\r\n\r\ndata: {}\n\n".to_vec(),
        ]);
        let endpoint = events.endpoint(&base).await.unwrap();
        assert_eq!(endpoint.query(), Some("session_id=x1"));
        let message = events.next().await.unwrap().unwrap();
        assert!(is_message(&message));
        assert_eq!(
            message.data.as_deref(),
            Some(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
        );
        assert!(is_message(&events.next().await.unwrap().unwrap()));
        assert_eq!(events.next().await, Ok(None));
    }

    #[tokio::test]
    async fn an_endless_event_is_refused_and_an_early_end_is_connect() {
        let chunk = vec![b'x'; 1024 * 1024];
        let mut chunks = vec![b"data: ".to_vec()];
        chunks.extend(std::iter::repeat_n(chunk, 17));
        let mut events = stream_of(chunks);
        assert_eq!(events.next().await, Err(ErrorClass::Protocol));

        let base: Url = "http://127.0.0.1:8000/sse".parse().unwrap();
        let mut events = stream_of(vec![b"event: message\ndata: {}\n\n".to_vec()]);
        assert_eq!(events.endpoint(&base).await, Err(ErrorClass::Connect));
    }
}
