//! Synthetic run files with known properties (latency distribution, slow servers, errors,
//! stalls): what the tests of the report, the comparison and the gate read, so they can check
//! that a 30 % regression is caught and noise is not, without measuring anything. Never used
//! for a real run's figures: compiled only for tests and behind the `testing` feature, which
//! users enable from their `[dev-dependencies]`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::run::*;

/// The shape of a synthetic run. Latencies are log-normal around `median_us`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Seeds the deterministic random numbers: runs of one spec and seed are identical.
    pub seed: u64,
    /// Seconds in the measured window.
    pub seconds: usize,
    /// Requests each second.
    pub rps: u64,
    pub median_us: f64,
    /// Shape of the log-normal (0.3 is a tight server, 1.0 a noisy one).
    pub sigma: f64,
    pub servers: usize,
    /// The first `slow_servers` servers answer `slow_factor` times slower.
    pub slow_servers: usize,
    pub slow_factor: f64,
    /// Every `error_every`-th request fails with a timeout (0: none fail).
    pub error_every: u64,
    /// Connections held (client and server side) throughout.
    pub connections: u64,
    /// Requests in this second range wait behind a stall of this many microseconds.
    pub stall: Option<(std::ops::Range<usize>, u64)>,
    /// Include a sync scenario whose write-to-visible lags are log-normal around this median.
    pub sync_lag_median_us: Option<f64>,
    /// Acknowledged writes the sync check found missing.
    pub lost_writes: u64,
    /// The generator's share of the machine, percent (100 = saturated).
    pub generator_percent: f64,
    pub started_at: String,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            seed: 1,
            seconds: 10,
            rps: 500,
            median_us: 2_000.0,
            sigma: 0.4,
            servers: 20,
            slow_servers: 0,
            slow_factor: 8.0,
            error_every: 0,
            connections: 64,
            stall: None,
            sync_lag_median_us: Some(800.0),
            lost_writes: 0,
            generator_percent: 30.0,
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }
}

/// Seeded pseudo-random numbers shaped for test data: runs of one spec and seed are identical.
struct Random(fastrand::Rng);

impl Random {
    fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        1.0 - self.0.f64()
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    fn log_normal(&mut self, median: f64, sigma: f64) -> u64 {
        (median * (sigma * self.normal()).exp()).max(1.0) as u64
    }
}

fn histogram<T: hdrhistogram::Counter>(digits: u8) -> Histogram<T> {
    Histogram::new_with_bounds(1, 60_000_000, digits).expect("constant bounds are valid")
}

struct Keyed {
    ok: u64,
    errors: u64,
    h: Histogram<u64>,
}

fn breakdown(map: BTreeMap<String, Keyed>) -> Vec<Breakdown> {
    let mut lines: Vec<Breakdown> = map
        .into_iter()
        .map(|(name, k)| Breakdown {
            name,
            requests: k.ok + k.errors,
            ok: k.ok,
            errors: k.errors,
            latency_us: LatencySummary::of(&k.h),
            histogram: Some(encode_histogram(&k.h).expect("encodes")),
        })
        .collect();
    lines.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.name.cmp(&b.name)));
    lines
}

fn add(map: &mut BTreeMap<String, Keyed>, key: &str, us: Option<u64>) {
    let k = map.entry(key.to_string()).or_insert_with(|| Keyed {
        ok: 0,
        errors: 0,
        h: histogram(2),
    });
    match us {
        Some(us) => {
            k.ok += 1;
            let _ = k.h.record(us);
        }
        None => k.errors += 1,
    }
}

