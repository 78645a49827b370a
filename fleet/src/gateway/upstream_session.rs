//! Sessions the gateway holds on a member that speaks only the session eras, so that every
//! call for it (stateless, or made in one of the gateway's own sessions) can still reach it.
//!
//! A session carries one request at a time: clients' JSON-RPC ids then never meet inside it
//! (they need no rewriting), and a progress notification for a client's token reaches that
//! client only. Idle sessions are reused, the most recent first; at most [`MAX_IN_USE`] are
//! in use on one member at once, so a burst cannot open sessions without bound. A session the
//! server no longer knows (404: it expired, or the instance restarted) is replaced and the
//! request sent again once: the server did not run it.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    backend::Backend,
    restate, session_answer,
    upstream::{self, Upstream, UpstreamError},
};
use crate::wire::{self, Version};

/// Most requests in flight over sessions on one member; more wait for one to finish.
pub(super) const MAX_IN_USE: usize = 64;
/// The JSON-RPC id of the gateway's own `initialize`.
const INIT_ID: u64 = 0;

/// The sessions held on one member.
#[derive(Debug)]
pub(super) struct MemberSessions {
    idle: Mutex<Vec<Held>>,
    in_use: Arc<Semaphore>,
    opened: AtomicU64,
}

/// One session on the member: its id and the version it negotiated.
#[derive(Debug)]
struct Held {
    id: HeaderValue,
    version: HeaderValue,
}

/// A session in use; back among the idle ones when dropped, unless the server dropped it.
struct Lease {
    sessions: Arc<MemberSessions>,
    held: Option<Held>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            self.sessions.lock().push(held);
        }
    }
}

impl Default for MemberSessions {
    fn default() -> Self {
        Self {
            idle: Mutex::default(),
            in_use: Arc::new(Semaphore::new(MAX_IN_USE)),
            opened: AtomicU64::new(0),
        }
    }
}

impl MemberSessions {
    /// Sessions open on the member (idle or in use) and sessions opened in all.
    pub(super) fn counts(&self) -> (usize, u64) {
        let in_use = MAX_IN_USE - self.in_use.available_permits();
        (
            self.lock().len() + in_use,
            self.opened.load(Ordering::Relaxed),
        )
    }

    /// Sends the stateless request `body` (with its `headers`) to `backend` in one of the
    /// member's sessions, restated for it ([`restate::session_body`]).
    pub(super) async fn send(
        self: &Arc<Self>,
        upstream: &Upstream,
        backend: &Backend,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let permit = tokio::time::timeout(upstream.timeout(), self.in_use.clone().acquire_owned())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|_| UpstreamError::Connect)?;
        // A body that is not an object goes as it is: the server answers it as it would.
        let (body, progress) = restate::session_body(body).unwrap_or_else(|| (body.clone(), false));
        let mut lease = Lease {
            sessions: self.clone(),
            held: None,
            _permit: permit,
        };
        let request = (&body, progress);
        let idle = self.lock().pop();
        if let Some(held) = idle {
            let response = attempt(upstream, backend, headers, request, held, &mut lease).await?;
            // 404: the server no longer knows the session (the spec's answer; rmcp's, the
            // SDKs'): it expired, or the instance restarted. The request did not run.
            if response.status() != StatusCode::NOT_FOUND {
                return answer(upstream, response, lease, progress).await;
            }
            lease.held = None;
        }
        let held = self.open(upstream, backend).await?;
        let response = attempt(upstream, backend, headers, request, held, &mut lease).await?;
        if response.status() == StatusCode::NOT_FOUND {
            // Refused by a session just opened: the server's answer to pass on.
            lease.held = None;
        }
        answer(upstream, response, lease, progress).await
    }

    /// Opens a session on `backend`: `initialize` in the newest session version (the server
    /// may choose an older one), then `notifications/initialized`.
    async fn open(&self, upstream: &Upstream, backend: &Backend) -> Result<Held, UpstreamError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(wire::ACCEPT_JSON_OR_SSE),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let init = wire::initialize_request(INIT_ID, Version::V2025_11_25).to_string();
        let response = upstream
            .send_whole(backend, "/mcp", Method::POST, &headers, Bytes::from(init))
            .await?;
        let id = response.headers().get(wire::SESSION_HEADER).cloned();
        let ok = response.status().is_success();
        let text = upstream.read(response.into_body()).await?;
        let version =
            wire::message_with_id(&String::from_utf8_lossy(&text), INIT_ID).and_then(|m| {
                let v = m.pointer("/result/protocolVersion")?.as_str()?;
                HeaderValue::from_str(v).ok()
            });
        let (true, Some(id), Some(version)) = (ok, id, version) else {
            return Err(UpstreamError::Broken);
        };
        headers.insert(wire::SESSION_HEADER, id.clone());
        headers.insert(wire::PROTOCOL_VERSION_HEADER, version.clone());
        let done = upstream
            .send_whole(
                backend,
                "/mcp",
                Method::POST,
                &headers,
                Bytes::from_static(wire::INITIALIZED_NOTIFICATION.as_bytes()),
            )
            .await?;
        if !done.status().is_success() {
            return Err(UpstreamError::Broken);
        }
        upstream.read(done.into_body()).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Held { id, version })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends the restated request (`body`, and whether it asked for progress) in the session
