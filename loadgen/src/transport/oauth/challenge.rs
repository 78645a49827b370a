//! Where OAuth metadata lives: the `Bearer` challenge of a 401's `WWW-Authenticate` header
//! (RFC 6750 §3, with RFC 9728's `resource_metadata`) and the well-known URLs tried when it says
//! nothing, with the path insertion RFC 8414 and RFC 9728 prescribe for URLs that have a path.

use reqwest::Url;

/// Longest `WWW-Authenticate` value read; a longer one is ignored.
const MAX_CHALLENGE: usize = 8 * 1024;

/// The parameters of a `Bearer` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub resource_metadata: Option<String>,
    pub error: Option<String>,
    pub scope: Option<String>,
}

impl BearerChallenge {
    /// The `Bearer` challenge in a `WWW-Authenticate` value, if there is one.
    pub fn parse(header: &str) -> Option<Self> {
        if header.len() > MAX_CHALLENGE {
            return None;
        }
        let mut params = Params { rest: header };
        let mut found: Option<Self> = None;
        while let Some(item) = params.next() {
            match item {
                Item::Scheme(_) if found.is_some() => break,
                Item::Scheme(scheme) if scheme.eq_ignore_ascii_case("bearer") => {
                    found = Some(Self::default());
                }
                Item::Scheme(_) => {}
                Item::Param(name, value) => {
                    if let Some(challenge) = &mut found {
                        let slot = match name.to_ascii_lowercase().as_str() {
                            "resource_metadata" => &mut challenge.resource_metadata,
                            "error" => &mut challenge.error,
                            "scope" => &mut challenge.scope,
                            _ => continue,
                        };
                        *slot = Some(value);
                    }
                }
            }
        }
        found
    }
}

enum Item<'a> {
    Scheme(&'a str),
    Param(&'a str, String),
}

/// A tokenizer over challenges: `Scheme k=v, k="quoted", Other ...`.
struct Params<'a> {
    rest: &'a str,
}

impl<'a> Params<'a> {
    fn next(&mut self) -> Option<Item<'a>> {
        // Stray `=` are the padding of a token68 (`Basic abc==`): nothing to read in them.
        let text = self.rest.trim_start_matches([' ', '\t', ',', '=']);
        if text.is_empty() {
            return None;
        }
        let end = text.find([' ', '\t', ',', '=']).unwrap_or(text.len());
        let (word, after) = text.split_at(end);
        let after_spaces = after.trim_start_matches([' ', '\t']);
        // `token68` values (`Basic abc==`) are not parameters; `=` directly after a word is.
        if let Some(value) = after_spaces.strip_prefix('=')
            && !value.starts_with('=')
        {
            let value = value.trim_start_matches([' ', '\t']);
            let (parsed, rest) = if let Some(quoted) = value.strip_prefix('"') {
                unquote(quoted)
            } else {
                let end = value.find([',', ' ', '\t']).unwrap_or(value.len());
                (value[..end].to_string(), &value[end..])
            };
            self.rest = rest;
            return Some(Item::Param(word, parsed));
        }
        self.rest = after;
        Some(Item::Scheme(word))
    }
}

/// A quoted-string's value (after its opening quote) and what follows its closing quote.
fn unquote(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

/// `origin + /.well-known/NAME + path` (path insertion), for a URL with a path other than `/`.
fn inserted(url: &Url, name: &str) -> Option<Url> {
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        return None;
    }
    let mut out = url.clone();
    out.set_path(&format!("/.well-known/{name}{path}"));
    out.set_query(None);
    out.set_fragment(None);
    Some(out)
}

/// `origin + /.well-known/NAME`.
fn at_root(url: &Url, name: &str) -> Url {
    let mut out = url.clone();
    out.set_path(&format!("/.well-known/{name}"));
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// Where the protected resource metadata of the MCP endpoint `mcp` may be, in order: the
/// challenge's `resource_metadata`, then the well-known URL with the MCP path inserted, then at
/// the root.
pub fn resource_metadata_urls(mcp: &Url, challenge: Option<&BearerChallenge>) -> Vec<Url> {
    let named = challenge
        .and_then(|c| c.resource_metadata.as_deref())
        .and_then(|text| mcp.join(text).ok());
    if let Some(url) = named {
        return vec![url];
    }
    const NAME: &str = "oauth-protected-resource";
    inserted(mcp, NAME)
        .into_iter()
        .chain([at_root(mcp, NAME)])
        .collect()
}

/// Where the metadata of the authorization server `issuer` may be, in the order the MCP
/// specification gives: OAuth (RFC 8414) then OpenID discovery, path-inserted for an issuer
/// with a path (and OpenID's appended form last).
pub fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    const OAUTH: &str = "oauth-authorization-server";
    const OPENID: &str = "openid-configuration";
    match (inserted(issuer, OAUTH), inserted(issuer, OPENID)) {
        (Some(oauth), Some(openid)) => {
            let mut appended = issuer.clone();
            let path = issuer.path().trim_end_matches('/');
            appended.set_path(&format!("{path}/.well-known/{OPENID}"));
            vec![oauth, openid, appended]
        }
        _ => vec![at_root(issuer, OAUTH), at_root(issuer, OPENID)],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bearer_challenges_are_read_among_others() {
        let c = BearerChallenge::parse(
            r#"Basic realm="x", Bearer error="invalid_token", resource_metadata="http://h/.well-known/oauth-protected-resource/mcp", scope="a b""#,
        )
        .unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://h/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.scope.as_deref(), Some("a b"));
        let c = BearerChallenge::parse("Bearer").unwrap();
        assert_eq!(c, BearerChallenge::default());
        let c = BearerChallenge::parse(r#"bearer realm=x, error="a\"b""#).unwrap();
        assert_eq!(c.error.as_deref(), Some("a\"b"));
        assert!(BearerChallenge::parse("Basic abc==").is_none());
        assert!(BearerChallenge::parse("Basic realm=\"x\", DPoP algs=\"ES256\"").is_none());
        // A later challenge's parameters are not the Bearer one's.
        let c = BearerChallenge::parse(r#"Bearer realm="a", DPoP error="x""#).unwrap();
        assert_eq!(c.error, None);
    }

    fn server_urls(issuer: &str) -> Vec<String> {
        let issuer: Url = issuer.parse().unwrap();
        server_metadata_urls(&issuer)
            .iter()
            .map(Url::to_string)
            .collect()
    }

    #[test]
    fn well_known_urls_insert_the_path() {
        let mcp: Url = "http://127.0.0.1:9/api/mcp?x=1".parse().unwrap();
        let urls: Vec<String> = resource_metadata_urls(&mcp, None)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9/.well-known/oauth-protected-resource/api/mcp",
                "http://127.0.0.1:9/.well-known/oauth-protected-resource",
            ]
        );
        let root: Url = "http://h/".parse().unwrap();
        assert_eq!(resource_metadata_urls(&root, None).len(), 1);
        let named = BearerChallenge {
            resource_metadata: Some("/prm".into()),
            ..Default::default()
        };
        assert_eq!(
            resource_metadata_urls(&mcp, Some(&named))[0].as_str(),
            "http://127.0.0.1:9/prm"
        );

        assert_eq!(
            server_urls("https://as.example/tenant1"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            server_urls("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
    }
}
