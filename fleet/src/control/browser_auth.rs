//! How a browser gets to act on the fleet from the dashboard. `fleet up` prints a sign-in
//! link with a one-time token in its fragment (`http://127.0.0.1:7900/#token=…`: a fragment
//! never reaches a server, a log or a `Referer`); the page posts it to `POST /login` (or the
//! admin token, pasted) and gets a session secret of this run of the fleet, which it keeps in
//! its origin's `localStorage` and sends as [`SESSION_HEADER`] with each action.
//!
//! Not a cookie: cookies are not kept apart by port, so a browser would hand one set by
//! 127.0.0.1:7900 to any server on 127.0.0.1 it visits, another user's included. Storage is
//! per origin (port included), and a page of another origin cannot send a custom header here
//! (that needs a CORS preflight this API never approves). A request carrying the session must
//! still come from the dashboard's own origin (`Origin` equal to `http://` + its `Host`).

use std::sync::Mutex;

use axum::http::{HeaderMap, header};

use super::admin_auth::{AdminToken, TokenError};

/// The header a signed-in page sends its session secret in.
pub const SESSION_HEADER: &str = "x-mcpfleet-session";

/// The browser side of the admin API's check.
#[derive(Debug)]
pub struct BrowserAuth {
    /// What a signed-in page presents: a secret of this run of the fleet.
    session: AdminToken,
    /// The sign-in link's token, until it is used.
    link: Mutex<Option<AdminToken>>,
}

impl BrowserAuth {
    /// Fresh secrets.
    pub fn new() -> Result<Self, TokenError> {
        Ok(Self {
            session: AdminToken::random()?,
            link: Mutex::new(Some(AdminToken::random()?)),
        })
    }

    /// The one-time sign-in token, while it is unused.
    pub fn link_token(&self) -> Option<String> {
        self.link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|t| t.as_str().to_string())
    }

    /// Uses up the sign-in token if `presented` is it.
    pub fn redeem(&self, presented: &str) -> bool {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let valid = link
            .as_ref()
            .is_some_and(|t| t.matches(presented.as_bytes()));
        if valid {
            *link = None;
        }
        valid
    }

    /// The session secret a signed-in page is given.
    pub fn session(&self) -> &str {
        self.session.as_str()
    }

    /// Whether the request carries this run's session secret.
    pub fn signed_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get(SESSION_HEADER)
            .is_some_and(|v| self.session.matches(v.as_bytes()))
    }
}

/// Whether the request comes from a page of the origin it is addressed to (what a browser
/// says in `Origin` and `Sec-Fetch-Site`; a request without `Origin` is not trusted).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let one = |name| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        }
    };
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    match (one(header::ORIGIN), one(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_link_works_once_and_the_session_is_this_runs() {
        let auth = BrowserAuth::new().unwrap();
        let link = auth.link_token().unwrap();
        assert!(!auth.redeem("wrong"));
        assert!(auth.redeem(&link));
        assert!(!auth.redeem(&link), "used up");
        assert_eq!(auth.link_token(), None);
        assert!(auth.signed_in(&headers(&[(SESSION_HEADER, auth.session())])));
        let other = BrowserAuth::new().unwrap();
        assert!(
            !other.signed_in(&headers(&[(SESSION_HEADER, auth.session())])),
            "another run's"
        );
        assert!(!auth.signed_in(&headers(&[(SESSION_HEADER, "x")])));
        assert!(!auth.signed_in(&headers(&[("cookie", auth.session())])));
    }

    #[test]
    fn only_the_own_origin_counts() {
        let ok = [
            ("host", "127.0.0.1:7900"),
            ("origin", "http://127.0.0.1:7900"),
        ];
        assert!(same_origin(&headers(&ok)));
        assert!(same_origin(&headers(&[
            ok[0],
            ok[1],
            ("sec-fetch-site", "same-origin")
        ])));
        for bad in [
            vec![ok[0]],
            vec![ok[0], ("origin", "http://127.0.0.1:8000")],
            vec![ok[0], ("origin", "null")],
            vec![ok[0], ("origin", "https://127.0.0.1:7900")],
            vec![ok[0], ok[1], ("sec-fetch-site", "same-site")],
            vec![ok[0], ok[1], ("origin", "http://127.0.0.1:7900")],
        ] {
            assert!(!same_origin(&headers(&bad)), "{bad:?}");
        }
    }
}
