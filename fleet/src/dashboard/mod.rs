//! The live dashboard the admin API serves at `/`: one self-contained page (no network but
//! its own origin) that draws every server as a cell coloured by state, each group's traffic
//! over the last minutes, the gateway's pools and the memory, from a server-sent event stream
//! at `/events` that carries one [`frame::Frame`] a second.
//!
//! One [`sampler`] task makes each frame once and serialises it once for every viewer; a
//! viewer costs a subscription and the bytes written to it. Viewers are bounded
//! ([`MAX_VIEWERS`]); the stream ends when the fleet stops. Who may act from the page (the
//! buttons post to the admin API) is decided by the admin API's own check.

pub mod frame;
mod sampler;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Instant, SystemTime},
};

use axum::{
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::stream::{self, Stream, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

pub use sampler::Sources;
use sampler::{Sampler, TICK};

/// Event streams open at once; more are refused with 503 (each holds a connection and a task).
/// A quarter of the admin API's connections, so viewers can never crowd out `fleet status`,
/// `fleet down` or a Prometheus scrape.
pub const MAX_VIEWERS: usize = 16;
/// How long one event stream lasts; the page's `EventSource` reconnects at once (`retry`), so
/// a viewer whose peer vanished without a word holds its place at most this long.
const STREAM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The page, with its script and styles inline: it works offline and loads in one request.
const PAGE: &str = include_str!("page.html");

/// What the page may do: scripts and styles of its own, requests to its own origin, nothing
/// else (no fonts, images or scripts from anywhere).
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

struct Shared {
    /// The newest frame as JSON, once one was made while someone watched.
    frames: watch::Sender<Option<Arc<str>>>,
    sampler: Mutex<Sampler>,
    viewers: Arc<Semaphore>,
    closing: CancellationToken,
}

/// The dashboard of one fleet; cheap to clone.
#[derive(Clone)]
pub struct Dashboard {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Dashboard {
    /// Starts sampling `sources` once a second until `stop`; the group series fill from
    /// then on, viewers or not (a sample of 500 servers costs well under a millisecond).
    pub fn start(
        sources: Sources,
        tracker: &tokio_util::task::TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            frames: watch::channel(None).0,
            sampler: Mutex::new(Sampler::new(sources)),
            viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
            closing: stop.clone(),
        });
        let task = shared.clone();
        tracker.spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => {}
                }
                task.sample();
            }
        });
        Self { shared }
    }

    /// Makes a frame now (tests; the task makes one a second).
    #[cfg(test)]
    fn sample(&self) {
        self.shared.sample();
    }

    /// `GET /`: the page.
    pub fn page(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            PAGE,
        )
            .into_response()
    }

    /// `GET /events`: a `history` event (each group's recent points), the newest frame, then
    /// one frame per second until the viewer leaves or the fleet stops.
    pub fn events(&self) -> Response {
        let Ok(permit) = self.shared.viewers.clone().try_acquire_owned() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_VIEWERS} dashboard viewers are connected already; close one\n"),
            )
                .into_response();
        };
        let history = {
            let sampler = self
                .shared
                .sampler
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            serde_json::to_string(&sampler.history()).unwrap_or_default()
        };
        let mut frames = self.shared.frames.subscribe();
        let newest = frames.borrow_and_update().clone();
        let first = stream::iter(
            std::iter::once(
                Event::default()
                    .event("history")
                    .retry(std::time::Duration::from_secs(1))
                    .data(history),
            )
            .chain(newest.map(|f| Event::default().data(&*f)))
            .map(Ok::<_, Infallible>),
        );
        let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
        let rest = live_frames(frames, self.shared.closing.clone(), ends, permit);
        Sse::new(first.chain(rest))
            .keep_alive(KeepAlive::default())
            .into_response()
    }
}

impl Shared {
    /// Makes the next frame; serialises it only when someone watches.
    fn sample(&self) {
        let frame = {
            let mut sampler = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
            sampler.tick(Instant::now(), epoch_ms())
        };
        if self.frames.receiver_count() == 0 {
            // Nobody watches: forget the last frame, so the next viewer is not shown a stale one.
            self.frames.send_replace(None);
            return;
        }
        match serde_json::to_string(&frame) {
            Ok(json) => {
                self.frames.send_replace(Some(json.into()));
            }
            Err(e) => tracing::warn!("dashboard frame not sent: {e}"),
        }
    }
}

/// Each new frame as an event, until `closing` (the fleet stops: a graceful stop is not held
/// by open pages) or `ends`; the permit is held as long as the stream.
fn live_frames(
    frames: watch::Receiver<Option<Arc<str>>>,
    closing: CancellationToken,
    ends: tokio::time::Instant,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (frames, closing, permit),
        move |(mut frames, closing, permit)| async move {
            loop {
                tokio::select! {
                    () = closing.cancelled() => return None,
                    () = tokio::time::sleep_until(ends) => return None,
                    changed = frames.changed() => changed.ok()?,
                }
                let frame = frames.borrow_and_update().clone();
                if let Some(frame) = frame {
                    let event = Event::default().data(&*frame);
                    return Some((Ok(event), (frames, closing, permit)));
                }
            }
        },
    )
}

#[cfg(test)]
mod tests;
