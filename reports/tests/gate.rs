//! The CI gate end to end on synthetic run files of known shape: exit codes, the three layers
//! (a 30 % regression fails, noise within the band passes), config and input errors, and the
//! JUnit and Markdown reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use reports::{
    gate::{
        self, Config, EXIT_FAIL, EXIT_PASS, EXIT_USAGE, GateError, Layer, NamedRun, Outcome, Status,
    },
    run::{ConnectionsResult, RunFile},
    synthetic::{Spec, run},
};

fn named(name: &str, file: RunFile) -> NamedRun {
    NamedRun {
        name: name.into(),
        file,
    }
}

/// `seeds.len()` runs of 10 s around `median_us`, named `<side>-<seed>.json`.
fn side(label: &str, seeds: &[u64], median_us: f64) -> Vec<NamedRun> {
    seeds
        .iter()
        .map(|&seed| {
            let spec = Spec {
                seed,
                median_us,
                ..Spec::default()
            };
            named(&format!("{label}-{seed}.json"), run(&spec))
        })
        .collect()
}

fn healthy(name: &str) -> NamedRun {
    named(name, run(&Spec::default()))
}

/// The one check of that name (and run, when given); panics listing all checks otherwise.
fn check<'a>(o: &'a Outcome, name: &str, run: Option<&str>) -> &'a gate::Check {
    o.checks
        .iter()
        .find(|c| c.name == name && (run.is_none() || c.run.as_deref() == run))
        .unwrap_or_else(|| panic!("no check {name} {run:?} in {:#?}", o.checks))
}

