//! [`Director`]: runs tasks on a [`Cluster`]. All orchestration lives under it.
//!
//! This module is the facade; the work is done by its parts, one concept each:
//! - `plan` deploys a task step by step (network, workers, probe, delay, master), recording
//!   what it creates so that a failure, a timeout or a dropped future removes exactly that;
//! - `probe` runs the task's wait command until it passes;
//! - [`inventory`] reads tasks back from the engine's labels: [`TaskInfo`], [`TaskState`],
//!   `list`, `inspect`, `prune`;
//! - waiting is [`crate::wait`], removal is [`crate::cleanup`], and the whole run flow (deploy,
//!   logs, wait, artifacts, keep or teardown, interrupts) is [`crate::run`].

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};

use crate::cleanup::{self, Record, Tracker};
use crate::cluster::{Cluster, LogOptions, LogStream, ResourceKind};
use crate::context::Context;
use crate::data;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::event::{Event, RunEvent};
use crate::labels::{self, Role};
use crate::owner::Owner;
use crate::task::Task;
use crate::wait::PollInterval;

pub mod inventory;
pub(crate) mod plan;
pub(crate) mod probe;

pub use inventory::{PruneReport, PrunedTask, TaskInfo, TaskState};
pub use plan::{MAX_ENV_LIST_BYTES, WORKERS_FILE};

/// Deploys, watches and removes tasks on a [`Cluster`]. Cheap to clone; clones share the queue,
/// the event stream and the background cleanups.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atq_core::Error> {
/// use atq_core::{Director, FakeCluster, Service, Task};
/// let director = Director::new(FakeCluster::new()).with_concurrency(2);
/// let task = Task::builder("demo").workers(Service::new("img").replicas(2)).master(Service::new("img")).build()?;
/// let outcome = director.run(&task).await?;
/// assert_eq!(outcome.exit_code, 0);
/// assert!(director.list().await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Director {
    /// What deployments share with the director.
    pub(crate) ctx: Arc<Context>,
    /// At most K tasks at once: a task holds a permit from deploy until teardown.
    queue: Arc<Semaphore>,
}

impl std::fmt::Debug for Director {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Director").field("owner", &self.ctx.owner).field("poll", &self.ctx.poll).finish()
    }
}

/// No practical limit: the queue only orders deploys when a limit is set.
const UNLIMITED: usize = Semaphore::MAX_PERMITS;

/// How a deploy behaves beyond the task itself.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DeployOptions {
    /// On failure, leave what was created on the engine (for debugging) instead of removing it.
    pub(crate) keep_on_failure: bool,
    /// The task is meant to outlive this process (`atq up`, `--keep`, keep-on-failure): `prune`
    /// removes it only past its expiry, never because its owner is gone.
    pub(crate) detached: bool,
    /// Where this deploy's events also go (the run flow's own stream).
    pub(crate) sink: Option<mpsc::UnboundedSender<RunEvent>>,
}

impl DeployOptions {
    /// Remove everything on failure; attached to this process.
    pub fn new() -> Self {
        Self::default()
    }

    /// On failure, leave what was created for debugging (`atq down NAME` removes it).
    pub fn keep_on_failure(mut self, keep: bool) -> Self {
        self.keep_on_failure = keep;
        self
    }

    /// Mark the task as meant to outlive this process: `prune` removes it only past its expiry.
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    pub(crate) fn sink(mut self, sink: mpsc::UnboundedSender<RunEvent>) -> Self {
        self.sink = Some(sink);
        self
    }
}

/// Sends a deploy's events to the director's subscribers and to the deploy's own sink.
#[derive(Clone)]
pub(crate) struct Emitter {
    ctx: Arc<Context>,
    sink: Option<mpsc::UnboundedSender<RunEvent>>,
}

impl Emitter {
    pub(crate) fn new(ctx: Arc<Context>, sink: Option<mpsc::UnboundedSender<RunEvent>>) -> Self {
        Emitter { ctx, sink }
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(sink) = &self.sink {
            let _ = sink.send(RunEvent::progress(event.clone()));
        }
        self.ctx.emit(event);
    }
}

impl Director {
    /// A director driving `cluster`, with no limit on concurrent tasks.
    pub fn new(cluster: impl Cluster + 'static) -> Self {
        Self::from_arc(Arc::new(cluster))
    }

