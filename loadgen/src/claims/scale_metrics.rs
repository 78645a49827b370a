//! The scale step's metric: servers that answered at the largest size the run measured. When
//! the step ran, that is its sweep after the fleet grew (through the admin API, while running);
//! otherwise the health sweep, which counts as much when the fleet was started that large
//! (`--servers 1000 --ephemeral-ports`). The claim's `min_servers` is checked against the same
//! sweep, so a step that did not run leaves a 1000-server claim `not_measured`, saying why.

use crate::{measure::HealthSweep, runfile::ScaleResult};

/// The servers the sweep behind the scale metric covered.
pub(super) fn scale_servers(scale: Option<&ScaleResult>, health: &HealthSweep) -> usize {
    match scale.and_then(|s| s.figures.as_ref()) {
        Some(f) => f.sweep.servers,
        None => health.servers,
    }
}

/// Why the scale step measured nothing, for a claim that needed more servers than the health
/// sweep covered.
pub(super) fn scale_missing(scale: Option<&ScaleResult>) -> Option<String> {
    match scale {
        None => Some(
            "the `scale` scenario grows the fleet to measure it; this run did not include it"
                .into(),
        ),
        Some(s) if !s.ran => Some(format!("the scale step did not run: {}", s.reason)),
        Some(_) => None,
    }
}

/// Servers that answered the scale step's sweep (else the health sweep's), with a description.
pub(super) fn scale_value(
    scale: Option<&ScaleResult>,
    health: &HealthSweep,
) -> Result<(f64, String), String> {
    let Some(f) = scale.and_then(|s| s.figures.as_ref()) else {
        if health.interrupted || health.servers == 0 {
            return Err("the health sweep did not finish".into());
        }
        return Ok((
            health.ok as f64,
            format!(
                "{}/{} servers answered the health sweep (a fleet started at that size)",
                health.ok, health.servers
            ),
        ));
    };
    let s = &f.sweep;
    if s.interrupted {
        return Err("the sweep after scaling did not finish".into());
    }
    let healthy = match f.healthy_s {
        Some(secs) => format!("all healthy {secs:.2} s after the scale request"),
        None => format!(
            "{}/{} healthy after waiting {:.0} s",
            f.healthy, f.to_servers, f.wait_limit_s
        ),
    };
    Ok((
        s.ok as f64,
        format!(
            "{}/{} servers answered after the fleet grew from {} through its admin API \
             ({healthy}, {} isolation)",
            s.ok, s.servers, f.from_servers, f.isolation
        ),
    ))
}
