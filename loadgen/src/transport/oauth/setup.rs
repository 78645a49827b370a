//! The OAuth side of one run: the `--oauth-*` flags made into an [`OAuthClient`], every target
//! prepared (probed, and given a first token when it asks for one) before anything is
//! measured, and what the run file says about the token fetches afterwards.

use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::Url;

use crate::{cli::Args, runfile::AuthFacts};

use super::{
    client::{OAuthClient, OAuthSettings},
    credentials::Credentials,
    error::OAuthError,
};

/// Targets probed at once while preparing.
const PREPARING_AT_ONCE: usize = 8;

/// The OAuth client the flags ask for (`None` without --oauth-client-id). Credentials are
/// read here, so a missing secret or an unusable key fails before anything starts.
pub fn client_from_args(args: &Args) -> Result<Option<Arc<OAuthClient>>, OAuthError> {
    let Some(client_id) = &args.oauth_client_id else {
        return Ok(None);
    };
    let credentials = match (&args.oauth_client_secret_env, &args.oauth_private_key) {
        (Some(var), _) => Credentials::secret_from_env(var)?,
        (None, Some(path)) => Credentials::private_key(path)?,
        // The CLI requires one of them.
        (None, None) => {
            return Err(OAuthError::SecretEnv {
                var: "(none)".into(),
            });
        }
    };
    let settings = OAuthSettings {
        client_id: client_id.clone(),
        credentials: Arc::new(credentials),
        scope: args.oauth_scope.clone(),
        timeout: args.timeout,
    };
    Ok(Some(Arc::new(OAuthClient::new(settings)?)))
}

/// Probes every target and gets a token for each that answers 401; the first failure stops
/// the run. Gives how many targets are protected.
pub async fn prepare_targets<'a>(
    client: &OAuthClient,
    targets: impl IntoIterator<Item = &'a Url>,
) -> Result<usize, OAuthError> {
    let protected: Vec<bool> = futures::stream::iter(targets)
        .map(|url| client.prepare(url))
        .buffer_unordered(PREPARING_AT_ONCE)
        .try_collect()
        .await?;
    Ok(protected.into_iter().filter(|p| *p).count())
}

/// The run file's `auth` section: `None` when no target asked for a token.
pub fn facts(client: &OAuthClient) -> Option<AuthFacts> {
    let sources = client.sources();
    if sources.is_empty() {
        return None;
    }
    let mut servers: Vec<String> = sources.iter().map(|s| s.issuer().to_string()).collect();
    let mut methods: Vec<String> = sources
        .iter()
        .map(|s| s.client_auth().as_str().to_string())
        .collect();
    for list in [&mut servers, &mut methods] {
        list.sort();
        list.dedup();
    }
    let stats = client.stats();
    Some(AuthFacts {
        scheme: "oauth_client_credentials".into(),
        client_auth: methods,
        authorization_servers: servers,
        token_fetches: stats.fetches,
        after_401: stats.after_401,
        failures: stats.failures,
        fetch_total_us: u64::try_from(stats.total.as_micros()).unwrap_or(u64::MAX),
        fetch_max_us: u64::try_from(stats.longest.as_micros()).unwrap_or(u64::MAX),
    })
}
