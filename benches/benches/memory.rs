//! Benchmarks of the shared memory (`fleet::memory`): the in-memory apply path, reading WAL
//! records (what every server process following the owner does), durable writes through the
//! store (WAL group commit) with many concurrent writers, and the git commit path for a batch
//! of 1000 ops.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleet::memory::{
    AddObservations, Archive, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
    DeleteRelations, Entity, Graph, ObservationAddition, Op, Record, Relation, Store, StoreOptions,
};

fn create(name: String) -> Op {
    Op::CreateEntities(CreateEntities {
        entities: vec![Entity {
            observations: vec![format!("{name} was created by the benchmark")],
            name,
            entity_type: "service".into(),
        }],
    })
}

fn observe(name: String, text: String) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name,
            contents: vec![text],
        }],
    })
}

fn relate(from: String, to: String) -> Op {
    Op::CreateRelations(CreateRelations {
        relations: vec![Relation {
            from,
            to,
            relation_type: "calls".into(),
        }],
    })
}

/// A realistic mix: per entity one create, four observations and one relation.
fn mixed_ops(n: usize, offset: usize) -> Vec<Op> {
    let mut ops = Vec::with_capacity(n);
    let mut i = 0;
    while ops.len() < n {
        let name = format!("entity-{}", offset + i);
        ops.push(create(name.clone()));
        for k in 0..4 {
            ops.push(observe(name.clone(), format!("observation {k} of {name}")));
        }
        if i > 0 {
            ops.push(relate(name, format!("entity-{}", offset + i - 1)));
        }
        i += 1;
    }
    ops.truncate(n);
    ops
}

fn apply(c: &mut Criterion) {
    let ops = mixed_ops(10_000, 0);
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function("apply_10k_ops", |b| {
        b.iter(|| {
            let mut g = Graph::new();
            for (i, op) in ops.iter().enumerate() {
                let v = i as u64 + 1;
                let _ = black_box(g.apply(op, v, v - 1));
            }
            g
        })
    });
    group.finish();
}

/// What serde derives for an internally tagged enum: how `Op` was read before it had its own
/// `Deserialize`, kept here to measure the two side by side.
#[derive(serde::Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
#[allow(dead_code)]
enum DerivedOp {
    CreateEntities(CreateEntities),
    CreateRelations(CreateRelations),
    AddObservations(AddObservations),
    DeleteEntities(DeleteEntities),
    DeleteObservations(DeleteObservations),
    DeleteRelations(DeleteRelations),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DerivedRecord {
    version: u64,
    server: String,
    seen: u64,
    time_ms: u64,
    op: DerivedOp,
}

/// Parsing 10k WAL records (JSON, as a follower reads them): `Record` against the derived
/// internally tagged form.
fn parse(c: &mut Criterion) {
    let lines: Vec<Vec<u8>> = mixed_ops(10_000, 0)
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let record = Record {
                effect: None,
                deps: Default::default(),
                version: i as u64 + 1,
                server: "community-0001".into(),
                seen: i as u64,
                time_ms: 1_764_000_000_000,
                hlc: 1_764_000_000_000 << 16,
                op,
            };
            serde_json::to_vec(&record).expect("records serialise")
        })
        .collect();
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_10k_records", |b| {
        b.iter(|| {
            for line in &lines {
                let r: Record = serde_json::from_slice(line).expect("parses");
                black_box(r);
            }
        })
    });
    group.bench_function("parse_10k_records_derived_tagged", |b| {
        b.iter(|| {
            for line in &lines {
                let r: DerivedRecord = serde_json::from_slice(line).expect("parses");
                black_box(r);
            }
        })
    });
    group.finish();
}

/// Durable writes through the store: `WRITERS` tasks each awaiting one 1-op write at a time.
/// Each writer creates an entity every tenth write and adds observations to it otherwise,
/// so entities stay the size agents typically make them.
fn durable_writes(c: &mut Criterion) {
    const WRITERS: u64 = 64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("memory"), StoreOptions::default()).expect("open");
    let handle = store.handle();
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("durable_write_64_writers", |b| {
        b.iter_custom(|iters| {
            let per_writer = iters.div_ceil(WRITERS);
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|w| {
                        let h = handle.clone();
                        let counters = counters.clone();
                        tokio::spawn(async move {
                            let server = format!("bench-{w:04}");
                            for _ in 0..per_writer {
                                let i = counters[w as usize].fetch_add(1, Ordering::Relaxed);
                                let name = format!("w{w}-e{}", i / 10);
                                let op = if i.is_multiple_of(10) {
                                    create(name)
                                } else {
                                    observe(name, format!("observation {i} by {server}"))
                                };
                                let seen = h.view().version();
                                h.write(&server, seen, op).await.expect("write");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("writer task");
                }
                // Scale to the requested iteration count (per_writer * WRITERS >= iters).
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_writer * WRITERS) as f64)
            })
        })
    });
    group.finish();
    let stats = handle.stats();
    if stats.ops_acked > 0 {
        eprintln!(
            "memory/durable_write: {} ops in {} batches (mean {:.1}, max {}), {} commits (mean {:.0} ops), {} pack merges, commit lag p50 {:.0} ms p99 {:.0} ms max {:.0} ms, {} entities",
            stats.ops_acked,
            stats.batches,
            stats.mean_batch,
            stats.max_batch,
            stats.commits,
            stats.mean_commit_ops,
            stats.pack_merges,
            stats.commit_lag.p50_ms,
            stats.commit_lag.p99_ms,
            stats.commit_lag.max_ms,
            handle.view().counts().0,
        );
    }
    let closing = Instant::now();
    store.close().expect("close");
    if stats.ops_acked > 0 {
        eprintln!(
            "memory/durable_write: close (final commit) took {:?}",
            closing.elapsed()
        );
    }
}

/// The git side alone: 1000 ops made one durable commit (pack, index and ref fsynced) on a
/// graph of 10,000 entities. Each op adds an observation to a different entity, the worst
/// case for the number of files a commit rewrites.
fn commit_path(c: &mut Criterion) {
    const ENTITIES: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut archive = Archive::open(&dir.path().join("memory")).expect("archive");
    let records = |first: u64, ops: Vec<Op>| -> Arc<[Record]> {
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Record {
                effect: None,
                deps: Default::default(),
                version: first + i as u64,
                server: format!("srv-{:04}", i % 7),
                seen: first + i as u64 - 1,
                time_ms: 1_700_000_000_000,
                hlc: 0,
                op,
            })
            .collect()
    };
    let setup = (0..ENTITIES)
        .map(|i| create(format!("entity-{i}")))
        .collect();
    archive.append(records(1, setup)).expect("append");
    archive.commit().expect("commit");
    let mut round = 0usize;
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    group.bench_function("commit_1000_ops_10k_entities", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ops = (0..1000)
                    .map(|i| {
                        let e = (round * 1000 + i) % ENTITIES;
                        observe(format!("entity-{e}"), format!("round {round} note {i}"))
                    })
                    .collect();
                let batch = records(archive.version() + 1, ops);
                round += 1;
                let start = Instant::now();
                archive.append(batch).expect("append");
                black_box(archive.commit().expect("commit"));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(memory, apply, parse, durable_writes, commit_path);
criterion_main!(memory);