    /// A director driving a shared cluster.
    #[must_use]
    pub fn from_arc(cluster: Arc<dyn Cluster>) -> Self {
        Director {
            ctx: Arc::new(Context {
                cluster,
                events: broadcast::channel(4096).0,
                owner: Owner::current(),
                poll: PollInterval::default(),
                background: Tracker::default(),
            }),
            queue: Arc::new(Semaphore::new(UNLIMITED)),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Context)) -> Self {
        let mut ctx = Context {
            cluster: self.ctx.cluster.clone(),
            events: self.ctx.events.clone(),
            owner: self.ctx.owner.clone(),
            poll: self.ctx.poll,
            background: self.ctx.background.clone(),
        };
        f(&mut ctx);
        Director { ctx: Arc::new(ctx), queue: self.queue }
    }

    /// Runs at most `k` tasks at once (k ≥ 1); further deploys wait their turn in submission
    /// order. A task holds its slot from deploy until teardown.
    #[must_use]
    pub fn with_concurrency(mut self, k: usize) -> Self {
        self.queue = Arc::new(Semaphore::new(k.clamp(1, UNLIMITED)));
        self
    }

    /// Polls the engine at these intervals while waiting.
    #[must_use]
    pub fn with_poll_interval(self, poll: PollInterval) -> Self {
        self.rebuild(|ctx| ctx.poll = poll)
    }

    /// Records `owner` instead of the current process on what this director creates (for tools
    /// acting on behalf of another process, and for tests of `prune`).
    #[must_use]
    pub fn with_owner(self, owner: Owner) -> Self {
        self.rebuild(|ctx| ctx.owner = owner)
    }

