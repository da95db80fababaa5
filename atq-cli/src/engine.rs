//! Which engine the CLI drives: Docker (`DOCKER_HOST`), or the in-memory fake for tests.

use atq_core::{Director, DockerCluster, FakeCluster};

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
    Ok(Director::new(DockerCluster::connect().await?))
}

fn fake_cluster() -> FakeCluster {
    FakeCluster::new()
}
