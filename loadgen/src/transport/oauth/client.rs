//! The OAuth side of a run: the client's credentials and one [`TokenSource`] per authorization
//! server and resource, found by discovery the first time a target answers 401 (normally in
//! [`OAuthClient::prepare`], before anything is measured) and shared by every connection to
//! that target afterwards.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use reqwest::{
    Client, Url,
    header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE},
};

use super::{
    challenge::BearerChallenge,
    credentials::{ClientAuth, Credentials},
    discovery,
    error::OAuthError,
    fetch,
    source::{TokenSource, TokenStats},
    token::TokenRequest,
};

/// What the user configured (`--oauth-*`).
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub client_id: String,
    pub credentials: Arc<Credentials>,
    pub scope: Option<String>,
    /// Bound of each metadata or token request.
    pub timeout: Duration,
}

/// Token sources by target, discovered on demand.
#[derive(Debug)]
pub struct OAuthClient {
    settings: OAuthSettings,
    http: Client,
    by_target: Mutex<HashMap<String, Arc<TokenSource>>>,
    by_server: Mutex<HashMap<(String, String), Arc<TokenSource>>>,
    /// One discovery at a time: targets mostly share an authorization server.
    discovering: tokio::sync::Mutex<()>,
}

/// What an unauthenticated request to a target got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Anything but a 401: the target does not ask for a token.
    Open(u16),
    /// A 401, with its `WWW-Authenticate` value if any.
    Unauthorized(Option<String>),
}

impl OAuthClient {
    pub fn new(settings: OAuthSettings) -> Result<Self, OAuthError> {
        Ok(Self {
            http: fetch::client(settings.timeout)?,
            settings,
            by_target: Mutex::default(),
            by_server: Mutex::default(),
            discovering: tokio::sync::Mutex::new(()),
        })
    }

    /// The token source already found for `target`.
    pub fn source_for(&self, target: &Url) -> Option<Arc<TokenSource>> {
        self.by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target.as_str())
            .cloned()
    }

    /// Finds `target`'s authorization server from its 401's `WWW-Authenticate` value (or the
    /// well-known locations) and gets a first token there.
    pub async fn discover(
        &self,
        target: &Url,
        www_authenticate: Option<&str>,
    ) -> Result<Arc<TokenSource>, OAuthError> {
        let _guard = self.discovering.lock().await;
        if let Some(source) = self.source_for(target) {
            return Ok(source);
        }
        let challenge = www_authenticate.and_then(BearerChallenge::parse);
        let resource = discovery::resource(&self.http, target, challenge.as_ref()).await?;
        let key = (resource.issuer.to_string(), resource.resource.clone());
        let known = self
            .by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let source = match known {
            Some(source) => source,
            None => {
                let server = discovery::server(&self.http, &resource.issuer).await?;
                let method = ClientAuth::choose(
                    &self.settings.credentials,
                    &server.auth_methods,
                    &server.issuer,
                )?;
                let scope = self
                    .settings
                    .scope
                    .clone()
                    .or_else(|| challenge.and_then(|c| c.scope));
                let request = TokenRequest {
                    issuer: server.issuer.clone(),
                    endpoint: server.token_endpoint,
                    method,
                    client_id: self.settings.client_id.clone(),
                    credentials: Arc::clone(&self.settings.credentials),
                    resource: resource.resource,
                    scope,
                };
                let source = Arc::new(TokenSource::new(request, self.http.clone()));
                source.fetch().await?;
                self.by_server
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, Arc::clone(&source));
                source
            }
        };
        self.by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target.to_string(), Arc::clone(&source));
        Ok(source)
    }

    /// Before measuring: one unauthenticated request to `target`; on a 401, discovery and a
    /// first token. Answers whether the target is protected.
    pub async fn prepare(&self, target: &Url) -> Result<bool, OAuthError> {
        if self.source_for(target).is_some() {
            return Ok(true);
        }
        match probe(&self.http, target).await? {
            Probe::Open(_) => Ok(false),
            Probe::Unauthorized(challenge) => {
                self.discover(target, challenge.as_deref()).await?;
                Ok(true)
            }
        }
    }

    /// Token fetches of every source so far.
    pub fn stats(&self) -> TokenStats {
        let mut stats = TokenStats::default();
        for source in self.sources() {
            stats.merge(&source.stats());
        }
        stats
    }

    /// Every token source found so far (one per authorization server and resource).
    pub fn sources(&self) -> Vec<Arc<TokenSource>> {
        self.by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// Sends `target` an unauthenticated `ping` (a protected server answers 401 before reading it).
pub async fn probe(http: &Client, target: &Url) -> Result<Probe, OAuthError> {
    let request = http
        .post(target.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#);
    let answer = fetch::send(target, request).await?;
    if answer.status != 401 {
        return Ok(Probe::Open(answer.status));
    }
    let challenge = answer
        .headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Probe::Unauthorized(
        (!challenge.is_empty()).then_some(challenge),
    ))
}