    /// The cluster this director drives.
    #[must_use]
    pub fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.ctx.cluster
    }

    /// A new subscription to the progress events of every task this director runs.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.ctx.events.subscribe()
    }

    /// Waits until every background cleanup (of dropped deploys and deployments) has finished.
    pub async fn settled(&self) {
        self.ctx.background.settled().await;
    }

    /// Deploys `task`: when this returns, every worker runs and the master has started.
    ///
    /// On any error, or when this future is dropped, everything it created is removed.
    pub async fn deploy(&self, task: &Task) -> Result<Deployment> {
        self.deploy_with(task, DeployOptions::new()).await
    }

    /// [`deploy`](Self::deploy) with options: keep what was created on failure, or mark the task
    /// detached (to outlive this process).
    pub async fn deploy_with(&self, task: &Task, options: DeployOptions) -> Result<Deployment> {
        let emitter = Emitter::new(self.ctx.clone(), options.sink.clone());
        let permit = self.acquire(task, &emitter).await?;
        let mut record = Record::new(self.ctx.cluster.clone(), self.ctx.background.clone(), task.name());
        match plan::deploy(&self.ctx, task, &mut record, &emitter, options.detached || options.keep_on_failure).await {
            Ok(workers) => {
                let (deploy_id, created) = record.commit();
                Ok(Deployment::new(self.ctx.clone(), task.clone(), workers, deploy_id, created, permit, options.sink))
            }
            Err(Error::TaskExists { name }) => {
                // What this deploy made before it lost the race is removed; nothing of the
                // task that holds the name is touched (the record holds only this deploy's ids).
                let _ = record.rollback().await;
                Err(Error::TaskExists { name })
            }
            Err(err) if options.keep_on_failure => {
                let _ = record.abandon();
                emitter.emit(Event::Kept {
                    task: task.name().to_owned(),
                    reason: format!(
                        "the deploy failed ({err}); kept for debugging: `atq down {}` removes it",
                        task.name()
                    ),
                });
                Err(err)
            }
            Err(err) => {
                emitter.emit(Event::RollingBack { task: task.name().to_owned(), reason: err.to_string() });
                match record.rollback().await {
                    Ok(removal) => {
                        if let Some(event) = removal.event(task.name()) {
                            emitter.emit(event);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(task = task.name(), error = %e, "rollback left objects behind; `atq prune` removes them");
                    }
                }
                emitter.emit(Event::TornDown { task: task.name().to_owned() });
                Err(err)
            }
        }
    }

    async fn acquire(&self, task: &Task, emitter: &Emitter) -> Result<OwnedSemaphorePermit> {
        match self.queue.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                emitter.emit(Event::Queued { task: task.name().to_owned() });
                self.queue
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Cancelled("the director's queue was closed".into()))
            }
        }
    }

    /// A handle on the deploy `deploy_id` of `task` that another process made and left running
    /// (a service restarted): its master's service must exist; the workers' addresses are read
    /// back from the engine. The handle tears down exactly that deploy, and holds a queue slot.
    ///
    /// # Errors
    /// [`Error::TaskNotFound`] when the deploy has no master on the engine; the engine's errors.
    pub(crate) async fn attach(
        &self,
        task: &Task,
        deploy_id: &str,
        sink: Option<mpsc::UnboundedSender<RunEvent>>,
    ) -> Result<Deployment> {
        let cluster = &*self.ctx.cluster;
        let selector = crate::cluster::LabelSelector::new().eq(labels::DEPLOY, deploy_id);
        let services = cluster.list_resources(ResourceKind::Service, &selector).await?;
        if !services.iter().any(|s| s.name == task.master_service_name()) {
            return Err(Error::TaskNotFound { name: task.name().to_owned() });
        }
        let mut workers = cluster.replicas(&task.worker_service_name(), &task.network_name()).await?;
        workers.retain(|r| !r.state.is_terminal());
        workers.sort_by_key(|r| r.slot);
        let addresses = workers.iter().filter_map(|r| r.address).collect();
        let emitter = Emitter::new(self.ctx.clone(), sink.clone());
        let permit = self.acquire(task, &emitter).await?;
        Ok(Deployment::new(self.ctx.clone(), task.clone(), addresses, deploy_id.to_owned(), Vec::new(), permit, sink))
    }

    /// Every task on the engine, whoever deployed it.
    pub async fn list(&self) -> Result<Vec<TaskInfo>> {
        inventory::list(&self.ctx).await
    }

    /// One task, as the engine holds it.
    pub async fn inspect(&self, name: &str) -> Result<TaskInfo> {
        inventory::inspect(&self.ctx, name).await
    }

    /// Removes every object of the task `name`, whoever deployed it (`atq down`). Fails with
    /// [`Error::TaskNotFound`] when there is none, and with [`Error::TeardownIncomplete`] naming
    /// what is left when a removal failed (calling it again retries).
    pub async fn teardown(&self, name: &str) -> Result<()> {
        let selector = inventory::task_selector(name);
        if cleanup::list(&*self.ctx.cluster, &selector).await?.is_empty() {
            return Err(Error::TaskNotFound { name: name.to_owned() });
        }
        self.ctx.emit(Event::TeardownStarted { task: name.to_owned() });
        let removal = cleanup::remove_matching(&*self.ctx.cluster, name, &selector, &[]).await?;
        if let Some(event) = removal.event(name) {
            self.ctx.emit(event);
        }
        self.ctx.emit(Event::TornDown { task: name.to_owned() });
        Ok(())
    }

    /// Removes what the deploy `deploy_id` of the task `name` created, and nothing else: not a
    /// task of the same name deployed by another deploy (another process, a later `atq up`).
    /// This is how a test fixture removes what its own test left (the id comes from
    /// [`Deployment::deploy_id`] or [`Event::NetworkCreated`]). Returns whether anything of it
    /// was still on the engine. A failed removal is [`Error::TeardownIncomplete`] naming what is
    /// left; calling it again retries.
    pub async fn teardown_deploy(&self, name: &str, deploy_id: &str) -> Result<bool> {
        let selector = crate::cluster::LabelSelector::new().eq(labels::DEPLOY, deploy_id);
        if cleanup::list(&*self.ctx.cluster, &selector).await?.is_empty() {
            return Ok(false);
        }
        self.ctx.emit(Event::TeardownStarted { task: name.to_owned() });
        let removal = cleanup::remove_deploy(&*self.ctx.cluster, name, deploy_id, &[]).await?;
        if let Some(event) = removal.event(name) {
            self.ctx.emit(event);
        }
        self.ctx.emit(Event::TornDown { task: name.to_owned() });
        Ok(true)
    }

    /// The logs of one role (`worker`, `master`, `probe`) of the task `name`: every replica's
    /// lines in time order, each naming its replica. With [`LogOptions::follow`], the stream ends
    /// once every replica of the role has exited.
    pub async fn logs(&self, name: &str, role: Role, options: &LogOptions) -> Result<LogStream> {
        let selector = inventory::task_selector(name).eq(labels::ROLE, role.as_str());
        let services = self.ctx.cluster.list_resources(ResourceKind::Service, &selector).await?;
        match services.into_iter().next() {
            Some(service) => self.ctx.cluster.logs(&service.name, options).await,
            None => {
                let any =
                    self.ctx.cluster.list_resources(ResourceKind::Service, &inventory::task_selector(name)).await?;
                if any.is_empty()
                    && cleanup::list(&*self.ctx.cluster, &inventory::task_selector(name)).await?.is_empty()
                {
                    Err(Error::TaskNotFound { name: name.to_owned() })
                } else {
                    Err(Error::NotFound { kind: role_kind(role), name: name.to_owned() })
                }
            }
        }
    }

    /// Reads the zip file or directory at `path` as a data bundle, within the engine's limits,
    /// and stores it on the engine; a task naming its [`id`](data::DataBundle::id) in `fileid`
    /// sees its files under `/atq/data`. Pushing the same content again stores nothing.
    pub async fn push_data(&self, path: impl AsRef<std::path::Path>) -> Result<data::DataBundle> {
        self.push_data_sharded(path, &[]).await
    }

    /// As [`push_data`](Self::push_data), marking files of the bundle to be split across the
    /// workers of every task that mounts it (see [`DataBundle::with_shard`](data::DataBundle::with_shard)).
    pub async fn push_data_sharded(
        &self,
        path: impl AsRef<std::path::Path>,
        shards: &[data::Shard],
    ) -> Result<data::DataBundle> {
        let cluster = &*self.ctx.cluster;
        let limits = data::Limits::for_engine(&cluster.info().await?);
        let mut bundle = data::DataBundle::from_path(path, &limits)?;
        for shard in shards {
            bundle = bundle.with_shard(shard.clone())?;
        }
        bundle.push(cluster).await?;
        Ok(bundle)
    }

    /// Reads a zip or tar archive held in memory (an upload) as a data bundle, within the
    /// engine's limits, and stores it on the engine, as [`push_data`](Self::push_data) does.
    pub async fn push_data_archive(&self, bytes: &[u8], source_name: &str) -> Result<data::DataBundle> {
        let cluster = &*self.ctx.cluster;
        let limits = data::Limits::for_engine(&cluster.info().await?);
        let bundle = data::DataBundle::from_archive_bytes(bytes, source_name, &limits)?;
        bundle.push(cluster).await?;
        Ok(bundle)
    }

    /// The data bundles stored on the engine.
    pub async fn data_bundles(&self) -> Result<Vec<data::BundleInfo>> {
        data::list_bundles(&*self.ctx.cluster).await
    }

    /// Removes a data bundle; refused while a task uses it.
    pub async fn remove_data(&self, id: &str) -> Result<()> {
        data::remove_bundle(&*self.ctx.cluster, id).await
    }

    /// What [`prune`](Self::prune) would do with each task on the engine, and why (nothing is
    /// removed): `atq prune --dry-run` and `atq ls` show it.
    pub async fn prune_plan(&self) -> Result<Vec<(String, crate::prune::PruneDecision)>> {
        inventory::prune_plan(&self.ctx).await
    }

    /// Removes the tasks that [`crate::prune::decide`] lets go: never one whose owner runs; one
    /// whose owner is gone unless it is detached; otherwise only past its expiry. One failed
    /// removal does not stop the others: the report says, per task, what was removed and what failed.
    pub async fn prune(&self) -> Result<PruneReport> {
        inventory::prune(&self.ctx).await
    }

    /// Removes every object atq created on the engine, data bundles included.
    pub async fn prune_all(&self) -> Result<PruneReport> {
        inventory::prune_all(&self.ctx).await
    }
}

/// What a role's service is called in a "not found" error.
fn role_kind(role: Role) -> &'static str {
    match role {
        Role::Worker => "worker service",
        Role::Master => "master service",
        Role::Probe => "probe (it runs only while the task deploys)",
        Role::Network | Role::Data => "service",
    }
}

#[cfg(test)]
mod tests;
