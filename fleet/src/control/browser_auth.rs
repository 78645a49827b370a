//! How a browser gets to act on the fleet from the dashboard, the way Jupyter does it: `fleet
//! up` prints a sign-in link with a one-time token; opening it sets a cookie (`HttpOnly`,
//! `SameSite=Strict`) and sends the browser on to `/` with the token gone from the address
//! bar. Pasting the admin token into the page does the same. The cookie alone never suffices:
//! a request it authorises must also come from the admin API's own origin (its `Origin` equal
//! to `http://` + its `Host`, and `Sec-Fetch-Site`, when sent, `same-origin`), because a
//! page on another port of the same host is "same-site" and would get the cookie sent along.

use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, header};

use super::admin_auth::{AdminToken, TokenError};

/// The browser side of the admin API's check.
#[derive(Debug)]
pub struct BrowserAuth {
    /// Per admin port, so two fleets on one machine keep their cookies apart.
    cookie_name: String,
    /// The cookie's value: a secret of this run of the fleet.
    session: AdminToken,
    /// The sign-in link's token, until it is used.
    link: Mutex<Option<AdminToken>>,
}

impl BrowserAuth {
    /// Fresh secrets for an admin API on `port`.
    pub fn new(port: u16) -> Result<Self, TokenError> {
        Ok(Self {
            cookie_name: format!("mcpfleet_admin_{port}"),
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

    /// The `Set-Cookie` value that signs a browser in for this run of the fleet.
    pub fn cookie(&self) -> HeaderValue {
        let value = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name,
            self.session.as_str()
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Whether the request carries this run's cookie.
    pub fn signed_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == self.cookie_name && self.session.matches(value.as_bytes()))
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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_link_works_once_and_the_cookie_names_this_run() {
        let auth = BrowserAuth::new(7900).unwrap();
        let link = auth.link_token().unwrap();
        assert!(!auth.redeem("wrong"));
        assert!(auth.redeem(&link));
        assert!(!auth.redeem(&link), "used up");
        assert_eq!(auth.link_token(), None);
        let cookie = auth.cookie().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let pair = cookie.split(';').next().unwrap().to_string();
        assert!(auth.signed_in(&headers(&[("cookie", &format!("a=b; {pair}"))])));
        let other = BrowserAuth::new(7900).unwrap();
        assert!(
            !other.signed_in(&headers(&[("cookie", &pair)])),
            "another run's cookie"
        );
        assert!(!auth.signed_in(&headers(&[("cookie", "mcpfleet_admin_7900=x")])));
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
