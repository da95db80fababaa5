//! `atq info`: the engine, the backend in use and why, and the atq tasks on it. Never prints
//! swarm join tokens (the core's `EngineInfo` does not even hold them).

use atq_core::{Director, TaskState};
use serde_json::json;

use crate::display::out;
use crate::error::CliError;

/// Prints the engine's facts, which backend drives it and why, and the atq tasks it holds.
pub async fn info(director: &Director, as_json: bool) -> Result<(), CliError> {
    let engine = director.cluster().info().await?;
    let tasks = director.list().await?;
    let running = tasks.iter().filter(|t| matches!(t.state, TaskState::Running | TaskState::Deploying)).count();
    let selected = crate::engine::selected();
    let host = selected.as_ref().map_or_else(
        || {
            atq_core::cluster::endpoint::Endpoint::from_env()
                .map_or_else(|_| atq_core::cluster::endpoint::DEFAULT_HOST.to_string(), |e| e.host().to_string())
        },
        |s| s.host.clone(),
    );
    let reason = selected.map(|s| s.reason).unwrap_or_default();
    if as_json {
        let value = json!({
            "host": host,
            "backend": engine.backend,
            "reason": reason,
            "engine": engine,
            "tasks": tasks.len(),
            "tasks_running": running,
        });
        out(&value.to_string());
        return Ok(());
    }
    out(&format!("engine:      Docker {} (API {}) at {host}", engine.version, engine.api_version));
    out(&format!("backend:     {} ({reason})", engine.backend));
    for (name, value) in &engine.details {
        out(&format!("{:<12} {value}", format!("{name}:")));
    }
    out(&format!("nodes:       {}/{} ready", engine.nodes_ready, engine.nodes_total));
    if engine.max_config_bytes > 0 {
        out(&format!("max config:  {} bytes", engine.max_config_bytes));
    }
    out(&format!("atq tasks:   {} ({running} running or deploying)", tasks.len()));
    Ok(())
}
