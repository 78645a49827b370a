//! Compares the memories of several fleet nodes once they have stopped: opens each repository
//! (committing what its WAL still holds), reads its whole graph as `read_graph` answers it and
//! says whether all are identical, with the counts of each and, if not, the first entity that
//! differs. What the replication benchmark (`benches/run-replication.sh`) checks after the
//! writes stop: every node ends with the same graph.
//!
//! `cargo run --release -p benches --bin memory-compare -- REPO REPO...`

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use fleet::memory::{KnowledgeGraph, Store, StoreOptions};

#[derive(Parser)]
#[command(about = "Say whether stopped fleet nodes' memories hold identical graphs")]
struct Args {
    /// The nodes' memory repositories (at least two).
    #[arg(required = true, num_args = 2..)]
    repos: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut graphs: Vec<(PathBuf, KnowledgeGraph)> = Vec::new();
    for repo in &args.repos {
        let store = Store::open(repo, StoreOptions::default())
            .with_context(|| format!("opening {}", repo.display()))?;
        let graph = store.handle().view().read_graph();
        store
            .close()
            .with_context(|| format!("closing {}", repo.display()))?;
        let observations: usize = graph.entities.iter().map(|e| e.observations.len()).sum();
        println!(
            "{}: {} entities, {} observations, {} relations",
            repo.display(),
            graph.entities.len(),
            observations,
            graph.relations.len()
        );
        graphs.push((repo.clone(), graph));
    }
    let (first_repo, first) = &graphs[0];
    for (repo, graph) in &graphs[1..] {
        if graph != first {
            let differing = first
                .entities
                .iter()
                .zip(&graph.entities)
                .find(|(a, b)| a != b)
                .map_or_else(
                    || "the entity or relation lists differ in length".to_string(),
                    |(a, b)| format!("first difference: {a:?} vs {b:?}"),
                );
            bail!(
                "{} and {} hold different graphs; {differing}",
                first_repo.display(),
                repo.display()
            );
        }
    }
    println!("identical: all {} graphs are the same", graphs.len());
    Ok(())
}
