//! Time spans as the command line writes them: seconds (`15`, `0.5`) or goose's `1h30m`,
//! `2m30s`, `45s`. Used by the flags and by the fault specs of `--chaos`.

use std::time::Duration;

/// A time span: seconds (`15`, `0.5`) or goose's `1h30m`, `2m30s`, `45s`.
pub fn span(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        return secs_in_range(v);
    }
    let mut total = 0u64;
    let mut rest = t;
    let mut seen = false;
    for (unit, factor) in [('h', 3600), ('m', 60), ('s', 1)] {
        if let Some((n, after)) = rest.split_once(unit) {
            let n: u64 = n
                .parse()
                .map_err(|_| format!("`{s}` is not a time span (e.g. 15, 0.5, 45s, 2m30s)"))?;
            total = total.saturating_add(n.saturating_mul(factor));
            rest = after;
            seen = true;
        }
    }
    if !seen || !rest.is_empty() {
        return Err(format!(
            "`{s}` is not a time span (e.g. 15, 0.5, 45s, 2m30s)"
        ));
    }
    secs_in_range(total as f64)
}

fn secs_in_range(v: f64) -> Result<Duration, String> {
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{v} s is out of range (0 to 86400)"));
    }
    Ok(Duration::from_secs_f64(v))
}