/// A whole run file of the shape `spec` describes.
pub fn run(spec: &Spec) -> RunFile {
    let mut random = Random::new(spec.seed);
    let mut all = histogram::<u64>(3);
    let mut service = histogram::<u64>(3);
    let mut ttfb = histogram::<u64>(3);
    let (mut by_call, mut by_group, mut by_server) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut per_second = Vec::new();
    let mut errors = 0;
    let mut n = 0u64;
    for second in 0..spec.seconds {
        let mut h = histogram::<u32>(2);
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..spec.rps {
            n += 1;
            let server = (n as usize) % spec.servers.max(1);
            let name = format!("server-{server:03}");
            let group = if server % 3 == 2 {
                "security"
            } else {
                "community"
            };
            let call = if n.is_multiple_of(5) {
                "tools/list"
            } else {
                "echo"
            };
            if spec.error_every > 0 && n.is_multiple_of(spec.error_every) {
                failed += 1;
                errors += 1;
                add(&mut by_call, call, None);
                add(&mut by_group, group, None);
                add(&mut by_server, &name, None);
                continue;
            }
            let mut us = random.log_normal(spec.median_us, spec.sigma);
            if server < spec.slow_servers {
                us = (us as f64 * spec.slow_factor) as u64;
            }
            let served = us;
            if let Some((range, stall)) = &spec.stall
                && range.contains(&second)
            {
                us += stall;
            }
            ok += 1;
            let _ = all.record(us);
            let _ = service.record(served);
            let _ = ttfb.record((served as f64 * 0.6).max(1.0) as u64);
            let _ = h.record(us);
            add(&mut by_call, call, Some(us));
            add(&mut by_group, group, Some(us));
            add(&mut by_server, &name, Some(us));
        }
        let classes = if failed > 0 {
            BTreeMap::from([(ErrorClass::Timeout, failed)])
        } else {
            BTreeMap::new()
        };
        per_second.push(SecondSummary::of(ok, failed, classes, &h).expect("encodes"));
    }
    let measured_s = spec.seconds as f64;
    let requests = n;
    let results = Results {
        measured_s,
        requests,
        ok: requests - errors,
        errors: ErrorClass::ALL
            .iter()
            .map(|c| (*c, if *c == ErrorClass::Timeout { errors } else { 0 }))
            .collect(),
        throughput_rps: requests as f64 / measured_s.max(1.0),
        latency_us: LatencySummary::of(&all),
        service_latency_us: LatencySummary::of(&service),
        ttfb_us: LatencySummary::of(&ttfb),
        service_histogram: Some(EncodedHistogram::of(&service).expect("encodes")),
        ttfb_histogram: Some(EncodedHistogram::of(&ttfb).expect("encodes")),
        by_call: breakdown(by_call),
        by_group: breakdown(by_group),
        by_server: breakdown(by_server),
        percentiles_us: percentiles(&all),
        per_second,
        histogram: EncodedHistogram::of(&all).expect("encodes"),
        setup: PhaseSetup {
            users: spec.connections as usize,
            ramp_up_s: 0.0,
            warmup_s: 1.0,
            duration_s: measured_s,
            load_model: format!("open model, {} req/s", spec.rps),
            target_rps: Some(spec.rps as f64),
        },
        connections: (0..=spec.seconds + 1)
            .map(|t| ConnectionSample {
                t: t as f64,
                client: Some(spec.connections),
                server: Some(spec.connections),
            })
            .collect(),
        window_s: [1.0, 1.0 + measured_s],
        started_unix_ms: Some(1_700_000_000_000),
        cpu: Some(CpuUse {
            process_cpu_s: measured_s * 2.0 * spec.generator_percent / 100.0,
            process_percent_of_machine: spec.generator_percent,
            machine_busy_percent: spec.generator_percent.max(60.0),
            cpu_us_per_request: 20.0,
            includes_embedded_fleet: false,
            generator_cpu_s: measured_s * 2.0 * spec.generator_percent / 100.0,
            generator_percent_of_machine: spec.generator_percent,
            generator_cpu_us_per_request: 20.0,
            fleet_cpu_s: None,
        }),
        engine: EngineFacts {
            name: "goose".into(),
            version: "0.19".into(),
            users_max: spec.connections as usize,
            requests,
            failures: errors,
            seconds: spec.seconds as u64 + 1,
        },
        asides: BTreeMap::new(),
    };
    let mean_ms = results.latency_us.mean / 1e3;
    let success = 100.0 * results.ok as f64 / requests.max(1) as f64;
    let claim = |id: &str, title: &str, pass: bool, measured: String, criterion: &str| Claim {
        id: id.into(),
        title: title.into(),
        quote: format!("{title} (synthetic)"),
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        measured: Some(measured),
        criterion: criterion.into(),
        note: String::new(),
    };
    let mut claims = vec![
        claim(
            "average_response_21ms",
            "Average response time ~21 ms",
            mean_ms <= 25.0,
            format!("{mean_ms:.2} ms"),
            "latency_mean_ms <= 25",
        ),
        claim(
            "success_rate_100",
            "100% success rate under load",
            success >= 100.0,
            format!("{success:.3} %"),
            "success_percent >= 100",
        ),
    ];
    let sync = spec.sync_lag_median_us.map(|median| {
        let figures = sync_figures(&mut random, median, spec);
        let p99_ms = figures.lag_us.p99 as f64 / 1e3;
        claims.push(claim(
            "memory_sync_realtime",
            "Git memory shared in real time",
            p99_ms <= 10.0,
            format!("{p99_ms:.2} ms"),
            "sync_lag_p99_ms <= 10",
        ));
        claims.push(claim(
            "memory_no_loss",
            "Shared memory loses no write",
            figures.check.lost == 0,
            figures.check.lost.to_string(),
            "lost_writes == 0",
        ));
        SyncResult {
            available: true,
            ran: true,
            reason: "synthetic".into(),
            figures: Some(figures),
        }
    });
    RunFile {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "loadgen".into(),
            version: "synthetic".into(),
        },
        started_at: spec.started_at.clone(),
        finished_at: spec.started_at.clone(),
        interrupted: false,
        config: Config {
            mode: "targets".into(),
            servers: spec.servers,
            scenarios: vec!["latency".into()],
            users: spec.connections as usize,
            warmup_s: 1.0,
            duration_s: measured_s,
            timeout_s: 10.0,
            ephemeral_ports: false,
            targets: vec!["http://127.0.0.1:8000-8019/mcp".into()],
            protocol: "auto".into(),
            protocol_version: "2026-07-28".into(),
            load_model: results.setup.load_model.clone(),
            mix: vec![MixShare {
                group: "community".into(),
                call: "echo".into(),
                percent: 80.0,
            }],
            tls: None,
        },
        environment: Environment {
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            fd_limit: 65_536,
            git_commit: None,
        },
        fleet: None,
        health: HealthSweep {
            servers: spec.servers,
            checked: spec.servers,
            ok: spec.servers,
            availability: 1.0,
            seconds: 0.1,
            interrupted: false,
            failures: vec![],
            protocols: BTreeMap::from([("2026-07-28".to_string(), spec.servers)]),
            versions: BTreeMap::new(),
        },
        latency: Some(results),
        connections: None,
        capacity: None,
        sync,
        chaos: None,
        scale: None,
        auth: None,
        stdio: None,
        shard: None,
        merged_from: Vec::new(),
        claims,
    }
}

