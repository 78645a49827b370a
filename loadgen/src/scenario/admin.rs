//! A client of the fleet's admin API (and of a gateway's `/backends`): the server list and
//! histories, the commands that inject and lift faults (the chaos scenario) and grow a group
//! (the scale step), which carry the fleet's admin token.

use std::time::Duration;

use anyhow::Context as _;
use fleet::{AdminToken, FleetView, HistoryView, ScaleOutcome, gateway::BackendsView};
use reqwest::Url;

use super::chaos::fault::Action;

/// Admin API requests are quick; a hung admin API must not hang the run.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A scale request binds and starts every new server before it answers: hundreds of them may
/// take longer than a status read.
const SCALE_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of the fleet's admin API (and of a gateway's `/backends`).
#[derive(Debug, Clone)]
pub struct Admin {
    base: Url,
    http: reqwest::Client,
    /// What the fault requests (everything but reads) carry.
    token: AdminToken,
}

impl Admin {
    pub fn new(base: Url, token: AdminToken) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(ADMIN_TIMEOUT)
            .no_proxy()
            .build()
            .context("cannot build the admin API client")?;
        Ok(Self { base, http, token })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("admin URL {} + {path}", self.base))
    }

    /// Every server of the fleet, as `GET /servers` lists them.
    pub async fn servers(&self) -> anyhow::Result<FleetView> {
        let url = self.url("/servers")?;
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("cannot reach the fleet admin API at {url}"))?;
        if !resp.status().is_success() {
            anyhow::bail!("{url} answered {}", resp.status());
        }
        resp.json()
            .await
            .with_context(|| format!("{url} did not answer a fleet's server list"))
    }

    pub(crate) async fn history(&self, id: &str) -> anyhow::Result<HistoryView> {
        let url = self.url(&format!("/servers/{id}/history"))?;
        let resp = self.http.get(url.clone()).send().await?;
        if !resp.status().is_success() {
            anyhow::bail!("{url} answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// Sends one admin command; the error names what the API said.
    async fn post(&self, path: &str, body: Option<serde_json::Value>) -> Result<(), String> {
        let url = self.url(path).map_err(|e| format!("{e:#}"))?;
        let mut req = self
            .http
            .post(url.clone())
            .header(reqwest::header::AUTHORIZATION, self.token.bearer());
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                Err(format!("{url}: {status} {}", text.trim()))
            }
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    /// Grows or shrinks `group` to `count` servers (`POST /groups/{group}/scale`, what `fleet
    /// scale` sends); answers once the new servers are bound and starting.
    pub async fn scale(&self, group: &str, count: u32) -> anyhow::Result<ScaleOutcome> {
        let url = self.url(&format!("/groups/{group}/scale"))?;
        let resp = self
            .http
            .post(url.clone())
            .timeout(SCALE_TIMEOUT)
            .header(reqwest::header::AUTHORIZATION, self.token.bearer())
            .json(&serde_json::json!({ "count": count }))
            .send()
            .await
            .with_context(|| format!("cannot reach the fleet admin API at {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            anyhow::bail!("{url} answered {status} {}", text.trim());
        }
        resp.json()
            .await
            .with_context(|| format!("{url} did not answer a scale outcome"))
    }

    /// A gateway's `/backends` (when the load goes through one); `None` when `url` does not
    /// answer one.
    pub async fn gateway_backends(&self, url: &Url) -> Option<BackendsView> {
        let resp = self.http.get(url.clone()).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    pub(crate) async fn inject(&self, server: &str, action: Action) -> Result<(), String> {
        match action {
            Action::Kill => self.post(&format!("/servers/{server}/kill"), None).await,
            Action::Pause { .. } => self.post(&format!("/servers/{server}/pause"), None).await,
            Action::Slow { ms, .. } => {
                let body = serde_json::json!({ "ms": ms });
                self.post(&format!("/servers/{server}/latency"), Some(body))
                    .await
            }
        }
    }

    pub(crate) async fn lift(&self, server: &str, action: Action) -> Result<(), String> {
        match action {
            Action::Kill => Ok(()),
            Action::Pause { .. } => self.post(&format!("/servers/{server}/resume"), None).await,
            Action::Slow { .. } => {
                let body = serde_json::json!({ "ms": 0 });
                self.post(&format!("/servers/{server}/latency"), Some(body))
                    .await
            }
        }
    }
}
