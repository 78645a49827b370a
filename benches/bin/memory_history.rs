//! Builds a memory repository with a long history, through the same commit path the running
//! store uses ([`fleet::memory::Archive`]: each commit one durable pack, ref moved and
//! fsynced, packs merged geometrically), so that `fleet memory verify` and `git fsck` can be
//! timed on histories of a chosen length and shape without waiting for a fleet to write
//! them in real time. `--per-commit` sets how many ops each commit holds: 1 is a store at a low
//! write rate (one op per commit interval), ~100 the sync scenario's 1000 writes/s at the
//! default 100 ms interval. The op mix is the sync scenario's (mostly creates of new
//! entities, so the entity count grows with the history) plus observations, relations and
//! deletes, so every directory of the layout changes; it is drawn from a fixed seed, so the
//! same arguments build the same graph. `--max-entities` caps the live entities (further
//! creates become observations) to bound the size of a one-op-per-commit history, whose
//! every commit stored a new copy of the flat `entities/` tree in format 1.
//!
//! `cargo run --release -p benches --bin memory-history -- --path /tmp/h --ops 30000 --per-commit 100`

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::{Context, bail};
use clap::Parser;
use fleet::memory::{
    AddObservations, Archive, CreateEntities, CreateRelations, DeleteEntities, Entity,
    ObservationAddition, Op, Record, Relation,
};

#[derive(Parser)]
#[command(about = "Build a memory repository with a long history for verify/fsck timing")]
struct Args {
    /// Where to create the repository (must not exist yet).
    #[arg(long)]
    path: PathBuf,
    /// Ops in the whole history.
    #[arg(long)]
    ops: u64,
    /// Ops per commit.
    #[arg(long, default_value_t = 100)]
    per_commit: u64,
    /// Live entities at most; creates beyond it become observations.
    #[arg(long)]
    max_entities: Option<usize>,
    /// Write format 1 (every file directly in its directory) instead of the buckets of
    /// format 2: the same history in the build-before's layout, to compare verify on both.
    #[arg(long)]
    flat: bool,
}

/// xorshift64*: a fixed, dependency-free sequence (the graph only needs to be repeatable).
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % below.max(1)
    }
}

/// The op mix: 70 % creates, 15 % observations, 10 % relations, 5 % deletes.
struct Mix {
    draw: Draw,
    live: Vec<String>,
    created: u64,
    max_entities: usize,
}

impl Mix {
    fn op(&mut self) -> Op {
        let roll = self.draw.next(100);
        let room = self.live.len() < self.max_entities;
        if self.live.len() < 2 || (roll < 70 && room) {
            self.created += 1;
            let name = format!("sync-probe-{:07}", self.created);
            self.live.push(name.clone());
            return Op::CreateEntities(CreateEntities {
                entities: vec![Entity {
                    observations: vec![format!("{name} was created by a server")],
                    name,
                    entity_type: "sync-probe".into(),
                }],
            });
        }
        let a = self.live[self.draw.next(self.live.len())].clone();
        if roll < 85 {
            let contents = vec![format!("note {} on {a}", self.created)];
            return Op::AddObservations(AddObservations {
                observations: vec![ObservationAddition {
                    entity_name: a,
                    contents,
                }],
            });
        }
        if roll < 95 {
            let b = self.live[self.draw.next(self.live.len())].clone();
            return Op::CreateRelations(CreateRelations {
                relations: vec![Relation {
                    from: a,
                    to: b,
                    relation_type: "calls".into(),
                }],
            });
        }
        self.live.retain(|n| *n != a);
        Op::DeleteEntities(DeleteEntities {
            entity_names: vec![a],
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.path.exists() {
        bail!("{} exists already", args.path.display());
    }
    if args.ops == 0 || args.per_commit == 0 {
        bail!("--ops and --per-commit must be at least 1");
    }
    let started = Instant::now();
    let mut archive = Archive::open(&args.path).context("create the repository")?;
    if args.flat {
        archive.set_layout(fleet::memory::layout::Layout::Flat);
    }
    let mut mix = Mix {
        draw: Draw(0x9e37_79b9_7f4a_7c15),
        live: Vec::new(),
        created: 0,
        max_entities: args.max_entities.unwrap_or(usize::MAX),
    };
    let mut commit_ms: Vec<f64> = Vec::new();
    while archive.version() < args.ops {
        let first = archive.version() + 1;
        let n = args.per_commit.min(args.ops - archive.version());
        let batch: Arc<[Record]> = (0..n)
            .map(|i| Record {
                effect: None,
                deps: Default::default(),
                version: first + i,
                server: format!("community-{:04}", (first + i) % 500),
                seen: first + i - 1,
                time_ms: 1_780_000_000_000 + first + i,
                hlc: 0,
                op: mix.op(),
            })
            .collect();
        let commit_started = Instant::now();
        archive.append(batch).context("apply a batch")?;
        archive.commit().context("commit a batch")?;
        commit_ms.push(commit_started.elapsed().as_secs_f64() * 1000.0);
    }
    let tenth = commit_ms.len().div_ceil(10);
    let mean = |ms: &[f64]| ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    println!(
        "{}: {} ops in {} commits, {} live entities, built in {:.1} s; a commit (apply, \
         objects, pack, ref) took {:.2} ms on average over the first tenth, {:.2} ms over the last",
        args.path.display(),
        archive.version(),
        commit_ms.len(),
        mix.live.len(),
        started.elapsed().as_secs_f64(),
        mean(&commit_ms[..tenth]),
        mean(&commit_ms[commit_ms.len() - tenth..]),
    );
    Ok(())
}
