//! Which engine the CLI drives: a real one (swarm or plain Docker, by `--engine`, `ATQ_ENGINE` or
//! the engine itself), or the in-memory fake for tests.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::cluster::select::{self, EngineChoice};
use atq_core::labels::Role;
use atq_core::{Director, FakeCluster};

use crate::error::CliError;

/// Set to `1` to use [`FakeCluster`] instead of Docker (for testing the CLI).
pub const FAKE_ENV: &str = "ATQ_FAKE";

/// The backend `--engine` asked for, set once by `main` before any command runs.
static CHOICE: OnceLock<EngineChoice> = OnceLock::new();

/// The backend in use and why, once connected (for `atq info`).
static SELECTED: Mutex<Option<Selected>> = Mutex::new(None);

/// The backend a command connected to, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// `swarm`, `docker` or `fake`.
    pub backend: String,
    /// Why ("ATQ_ENGINE=docker", "chosen by the engine: it is a swarm manager", …).
    pub reason: String,
    /// Where the engine is.
    pub host: String,
}

/// Records `--engine` (it wins over `ATQ_ENGINE`).
pub fn choose(choice: Option<EngineChoice>) {
    if let Some(choice) = choice {
        let _ = CHOICE.set(choice);
    }
}

/// What the last connection chose, if a command connected.
pub fn selected() -> Option<Selected> {
    SELECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Whether `ATQ_FAKE` asks for the fake engine.
#[must_use]
pub fn fake_requested() -> bool {
    std::env::var(FAKE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A director on the engine: the fake one under `ATQ_FAKE=1`; else the backend `--engine` or
/// `ATQ_ENGINE` names, or the one that fits the engine (swarm on a swarm manager, plain Docker
/// otherwise).
pub async fn director() -> Result<Director, CliError> {
    if fake_requested() {
        tracing::info!("ATQ_FAKE is set: using the in-memory fake engine");
        remember(Selected { backend: "fake".into(), reason: "ATQ_FAKE=1".into(), host: "in memory".into() });
        return Ok(Director::new(fake_cluster()));
    }
    let choice = match CHOICE.get() {
        Some(choice) => *choice,
        None => EngineChoice::from_env()?,
    };
    let connected = select::connect(choice, None).await?;
    let reason = match (CHOICE.get(), choice) {
        (Some(_), EngineChoice::Swarm | EngineChoice::Docker) => format!("--engine {choice}"),
        _ => connected.reason.clone(),
    };
    tracing::info!(backend = %connected.backend, %reason, "connected");
    remember(Selected { backend: connected.backend.to_string(), reason, host: connected.host.clone() });
    Ok(Director::from_arc(connected.cluster))
}

fn remember(selected: Selected) {
    *SELECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(selected);
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
