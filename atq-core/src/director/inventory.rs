//! What the engine holds of atq's tasks, read back from labels: [`TaskInfo`] and [`TaskState`]
//! (`list`, `inspect`), and `prune`, which removes the tasks [`crate::prune::decide`] lets go.
//!
//! The engine is the source of truth: any process (not only the one that deployed) sees the same
//! tasks, states and owners.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::cleanup;
use crate::cluster::{LabelSelector, Replica, ReplicaState, Resource, ResourceKind};
use crate::context::{unix_now, Context};
use crate::deployment::failed_to_start;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::labels::{self, Role};
use crate::owner::Owner;
use crate::prune::{self, PruneDecision};
use crate::wait::conditions::replica_failed;

/// A task's state, derived from the engine (the source of truth), so every process sees the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// Being deployed: the master does not run yet.
    Deploying,
    /// The master runs.
    Running,
    /// The master exited with this code.
    Finished {
        /// The master's exit code.
        exit_code: i64,
    },
    /// A replica failed (the master could not start, a worker stopped), or the task is
    /// incomplete (a leftover).
    Failed {
        /// What failed, with the engine's reason.
        reason: String,
    },
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskState::Deploying => f.write_str("deploying"),
            TaskState::Running => f.write_str("running"),
            TaskState::Finished { exit_code } => write!(f, "finished({exit_code})"),
            TaskState::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// What the engine holds of one task, as [`Director::list`](super::Director::list) and
/// [`Director::inspect`](super::Director::inspect) see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInfo {
    /// The task's name.
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub state: TaskState,
    /// Workers running.
    pub workers_running: u32,
    /// Workers the task asked for.
    pub workers_total: u32,
    /// Worker addresses on the task network, by slot.
    pub workers: Vec<IpAddr>,
    /// The process that deployed it.
    pub owner: Option<String>,
    /// Whether it was deployed to outlive its process (`atq up`, `--keep`).
    pub detached: bool,
    /// When `prune` may remove it (unix seconds).
    pub expires: Option<i64>,
    /// When it was created (unix seconds).
    pub created: Option<i64>,
    /// What `prune` would do with it now, and why.
    pub prune: PruneDecision,
    /// Every engine object of the task.
    pub resources: Vec<Resource>,
}

/// What `prune` did with one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrunedTask {
    /// The task.
    pub name: String,
    /// Why it was chosen.
    pub why: String,
    /// Engine objects it had.
    pub resources: usize,
    /// What failed when removing it; None: it is gone.
    pub error: Option<String>,
}

/// What `prune` removed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneReport {
    /// Every task prune chose, in name order.
    pub tasks: Vec<PrunedTask>,
}

impl PruneReport {
    /// The tasks removed completely.
    #[must_use]
    pub fn removed(&self) -> Vec<&str> {
        self.tasks.iter().filter(|t| t.error.is_none()).map(|t| t.name.as_str()).collect()
    }

    /// Engine objects of the tasks removed completely.
    #[must_use]
    pub fn resources(&self) -> usize {
        self.tasks.iter().filter(|t| t.error.is_none()).map(|t| t.resources).sum()
    }

    /// Whether some removal failed.
    #[must_use]
    pub fn has_failures(&self) -> bool {
        self.tasks.iter().any(|t| t.error.is_some())
    }
}

/// Everything of the task `name`.
pub(crate) fn task_selector(name: &str) -> LabelSelector {
    LabelSelector::new().eq(labels::MANAGED, "true").eq(labels::TASK, name)
}

fn every_task() -> LabelSelector {
    LabelSelector::new().eq(labels::MANAGED, "true").has(labels::TASK)
}

/// Every task on the engine, whoever deployed it.
pub(crate) async fn list(ctx: &Context) -> Result<Vec<TaskInfo>> {
    let groups = task_resources(ctx, &every_task()).await?;
    let mut out = Vec::with_capacity(groups.len());
    for (name, resources) in groups {
        out.push(describe(ctx, name, resources).await?);
    }
    Ok(out)
}

/// One task, as the engine holds it.
pub(crate) async fn inspect(ctx: &Context, name: &str) -> Result<TaskInfo> {
    let mut groups = task_resources(ctx, &task_selector(name)).await?;
    match groups.remove(name) {
        Some(resources) => describe(ctx, name.to_owned(), resources).await,
        None => Err(Error::TaskNotFound { name: name.to_owned() }),
    }
}

/// What prune would do with each task.
pub(crate) async fn prune_plan(ctx: &Context) -> Result<Vec<(String, PruneDecision)>> {
    let now = unix_now();
    let groups = task_resources(ctx, &every_task()).await?;
    Ok(groups.into_iter().map(|(name, resources)| (name, decide(&resources, now))).collect())
}

/// Removes the tasks prune lets go; a failure on one does not stop the others.
pub(crate) async fn prune(ctx: &Context) -> Result<PruneReport> {
    let now = unix_now();
    let mut report = PruneReport::default();
    for (name, resources) in task_resources(ctx, &every_task()).await? {
        let decision = decide(&resources, now);
        if !decision.remove {
            continue;
        }
        let error = remove_task(ctx, &name).await.err().map(|e| e.to_string());
        report.tasks.push(PrunedTask { name, why: decision.why.to_string(), resources: resources.len(), error });
    }
    Ok(report)
}

