//! The calls of one legacy SSE session waiting for their answers. Answers do not come back on
//! the POST that sent a request but on the session's stream, so the task reading the stream
//! hands each response to the waiter with its JSON-RPC id, and counts what the server sent in
//! between (notifications, its own requests) against the oldest call still waiting, the one the
//! server is most likely working on. When the stream ends every waiter learns it at once, instead
//! of each one waiting for its timeout.

use std::{collections::BTreeMap, sync::Mutex};

use serde::{Deserialize, de::IgnoredAny};
use tokio::sync::oneshot;

use crate::{
    lock::lock,
    mcp::{self, Asides, ErrorClass, Incoming},
};

/// Calls of one session waiting at once; one user waits for one call at a time, so this only
/// bounds a caller gone wrong.
pub const MAX_WAITERS: usize = 1024;

/// What a waiter gets: the response's JSON text and what came before it, or why the stream
/// ended.
pub type Delivery = Result<(String, Asides), ErrorClass>;

/// The waiters of one session, shared by its client and the task reading its stream.
#[derive(Debug, Default)]
pub struct Waiters {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Why the stream ended; no waiter is taken after it.
    ended: Option<ErrorClass>,
    waiting: BTreeMap<u64, Waiter>,
}

#[derive(Debug)]
struct Waiter {
    answer: oneshot::Sender<Delivery>,
    asides: Asides,
}

/// The parts of a message that tell a response to us from anything else.
#[derive(Deserialize)]
struct Head {
    id: Option<serde_json::Value>,
    method: Option<IgnoredAny>,
}

impl Waiters {
    /// Waits for the response with id `id` (a waiter already there for it is replaced). Refused
    /// with the stream's end when it has ended, and with `protocol` past [`MAX_WAITERS`].
    pub fn wait_for(&self, id: u64) -> Result<oneshot::Receiver<Delivery>, ErrorClass> {
        let mut state = lock(&self.state);
        if let Some(ended) = state.ended {
            return Err(ended);
        }
        if state.waiting.len() >= MAX_WAITERS && !state.waiting.contains_key(&id) {
            return Err(ErrorClass::Protocol);
        }
        let (answer, delivery) = oneshot::channel();
        let asides = Asides::default();
        state.waiting.insert(id, Waiter { answer, asides });
        Ok(delivery)
    }

    /// Stops waiting for `id` (its call timed out or was never sent).
    pub fn forget(&self, id: u64) {
        lock(&self.state).waiting.remove(&id);
    }

    /// Why the stream ended, once it has.
    pub fn ended(&self) -> Option<ErrorClass> {
        lock(&self.state).ended
    }

    /// Routes one message from the stream: a response goes to its waiter; anything else is
    /// counted against the oldest waiter. Gives the reply to POST back when the message is a
    /// request of the server's.
    pub fn route(&self, text: String) -> Option<String> {
        let head: Option<Head> = serde_json::from_str(&text).ok();
        let response_to = head
            .filter(|h| h.method.is_none())
            .and_then(|h| h.id)
            .and_then(|id| id.as_u64());
        let mut state = lock(&self.state);
        if let Some(waiter) = response_to.and_then(|id| state.waiting.remove(&id)) {
            // The waiter may have given up meanwhile; then nobody needs the answer.
            let _ = waiter.answer.send(Ok((text, waiter.asides)));
            return None;
        }
        let mut unclaimed = Asides::default();
        let (oldest, asides) = match state.waiting.iter_mut().next() {
            Some((id, waiter)) => (*id, &mut waiter.asides),
            None => (u64::MAX, &mut unclaimed),
        };
        match mcp::sort_message(&text, oldest, asides) {
            Incoming::Reply(reply) => Some(reply),
            Incoming::Answer(_) | Incoming::Skip => None,
        }
    }

    /// The stream ended (or broke) with `class`: every waiter gets it, and so does every later
    /// [`Waiters::wait_for`].
    pub fn end(&self, class: ErrorClass) {
        let mut state = lock(&self.state);
        state.ended.get_or_insert(class);
        for (_, waiter) in std::mem::take(&mut state.waiting) {
            let _ = waiter.answer.send(Err(class));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::mcp::Aside;

    #[tokio::test]
    async fn responses_reach_their_waiter_and_asides_the_oldest() {
        let waiters = Waiters::default();
        let mut first = waiters.wait_for(1).unwrap();
        let second = waiters.wait_for(2).unwrap();
        let log = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
        assert_eq!(waiters.route(log.to_string()), None);
        let roots = r#"{"jsonrpc":"2.0","id":0,"method":"roots/list"}"#;
        let reply = waiters
            .route(roots.to_string())
            .expect("a reply to roots/list");
        assert!(reply.contains(r#""roots":[]"#), "{reply}");
        let answer = r#"{"jsonrpc":"2.0","id":2,"result":{}}"#;
        assert_eq!(waiters.route(answer.to_string()), None);
        let (text, asides) = second.await.unwrap().unwrap();
        assert_eq!(text, answer);
        assert_eq!(asides, Asides::default(), "the oldest waiter counts them");
        assert!(first.try_recv().is_err(), "still waiting");
        let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        waiters.route(answer.to_string());
        let (_, asides) = first.await.unwrap().unwrap();
        assert_eq!((asides.get(Aside::Log), asides.get(Aside::Roots)), (1, 1));
        let third = waiters.wait_for(3).unwrap();
        waiters.end(ErrorClass::Connect);
        assert_eq!(third.await.unwrap(), Err(ErrorClass::Connect));
        assert_eq!(waiters.wait_for(4).unwrap_err(), ErrorClass::Connect);
        assert_eq!(waiters.ended(), Some(ErrorClass::Connect));
    }

    #[tokio::test]
    async fn forgotten_and_unknown_ids_are_dropped_and_waiters_are_bounded() {
        let waiters = Waiters::default();
        let late = waiters.wait_for(5).unwrap();
        waiters.forget(5);
        let answer = r#"{"jsonrpc":"2.0","id":5,"result":{}}"#;
        assert_eq!(waiters.route(answer.to_string()), None);
        assert!(late.await.is_err(), "nobody answers a forgotten call");
        assert_eq!(waiters.route("not json".to_string()), None);
        let held: Vec<_> = (0..MAX_WAITERS as u64)
            .map(|id| waiters.wait_for(id).unwrap())
            .collect();
        assert_eq!(
            waiters.wait_for(u64::MAX).unwrap_err(),
            ErrorClass::Protocol
        );
        assert!(
            waiters.wait_for(0).is_ok(),
            "a known id replaces its waiter"
        );
        drop(held);
    }
}
