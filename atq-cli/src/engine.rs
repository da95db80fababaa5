//! Which engine the CLI drives: Docker (`DOCKER_HOST`), or the in-memory fake for tests.

use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::labels::Role;
use atq_core::{Director, FakeCluster, SwarmCluster};

use crate::error::CliError;

/// Set to `1` to use [`FakeCluster`] instead of Docker (for testing the CLI).
pub const FAKE_ENV: &str = "ATQ_FAKE";

/// Whether `ATQ_FAKE` asks for the fake engine.
#[must_use]
pub fn fake_requested() -> bool {
    std::env::var(FAKE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A director on the engine: the fake one under `ATQ_FAKE=1`, else Docker, checked to be
/// reachable and a swarm manager.
pub async fn director() -> Result<Director, CliError> {
    if fake_requested() {
        tracing::info!("ATQ_FAKE is set: using the in-memory fake engine");
        return Ok(Director::new(fake_cluster()));
    }
    Ok(Director::new(SwarmCluster::connect().await?))
}

/// The fake engine, scripted by environment variables (read only under `ATQ_FAKE=1`):
/// - `ATQ_FAKE_MASTER_EXIT=N`: the master exits with N (default 0);
/// - `ATQ_FAKE_MASTER_LOGS`: what it prints on stdout first (lines separated by `\n`);
/// - `ATQ_FAKE_MASTER_RUN_MS=N`: how long it runs before exiting (default 0);
/// - `ATQ_FAKE_LATENCY_MS=N`: how long every replica stays pending (default 0);
/// - `ATQ_FAKE_CALL_DELAY_MS=N`: how long every engine call takes (default 0);
/// - `ATQ_FAKE_MASTER_ARTIFACTS`: files the master writes, one `PATH=CONTENT` a line
///   (`/atq/results/summary.txt=ok`).
fn fake_cluster() -> FakeCluster {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<i64>().ok());
    let millis = |name: &str| Duration::from_millis(number(name).and_then(|n| u64::try_from(n).ok()).unwrap_or(0));
    let fake = FakeCluster::new()
        .with_latency(millis("ATQ_FAKE_LATENCY_MS"))
        .with_call_delay(millis("ATQ_FAKE_CALL_DELAY_MS"));
    let logs = std::env::var("ATQ_FAKE_MASTER_LOGS").unwrap_or_default();
    let script = Script::exits_after(number("ATQ_FAKE_MASTER_EXIT").unwrap_or(0), millis("ATQ_FAKE_MASTER_RUN_MS"))
        .stdout(logs.lines().map(str::to_owned).collect::<Vec<_>>());
    let artifacts = std::env::var("ATQ_FAKE_MASTER_ARTIFACTS").unwrap_or_default();
    let script = artifacts
        .lines()
        .filter_map(|line| line.split_once('='))
        .fold(script, |script, (path, content)| script.artifact(path, content));
    fake.script(Matcher::role(Role::Master), script);
    fake
}