/// Removes every object atq created on the engine, data bundles included.
pub(crate) async fn prune_all(ctx: &Context) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    for (name, resources) in task_resources(ctx, &every_task()).await? {
        let error = remove_task(ctx, &name).await.err().map(|e| e.to_string());
        report.tasks.push(PrunedTask { name, why: "--all".into(), resources: resources.len(), error });
    }
    // What belongs to no task (data bundles) goes too.
    let rest = LabelSelector::new().eq(labels::MANAGED, "true");
    let _ = cleanup::remove_matching(&*ctx.cluster, "(data bundles)", &rest, &[]).await?;
    Ok(report)
}

async fn remove_task(ctx: &Context, name: &str) -> Result<()> {
    ctx.emit(Event::TeardownStarted { task: name.to_owned() });
    let removal = cleanup::remove_matching(&*ctx.cluster, name, &task_selector(name), &[]).await?;
    if let Some(event) = removal.event(name) {
        ctx.emit(event);
    }
    ctx.emit(Event::TornDown { task: name.to_owned() });
    Ok(())
}

/// The prune decision from the labels of all of a task's objects (the first value of each key).
fn decide(resources: &[Resource], now: i64) -> PruneDecision {
    let mut task_labels = BTreeMap::new();
    for r in resources {
        for (k, v) in &r.labels {
            task_labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    prune::decide(&task_labels, now, Owner::liveness)
}

async fn task_resources(ctx: &Context, selector: &LabelSelector) -> Result<BTreeMap<String, Vec<Resource>>> {
    let mut groups: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    for r in cleanup::list(&*ctx.cluster, selector).await? {
        if let Some(task) = r.labels.get(labels::TASK) {
            groups.entry(task.clone()).or_default().push(r);
        }
    }
    Ok(groups)
}

fn label_of(resources: &[Resource], key: &str) -> Option<String> {
    resources.iter().find_map(|r| r.labels.get(key).cloned())
}

fn not_found_as_empty(e: Error) -> Result<Vec<Replica>> {
    if e.is_not_found() {
        Ok(Vec::new())
    } else {
        Err(e)
    }
}

async fn describe(ctx: &Context, name: String, resources: Vec<Resource>) -> Result<TaskInfo> {
    let cluster = &*ctx.cluster;
    let by_role = |role: Role| {
        resources.iter().find(|r| {
            r.kind == ResourceKind::Service && r.labels.get(labels::ROLE).map(String::as_str) == Some(role.as_str())
        })
    };
    let network =
        resources.iter().find(|r| r.kind == ResourceKind::Network).map(|r| r.name.clone()).unwrap_or_default();
    let worker_service = by_role(Role::Worker);
    let workers_total =
        worker_service.and_then(|s| s.labels.get(labels::REPLICAS)).and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut workers_running = 0;
    let mut workers = Vec::new();
    let mut failure = None;
    if let Some(ws) = worker_service {
        let mut replicas = cluster.replicas(&ws.name, &network).await.or_else(not_found_as_empty)?;
        replicas.sort_by_key(|r| r.slot);
        for r in &replicas {
            if r.state == ReplicaState::Running {
                workers_running += 1;
                workers.extend(r.address);
            } else if r.state.is_terminal() && failure.is_none() {
                failure = Some(replica_failed(&ws.name, r).to_string());
            }
        }
    }
    let state = match by_role(Role::Master) {
        Some(ms) => {
            let replicas = cluster.replicas(&ms.name, &network).await.or_else(not_found_as_empty)?;
            match replicas.first() {
                Some(r) if r.state == ReplicaState::Running => TaskState::Running,
                Some(r) if r.state == ReplicaState::Pending => TaskState::Deploying,
                Some(r) => match (r.exit_code, failed_to_start(r.error.as_deref())) {
                    (_, Some(reason)) => TaskState::Failed { reason: format!("the master could not start: {reason}") },
                    (Some(exit_code), None) => TaskState::Finished { exit_code },
                    (None, None) => TaskState::Failed { reason: replica_failed(&ms.name, r).to_string() },
                },
                None => TaskState::Deploying,
            }
        }
        None => match failure {
            Some(reason) => TaskState::Failed { reason },
            None if worker_service.is_some() || !network.is_empty() => TaskState::Deploying,
            None => TaskState::Failed { reason: "incomplete: only leftovers remain; `atq down` removes them".into() },
        },
    };
    Ok(TaskInfo {
        owner: label_of(&resources, labels::OWNER),
        detached: label_of(&resources, labels::DETACHED).as_deref() == Some("true"),
        expires: label_of(&resources, labels::EXPIRES).and_then(|e| e.parse().ok()),
        created: resources.iter().filter_map(|r| r.created_unix).min(),
        prune: decide(&resources, unix_now()),
        name,
        state,
        workers_running,
        workers_total,
        workers,
        resources,
    })
}
