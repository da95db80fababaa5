//! `atq info`: the engine and the atq tasks on it. Never prints swarm join tokens (the core's
//! `EngineInfo` does not even hold them).

use atq_core::cluster::swarm::DEFAULT_HOST;
use atq_core::{Director, TaskState};
use serde_json::json;

use crate::display::out;
use crate::error::CliError;

/// Prints the engine's facts and the atq tasks it holds.
pub async fn info(director: &Director, as_json: bool) -> Result<(), CliError> {
    let engine = director.cluster().info().await?;
    let tasks = director.list().await?;
    let running = tasks.iter().filter(|t| matches!(t.state, TaskState::Running | TaskState::Deploying)).count();
    let host = if crate::engine::fake_requested() {
        "the in-memory fake engine (ATQ_FAKE=1)".to_owned()
    } else {
        std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_owned())
    };
    if as_json {
        let value = json!({
            "host": host,
            "engine": engine,
            "tasks": tasks.len(),
            "tasks_running": running,
        });
        out(&value.to_string());
        return Ok(());
    }
    out(&format!("engine:      Docker {} (API {}) at {host}", engine.version, engine.api_version));
    out(&format!("backend:     {}", engine.backend));
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