/// `held`, which the lease keeps from then on. Its answer streams only when progress was
/// asked for; else it is read whole ([`answer`]).
async fn attempt(
    upstream: &Upstream,
    backend: &Backend,
    headers: &HeaderMap,
    (body, progress): (&Bytes, bool),
    held: Held,
    lease: &mut Lease,
) -> Result<Response<Body>, UpstreamError> {
    let headers = restate::session_headers(headers, &held.id, &held.version);
    lease.held = Some(held);
    let body = body.clone();
    if progress {
        upstream
            .send(backend, "/mcp", Method::POST, &headers, body)
            .await
    } else {
        upstream
            .send_whole(backend, "/mcp", Method::POST, &headers, body)
            .await
    }
}

/// The answer to pass on. An event stream answering a request that asked for no progress
/// (read whole by [`attempt`]) is passed on as its one JSON answer: nothing else on it can be meant for the
/// client (the session is the gateway's, so a request the server made on it could not reach
/// the client), and one JSON body costs the gateway far less to pass on than a stream (49 % of
/// direct sessions' throughput when streamed, `benches/README.md`).
async fn answer(
    upstream: &Upstream,
    response: Response<Body>,
    lease: Lease,
    progress: bool,
) -> Result<Response<Body>, UpstreamError> {
    if progress || upstream::is_json(response.headers()) || !response.status().is_success() {
        return Ok(with_lease(response, lease));
    }
    let (mut parts, body) = response.into_parts();
    let stream = upstream.read(body).await?;
    drop(lease);
    let stream = String::from_utf8_lossy(&stream);
    let Some(message) = wire::message_texts(&stream)
        .filter(|m| session_answer::is_answer(m))
        .last()
    else {
        return Err(UpstreamError::Broken);
    };
    let message = session_answer::message(message.as_bytes())
        .unwrap_or_else(|| Bytes::copy_from_slice(message.as_bytes()));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Response::from_parts(parts, Body::from(message)))
}

/// `response` restated for stateless clients ([`session_answer`]), its session in use until
/// the answer is over: at once for a JSON answer (read whole already), at the end of the
/// stream for an event stream.
fn with_lease(response: Response<Body>, lease: Lease) -> Response<Body> {
    let json = upstream::is_json(response.headers());
    if json {
        drop(lease);
        return response.map(|b| session_answer::restate(b, true));
    }
    response.map(|b| {
        let restated = session_answer::restate(b, false);
        Body::from_stream(restated.into_data_stream().map(move |chunk| {
            let _busy = &lease;
            chunk
        }))
    })
}
