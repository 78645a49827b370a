//! One cached access token (per authorization server and resource) that every connection to
//! that resource reads on each request. A task renews it ahead of each expiry, so no measured
//! request waits for a token fetch; a 401 mid-run renews it once for everyone who saw the old
//! token.

use std::{
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use http::HeaderValue;
use reqwest::Client;

use super::{credentials::ClientAuth, error::OAuthError, token::TokenRequest};

/// Renewal starts when this share of a token's lifetime is left (at most [`MAX_MARGIN`]).
const MARGIN_SHARE: u32 = 4;
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// After a failed background renewal, the next try waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Token fetches, counted and timed apart from the measured calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Tokens obtained.
    pub fetches: u64,
    /// Token requests that failed.
    pub failures: u64,
    /// Of the fetches, those caused by a 401 on a request.
    pub after_401: u64,
    /// Time spent in token requests, all together and the longest one.
    pub total: Duration,
    pub longest: Duration,
}

impl TokenStats {
    pub fn merge(&mut self, other: &TokenStats) {
        self.fetches += other.fetches;
        self.failures += other.failures;
        self.after_401 += other.after_401;
        self.total += other.total;
        self.longest = self.longest.max(other.longest);
    }
}

#[derive(Debug, Clone)]
struct Current {
    bearer: HeaderValue,
    renew_at: Option<Instant>,
}

/// A cached token for one authorization server and resource.
#[derive(Debug)]
pub struct TokenSource {
    request: TokenRequest,
    client: Client,
    current: RwLock<Option<Current>>,
    /// Held while fetching, so concurrent 401s cause one fetch.
    fetching: tokio::sync::Mutex<()>,
    /// Whether the renewing task was started.
    renewing: AtomicBool,
    /// When a 401 last caused a fetch.
    last_after_401: Mutex<Option<Instant>>,
    stats: Mutex<TokenStats>,
}

impl TokenSource {
    pub fn new(request: TokenRequest, client: Client) -> Self {
        Self {
            request,
            client,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            renewing: AtomicBool::new(false),
            last_after_401: Mutex::new(None),
            stats: Mutex::new(TokenStats::default()),
        }
    }

    /// The `resource` this source's tokens are for.
    pub fn resource(&self) -> &str {
        &self.request.resource
    }

    /// The authorization server that issues them.
    pub fn issuer(&self) -> &str {
        &self.request.issuer
    }

    /// How the client authenticates there.
    pub fn client_auth(&self) -> ClientAuth {
        self.request.method
    }

    pub fn stats(&self) -> TokenStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `Authorization` value to send now, if a token was obtained (renewals replace it in
    /// the background, ahead of its expiry).
    pub fn bearer(&self) -> Option<HeaderValue> {
        self.current_bearer()
    }

    /// Fetches a token now (before measuring); the error says why there is none. From then on
    /// a task on the current runtime renews it ahead of each expiry, used or not, so no request
    /// carries an expired token after an idle spell.
    pub async fn fetch(self: &Arc<Self>) -> Result<HeaderValue, OAuthError> {
        let bearer = {
            let _guard = self.fetching.lock().await;
            self.fetch_locked(false).await?
        };
        self.keep_fresh();
        Ok(bearer)
    }

    /// Starts the renewing task once; it ends with the source (or for tokens without expiry).
    fn keep_fresh(self: &Arc<Self>) {
        if self.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.renewing.store(false, Ordering::Release);
            return;
        };
        let source = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(at) = source.upgrade().and_then(|s| s.renew_at()) {
                tokio::time::sleep_until(at.into()).await;
                let Some(this) = source.upgrade() else { break };
                let _guard = this.fetching.lock().await;
                // A 401 may have renewed it meanwhile.
                if this.renew_at().is_some_and(|at| Instant::now() >= at) {
                    let _ = this.fetch_locked(false).await;
                }
            }
        });
    }

    fn renew_at(&self) -> Option<Instant> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|c| c.renew_at)
    }

    /// After a 401 to a request that carried `used` (or none): a new token, unless someone
    /// already replaced `used` meanwhile, in which case that one.
    pub async fn renew_after_401(
        &self,
        used: Option<&HeaderValue>,
    ) -> Result<HeaderValue, OAuthError> {
        let _guard = self.fetching.lock().await;
        let recently = self
            .last_after_401
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < RETRY_AFTER);
        match self.current_bearer() {
            Some(bearer) if Some(&bearer) != used => Ok(bearer),
            // A server that refuses fresh tokens too: at most one fetch a second for it.
            Some(bearer) if recently => Ok(bearer),
            _ => {
                *self
                    .last_after_401
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                self.fetch_locked(true).await
            }
        }
    }

    fn current_bearer(&self) -> Option<HeaderValue> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.bearer.clone())
    }

    /// One token request; the caller holds `fetching`.
    async fn fetch_locked(&self, after_401: bool) -> Result<HeaderValue, OAuthError> {
        let started = Instant::now();
        let result = self.request.send(&self.client).await.and_then(|token| {
            let bearer =
                HeaderValue::try_from(format!("Bearer {}", token.value)).map_err(|_| {
                    OAuthError::Metadata {
                        url: self.request.endpoint.to_string(),
                        what: "token response (RFC 6749 §5.1)",
                        reason: "access_token is not a valid header value".into(),
                    }
                })?;
            Ok((bearer, token.lifetime))
        });
        let took = started.elapsed();
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.total += took;
        stats.longest = stats.longest.max(took);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok((bearer, lifetime)) => {
                stats.fetches += 1;
                stats.after_401 += u64::from(after_401);
                let renew_at = lifetime.map(|life| {
                    let margin = (life / MARGIN_SHARE).min(MAX_MARGIN);
                    started + life.saturating_sub(margin)
                });
                tracing::debug!(
                    "token for {} from {} (after a 401: {after_401}); valid for {lifetime:?}",
                    self.request.resource,
                    self.request.issuer
                );
                *current = Some(Current {
                    bearer: bearer.clone(),
                    renew_at,
                });
                Ok(bearer)
            }
            Err(e) => {
                stats.failures += 1;
                if let Some(current) = current.as_mut() {
                    current.renew_at = Some(Instant::now() + RETRY_AFTER);
                }
                tracing::warn!("token request failed: {e}");
                Err(e)
            }
        }
    }
}
