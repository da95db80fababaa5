//! [`Context`]: what a director and the deployments it hands out share — the cluster, the event
//! stream, the owner recorded on every object, the poll interval and the background cleanups.
//!
//! A [`Deployment`](crate::Deployment) holds this, not the [`Director`](crate::Director), so the
//! two modules do not import each other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::cleanup::Tracker;
use crate::cluster::Cluster;
use crate::event::Event;
use crate::labels::{self, Role};
use crate::owner::Owner;
use crate::task::Task;
use crate::wait::PollInterval;

/// Shared by a director, its clones and its deployments.
pub(crate) struct Context {
    /// The engine.
    pub(crate) cluster: Arc<dyn Cluster>,
    /// Every progress event of every task this director runs.
    pub(crate) events: broadcast::Sender<Event>,
    /// Recorded on every object created, for `prune`.
    pub(crate) owner: Owner,
    /// How waits poll the engine.
    pub(crate) poll: PollInterval,
    /// Background cleanups (of dropped deploys and deployments), to wait for them.
    pub(crate) background: Tracker,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("owner", &self.owner).field("poll", &self.poll).finish_non_exhaustive()
    }
}

impl Context {
    /// Sends `event` to every subscriber (none is fine).
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// The labels on every object of `task`'s deploy `deploy_id` with `role`.
    pub(crate) fn labels(&self, task: &Task, role: Role, deploy_id: &str) -> BTreeMap<String, String> {
        let mut l = task.labels().clone();
        let expires = unix_now().saturating_add(i64::try_from(task.ttl().as_secs()).unwrap_or(i64::MAX / 2));
        l.insert(labels::DEPLOY.into(), deploy_id.into());
        l.insert(labels::MANAGED.into(), "true".into());
        l.insert(labels::TASK.into(), task.name().into());
        l.insert(labels::ROLE.into(), role.as_str().into());
        l.insert(labels::OWNER.into(), self.owner.to_string());
        l.insert(labels::EXPIRES.into(), expires.to_string());
        l
    }
}

/// Seconds since the unix epoch, now (0 if the clock is before it).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}
