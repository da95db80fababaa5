//! `atq data push | ls | rm`: data bundles on the engine, each a call into `atq_core::data`.

use std::path::Path;

use atq_core::data::Shard;
use atq_core::Director;

use crate::commands::{age, atq_core_now};
use crate::display::{err, out};
use crate::error::CliError;

/// Reads the zip file or directory at `path`, marks `split` files for sharding, and stores it
/// on the engine; returns its id. Says what was stored on stderr, unless `quiet`.
pub async fn push(director: &Director, path: &Path, quiet: bool, split: &[Shard]) -> Result<String, CliError> {
    let bundle = director.push_data_sharded(path, split).await?;
    if !quiet {
        err(&format!(
            "atq: bundle of {} file(s), {} bytes, stored under /atq/data for tasks naming it",
            bundle.len(),
            bundle.total_bytes()
        ));
        for shard in bundle.shards() {
            err(&format!(
                "atq: {} is split {} across the workers of every task that mounts it",
                shard.file, shard.split
            ));
        }
    }
    Ok(bundle.id().to_owned())
}

/// `atq data push PATH`: the bare id on stdout (`ID=$(atq data push dir)`), messages on stderr.
pub async fn push_command(director: &Director, path: &Path, quiet: bool, split: &[Shard]) -> Result<(), CliError> {
    let id = push(director, path, quiet, split).await?;
    out(&id);
    Ok(())
}

/// `atq data ls`: `ID  FILES  BYTES  CREATED`.
pub async fn ls(director: &Director, json: bool) -> Result<(), CliError> {
    let bundles = director.data_bundles().await?;
    if json {
        out(&serde_json::to_string(&bundles).expect("bundle info serialises"));
        return Ok(());
    }
    let now = atq_core_now();
    out(&format!("{:<16}  {:>7}  {:>10}  CREATED", "ID", "FILES", "BYTES"));
    for b in bundles {
        let files = match b.expected_files {
            Some(expected) if !b.is_complete() => format!("{}/{expected}", b.files),
            _ => b.files.to_string(),
        };
        let bytes = b.bytes.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let created = b.created_unix.map_or_else(|| "-".to_owned(), |c| format!("{} ago", age(now - c)));
        let note = if b.is_complete() { "" } else { "  (incomplete: push again, or `atq data rm`)" };
        out(&format!("{:<16}  {files:>7}  {bytes:>10}  {created}{note}", b.id));
    }
    Ok(())
}

/// `atq data rm ID`: refused while a task uses the bundle.
pub async fn rm(director: &Director, id: &str) -> Result<(), CliError> {
    director.remove_data(id).await?;
    err(&format!("atq: bundle {id} removed"));
    Ok(())
}
