//! From a protected MCP endpoint to its authorization server's token endpoint: the protected
//! resource metadata (RFC 9728) names the authorization server, whose metadata (RFC 8414 or
//! OpenID discovery) names the token endpoint and the client authentication methods it takes.

use reqwest::{Client, Url};
use serde::Deserialize;

use super::{
    challenge::{self, BearerChallenge},
    error::OAuthError,
    fetch,
};

/// What the protected resource says about itself.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its identifier: the `resource` parameter of token requests.
    pub resource: String,
    /// The authorization server's issuer (the first one listed).
    pub issuer: Url,
}

/// What a token request needs from the authorization server's metadata.
#[derive(Debug, Clone)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: Url,
    /// `token_endpoint_auth_methods_supported`; RFC 8414's default when absent.
    pub auth_methods: Vec<String>,
}

#[derive(Deserialize)]
struct ResourceDoc {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
}

#[derive(Deserialize)]
struct ServerDoc {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The protected resource metadata of the MCP endpoint `mcp`.
pub async fn resource(
    client: &Client,
    mcp: &Url,
    challenge: Option<&BearerChallenge>,
) -> Result<Resource, OAuthError> {
    const WHAT: &str = "protected resource metadata (RFC 9728)";
    let urls = challenge::resource_metadata_urls(mcp, challenge);
    let Some((url, doc)) = first_document::<ResourceDoc>(client, &urls, WHAT).await? else {
        return Err(OAuthError::NoResourceMetadata {
            resource: mcp.to_string(),
            tried: list(&urls),
        });
    };
    let invalid = |reason: &str| OAuthError::Metadata {
        url: url.to_string(),
        what: WHAT,
        reason: reason.into(),
    };
    let issuer = doc
        .authorization_servers
        .first()
        .ok_or_else(|| invalid("`authorization_servers` is missing or empty"))?;
    let issuer = Url::parse(issuer).map_err(|e| invalid(&format!("issuer {issuer:?}: {e}")))?;
    Ok(Resource {
        resource: doc.resource.unwrap_or_else(|| mcp.to_string()),
        issuer,
    })
}

/// The metadata of the authorization server `issuer`.
pub async fn server(client: &Client, issuer: &Url) -> Result<ServerMetadata, OAuthError> {
    const WHAT: &str = "authorization server metadata (RFC 8414)";
    let urls = challenge::server_metadata_urls(issuer);
    let Some((url, doc)) = first_document::<ServerDoc>(client, &urls, WHAT).await? else {
        return Err(OAuthError::NoServerMetadata {
            issuer: issuer.to_string(),
            tried: list(&urls),
        });
    };
    let invalid = |reason: String| OAuthError::Metadata {
        url: url.to_string(),
        what: WHAT,
        reason,
    };
    let endpoint = doc
        .token_endpoint
        .ok_or_else(|| invalid("`token_endpoint` is missing".into()))?;
    let token_endpoint =
        Url::parse(&endpoint).map_err(|e| invalid(format!("token_endpoint {endpoint:?}: {e}")))?;
    Ok(ServerMetadata {
        issuer: doc.issuer.unwrap_or_else(|| issuer.to_string()),
        token_endpoint,
        auth_methods: doc
            .token_endpoint_auth_methods_supported
            .unwrap_or_else(|| vec!["client_secret_basic".into()]),
    })
}

/// The first of `urls` that answers 200 with a JSON document (which must then parse as `T`);
/// `None` when every one answers otherwise (404 and the like: try the next location).
async fn first_document<T: for<'de> Deserialize<'de>>(
    client: &Client,
    urls: &[Url],
    what: &'static str,
) -> Result<Option<(Url, T)>, OAuthError> {
    let mut unreachable = None;
    for url in urls {
        let answer = match fetch::get_json(client, url).await {
            Ok(answer) => answer,
            Err(e) => {
                unreachable.get_or_insert(e);
                continue;
            }
        };
        if answer.status != 200 {
            continue;
        }
        let doc = serde_json::from_slice(&answer.body).map_err(|e| OAuthError::Metadata {
            url: url.to_string(),
            what,
            reason: e.to_string(),
        })?;
        return Ok(Some((url.clone(), doc)));
    }
    // Nothing answered at all: say why rather than "not found".
    match unreachable {
        Some(e) if urls.len() == 1 => Err(e),
        _ => Ok(None),
    }
}

fn list(urls: &[Url]) -> String {
    urls.iter().map(Url::as_str).collect::<Vec<_>>().join(", ")
}
