//! One connection's side of OAuth: the `Authorization` value to put on each request (read from
//! the target's cached [`TokenSource`]), and what to do about a 401: renew the token once (or
//! discover the authorization server, for a target that was not prepared) so the caller can
//! send the request again, once.

use std::sync::Arc;

use http::HeaderValue;
use reqwest::Url;

use super::{client::OAuthClient, source::TokenSource};

/// The OAuth state of one connection to one target.
#[derive(Debug)]
pub struct Bearer {
    client: Arc<OAuthClient>,
    target: Url,
    source: Option<Arc<TokenSource>>,
    warned: bool,
}

impl Bearer {
    pub fn new(client: Arc<OAuthClient>, target: &Url) -> Self {
        Self {
            source: client.source_for(target),
            client,
            target: target.clone(),
            warned: false,
        }
    }

    /// The `Authorization` value for the next request; `None` while the target has not asked
    /// for a token.
    pub fn header(&mut self) -> Option<HeaderValue> {
        if self.source.is_none() {
            self.source = self.client.source_for(&self.target);
        }
        self.source.as_ref()?.bearer()
    }

    /// After a 401 to a request that carried `used`: the token to send it again with, or
    /// `None` when there is none to be had (the 401 then stands; the reason is logged once).
    pub async fn after_401(
        &mut self,
        used: Option<&HeaderValue>,
        www_authenticate: Option<&str>,
    ) -> Option<HeaderValue> {
        tracing::debug!(
            "{}: 401 ({}), with a token: {}",
            self.target,
            www_authenticate.unwrap_or("no challenge"),
            used.is_some()
        );
        let renewed = match &self.source {
            Some(source) => source.renew_after_401(used).await,
            None => match self.client.discover(&self.target, www_authenticate).await {
                Ok(source) => {
                    let bearer = source.bearer();
                    self.source = Some(source);
                    return bearer;
                }
                Err(e) => Err(e),
            },
        };
        match renewed {
            Ok(bearer) => Some(bearer),
            Err(e) => {
                if !std::mem::replace(&mut self.warned, true) {
                    tracing::warn!("{}: no new token after a 401: {e}", self.target);
                }
                None
            }
        }
    }
}
