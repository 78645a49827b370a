//! Reading an MCP answer as it arrives: a JSON body is one message; an SSE body is read event
//! by event, each message sorted ([`mcp::sort_message`]): the answer with our id is judged and
//! timed, notifications are counted, and a server-to-client request is answered on the side
//! channel at once, since the server holds the stream (and our answer) until it has its reply.

use std::time::Instant;

use futures::StreamExt as _;
use http::{header::CONTENT_TYPE, response::Parts};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use sse_stream::SseStream;

use http::{HeaderMap, Method};

use crate::{
    mcp::{self, Asides, ErrorClass, Incoming as Message},
    transport::conn::{Conn, MAX_BODY, ReadBody, WholeBody},
};

/// Where replies to a server's requests go: the server's URL on a second connection, with the
/// session's headers.
#[derive(Debug)]
pub struct SideChannel {
    pub conn: Option<Conn>,
    pub headers: HeaderMap,
}

impl SideChannel {
    /// POSTs `reply`; a failure is the server's to notice (its request stays unanswered).
    pub async fn send(&mut self, reply: String) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn
                .exchange(Method::POST, self.headers.clone(), reply.into())
                .await;
        }
    }
}

/// Whether a response's body is an SSE stream (`Content-Type: text/event-stream`).
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Why a streamed body ended early (too large, or the connection broke); the SSE parser wants
/// a concrete error type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BodyError(String);

/// Reads the answer to the request with id `id`.
pub struct StreamReader {
    id: u64,
    side: SideChannel,
}

/// What the body held.
#[derive(Debug)]
pub struct StreamRead {
    /// The answer's verdict; `protocol` when no message had our id.
    pub verdict: Result<(), ErrorClass>,
    /// Notifications and server requests before (or after) the answer.
    pub asides: Asides,
    /// When the answer arrived, if it did.
    pub answered_at: Option<Instant>,
}

impl StreamReader {
    pub fn new(id: u64, side: SideChannel) -> Self {
        Self { id, side }
    }

    /// Gives back the side channel, for the next call.
    pub fn into_side(self) -> SideChannel {
        self.side
    }
}

impl ReadBody for StreamReader {
    type Output = StreamRead;

    async fn read(&mut self, head: &Parts, body: Incoming) -> Result<StreamRead, ErrorClass> {
        let mut read = StreamRead {
            verdict: Err(ErrorClass::Protocol),
            asides: Asides::default(),
            answered_at: None,
        };
        if !is_event_stream(&head.headers) {
            let bytes = WholeBody.read(head, body).await?;
            read.answered_at = Some(Instant::now());
            if let Ok(text) = std::str::from_utf8(&bytes) {
                read.verdict =
                    mcp::classify_response(head.status.as_u16(), text, self.id, &mut read.asides);
            }
            return Ok(read);
        }
        // Boxed: an event stream's reader (with the reply exchanges it may send) is large, and
        // inline it would make every call's future, JSON answers' too, its size.
        Box::pin(self.read_events(read, body)).await
    }
}

impl StreamReader {
    /// Reads an SSE body event by event, answering server requests on the side channel.
    async fn read_events(
        &mut self,
        mut read: StreamRead,
        body: Incoming,
    ) -> Result<StreamRead, ErrorClass> {
        let limited = Limited::new(body, MAX_BODY).map_err(|e| BodyError(e.to_string()));
        let mut events = SseStream::new(limited);
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                // A stream that broke after the answer still answered.
                return match read.answered_at {
                    Some(_) => Ok(read),
                    None => Err(ErrorClass::Connect),
                };
            };
            let Some(data) = event.data.as_deref() else {
                continue;
            };
            match mcp::sort_message(data, self.id, &mut read.asides) {
                Message::Answer(verdict) if read.answered_at.is_none() => {
                    read.verdict = verdict;
                    read.answered_at = Some(Instant::now());
                }
                Message::Reply(reply) => self.side.send(reply).await,
                Message::Answer(_) | Message::Skip => {}
            }
        }
        Ok(read)
    }
}
