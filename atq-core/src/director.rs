//! [`Director`]: runs tasks on a [`Cluster`]. All orchestration lives here.

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::deployment::Deployment;
use crate::error::Result;
use crate::task::Task;

/// Deploys, watches and removes tasks on a [`Cluster`].
#[derive(Clone)]
pub struct Director {
    cluster: Arc<dyn Cluster>,
}

/// The process that created an engine object: `host:pid:start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Process start time, to tell a reused pid apart.
    pub start: u64,
}

impl Director {
    /// A director driving `cluster`.
    pub fn new(cluster: impl Cluster + 'static) -> Self {
        Director { cluster: Arc::new(cluster) }
    }

    /// Deploys `task`.
    pub async fn deploy(&self, _task: &Task) -> Result<Deployment> {
        let _ = &self.cluster;
        todo!()
    }
}
