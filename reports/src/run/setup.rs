//! What a run was asked to do and where it ran: the configuration, the tool mix, the machine
//! and the embedded fleet's own figures, and the UTC timestamps that name runs.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub mode: String,
    pub servers: usize,
    pub scenarios: Vec<String>,
    pub users: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub timeout_s: f64,
    pub ephemeral_ports: bool,
    pub targets: Vec<String>,
    /// What `--protocol` asked for.
    pub protocol: String,
    /// The eras the servers were spoken to in, e.g. `2026-07-28`.
    pub protocol_version: String,
    pub load_model: String,
    pub mix: Vec<MixShare>,
    /// What `https://` targets were trusted by (which roots), or `TLS verification off`;
    /// absent when no target used TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixShare {
    pub group: String,
    pub call: String,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub fd_limit: u64,
    pub git_commit: Option<String>,
}

impl Environment {
    pub fn detect(fd_limit: u64) -> Self {
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fd_limit,
            git_commit,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetFacts {
    pub servers: usize,
    pub healthy_at_start: usize,
    pub startup_s: f64,
    pub healthy_at_end: usize,
    pub requests_total: u64,
    pub restarts_total: u64,
    pub open_connections_max: Option<u64>,
}

/// `(RFC 3339, compact for directory names)` of a UTC time, e.g.
/// `("2025-11-23T21:06:55Z", "20251123T210655Z")`.
/// `t` in milliseconds since the Unix epoch, as the run file places phases on the wall clock;
/// `None` before the epoch.
pub fn unix_ms(t: SystemTime) -> Option<u64> {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

pub fn utc_timestamp(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    (
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |s| utc_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000).0, "2023-11-14T22:13:20Z");
        assert_eq!(at(1_700_000_000).1, "20231114T221320Z");
    }
}