fn failed_names(o: &Outcome) -> Vec<String> {
    o.failures().map(|c| c.name.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Relative rules

#[test]
fn noise_between_seeds_passes_the_relative_rules() {
    let config = Config::default();
    for (base, head) in [
        ([1, 2, 3], [4, 5, 6]),
        ([11, 12, 13], [21, 22, 23]),
        ([101, 102, 103], [7, 8, 9]),
        ([31, 32, 33], [41, 42, 43]),
    ] {
        let o = gate::evaluate(
            &config,
            &side("base", &base, 2_000.0),
            &side("head", &head, 2_000.0),
        );
        assert!(o.passed(), "{}", o.summary());
        for metric in ["latency_p50", "latency_p90"] {
            let c = check(&o, metric, None);
            assert_eq!(c.status, Status::Passed, "{c}");
            let k = c.comparison.unwrap();
            assert!(k.change_percent.abs() < 5.0, "{k:?}");
            assert!(!k.regression && !k.improvement);
        }
    }
}

#[test]
fn a_small_shift_inside_the_band_passes() {
    let o = gate::evaluate(
        &Config::default(),
        &side("base", &[1, 2, 3], 2_000.0),
        &side("head", &[4, 5, 6], 2_100.0),
    );
    assert!(o.passed(), "{}", o.summary());
    let k = check(&o, "latency_p50", None).comparison.unwrap();
    assert!((k.change_percent - 5.0).abs() < 3.0, "{k:?}");
}

#[test]
fn a_30_percent_regression_fails_the_relative_rule() {
    let o = gate::evaluate(
        &Config::default(),
        &side("base", &[1, 2, 3], 2_000.0),
        &side("head", &[4, 5, 6], 2_600.0),
    );
    assert!(!o.passed());
    assert_eq!(o.exit_code(), EXIT_FAIL);
    for metric in ["latency_p50", "latency_p90"] {
        let c = check(&o, metric, None);
        assert_eq!(c.status, Status::Failed, "{c}");
        assert_eq!(c.layer, Layer::Relative);
        assert!(c.message.contains("regression"), "{c}");
        let k = c.comparison.unwrap();
        assert!((k.change_percent - 30.0).abs() < 5.0, "{k:?}");
        assert!(k.ci_low_percent > 15.0 && k.p_value < 0.01, "{k:?}");
        assert_eq!((k.baseline_n, k.head_n), (30, 30));
    }
    // Only the relative layer failed: the runs themselves are healthy.
    assert!(o.failures().all(|c| c.layer == Layer::Relative));
}

#[test]
fn an_improvement_passes() {
    let o = gate::evaluate(
        &Config::default(),
        &side("base", &[1, 2, 3], 2_000.0),
        &side("head", &[4, 5, 6], 1_400.0),
    );
    assert!(o.passed(), "{}", o.summary());
    let c = check(&o, "latency_p50", None);
    assert!(c.message.contains("improvement"), "{c}");
    assert!(c.comparison.unwrap().improvement);
}

#[test]
fn sync_lag_can_be_compared_too() {
    let mut config = Config::default();
    config.relative.metrics = vec![gate::Metric::SyncLagP50];
    let slow: Vec<NamedRun> = [4, 5, 6]
        .iter()
        .map(|&seed| {
            let spec = Spec {
                seed,
                sync_lag_median_us: Some(1_200.0),
                ..Spec::default()
            };
            named(&format!("head-{seed}.json"), run(&spec))
        })
        .collect();
    let o = gate::evaluate(&config, &side("base", &[1, 2, 3], 2_000.0), &slow);
    assert_eq!(failed_names(&o), ["sync_lag_p50"], "{}", o.summary());
}

#[test]
fn without_a_baseline_the_relative_layer_is_skipped() {
    let o = gate::evaluate(&Config::default(), &[], &[healthy("head.json")]);
    assert!(o.passed());
    let c = check(&o, "baseline", None);
    assert_eq!((c.layer, c.status), (Layer::Relative, Status::Skipped));
    assert!(c.message.contains("--baseline"), "{c}");
}

#[test]
fn too_few_runs_or_samples_skip_a_relative_rule_rather_than_pass_or_fail_it() {
    let short = |name: &str, seed, median_us| {
        let spec = Spec {
            seed,
            seconds: 4,
            median_us,
            ..Spec::default()
        };
        named(name, run(&spec))
    };
    // One run a side: a 100 % slowdown, but nothing says the machine was not just busier.
    let o = gate::evaluate(
        &Config::default(),
        &side("base", &[1], 2_000.0),
        &side("head", &[2], 4_000.0),
    );
    let c = check(&o, "latency_p50", None);
    assert_eq!(c.status, Status::Skipped, "{c}");
    assert!(c.message.contains("min_runs = 2"), "{c}");
    assert!(o.passed());

    // Two runs a side, but 8 seconds each side.
    let o = gate::evaluate(
        &Config::default(),
        &[short("b1.json", 1, 2_000.0), short("b2.json", 2, 2_000.0)],
        &[short("h1.json", 3, 4_000.0), short("h2.json", 4, 4_000.0)],
    );
    let c = check(&o, "latency_p50", None);
    assert_eq!(c.status, Status::Skipped, "{c}");
    assert!(c.message.contains("min_samples = 10"), "{c}");
    assert!(o.passed());
}

#[test]
fn a_whole_run_shift_within_the_run_to_run_spread_passes() {
    // Each side's runs differ by ±5 % (a busier or quieter machine per run); the head's pooled
    // median is 25 % up, but its fastest run is only 10 % above the slowest baseline run.
    let runs = |label: &str, medians: [f64; 3]| -> Vec<NamedRun> {
        medians
            .iter()
            .zip(1u64..)
            .map(|(&median_us, seed)| {
                let spec = Spec {
                    seed: seed + if label == "head" { 10 } else { 0 },
                    median_us,
                    ..Spec::default()
                };
                named(&format!("{label}-{seed}.json"), run(&spec))
            })
            .collect()
    };
    let o = gate::evaluate(
        &Config::default(),
        &runs("base", [1_900.0, 2_000.0, 2_100.0]),
        &runs("head", [2_300.0, 2_500.0, 2_700.0]),
    );
    let k = check(&o, "latency_p50", None).comparison.unwrap();
    assert!(k.change_percent > 20.0 && k.ci_low_percent < 15.0, "{k:?}");
    assert!(o.passed(), "{}", o.summary());
}

// ---------------------------------------------------------------------------------------------
// Invariants

#[test]
fn a_healthy_run_passes_every_invariant() {
    let o = gate::evaluate(&Config::default(), &[], &[healthy("ok.json")]);
    assert!(o.passed(), "{}", o.summary());
    assert_eq!(o.exit_code(), EXIT_PASS);
    for name in [
        "run.complete",
        "latency.ran",
        "latency.errors",
        "latency.rate",
        "sync.ran",
        "sync.write_errors",
        "sync.rate",
        "sync.lost_writes",
    ] {
        assert_eq!(check(&o, name, Some("ok.json")).status, Status::Passed);
    }
    // Not in the run, not required: skipped, not passed.
    assert_eq!(check(&o, "connections.ran", None).status, Status::Skipped);
}

#[test]
fn errors_fail_the_errors_invariant() {
    let spec = Spec {
        error_every: 100,
        ..Spec::default()
    };
    let o = gate::evaluate(
        &Config::default(),
        &[],
        &[healthy("good.json"), named("bad.json", run(&spec))],
    );
    assert_eq!(failed_names(&o), ["latency.errors"]);
    let c = check(&o, "latency.errors", Some("bad.json"));
    assert!(c.message.contains("timeout 50"), "{c}");
    assert_eq!(
        check(&o, "latency.errors", Some("good.json")).status,
        Status::Passed
    );
}

#[test]
fn lost_writes_fail_the_sync_invariant() {
    let spec = Spec {
        lost_writes: 2,
        ..Spec::default()
    };
    let o = gate::evaluate(&Config::default(), &[], &[named("lossy.json", run(&spec))]);
    assert_eq!(failed_names(&o), ["sync.lost_writes"]);
    assert!(
        check(&o, "sync.lost_writes", None)
            .message
            .contains("2 acknowledged writes are missing")
    );

    // An incomplete check cannot rule losses out.
    let mut file = run(&Spec::default());
    let f = file.sync.as_mut().unwrap().figures.as_mut().unwrap();
    f.check.complete = false;
    f.check.read_errors = 3;
    let o = gate::evaluate(&Config::default(), &[], &[named("partial.json", file)]);
    assert_eq!(failed_names(&o), ["sync.lost_writes"]);
}

#[test]
fn a_rate_shortfall_fails_the_rate_invariant() {
    let mut file = run(&Spec::default()); // 500 req/s achieved
    file.latency.as_mut().unwrap().setup.target_rps = Some(600.0); // 83 %
    let o = gate::evaluate(&Config::default(), &[], &[named("slow.json", file.clone())]);
    assert_eq!(failed_names(&o), ["latency.rate"]);
    let c = check(&o, "latency.rate", Some("slow.json"));
    assert!(c.measured.contains("83.3 %"), "{c}");

    // 96 % of the intended rate is within the 95 % rule.
    file.latency.as_mut().unwrap().setup.target_rps = Some(520.0);
    let o = gate::evaluate(&Config::default(), &[], &[named("fine.json", file.clone())]);
    assert!(o.passed(), "{}", o.summary());

    // A closed loop has no intended rate: it need only have completed requests.
    let l = file.latency.as_mut().unwrap();
    l.setup.target_rps = None;
    l.ok = 0;
    let o = gate::evaluate(&Config::default(), &[], &[named("none.json", file)]);
    assert!(failed_names(&o).contains(&"latency.rate".to_string()));
}

fn with_connections(asked: usize, client: u64, server: u64) -> RunFile {
    let mut file = run(&Spec::default());
    let mut results = file.latency.clone().unwrap();
    results.setup.target_rps = Some(results.throughput_rps);
    file.connections = Some(ConnectionsResult {
        asked,
        per_connection_rps: 1.0,
        held_min_client: Some(client),
        held_min_server: Some(server),
        samples: 10,
        results,
    });
    file
}

#[test]
fn connections_held_short_fail_the_held_invariant() {
    let o = gate::evaluate(
        &Config::default(),
        &[],
        &[named("full.json", with_connections(1000, 1000, 1000))],
    );
    assert!(o.passed(), "{}", o.summary());
    assert_eq!(check(&o, "connections.held", None).status, Status::Passed);

    // The servers saw fewer than the client side: the lower count decides.
    let o = gate::evaluate(
        &Config::default(),
        &[],
        &[named("short.json", with_connections(1000, 1000, 950))],
    );
    assert_eq!(failed_names(&o), ["connections.held"]);
    let c = check(&o, "connections.held", Some("short.json"));
    assert!(c.message.contains("950 of 1000"), "{c}");

    let mut config = Config::default();
    config.invariants.connections_held = false;
    let o = gate::evaluate(
        &config,
        &[],
        &[named("short.json", with_connections(1000, 1000, 950))],
    );
    assert!(o.passed());
}

#[test]
fn an_interrupted_run_or_a_missing_required_phase_fails() {
    let mut file = run(&Spec::default());
    file.interrupted = true;
    let o = gate::evaluate(&Config::default(), &[], &[named("stopped.json", file)]);
    assert_eq!(failed_names(&o), ["run.complete"]);

    let mut file = run(&Spec::default());
    file.latency = None;
    let o = gate::evaluate(&Config::default(), &[], &[named("empty.json", file)]);
    assert_eq!(failed_names(&o), ["latency.ran"]);

    let o = gate::evaluate(&Config::default(), &[], &[]);
    assert_eq!(failed_names(&o), ["runs"]);
}

// ---------------------------------------------------------------------------------------------
// Ceilings

#[test]
fn ceilings_fail_when_exceeded_and_apply_only_when_set() {
    let text = "[ceilings]\nlatency_p99_ms = 1.0\nlatency_mean_ms = 50\nmin_throughput_rps = 10000\n\
                sync_lag_p99_ms = 100\n";
    let config = Config::parse(text, "tight.toml").unwrap();
    let o = gate::evaluate(&config, &[], &[healthy("ok.json")]);
    assert_eq!(failed_names(&o), ["latency_p99_ms", "min_throughput_rps"]);
    let c = check(&o, "latency_p99_ms", Some("ok.json"));
    assert_eq!(c.layer, Layer::Ceilings);
    assert!(
        c.limit.contains("≤ 1 ms") && c.message.contains("above"),
        "{c}"
    );
    assert_eq!(check(&o, "latency_mean_ms", None).status, Status::Passed);
    assert_eq!(check(&o, "sync_lag_p99_ms", None).status, Status::Passed);
    assert!(o.checks.iter().all(|c| c.name != "latency_p50_ms"));

    // A ceiling on a phase the run lacks is skipped.
    let config = Config::parse("[ceilings]\nconnections_p99_ms = 100\n", "c.toml").unwrap();
    let o = gate::evaluate(&config, &[], &[healthy("ok.json")]);
    assert_eq!(
        check(&o, "connections_p99_ms", None).status,
        Status::Skipped
    );
}

/// A healthy run plus a chaos phase: `failed` of its requests failed, and the recovery times of
/// its kills (`None`: never healthy again).
fn with_chaos(failed: u64, recovered: &[Option<u64>]) -> RunFile {
    use reports::run::{ChaosResult, FaultRecord};
    let mut file = run(&Spec::default());
    let mut results = file.latency.clone().unwrap();
    results.ok = results.requests - failed;
    file.chaos = Some(ChaosResult {
        specs: vec!["kill:10%".into()],
        load_target: "http://127.0.0.1:7999/mcp".into(),
        through_gateway: true,
        isolation: Some("task".into()),
        servers: 20,
        faults: recovered
            .iter()
            .enumerate()
            .map(|(i, r)| FaultRecord {
                server: format!("community-{i:04}"),
                action: "kill".into(),
                at_ms: 100,
                at_unix_ms: 1,
                lasted_ms: None,
                fleet_detect_ms: Some(2),
                gateway_detect_ms: Some(2),
                recovered_ms: *r,
                error: None,
            })
            .collect(),
        recovery_wait_ms: 15_000,
        results,
    });
    file
}

#[test]
fn chaos_failures_and_unrecovered_servers_fail_their_invariants() {
    let config = Config::parse("[ceilings]\nchaos_recovery_max_ms = 2000\n", "c.toml").unwrap();
    let good = gate::evaluate(
        &config,
        &[],
        &[named("ok.json", with_chaos(0, &[Some(40), Some(90)]))],
    );
    assert!(good.passed(), "{}", good.summary());
    for name in [
        "chaos.ran",
        "chaos.failed",
        "chaos.recovered",
        "chaos_recovery_max_ms",
    ] {
        assert_eq!(check(&good, name, None).status, Status::Passed, "{name}");
    }

    let requests = with_chaos(0, &[]).chaos.unwrap().results.requests;
    let o = gate::evaluate(
        &config,
        &[],
        &[named(
            "bad.json",
            with_chaos(requests / 100, &[Some(40), None]),
        )],
    );
    assert_eq!(failed_names(&o), ["chaos.failed", "chaos.recovered"]);
    let c = check(&o, "chaos.recovered", None);
    assert!(c.message.contains("community-0001"), "{c}");
    assert_eq!(
        check(&o, "chaos_recovery_max_ms", None).status,
        Status::Skipped
    );

    let slow = gate::evaluate(
        &config,
        &[],
        &[named("slow.json", with_chaos(0, &[Some(2_500)]))],
    );
    assert_eq!(failed_names(&slow), ["chaos_recovery_max_ms"]);

    // A run without chaos skips its checks, unless the phase is required.
    let o = gate::evaluate(&config, &[], &[healthy("ok.json")]);
    assert_eq!(check(&o, "chaos.ran", None).status, Status::Skipped);
    let required = Config::parse(
        "[invariants]\nrequired_phases = [\"latency\", \"chaos\"]\n",
        "r.toml",
    )
    .unwrap();
    let o = gate::evaluate(&required, &[], &[healthy("ok.json")]);
    assert_eq!(failed_names(&o), ["chaos.ran"]);
}

// ---------------------------------------------------------------------------------------------
// Config and input errors

fn config_error(text: &str) -> String {
    let e = Config::parse(text, "ci/gates.toml").unwrap_err();
    assert_eq!(e.exit_code(), EXIT_USAGE);
    e.to_string()
}

#[test]
fn an_empty_config_is_the_default_gate() {
    assert_eq!(Config::parse("", "empty.toml").unwrap(), Config::default());
    let d = Config::default();
    assert_eq!(d.invariants.max_errors, 0);
    assert_eq!(d.invariants.min_rate_ratio, 0.95);
    assert_eq!(d.relative.alpha, 0.01);
    assert_eq!(d.relative.min_effect_percent, 15.0);
    assert_eq!((d.relative.min_samples, d.relative.min_runs), (10, 2));
    assert_eq!(d.ceilings, gate::Ceilings::default());
}

#[test]
fn unknown_keys_are_named_with_the_file() {
    let e = config_error("[invariants]\nmax_errrors = 0\n");
    assert!(e.starts_with("ci/gates.toml: "), "{e}");
    assert!(e.contains("max_errrors") && e.contains("invariants"), "{e}");
    assert!(e.contains("line 2"), "{e}");

    let e = config_error("[ceilling]\nlatency_p99_ms = 5\n");
    assert!(
        e.starts_with("ci/gates.toml") && e.contains("ceilling"),
        "{e}"
    );
}

#[test]
fn impossible_rules_are_named_with_the_key_and_value() {
    assert_eq!(
        config_error("[relative]\nalpha = 1.5\n"),
        "ci/gates.toml: relative.alpha = 1.5: must be between 0 and 1"
    );
    for (text, key) in [
        ("[relative]\nalpha = 0.0\n", "relative.alpha = 0"),
        (
            "[relative]\nmin_effect_percent = -5\n",
            "relative.min_effect_percent = -5",
        ),
        ("[relative]\nmin_samples = 3\n", "relative.min_samples = 3"),
        ("[relative]\nmin_runs = 0\n", "relative.min_runs = 0"),
        (
            "[relative]\nmetrics = [\"latency_p50\", \"latency_p50\"]\n",
            "relative.metrics",
        ),
        (
            "[invariants]\nmin_rate_ratio = 1.2\n",
            "invariants.min_rate_ratio = 1.2",
        ),
        (
            "[invariants]\nmin_rate_ratio = 0\n",
            "invariants.min_rate_ratio = 0",
        ),
        (
            "[ceilings]\nlatency_p99_ms = -1\n",
            "ceilings.latency_p99_ms = -1",
        ),
        (
            "[ceilings]\nlatency_mean_ms = nan\n",
            "ceilings.latency_mean_ms = NaN",
        ),
        (
            "[ceilings]\nmin_throughput_rps = inf\n",
            "ceilings.min_throughput_rps = inf",
        ),
    ] {
        let e = config_error(text);
        assert!(
            e.starts_with(&format!("ci/gates.toml: {key}")),
            "{text}: {e}"
        );
    }
    // min_samples says how many would do.
    assert!(config_error("[relative]\nmin_samples = 3\n").contains("at least 6"));
}

#[test]
fn unknown_metrics_and_wrong_types_are_named() {
    let e = config_error("[relative]\nmetrics = [\"latency_p99\"]\n");
    assert!(e.starts_with("ci/gates.toml: relative.metrics"), "{e}");
    assert!(e.contains("latency_p99") && e.contains("ceilings"), "{e}");
    let e = config_error("[relative]\nmetrics = [\"throughput\"]\n");
    assert!(e.contains("unknown metric `throughput`"), "{e}");
    let e = config_error("[invariants]\nmax_errors = -1\n");
    assert!(e.starts_with("ci/gates.toml: invariants.max_errors"), "{e}");
    let e = config_error("[invariants]\nrequired_phases = [\"warmup\"]\n");
    assert!(
        e.contains("invariants.required_phases") && e.contains("warmup"),
        "{e}"
    );
    let e = config_error("[relative]\nalpha = \"0.01\"\n");
    assert!(e.starts_with("ci/gates.toml: relative.alpha"), "{e}");
}

#[test]
fn text_that_is_not_toml_is_named() {
    let e = config_error("[invariants\nmax_errors = 0\n");
    assert!(
        e.starts_with("ci/gates.toml is not a valid gate config"),
        "{e}"
    );
    assert!(e.contains("line 1"), "{e}");
    let e = config_error("{\"invariants\": {}}");
    assert!(e.starts_with("ci/gates.toml"), "{e}");
}

#[test]
fn a_missing_config_is_named() {
    let e = Config::load(Path::new("/nonexistent/gates.toml")).unwrap_err();
    assert!(matches!(e, GateError::ConfigRead { .. }));
    assert!(e.to_string().contains("/nonexistent/gates.toml"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Files and exit codes, as the CLI sees them

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, name: &str, spec: &Spec) -> PathBuf {
        self.write(name, &serde_json::to_string(&run(spec)).unwrap())
    }
}

#[test]
fn exit_codes_pass_fail_and_usage() {
    let f = Files::new();
    let config = f.write("gates.toml", "[ceilings]\nlatency_p99_ms = 250\n");
    let good = f.run("good.json", &Spec::default());
    let bad = f.run(
        "bad.json",
        &Spec {
            error_every: 10,
            ..Spec::default()
        },
    );
    let base: Vec<PathBuf> = (1..=3)
        .map(|seed| {
            f.run(
                &format!("base{seed}.json"),
                &Spec {
                    seed,
                    ..Spec::default()
                },
            )
        })
        .collect();
    let slow: Vec<PathBuf> = (4..=6)
        .map(|seed| {
            let spec = Spec {
                seed,
                median_us: 2_600.0,
                ..Spec::default()
            };
            f.run(&format!("slow{seed}.json"), &spec)
        })
        .collect();

    let pass = gate::evaluate_files(&config, &[], std::slice::from_ref(&good));
    assert_eq!(gate::exit_code(&pass), EXIT_PASS);
    // A run folder (loadgen --out DIR) stands for its run.json.
    let folder = f.dir.path().join("run-1");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&good, folder.join("run.json")).unwrap();
    let o = gate::evaluate_files(&config, &[], std::slice::from_ref(&folder)).unwrap();
    assert!(o.passed());
    assert_eq!(o.runs, [folder.join("run.json").display().to_string()]);
    let empty = f.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = gate::evaluate_files(&config, &[], &[empty]).unwrap_err();
    assert!(e.to_string().contains("empty/run.json"), "{e}");
    let fail = gate::evaluate_files(&config, &[], &[good.clone(), bad]);
    assert_eq!(gate::exit_code(&fail), EXIT_FAIL);
    let regressed = gate::evaluate_files(&config, &base, &slow);
    assert_eq!(gate::exit_code(&regressed), EXIT_FAIL);
    assert_eq!(
        failed_names(regressed.as_ref().unwrap()),
        ["latency_p50", "latency_p90"]
    );

    // Usage and input errors: no runs, a corrupt run file, another schema version, a bad config.
    assert!(matches!(
        gate::evaluate_files(&config, &[], &[]),
        Err(GateError::NoRuns)
    ));
    let corrupt = f.write("corrupt.json", "{\"schema_version\": 3, \"tool\": ");
    let e = gate::evaluate_files(&config, &[], &[good.clone(), corrupt.clone()]).unwrap_err();
    assert_eq!(e.exit_code(), EXIT_USAGE);
    assert!(
        e.to_string().contains(&corrupt.display().to_string()),
        "{e}"
    );

    let mut old: serde_json::Value = serde_json::to_value(run(&Spec::default())).unwrap();
    old["schema_version"] = 99.into();
    let old = f.write("old.json", &old.to_string());
    let e = gate::evaluate_files(
        &config,
        std::slice::from_ref(&old),
        std::slice::from_ref(&good),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("old.json") && text.contains("schema version 99"),
        "{text}"
    );

    let mut broken: serde_json::Value = serde_json::to_value(run(&Spec::default())).unwrap();
    broken["latency"]["throughput_rps"] = "fast".into();
    let broken = f.write("field.json", &broken.to_string());
    let e = gate::evaluate_files(&config, &[], &[broken]).unwrap_err();
    assert!(e.to_string().contains("latency.throughput_rps"), "{e}");

    let bad_config = f.write("bad.toml", "[relative]\nalpha = 2\n");
    let e = gate::evaluate_files(&bad_config, &[], &[good]).unwrap_err();
    assert_eq!(e.exit_code(), EXIT_USAGE);
    assert!(
        e.to_string().contains("bad.toml: relative.alpha = 2"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reports

/// Checks the XML is balanced, every `&` starts an entity and no `<` sits in text or values;
/// gives the element names in order of opening.
fn xml_elements(xml: &str) -> Vec<String> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration first");
    let mut stack: Vec<String> = Vec::new();
    let mut opened = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        check_text(&rest[..start]);
        let end = rest[start..].find('>').expect("tag closes") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "unbalanced at {tag}");
        } else {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
            check_attributes(tag);
            opened.push(name.to_string());
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
        rest = &rest[end + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    opened
}

fn check_text(text: &str) {
    assert!(
        !text.contains('>') || text.trim().is_empty(),
        "raw > in {text:?}"
    );
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            [
                "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#13;", "&#9;"
            ]
            .iter()
            .any(|e| entity.starts_with(e)),
            "bare & in {text:?}"
        );
    }
}

fn check_attributes(tag: &str) {
    // Attribute values are quoted and hold no quote of their own.
    assert_eq!(
        tag.matches('"').count() % 2,
        0,
        "unbalanced quotes in {tag}"
    );
    check_text(tag);
}

fn attribute(xml: &str, element: &str, name: &str) -> usize {
    let at = xml.find(&format!("<{element} ")).unwrap();
    let from = xml[at..].find(&format!(" {name}=\"")).unwrap() + at + name.len() + 3;
    let to = xml[from..].find('"').unwrap() + from;
    xml[from..to].parse().unwrap()
}

fn mixed_outcome() -> Outcome {
    let config = Config::parse("[ceilings]\nlatency_p99_ms = 1\n", "gates.toml").unwrap();
    let bad = Spec {
        error_every: 100,
        ..Spec::default()
    };
    gate::evaluate(
        &config,
        &side("base", &[1, 2, 3], 2_000.0),
        &[
            named("runs/a<b&\"c\".json", run(&bad)),
            named("runs/ok.json", run(&Spec::default())),
        ],
    )
}

#[test]
fn junit_xml_is_well_formed_and_counts_match() {
    let o = mixed_outcome();
    let xml = o.junit_xml();
    let elements = xml_elements(&xml);
    let count = |name: &str| elements.iter().filter(|e| *e == name).count();
    assert_eq!(count("testsuites"), 1);
    assert_eq!(count("testsuite"), 3);
    assert_eq!(count("testcase"), o.checks.len());
    assert_eq!(count("failure"), o.count(Status::Failed));
    assert_eq!(count("skipped"), o.count(Status::Skipped));
    assert_eq!(attribute(&xml, "testsuites", "tests"), o.checks.len());
    assert_eq!(
        attribute(&xml, "testsuites", "failures"),
        o.count(Status::Failed)
    );
    assert!(o.count(Status::Failed) >= 3 && o.count(Status::Skipped) >= 1);
    // One suite per layer, in order, with the layer's own counts.
    let invariants = o
        .checks
        .iter()
        .filter(|c| c.layer == Layer::Invariants)
        .count();
    assert!(xml.contains(&format!(
        "<testsuite name=\"invariants\" tests=\"{invariants}\""
    )));
    // The awkward file name is escaped, never raw.
    assert!(xml.contains("runs/a&lt;b&amp;&quot;c&quot;.json"), "{xml}");
    assert!(!xml.contains("a<b"));
    assert!(
        xml.contains("<failure message=\"1 of 5000 requests failed")
            || xml.contains("<failure message=")
    );
}

#[test]
fn markdown_leads_with_the_verdict_and_tabulates_each_layer() {
    let o = mixed_outcome();
    let md = o.markdown();
    let first = md.lines().next().unwrap();
    assert!(
        first.starts_with("## ❌") && first.contains("failed"),
        "{first}"
    );
    assert!(md.contains("### Invariants") && md.contains("### Relative to the baseline"));
    assert!(md.contains("### Ceilings"));
    assert!(
        md.contains("| | check | run | measured | limit | note |"),
        "{md}"
    );
    assert!(md.contains("| | metric | baseline median | head median | change | 99 % CI | p-value"));
    assert!(
        md.contains("| ❌ FAIL | latency.errors | runs/a&lt;b&amp;\"c\".json |"),
        "{md}"
    );
    assert!(md.contains("| ❌ FAIL | latency_p99_ms |"), "{md}");
    // Every table row has the header's number of cells (no stray pipes).
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 7 || cells == 10, "{cells} in {line}");
    }

    let passed = gate::evaluate(&Config::default(), &[], &[healthy("ok.json")]).markdown();
    assert!(
        passed.starts_with("## ✅ Performance gate passed"),
        "{passed}"
    );
    assert!(passed.contains("No rules of this layer are configured"));
}

