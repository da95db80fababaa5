//! The handle of a deployed task: [`Deployment`], and what its master did: [`Outcome`].

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::cluster::{LogStream, Replica, ReplicaState};
use crate::error::Result;

/// What the master did, once it exited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The task.
    pub task: String,
    /// The master's exit code.
    pub exit_code: i64,
    /// The master replica's final state (`complete` or `failed`).
    pub state: ReplicaState,
    /// The master's logs (stdout and stderr, in order).
    pub logs: String,
    /// Workers that stopped while the master ran (died, were killed, exited).
    pub failed_workers: Vec<Replica>,
    /// Time from the master running to its exit, as atq observed it.
    pub duration: Duration,
}

/// A deployed task: its workers run and its master has started.
#[derive(Debug)]
pub struct Deployment {
    name: String,
    workers: Vec<IpAddr>,
}

impl Deployment {
    /// The task's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every worker's address on the task network.
    #[must_use]
    pub fn workers(&self) -> &[IpAddr] {
        &self.workers
    }

    /// Waits for the master to exit (at most `timeout`, if given) and returns what it did.
    pub async fn wait(&self, _timeout: Option<Duration>) -> Result<Outcome> {
        todo!()
    }

    /// The master's logs so far; with `follow`, until it exits.
    pub async fn logs(&self, _follow: bool) -> Result<LogStream> {
        todo!()
    }

    /// Removes everything the task created. Idempotent.
    pub async fn teardown(&self) -> Result<()> {
        todo!()
    }
}
