//! Per-commit cost of the memory repository's layout: for each graph size and each layout
//! (format 1's flat directories, and fanned-out bucket shapes), builds a graph of that many
//! entities through the store's own commit path ([`fleet::memory::Archive`]), then makes
//! commits of `--ops` `add_observations`, each to a distinct entity (the worst case for the
//! number of files a commit rewrites), timing each commit (tree, pack, fsyncs, ref move) and
//! counting the tree objects and bytes it wrote. The layouts take turns commit by commit, in
//! a rotating order, so that a shared machine's load falls on all of them alike; medians and
//! the spread (min-max) are printed.
//!
//! `cargo run --release -p benches --bin memory-commit -- --entities 20000,200000`

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::{Context, bail};
use clap::Parser;
use fleet::memory::{
    AddObservations, Archive, CreateEntities, Entity, ObservationAddition, Op, Record,
    layout::Layout,
};

#[derive(Parser)]
#[command(about = "Time 100-op memory commits at several graph sizes and repository layouts")]
struct Args {
    /// Graph sizes (entities), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "20000,200000")]
    entities: Vec<usize>,
    /// Layouts: `flat` (format 1) or `<levels>x<hex digits>` (e.g. `2x2`: ab/cd/, 256 x 256
    /// buckets; `1x3`: 4096 buckets), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "flat,1x2,1x3,2x2")]
    layouts: Vec<String>,
    /// Timed commits per layout and size.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Ops per timed commit.
    #[arg(long, default_value_t = 100)]
    ops: usize,
    /// Directory for the repositories (default: a new one in /dev/shm, else the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn parse_layout(s: &str) -> anyhow::Result<Layout> {
    if s == "flat" {
        return Ok(Layout::Flat);
    }
    let (levels, hex) = s
        .split_once('x')
        .context("a layout is flat or <levels>x<hex>")?;
    Ok(Layout::Fanned {
        levels: levels.parse()?,
        hex: hex.parse()?,
    })
}

/// `ops` as the records that follow the archive's newest, appended to it.
fn append(archive: &mut Archive, ops: Vec<Op>) -> anyhow::Result<()> {
    let mut version = archive.version();
    let mut batch = Vec::with_capacity(ops.len());
    for op in ops {
        version += 1;
        batch.push(Record {
            effect: None,
            deps: Default::default(),
            version,
            server: format!("srv-{:04}", version % 7),
            seen: version - 1,
            time_ms: 1_700_000_000_000,
            hlc: 0,
            op,
        });
    }
    archive.append(Arc::from(batch))?;
    Ok(())
}

/// An archive holding `n` entities, written in `layout`.
fn build(dir: &std::path::Path, n: usize, layout: Layout) -> anyhow::Result<Archive> {
    let mut archive = Archive::open(dir)?;
    archive.set_layout(layout);
    // At most ~10 commits to build it: each rewrites the trees it touches.
    for chunk in (0..n).collect::<Vec<_>>().chunks((n / 10).max(20_000)) {
        let ops = chunk
            .iter()
            .map(|i| {
                let name = format!("entity-{i:07}");
                Op::CreateEntities(CreateEntities {
                    entities: vec![Entity {
                        observations: vec![format!("{name} was created by the benchmark")],
                        name,
                        entity_type: "service".into(),
                    }],
                })
            })
            .collect();
        append(&mut archive, ops)?;
        archive.commit()?;
    }
    Ok(archive)
}

/// One commit of `ops` observations to distinct entities: (ms, trees written, tree bytes).
fn timed_commit(
    archive: &mut Archive,
    n: usize,
    ops: usize,
    round: usize,
) -> anyhow::Result<(f64, usize, usize)> {
    let batch = (0..ops)
        .map(|i| {
            let e = ((round * ops + i) * 7919) % n;
            Op::AddObservations(AddObservations {
                observations: vec![ObservationAddition {
                    entity_name: format!("entity-{e:07}"),
                    contents: vec![format!("round {round} note {i}")],
                }],
            })
        })
        .collect();
    let start = Instant::now();
    append(archive, batch)?;
    let info = archive.commit()?.context("nothing committed")?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    Ok((ms, info.trees_written, info.tree_bytes))
}

/// Bytes of the repository's pack files.
fn pack_bytes(gitdir: &std::path::Path) -> u64 {
    std::fs::read_dir(gitdir.join("objects/pack"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let layouts: Vec<(String, Layout)> = args
        .layouts
        .iter()
        .map(|s| parse_layout(s).map(|l| (s.clone(), l)))
        .collect::<anyhow::Result<_>>()?;
    if layouts.is_empty() || args.rounds == 0 {
        bail!("nothing to measure");
    }
    let root = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None if std::path::Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm")?,
        None => tempfile::tempdir()?,
    };
    println!(
        "| entities | layout | median ms/commit | min-max ms | trees/commit | tree KB/commit |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in &args.entities {
        let built = Instant::now();
        let mut archives = Vec::new();
        for (name, layout) in &layouts {
            archives.push(build(&root.path().join(format!("{n}-{name}")), n, *layout)?);
        }
        eprintln!("{n} entities: built in {:.1?}", built.elapsed());
        let mut samples: Vec<Vec<(f64, usize, usize)>> = vec![Vec::new(); layouts.len()];
        for round in 0..args.rounds {
            for k in 0..layouts.len() {
                let i = (round + k) % layouts.len();
                samples[i].push(timed_commit(&mut archives[i], n, args.ops, round)?);
            }
        }
        for ((name, _), s) in layouts.iter().zip(&samples) {
            let mut ms: Vec<f64> = s.iter().map(|x| x.0).collect();
            let mut trees: Vec<f64> = s.iter().map(|x| x.1 as f64).collect();
            let mut bytes: Vec<f64> = s.iter().map(|x| x.2 as f64 / 1024.0).collect();
            let (lo, hi) = ms
                .iter()
                .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
            println!(
                "| {n} | {name} | {:.1} | {lo:.1}-{hi:.1} | {:.0} | {:.0} |",
                median(&mut ms),
                median(&mut trees),
                median(&mut bytes)
            );
        }
        // What opening a format-1 repository costs once: its next commit moves every file.
        for ((name, layout), archive) in layouts.iter().zip(&mut archives) {
            if *layout != Layout::Flat {
                continue;
            }
            archive.set_layout(Layout::CURRENT);
            let before = pack_bytes(archive.gitdir());
            let (ms, trees, bytes) = timed_commit(archive, n, args.ops, args.rounds)?;
            let after = pack_bytes(archive.gitdir());
            eprintln!(
                "{n} entities, {name} -> format 2 (one commit of {} ops): {ms:.0} ms, {trees} trees, {} KB of trees, packs {} -> {} KB",
                args.ops,
                bytes / 1024,
                before >> 10,
                after >> 10
            );
        }
        drop(archives);
    }
    Ok(())
}