#[test]
fn reports_are_written_where_asked() {
    let f = Files::new();
    let o = mixed_outcome();
    let (junit, md) = (f.dir.path().join("gate.xml"), f.dir.path().join("gate.md"));
    o.write_reports(&junit, &md).unwrap();
    assert_eq!(std::fs::read_to_string(&junit).unwrap(), o.junit_xml());
    assert_eq!(std::fs::read_to_string(&md).unwrap(), o.markdown());
    let e = o
        .write_reports(Path::new("/nonexistent/dir/gate.xml"), &md)
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dir/gate.xml"));
}

// ---------------------------------------------------------------------------------------------
// The project's own gate

fn ci_gates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/gates.toml")
}

#[test]
fn ci_gates_toml_parses() {
    let config = Config::load(&ci_gates()).unwrap();
    assert!(config.ceilings.latency_p99_ms.is_some());
}

#[test]
fn ci_gates_toml_passes_a_healthy_run_and_fails_broken_ones() {
    let config = Config::load(&ci_gates()).unwrap();
    let o = gate::evaluate(
        &config,
        &side("base", &[1, 2, 3], 2_000.0),
        &side("head", &[4, 5, 6], 2_000.0),
    );
    assert!(o.passed(), "{}", o.summary());

    // A fleet gone slow (100 ms median) breaks the ceilings, with or without a baseline.
    let slow = side("slow", &[4], 100_000.0);
    let o = gate::evaluate(&config, &[], &slow);
    assert!(
        failed_names(&o).contains(&"latency_p99_ms".to_string()),
        "{}",
        o.summary()
    );
    assert!(failed_names(&o).contains(&"latency_mean_ms".to_string()));

    let errors = Spec {
        error_every: 1000,
        ..Spec::default()
    };
    let o = gate::evaluate(&config, &[], &[named("errors.json", run(&errors))]);
    assert_eq!(failed_names(&o), ["latency.errors"]);
}

