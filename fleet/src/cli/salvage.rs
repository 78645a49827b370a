//! `fleet memory salvage-wal`: the operator's way past a write-ahead log that refuses to open
//! because acknowledged writes in it are damaged and no intact copy exists. It keeps every
//! whole batch before the damage, sets the damaged segment's copy and every later segment
//! aside (never deletes) and says which versions were given up, so the loss is a decision
//! made with the facts rather than something recovery does silently.

use anyhow::Context;

use super::args::MemoryRepoArgs;

pub(super) async fn salvage_wal(args: MemoryRepoArgs) -> anyhow::Result<()> {
    let path = args.memory_repo.clone();
    let salvaged = tokio::task::spawn_blocking(move || crate::memory::wal::salvage(&path))
        .await
        .context("the salvage panicked")??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&salvaged)?);
        return Ok(());
    }
    match salvaged {
        None => println!(
            "{}: the WAL opens as it is; nothing was changed",
            args.memory_repo.display()
        ),
        Some(s) => {
            println!("damage: {}", s.damage);
            println!(
                "kept the first {} bytes of {}; versions {} and later are given up",
                s.kept_bytes,
                s.segment.display(),
                s.lost_from
            );
            println!(
                "set aside in {}: a copy of the damaged segment and {} later segment(s)",
                s.quarantine.display(),
                s.moved.len()
            );
        }
    }
    Ok(())
}