fn sync_figures(random: &mut Random, median_us: f64, spec: &Spec) -> SyncFigures {
    let writes = 200 * spec.seconds as u64;
    let (mut ack, mut lag, mut baseline) = (
        histogram::<u64>(3),
        histogram::<u64>(3),
        histogram::<u64>(3),
    );
    let mut per_second = Vec::new();
    for _ in 0..spec.seconds {
        let (mut a, mut l) = (histogram::<u64>(2), histogram::<u64>(2));
        for _ in 0..200 {
            let ack_us = random.log_normal(1_500.0, 0.4);
            let lag_us = random.log_normal(median_us, 0.5);
            let _ = ack.record(ack_us);
            let _ = lag.record(lag_us);
            let _ = baseline.record(random.log_normal(median_us * 0.8, 0.4));
            let _ = a.record(ack_us);
            let _ = l.record(lag_us);
        }
        per_second.push(SyncSecond {
            writes: 200,
            acked: 200,
            visibility_failures: 0,
            ack_p50_us: a.value_at_quantile(0.5),
            ack_p99_us: a.value_at_quantile(0.99),
            lag_p50_us: l.value_at_quantile(0.5),
            lag_p99_us: l.value_at_quantile(0.99),
            ack_histogram: encode_histogram(&a).expect("encodes"),
        });
    }
    SyncFigures {
        tag: "synthetic".into(),
        isolation: Some("task".into()),
        servers: spec.servers,
        nodes: 0,
        servers_left_out: 0,
        same_server: false,
        rate_wps: 200.0,
        users: 64,
        warmup_s: 1.0,
        duration_s: spec.seconds as f64,
        measured_s: spec.seconds as f64,
        achieved_wps: 200.0,
        visible_wait_ms: 5_000,
        writes,
        acked: writes,
        failed: BTreeMap::new(),
        warmup_writes: 0,
        warmup_acked: 0,
        visible: writes,
        visibility_failures: BTreeMap::new(),
        ack_us: LatencySummary::of(&ack),
        ack_service_us: LatencySummary::of(&ack),
        lag_us: LatencySummary::of(&lag),
        server_lag_us: None,
        server_lag_unknown: 0,
        baseline_read_us: LatencySummary::of(&baseline),
        baseline_failures: 0,
        histograms: SyncHistograms {
            ack: EncodedHistogram::of(&ack).expect("encodes"),
            lag: EncodedHistogram::of(&lag).expect("encodes"),
            baseline_read: EncodedHistogram::of(&baseline).expect("encodes"),
            server_lag: None,
        },
        per_second,
        connections_opened: 0,
        check: SyncCheck {
            skipped: None,
            servers: vec!["server-000".into(), "server-001".into()],
            min_version: writes,
            node_versions: BTreeMap::new(),
            acked: writes,
            complete: true,
            read_errors: 0,
            lost: spec.lost_writes,
            lost_examples: vec![],
            missing_by_server: BTreeMap::new(),
            duplicates: 0,
            seconds: 0.2,
        },
        history: None,
        cleanup: None,
        cpu: None,
        started_unix_ms: Some(1_700_000_000_000),
    }
}
