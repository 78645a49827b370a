//! Benchmarks and measurement tools for the workspace. Criterion benches live in `benches/`
//! (`cargo bench -p benches`); `bin/` holds tools that measure a running fleet
//! (`fleet-startup`, `echo-servers`, `session-bytes`); figures and the commands behind them
//! are in README.md.

/// A task-mode fleet of one community server on an ephemeral port, the defaults otherwise.
pub fn one_community_server() -> fleet::FleetSpec {
    fleet::FleetSpec {
        groups: vec![fleet::GroupSpec {
            name: "community".into(),
            profile: fleet::Profile::Community,
            count: 1,
            first_port: 0,
            stateless: None,
        }],
        ..fleet::FleetSpec::default()
    }
    .with_ephemeral_ports()
}

/// A process's RSS and PSS, as the fleet's neighbours read them.
pub use fleet::proc_memory::{pss_bytes, rss_bytes};

/// Median of a non-empty slice (sorted copy); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn reads_own_rss() {
        let rss = rss_bytes(std::process::id()).expect("linux /proc");
        assert!(rss > 1024 * 1024);
        let pss = pss_bytes(std::process::id()).expect("linux /proc");
        assert!(pss > 0 && pss <= rss);
    }
}