/// A healthy run whose fleet grew from 20 to 40 servers, `answered` of them answering the sweep.
fn with_scale(answered: usize) -> RunFile {
    use reports::run::{FleetMemory, ScaleFigures, ScaleResult};
    let mut file = run(&Spec::default());
    let mut sweep = file.health.clone();
    (sweep.servers, sweep.ok) = (40, answered);
    file.scale = Some(ScaleResult {
        ran: true,
        reason: String::new(),
        figures: Some(ScaleFigures {
            isolation: "task".into(),
            from_servers: 20,
            to_servers: 40,
            groups: vec![],
            request_ms: 3.0,
            healthy_s: (answered == 40).then_some(0.05),
            healthy: answered,
            wait_limit_s: 60.0,
            memory_before: FleetMemory::default(),
            memory_after: FleetMemory::default(),
            sweep,
        }),
    });
    file
}

#[test]
fn a_grown_fleet_must_answer_in_full() {
    let config = Config::default();
    let good = gate::evaluate(&config, &[], &[named("ok.json", with_scale(40))]);
    assert!(good.passed(), "{}", good.summary());
    assert_eq!(check(&good, "scale.answered", None).status, Status::Passed);

    let o = gate::evaluate(&config, &[], &[named("bad.json", with_scale(39))]);
    assert_eq!(failed_names(&o), ["scale.answered"]);
    assert!(
        check(&o, "scale.answered", None)
            .message
            .contains("39 answered")
    );

    // A run without the step has no such check.
    let o = gate::evaluate(&config, &[], &[healthy("plain.json")]);
    assert!(o.checks.iter().all(|c| c.name != "scale.answered"));
}
