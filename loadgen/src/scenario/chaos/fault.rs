//! The faults of the chaos scenario: a `--chaos` value ([`FaultSpec`]) parsed and checked, and
//! the plan that gives each fault its server and its time.

use std::{fmt, str::FromStr, time::Duration};

use fleet::timespan;

/// Faults happen within this share of the measured window, so the rest shows the recovery.
pub const INJECT_WITHIN: f64 = 0.6;

pub(super) const DEFAULT_PAUSE: Duration = Duration::from_secs(2);

const DEFAULT_SLOW: Duration = Duration::from_secs(5);

/// What one fault does to a server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// SIGKILL (process mode) or abort (task mode); the supervisor restarts the server.
    Kill,
    /// The server stops answering for `lasting`, then resumes (unless restarted before).
    Pause { lasting: Duration },
    /// `ms` added to every request for `lasting`.
    Slow { ms: u64, lasting: Duration },
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Pause { .. } => "pause",
            Action::Slow { .. } => "slow",
        }
    }

    pub(super) fn lasting(self) -> Option<Duration> {
        match self {
            Action::Kill => None,
            Action::Pause { lasting } | Action::Slow { lasting, .. } => Some(lasting),
        }
    }
}

/// How many servers a fault spec takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Share {
    Percent(f64),
    Count(usize),
}

impl Share {
    /// Servers out of `n`; a positive percentage takes at least one.
    pub fn of(self, n: usize) -> usize {
        match self {
            Share::Count(c) => c,
            Share::Percent(p) => ((n as f64 * p / 100.0).round() as usize).max(1),
        }
    }
}

/// One `--chaos` value: `kill:10%`, `pause:5%:2s`, `slow:3:200:5s`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub action: Action,
    pub share: Share,
    text: String,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let usage = "expected kill:SHARE, pause:SHARE[:FOR] or slow:SHARE:MS[:FOR] (SHARE as 10% \
                     or a count)";
        let share = |p: &str| -> Result<Share, String> {
            if let Some(pct) = p.strip_suffix('%') {
                match pct.parse::<f64>() {
                    Ok(v) if v > 0.0 && v <= 100.0 => Ok(Share::Percent(v)),
                    _ => Err(format!(
                        "`{s}`: share `{p}` is not a percentage in (0, 100]"
                    )),
                }
            } else {
                match p.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(Share::Count(n)),
                    _ => Err(format!(
                        "`{s}`: share `{p}` is neither N% nor a positive count"
                    )),
                }
            }
        };
        let lasting = |p: Option<&&str>, default: Duration| -> Result<Duration, String> {
            match p {
                None => Ok(default),
                Some(p) => timespan::parse_positive(p).map_err(|e| format!("`{s}`: FOR {e}")),
            }
        };
        let (action, share) = match parts.as_slice() {
            ["kill", sh] => (Action::Kill, share(sh)?),
            ["pause", sh, rest @ ..] if rest.len() <= 1 => (
                Action::Pause {
                    lasting: lasting(rest.first(), DEFAULT_PAUSE)?,
                },
                share(sh)?,
            ),
            ["slow", sh, ms, rest @ ..] if rest.len() <= 1 => {
                let ms = ms
                    .parse::<u64>()
                    .ok()
                    .filter(|m| (1..=600_000).contains(m))
                    .ok_or_else(|| format!("`{s}`: MS `{ms}` is not a whole number 1-600000"))?;
                (
                    Action::Slow {
                        ms,
                        lasting: lasting(rest.first(), DEFAULT_SLOW)?,
                    },
                    share(sh)?,
                )
            }
            _ => return Err(format!("`{s}`: {usage}")),
        };
        Ok(Self {
            action,
            share,
            text: s.trim().to_string(),
        })
    }
}

/// A fault with its server and its time after the measured window begins.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub server: String,
    pub action: Action,
}

/// Draws distinct servers for the faults (each server at most one) and spreads the faults
/// evenly, in random order, over the first [`INJECT_WITHIN`] of `window`.
pub fn plan(
    specs: &[FaultSpec],
    servers: &[String],
    window: Duration,
    seed: u64,
) -> Result<Vec<Planned>, String> {
    let wanted: usize = specs.iter().map(|s| s.share.of(servers.len())).sum();
    if wanted > servers.len() {
        return Err(format!(
            "the faults ask for {wanted} servers, but there are {} (each server gets at most \
             one fault)",
            servers.len()
        ));
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pool: Vec<&String> = servers.iter().collect();
    rng.shuffle(&mut pool);
    let mut actions: Vec<Action> = specs
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.action, s.share.of(servers.len())))
        .collect();
    rng.shuffle(&mut actions);
    let span = window.mul_f64(INJECT_WITHIN);
    let n = actions.len();
    Ok(actions
        .into_iter()
        .zip(pool)
        .enumerate()
        .map(|(i, (action, server))| Planned {
            at: span.mul_f64((i as f64 + 0.5) / n as f64),
            server: server.clone(),
            action,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let k: FaultSpec = "kill:10%".parse().unwrap();
        assert_eq!(k.action, Action::Kill);
        assert_eq!(k.share.of(500), 50);
        assert_eq!(k.to_string(), "kill:10%");
        let p: FaultSpec = "pause:3".parse().unwrap();
        assert_eq!(
            p.action,
            Action::Pause {
                lasting: DEFAULT_PAUSE
            }
        );
        assert_eq!(p.share.of(500), 3);
        let s: FaultSpec = "slow:1%:250:3s".parse().unwrap();
        assert_eq!(
            s.action,
            Action::Slow {
                ms: 250,
                lasting: Duration::from_secs(3)
            }
        );
        assert_eq!(Share::Percent(0.1).of(10), 1, "a share takes at least one");
        let p: FaultSpec = "pause:1:300ms".parse().unwrap();
        assert_eq!(
            p.action,
            Action::Pause {
                lasting: Duration::from_millis(300)
            }
        );
        for (bad, why) in [
            ("", "expected"),
            ("explode:10%", "expected"),
            ("kill", "expected"),
            ("kill:0%", "percentage"),
            ("kill:150%", "percentage"),
            ("kill:x", "count"),
            ("pause:2:0", "positive"),
            ("pause:2:soon", "soon"),
            ("pause:2:0ms", "positive"),
            ("slow:2", "expected"),
            ("slow:2:0", "MS"),
            ("kill:1:2", "expected"),
        ] {
            let err = bad.parse::<FaultSpec>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn plans_use_distinct_servers_spread_over_the_window() {
        let servers: Vec<String> = (0..20).map(|i| format!("s-{i:02}")).collect();
        let specs: Vec<FaultSpec> = vec!["kill:25%".parse().unwrap(), "pause:2".parse().unwrap()];
        let window = Duration::from_secs(10);
        let p = plan(&specs, &servers, window, 7).unwrap();
        assert_eq!(p.len(), 7);
        let mut names: Vec<&str> = p.iter().map(|f| f.server.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 7, "each server at most once");
        assert_eq!(p.iter().filter(|f| f.action == Action::Kill).count(), 5);
        assert!(p.windows(2).all(|w| w[0].at < w[1].at));
        assert!(p.iter().all(|f| f.at < window.mul_f64(INJECT_WITHIN)));
        assert_ne!(p, plan(&specs, &servers, window, 8).unwrap(), "seeded");
        let err = plan(&["kill:21".parse().unwrap()], &servers, window, 1).unwrap_err();
        assert!(err.contains("21 servers") && err.contains("20"), "{err}");
    }
}
