//! [`Director`]: runs tasks on a [`Cluster`]. All orchestration lives here.
//!
//! A deploy follows the plan in DESIGN.md: network, workers (dnsrr), wait for every worker to
//! run with an address, probe, delay, master (with `WORKER_CSV_VIPS`), wait for the master to
//! run. Every object created is recorded; on any error, timeout or cancellation (the deploy
//! future dropped) the record is removed in reverse order, by id, so a deploy that lost a race
//! for a name removes only what it created.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{broadcast, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::cluster::{
    Cluster, ConfigMount, ConfigSpec, LabelSelector, LogOptions, LogStream, NetworkSpec, Replica, ReplicaState,
    Resource, ResourceKind, ServiceSpec,
};
use crate::data;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::labels::{self, Role};
use crate::owner::Owner;
use crate::service::Service;
use crate::task::Task;

/// Where the master finds the worker list as a file (one address per line).
pub const WORKERS_FILE: &str = "/atq/workers";

/// Longest `WORKER_CSV_VIPS` value atq passes in the environment. The kernel caps one
/// environment string at 128 KiB (MAX_ARG_STRLEN); beyond this the master reads
/// [`WORKERS_FILE`] instead, named by `ATQ_WORKERS_FILE`.
pub const MAX_ENV_LIST_BYTES: usize = 120 * 1024;

/// How often to poll the engine: from `min`, growing by half each time, up to `max`; and never
/// sooner than [`POLL_COST_FACTOR`] times what the last poll took.
///
/// The engine has no task events (moby#37403), so readiness is polled; the docker CLI polls
/// every 200 ms. atq starts faster and backs off to 50 ms: a swarm replica takes about a second
/// to start, and a 200 ms ceiling made atq see it ~100 ms late on average per wait, 10–20 % of a
/// small deploy (BENCHMARKS.md). A cheap poll (one service's task list, a few ms) every 50 ms
/// costs the engine little; an expensive one (thousands of replicas) is spaced by its own cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollInterval {
    /// First interval.
    pub min: Duration,
    /// Largest interval.
    pub max: Duration,
}

impl Default for PollInterval {
    fn default() -> Self {
        PollInterval { min: Duration::from_millis(10), max: Duration::from_millis(50) }
    }
}

/// A waiter pauses at least this many times as long as its last poll took, so polling keeps
/// the engine busy at most 1 / (1 + factor) of the time (20 %), however large the answer.
pub const POLL_COST_FACTOR: u32 = 4;

impl PollInterval {
    /// The interval after `current`: half as long again, within `min..=max`.
    pub(crate) fn next(&self, current: Duration) -> Duration {
        (current + current / 2).clamp(self.min, self.max)
    }

    /// The pause before the next poll, given the current interval and how long the last poll took.
    pub(crate) fn pause(current: Duration, took: Duration) -> Duration {
        current.max(took * POLL_COST_FACTOR)
    }
}

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
    /// A replica failed, or the task is incomplete (a leftover).
    Failed {
        /// What failed.
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

/// What the engine holds of one task, as [`Director::list`] and [`Director::inspect`] see it.
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
    /// The process that deployed it (`host:pid:start`).
    pub owner: Option<String>,
    /// When `prune` may remove it (unix seconds).
    pub expires: Option<i64>,
    /// When it was created (unix seconds).
    pub created: Option<i64>,
    /// Every engine object of the task.
    pub resources: Vec<Resource>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Tasks removed.
    pub tasks: Vec<String>,
    /// Engine objects removed.
    pub resources: usize,
}

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cluster: Arc<dyn Cluster>,
    queue: Arc<Semaphore>,
    events: broadcast::Sender<Event>,
    owner: Owner,
    pub(crate) poll: PollInterval,
    pub(crate) background: Background,
}

impl std::fmt::Debug for Director {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Director").field("owner", &self.inner.owner).field("poll", &self.inner.poll).finish()
    }
}

/// No practical limit: the queue only orders deploys when a limit is set.
const UNLIMITED: usize = Semaphore::MAX_PERMITS;

impl Director {
    /// A director driving `cluster`, with no limit on concurrent tasks.
    pub fn new(cluster: impl Cluster + 'static) -> Self {
        Self::from_arc(Arc::new(cluster))
    }

    /// A director driving a shared cluster.
    #[must_use]
    pub fn from_arc(cluster: Arc<dyn Cluster>) -> Self {
        Director {
            inner: Arc::new(Inner {
                cluster,
                queue: Arc::new(Semaphore::new(UNLIMITED)),
                events: broadcast::channel(4096).0,
                owner: Owner::current(),
                poll: PollInterval::default(),
                background: Background::default(),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            cluster: self.inner.cluster.clone(),
            queue: self.inner.queue.clone(),
            events: self.inner.events.clone(),
            owner: self.inner.owner.clone(),
            poll: self.inner.poll,
            background: self.inner.background.clone(),
        };
        f(&mut inner);
        Director { inner: Arc::new(inner) }
    }

    /// Runs at most `k` tasks at once (k ≥ 1); further deploys wait their turn in submission
    /// order. A task holds its slot from deploy until teardown.
    #[must_use]
    pub fn with_concurrency(self, k: usize) -> Self {
        let k = k.clamp(1, UNLIMITED);
        self.rebuild(|inner| inner.queue = Arc::new(Semaphore::new(k)))
    }

    /// Polls the engine at these intervals while waiting.
    #[must_use]
    pub fn with_poll_interval(self, poll: PollInterval) -> Self {
        self.rebuild(|inner| inner.poll = poll)
    }

    /// Records `owner` instead of the current process on what this director creates (for tools
    /// acting on behalf of another process, and for tests of `prune`).
    #[must_use]
    pub fn with_owner(self, owner: Owner) -> Self {
        self.rebuild(|inner| inner.owner = owner)
    }

    /// The cluster this director drives.
    #[must_use]
    pub fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.inner.cluster
    }

    /// A new subscription to the progress events of every task this director runs.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Waits until every background cleanup (of dropped deploys and deployments) has finished.
    pub async fn settled(&self) {
        self.inner.background.settled().await;
    }

    /// Deploys `task`: when this returns, every worker runs and the master has started.
    ///
    /// On any error, or when this future is dropped, everything it created is removed.
    pub async fn deploy(&self, task: &Task) -> Result<Deployment> {
        let permit = self.acquire(task).await?;
        let mut created = Created::new(self.inner.clone(), task.name());
        match self.deploy_steps(task, &mut created).await {
            Ok(workers) => {
                let resources = created.commit();
                Ok(Deployment::new(self.clone(), task.clone(), workers, resources, permit))
            }
            Err(err) => {
                self.emit(Event::RollingBack { task: task.name().to_owned(), reason: err.to_string() });
                created.rollback().await;
                self.emit(Event::TornDown { task: task.name().to_owned() });
                Err(err)
            }
        }
    }

    /// Deploys `task`, waits for its master to exit (at most the task's `runTimeout`), tears
    /// it down and returns what the master did. Teardown happens whatever the outcome.
    pub async fn run(&self, task: &Task) -> Result<crate::deployment::Outcome> {
        let deployment = self.deploy(task).await?;
        let outcome = deployment.wait(task.run_timeout()).await;
        let teardown = deployment.teardown().await;
        let outcome = outcome?;
        teardown?;
        Ok(outcome)
    }

    async fn acquire(&self, task: &Task) -> Result<OwnedSemaphorePermit> {
        let queue = self.inner.queue.clone();
        match queue.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                self.emit(Event::Queued { task: task.name().to_owned() });
                queue.acquire_owned().await.map_err(|_| Error::Cancelled("the director's queue was closed".into()))
            }
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.inner.events.send(event);
    }

    fn base_labels(&self, task: &Task, role: Role, deploy_id: &str) -> BTreeMap<String, String> {
        let mut l = task.labels().clone();
        l.insert(labels::DEPLOY.into(), deploy_id.into());
        let expires = unix_now() + i64::try_from(task.ttl().as_secs()).unwrap_or(i64::MAX / 2);
        l.insert(labels::MANAGED.into(), "true".into());
        l.insert(labels::TASK.into(), task.name().into());
        l.insert(labels::ROLE.into(), role.as_str().into());
        l.insert(labels::OWNER.into(), self.inner.owner.to_string());
        l.insert(labels::EXPIRES.into(), expires.to_string());
        l
    }

    async fn deploy_steps(&self, task: &Task, created: &mut Created) -> Result<Vec<IpAddr>> {
        let cluster = &self.inner.cluster;
        let name = task.name().to_owned();
        let network = task.network_name();

        // 0. Data: a `fileid` naming no stored bundle fails here, before anything is created.
        let worker_data = data::data_mounts(&**cluster, task.workers()).await?;
        let master_data = data::data_mounts(&**cluster, task.master()).await?;

        // 0b. Artifacts are read from the master's container, and only the engine that runs a
        //     container can read its files: on a multi-node swarm the master must run on the node
        //     atq talks to, so it is pinned there. Asked only when the task wants artifacts.
        let pin_master = task.artifacts().is_some();

        // 1. The network is the lock: swarm network names are unique, so of two racing deploys
        //    of one name exactly one creates it.
        let spec = NetworkSpec {
            name: network.clone(),
            labels: self.base_labels(task, Role::Network, &created.deploy_id),
            attachable: true,
            capacity: task.workers().replicas + 2,
        };
        let id = cluster.create_network(&spec).await.map_err(|e| match e {
            Error::Conflict { .. } => Error::TaskExists { name: name.clone() },
            other => other,
        })?;
        created.push(ResourceKind::Network, id);
        self.emit(Event::NetworkCreated { task: name.clone(), network: network.clone() });

        // 2. Workers.
        let parts = ServiceParts { task, role: Role::Worker, network: &network, deploy_id: &created.deploy_id };
        let mut workers_spec = self.service_spec(&parts, task.workers(), task.worker_service_name());
        worker_data.apply_to(&mut workers_spec);
        let replicas = workers_spec.replicas;
        let id = self.create_service(task, &workers_spec).await?;
        created.push(ResourceKind::Service, id);
        self.emit(Event::WorkersCreated { task: name.clone(), service: workers_spec.name.clone(), replicas });

        // 3. Wait until all run with addresses.
        let workers = self.wait_workers(task, &workers_spec.name, &network, replicas).await?;
        self.emit(Event::WorkersReady { task: name.clone(), addresses: workers.clone() });

        // 4. Probe.
        if task.wait_command().is_some() {
            self.probe(task, &network, &workers, created).await?;
        }

        // 5. Delay.
        if !task.delay().is_zero() {
            self.emit(Event::Delay { task: name.clone(), duration: task.delay() });
            tokio::time::sleep(task.delay()).await;
        }

        // 6. Master, with the worker list in its environment and as a file.
        let list = worker_list(&workers);
        let config = ConfigSpec {
            name: format!("{name}_workers"),
            data: workers.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes(),
            labels: self.base_labels(task, Role::Master, &created.deploy_id),
        };
        let config_id = cluster.create_config(&config).await?;
        created.push(ResourceKind::Config, config_id.clone());

        let parts = ServiceParts { task, role: Role::Master, network: &network, deploy_id: &created.deploy_id };
        let mut master = self.service_spec(&parts, task.master(), task.master_service_name());
        master_data.apply_to(&mut master);
        if list.len() <= MAX_ENV_LIST_BYTES {
            master.env.push(("WORKER_CSV_VIPS".into(), list.clone()));
            master.env.push(("REMOTES".into(), list));
        } else {
            tracing::warn!(task = %name, bytes = list.len(), "worker list too long for the environment; the master reads {WORKERS_FILE}");
        }
        master.env.push(("ATQ_WORKERS_FILE".into(), WORKERS_FILE.into()));
        if let Some(dir) = task.artifacts() {
            master.env.push(("ATQ_RESULTS_DIR".into(), dir.into()));
        }
        master.placement.local_node = pin_master;
        master.configs.push(ConfigMount {
            config_id,
            config_name: config.name,
            target: WORKERS_FILE.into(),
            mode: ConfigMount::READ_ONLY,
        });
        let id = self.create_service(task, &master).await?;
        created.push(ResourceKind::Service, id);
        self.emit(Event::MasterCreated { task: name.clone(), service: master.name.clone() });

        // 7. Wait until the master runs (or has already finished: a fast master is no failure).
        self.wait_master_started(task, &master.name, &network).await?;
        self.emit(Event::MasterRunning { task: name });
        Ok(workers)
    }

    async fn create_service(&self, task: &Task, spec: &ServiceSpec) -> Result<String> {
        self.inner.cluster.create_service(spec).await.map_err(|e| match e {
            Error::Conflict { .. } => Error::TaskExists { name: task.name().to_owned() },
            other => other,
        })
    }

    fn service_spec(&self, parts: &ServiceParts<'_>, service: &Service, name: String) -> ServiceSpec {
        let ServiceParts { task, role, network, deploy_id } = *parts;
        let mut labels = self.base_labels(task, role, deploy_id);
        labels.extend(service.labels.clone());
        labels.insert(labels::REPLICAS.into(), service.replicas.to_string());
        let mut env = service.environment.clone();
        env.push(("ATQ_TASK".into(), task.name().into()));
        env.push(("ATQ_ROLE".into(), role.as_str().into()));
        if role == Role::Worker {
            env.push(("MASTER_HOST".into(), task.master_service_name()));
        }
        ServiceSpec {
            name,
            image: service.image.clone(),
            replicas: service.replicas,
            env,
            args: service.args.clone(),
            command: service.command.clone(),
            tty: service.tty,
            networks: vec![network.to_owned()],
            endpoint_mode: service.endpoint_mode,
            container_labels: labels.clone(),
            labels,
            health_check: service.health_check.clone(),
            resources: service.resources,
            placement: crate::cluster::Placement { local_node: false, constraints: service.constraints.clone() },
            mounts: Vec::new(),
            configs: Vec::new(),
            one_off: false,
            stop_grace_period: None,
        }
    }

    async fn wait_workers(&self, task: &Task, service: &str, network: &str, total: u32) -> Result<Vec<IpAddr>> {
        let deadline = Instant::now() + task.start_timeout();
        let mut interval = self.inner.poll.min;
        let mut last_running = u32::MAX;
        loop {
            let asked = Instant::now();
            let replicas = self.inner.cluster.replicas(service, network).await?;
            let took = asked.elapsed();
            if let Some(failed) = replicas.iter().find(|r| r.state.is_terminal()) {
                return Err(replica_failed(service, failed));
            }
            let mut ready: Vec<(u32, IpAddr)> = replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Running)
                .filter_map(|r| r.address.map(|a| (r.slot, a)))
                .collect();
            let running = u32::try_from(ready.len()).unwrap_or(u32::MAX);
            if running != last_running {
                last_running = running;
                self.emit(Event::WorkersRunning { task: task.name().to_owned(), running, total });
            }
            if running >= total {
                ready.sort_unstable();
                return Ok(ready.into_iter().map(|(_, a)| a).collect());
            }
            if Instant::now() >= deadline {
                let missing = describe_missing(&replicas, total);
                return Err(Error::Timeout {
                    phase: crate::error::Phase::Workers,
                    waited: task.start_timeout(),
                    missing,
                });
            }
            let pause = PollInterval::pause(interval, took);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            interval = self.inner.poll.next(interval);
        }
    }

    async fn wait_master_started(&self, task: &Task, service: &str, network: &str) -> Result<Replica> {
        let deadline = Instant::now() + task.start_timeout();
        let mut interval = self.inner.poll.min;
        loop {
            let asked = Instant::now();
            let replicas = self.inner.cluster.replicas(service, network).await?;
            let took = asked.elapsed();
            if let Some(r) = replicas.into_iter().next() {
                match r.state {
                    ReplicaState::Pending => {}
                    ReplicaState::Running | ReplicaState::Complete => return Ok(r),
                    ReplicaState::Failed if r.exit_code.is_some() => return Ok(r),
                    _ => return Err(replica_failed(service, &r)),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    phase: crate::error::Phase::Master,
                    waited: task.start_timeout(),
                    missing: "the master replica is still pending (no node can run it yet?)".into(),
                });
            }
            let pause = PollInterval::pause(interval, took);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            interval = self.inner.poll.next(interval);
        }
    }

    /// Runs the wait command until it passes or its timeout passes.
    async fn probe(&self, task: &Task, network: &str, workers: &[IpAddr], created: &mut Created) -> Result<()> {
        let Some(wait) = task.wait_command() else { return Ok(()) };
        let cluster = &self.inner.cluster;
        let list = worker_list(workers);
        let name = task.probe_service_name();
        let started = Instant::now();
        let deadline = started + wait.timeout;
        let expected = wait.expected_result.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut spec = ServiceSpec {
                name: name.clone(),
                image: wait.image.clone().unwrap_or_else(|| task.master().image.clone()),
                replicas: 1,
                env: vec![
                    ("WORKER_CSV_VIPS".into(), list.clone()),
                    ("REMOTES".into(), list.clone()),
                    ("ATQ_TASK".into(), task.name().into()),
                    ("ATQ_ROLE".into(), Role::Probe.as_str().into()),
                ],
                command: Some(vec!["sh".into(), "-c".into()]),
                args: vec![wait.command.clone()],
                networks: vec![network.to_owned()],
                labels: self.base_labels(task, Role::Probe, &created.deploy_id),
                one_off: true,
                ..ServiceSpec::default()
            };
            spec.container_labels = spec.labels.clone();
            let id = cluster.create_service(&spec).await?;
            created.push(ResourceKind::Service, id.clone());
            let result = self.probe_attempt(&name, network, deadline).await;
            cluster.remove_service(&id).await.or_else(ignore_not_found)?;
            created.forget(&id);
            let (exit_code, output) = result?;
            let passed = exit_code == Some(0) && expected.is_none_or(|e| output.trim() == e);
            if passed {
                self.emit(Event::ProbePassed { task: task.name().to_owned(), attempts: attempt });
                return Ok(());
            }
            let summary = match exit_code {
                Some(code) => format!("exit code {code}, output {:?}", output.trim()),
                None => format!("did not finish in time, output {:?}", output.trim()),
            };
            self.emit(Event::ProbeAttempt { task: task.name().to_owned(), attempt, result: summary.clone() });
            let pause = Duration::from_millis(500);
            if Instant::now() + pause >= deadline {
                return Err(Error::ProbeTimeout { attempts: attempt, waited: started.elapsed(), last: summary });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One run of the probe service: waits for it to exit (or the deadline) and reads its output.
    async fn probe_attempt(&self, service: &str, network: &str, deadline: Instant) -> Result<(Option<i64>, String)> {
        let mut interval = self.inner.poll.min;
        loop {
            let asked = Instant::now();
            let replicas = self.inner.cluster.replicas(service, network).await?;
            let took = asked.elapsed();
            if let Some(r) = replicas.iter().find(|r| r.state.is_terminal()) {
                if r.exit_code.is_none() {
                    // Never ran: the image is missing, or the command could not start.
                    return Err(replica_failed(service, r));
                }
                let output = collect_logs(self.inner.cluster.logs(service, &LogOptions::all()).await?).await?;
                return Ok((r.exit_code, output));
            }
            if Instant::now() >= deadline {
                let output =
                    collect_logs(self.inner.cluster.logs(service, &LogOptions::all()).await?).await.unwrap_or_default();
                return Ok((None, output));
            }
            let pause = PollInterval::pause(interval, took);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            interval = self.inner.poll.next(interval);
        }
    }

    /// Every task on the engine, whoever deployed it.
    pub async fn list(&self) -> Result<Vec<TaskInfo>> {
        let groups = self.task_resources(LabelSelector::new().eq(labels::MANAGED, "true").has(labels::TASK)).await?;
        let mut out = Vec::with_capacity(groups.len());
        for (name, resources) in groups {
            out.push(self.describe(name, resources).await?);
        }
        Ok(out)
    }

    /// One task, as the engine holds it.
    pub async fn inspect(&self, name: &str) -> Result<TaskInfo> {
        let mut groups = self.task_resources(task_selector(name)).await?;
        match groups.remove(name) {
            Some(resources) => self.describe(name.to_owned(), resources).await,
            None => Err(Error::TaskNotFound { name: name.to_owned() }),
        }
    }

    /// Removes every object of the task `name` (`atq down`). Fails with
    /// [`Error::TaskNotFound`] when there is none.
    pub async fn teardown(&self, name: &str) -> Result<()> {
        let resources = self.resources_of(&task_selector(name)).await?;
        if resources.is_empty() {
            return Err(Error::TaskNotFound { name: name.to_owned() });
        }
        remove_resources(&*self.inner.cluster, resources).await?;
        self.emit(Event::TornDown { task: name.to_owned() });
        Ok(())
    }

    /// The logs of one role (`worker`, `master`, `probe`) of the task `name`.
    pub async fn logs(&self, name: &str, role: Role, follow: bool) -> Result<LogStream> {
        let services = self
            .inner
            .cluster
            .list_resources(ResourceKind::Service, &task_selector(name).eq(labels::ROLE, role.as_str()))
            .await?;
        match services.into_iter().next() {
            Some(service) => {
                self.inner.cluster.logs(&service.name, &LogOptions { follow, ..LogOptions::default() }).await
            }
            None => Err(Error::TaskNotFound { name: format!("{name} (role {role})") }),
        }
    }

    /// Reads the zip file or directory at `path` as a data bundle, within the engine's limits,
    /// and stores it on the engine; a task naming its [`id`](data::DataBundle::id) in `fileid`
    /// sees its files under `/atq/data`. Pushing the same content again stores nothing.
    pub async fn push_data(&self, path: impl AsRef<std::path::Path>) -> Result<data::DataBundle> {
        let cluster = &*self.inner.cluster;
        let limits = data::Limits::for_engine(&cluster.info().await?);
        let bundle = data::DataBundle::from_path(path, &limits)?;
        bundle.push(cluster).await?;
        Ok(bundle)
    }

    /// The data bundles stored on the engine.
    pub async fn data_bundles(&self) -> Result<Vec<data::BundleInfo>> {
        data::list_bundles(&*self.inner.cluster).await
    }

    /// Removes a data bundle; refused while a task uses it.
    pub async fn remove_data(&self, id: &str) -> Result<()> {
        data::remove_bundle(&*self.inner.cluster, id).await
    }

    /// Removes the tasks that [`crate::prune::decide`] lets go: never one whose owner runs; one
    /// whose owner is gone unless it is detached; otherwise only past its expiry.
    pub async fn prune(&self) -> Result<PruneReport> {
        let now = unix_now();
        let groups = self.task_resources(LabelSelector::new().eq(labels::MANAGED, "true").has(labels::TASK)).await?;
        let mut report = PruneReport::default();
        for (name, resources) in groups {
            let mut task_labels = BTreeMap::new();
            for r in &resources {
                for (k, v) in &r.labels {
                    task_labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if crate::prune::decide(&task_labels, now, Owner::liveness).remove {
                report.resources += resources.len();
                remove_resources(&*self.inner.cluster, resources).await?;
                self.emit(Event::TornDown { task: name.clone() });
                report.tasks.push(name);
            }
        }
        Ok(report)
    }

    /// Removes every object atq created on the engine, data bundles included.
    pub async fn prune_all(&self) -> Result<PruneReport> {
        let selector = LabelSelector::new().eq(labels::MANAGED, "true");
        let resources = self.resources_of(&selector).await?;
        let mut tasks: Vec<String> =
            resources.iter().filter_map(|r| r.labels.get(labels::TASK).cloned()).collect::<Vec<_>>();
        tasks.sort();
        tasks.dedup();
        let report = PruneReport { tasks, resources: resources.len() };
        remove_resources(&*self.inner.cluster, resources).await?;
        Ok(report)
    }

    async fn resources_of(&self, selector: &LabelSelector) -> Result<Vec<Resource>> {
        let cluster = &self.inner.cluster;
        let (services, configs, networks) = tokio::try_join!(
            cluster.list_resources(ResourceKind::Service, selector),
            cluster.list_resources(ResourceKind::Config, selector),
            cluster.list_resources(ResourceKind::Network, selector),
        )?;
        Ok(services.into_iter().chain(configs).chain(networks).collect())
    }

    async fn task_resources(&self, selector: LabelSelector) -> Result<BTreeMap<String, Vec<Resource>>> {
        let mut groups: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
        for r in self.resources_of(&selector).await? {
            if let Some(task) = r.labels.get(labels::TASK) {
                groups.entry(task.clone()).or_default().push(r);
            }
        }
        Ok(groups)
    }

    async fn describe(&self, name: String, resources: Vec<Resource>) -> Result<TaskInfo> {
        let cluster = &self.inner.cluster;
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
                    Some(r) => match r.exit_code {
                        Some(exit_code) => TaskState::Finished { exit_code },
                        None => TaskState::Failed { reason: replica_failed(&ms.name, r).to_string() },
                    },
                    None => TaskState::Deploying,
                }
            }
            None => match failure {
                Some(reason) => TaskState::Failed { reason },
                None if worker_service.is_some() || !network.is_empty() => TaskState::Deploying,
                None => {
                    TaskState::Failed { reason: "incomplete: only leftovers remain; `atq down` removes them".into() }
                }
            },
        };
        Ok(TaskInfo {
            owner: label_of(&resources, labels::OWNER),
            expires: label_of(&resources, labels::EXPIRES).and_then(|e| e.parse().ok()),
            created: resources.iter().filter_map(|r| r.created_unix).min(),
            name,
            state,
            workers_running,
            workers_total,
            workers,
            resources,
        })
    }
}

/// What a worker or master service spec is made from, besides the [`Service`].
#[derive(Clone, Copy)]
struct ServiceParts<'a> {
    task: &'a Task,
    role: Role,
    network: &'a str,
    deploy_id: &'a str,
}

fn task_selector(name: &str) -> LabelSelector {
    LabelSelector::new().eq(labels::MANAGED, "true").eq(labels::TASK, name)
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

fn ignore_not_found(e: Error) -> Result<()> {
    if e.is_not_found() {
        Ok(())
    } else {
        Err(e)
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `a,b,c`: the worker list as ATQ-Director passed it.
fn worker_list(workers: &[IpAddr]) -> String {
    let mut out = String::with_capacity(workers.len() * 16);
    for (i, a) in workers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&a.to_string());
    }
    out
}

pub(crate) fn replica_failed(service: &str, r: &Replica) -> Error {
    let message = match (&r.error, r.exit_code) {
        (Some(e), _) if !e.is_empty() => e.clone(),
        (_, Some(code)) => format!("exited with code {code}"),
        _ => format!("is {}", r.state),
    };
    Error::ReplicaFailed { service: service.to_owned(), replica: r.name.clone(), state: r.state.to_string(), message }
}

fn describe_missing(replicas: &[Replica], total: u32) -> String {
    let running = replicas.iter().filter(|r| r.state == ReplicaState::Running && r.address.is_some()).count();
    let pending: Vec<&str> =
        replicas.iter().filter(|r| r.state == ReplicaState::Pending).map(|r| r.name.as_str()).take(5).collect();
    let mut text = format!("{running}/{total} running");
    if !pending.is_empty() {
        text.push_str(&format!("; still pending: {}", pending.join(", ")));
        if replicas.len() > 5 {
            text.push_str(", …");
        }
    }
    if replicas.len() < total as usize {
        text.push_str(&format!("; {} not scheduled yet", total as usize - replicas.len()));
    }
    text
}

/// Reads a finite log stream into one string, a line per log line.
pub(crate) async fn collect_logs(mut stream: LogStream) -> Result<String> {
    let mut out = String::new();
    while let Some(line) = stream.next().await {
        let line = line?;
        out.push_str(&line.text);
        out.push('\n');
    }
    Ok(out)
}

/// Removes resources: services first (their containers go), then configs, then networks.
/// Missing objects count as removed. Every removal is tried; the first error is returned.
pub(crate) async fn remove_resources(cluster: &dyn Cluster, mut resources: Vec<Resource>) -> Result<()> {
    resources.sort_by_key(|r| removal_rank(r.kind));
    let mut first_error = None;
    for r in resources {
        if let Err(e) = remove_one(cluster, r.kind, &r.id).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The order of removal: services hold networks and configs, so they go first.
fn removal_rank(kind: ResourceKind) -> u8 {
    match kind {
        ResourceKind::Service => 0,
        ResourceKind::Config => 1,
        ResourceKind::Network => 2,
    }
}

async fn remove_one(cluster: &dyn Cluster, kind: ResourceKind, id: &str) -> Result<()> {
    let result = match kind {
        ResourceKind::Service => cluster.remove_service(id).await,
        ResourceKind::Config => cluster.remove_config(id).await,
        ResourceKind::Network => cluster.remove_network(id).await,
    };
    result.or_else(ignore_not_found)
}

/// What a deploy created so far, removed in reverse order unless committed.
///
/// Dropping it uncommitted (the deploy future was cancelled) removes the objects in a
/// background task, tracked by the director so [`Director::settled`] can wait for it.
pub(crate) struct Created {
    inner: Arc<Inner>,
    task: String,
    /// Value of the [`labels::DEPLOY`] label on everything this deploy creates.
    deploy_id: String,
    items: Vec<(ResourceKind, String)>,
}

impl Created {
    fn new(inner: Arc<Inner>, task: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let deploy_id = format!("{}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        Created { inner, task: task.to_owned(), deploy_id, items: Vec::new() }
    }

    fn push(&mut self, kind: ResourceKind, id: String) {
        self.items.push((kind, id));
    }

    fn forget(&mut self, id: &str) {
        self.items.retain(|(_, i)| i != id);
    }

    fn commit(mut self) -> Vec<(ResourceKind, String)> {
        self.deploy_id.clear();
        std::mem::take(&mut self.items)
    }

    async fn rollback(mut self) {
        let items = std::mem::take(&mut self.items);
        let deploy_id = std::mem::take(&mut self.deploy_id);
        remove_in_reverse(&*self.inner.cluster, &self.task, &deploy_id, items).await;
    }
}

/// Removes what a deploy recorded, and anything else carrying its deploy id (an object whose
/// creation succeeded but whose answer was lost): services first, then configs, then networks,
/// newest first within a kind. Then sweeps once more for objects whose creation landed late.
///
/// The unrecorded objects are found *before* anything is removed: a service the record misses
/// still holds the task network, and the engine refuses to remove a network in use (a real
/// engine is retried for its whole removal timeout before giving up).
async fn remove_in_reverse(cluster: &dyn Cluster, task: &str, deploy_id: &str, items: Vec<(ResourceKind, String)>) {
    let selector = LabelSelector::new().eq(labels::DEPLOY, deploy_id);
    let mut all: Vec<(ResourceKind, String)> = items.into_iter().rev().collect();
    for kind in [ResourceKind::Service, ResourceKind::Config, ResourceKind::Network] {
        match cluster.list_resources(kind, &selector).await {
            Ok(found) => {
                for r in found {
                    if !all.iter().any(|(_, id)| *id == r.id || *id == r.name) {
                        all.push((kind, r.id));
                    }
                }
            }
            Err(e) => tracing::warn!(task, error = %e, "rollback could not list what the deploy created"),
        }
    }
    all.sort_by_key(|(kind, _)| removal_rank(*kind));
    for (kind, id) in all {
        if let Err(e) = remove_one(cluster, kind, &id).await {
            tracing::warn!(task, kind = kind.as_str(), id, error = %e, "rollback could not remove an object; `atq prune` will");
        }
    }
    for kind in [ResourceKind::Service, ResourceKind::Config, ResourceKind::Network] {
        match cluster.list_resources(kind, &selector).await {
            Ok(left) => {
                if let Err(e) = remove_resources(cluster, left).await {
                    tracing::warn!(task, error = %e, "rollback could not remove an object; `atq prune` will");
                }
            }
            Err(e) => tracing::warn!(task, error = %e, "rollback could not list what is left; `atq prune` will"),
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.deploy_id.is_empty() {
            return; // committed or rolled back
        }
        let items = std::mem::take(&mut self.items);
        let inner = self.inner.clone();
        let task = self.task.clone();
        let deploy_id = self.deploy_id.clone();
        inner.clone().background.spawn(async move {
            remove_in_reverse(&*inner.cluster, &task, &deploy_id, items).await;
        });
    }
}

/// Background cleanups, counted so callers can wait for them.
#[derive(Clone, Default)]
pub(crate) struct Background {
    state: Arc<(AtomicUsize, Notify)>,
}

impl Background {
    pub(crate) fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime to clean up in; `atq prune` will remove what is left");
            return;
        };
        let state = self.state.clone();
        state.0.fetch_add(1, Ordering::SeqCst);
        handle.spawn(async move {
            work.await;
            if state.0.fetch_sub(1, Ordering::SeqCst) == 1 {
                state.1.notify_waiters();
            }
        });
    }

    async fn settled(&self) {
        loop {
            let notified = self.state.1.notified();
            if self.state.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::MockCluster;
    use mockall::Sequence;

    fn running(service: &str, address: &str) -> Vec<Replica> {
        vec![Replica {
            id: format!("{service}-1"),
            name: format!("{service}.1"),
            slot: 1,
            state: ReplicaState::Running,
            address: Some(address.parse().unwrap()),
            exit_code: None,
            error: None,
            node_id: None,
            container_id: None,
        }]
    }

    /// The plan's order matters: the network before anything on it, every worker running
    /// before the master exists, the worker list stored before the master that mounts it.
    #[tokio::test]
    async fn deploy_calls_the_engine_in_the_plans_order() {
        let mut engine = MockCluster::new();
        let mut seq = Sequence::new();
        engine
            .expect_create_network()
            .withf(|spec| spec.name == "seq_net" && spec.attachable)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok("net-id".into()));
        engine
            .expect_create_service()
            .withf(|spec| spec.name == "seq_worker" && spec.replicas == 1)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok("worker-id".into()));
        engine
            .expect_replicas()
            .withf(|service, network| service == "seq_worker" && network == "seq_net")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|s, _| Ok(running(s, "10.0.0.2")));
        engine
            .expect_create_config()
            .withf(|spec| spec.name == "seq_workers" && spec.data == b"10.0.0.2\n")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok("config-id".into()));
        engine
            .expect_create_service()
            .withf(|spec| {
                spec.name == "seq_master"
                    && spec.env.contains(&("WORKER_CSV_VIPS".into(), "10.0.0.2".into()))
                    && spec.configs.iter().any(|c| c.config_id == "config-id")
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok("master-id".into()));
        engine
            .expect_replicas()
            .withf(|service, _| service == "seq_master")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|s, _| Ok(running(s, "10.0.0.3")));
        let director = Director::new(engine);
        let task = Task::builder("seq").workers(Service::new("i")).master(Service::new("i")).build().unwrap();
        let deployment = director.deploy(&task).await.unwrap();
        assert_eq!(deployment.workers(), ["10.0.0.2".parse::<IpAddr>().unwrap()]);
        deployment.keep();
    }

    #[test]
    fn polling_backs_off_from_min_to_max() {
        let poll = PollInterval { min: Duration::from_millis(10), max: Duration::from_millis(40) };
        let mut d = poll.min;
        let mut seen = vec![d];
        for _ in 0..5 {
            d = poll.next(d);
            seen.push(d);
        }
        assert_eq!(seen.iter().map(|d| d.as_millis()).collect::<Vec<_>>(), vec![10, 15, 22, 33, 40, 40]);
    }

    fn slow_task() -> Task {
        Task::builder("slow").workers(Service::new("i").replicas(3)).master(Service::new("i")).build().unwrap()
    }

    /// A replica that starts is seen within the poll ceiling (50 ms by default): the deploy
    /// of workers and master that each take 2 s to start ends within 4 s plus two ceilings.
    #[tokio::test(start_paused = true)]
    async fn a_started_replica_is_seen_within_the_poll_ceiling() {
        let fake = crate::FakeCluster::new().with_latency(Duration::from_secs(2));
        let director = Director::new(fake);
        let started = Instant::now();
        director.deploy(&slow_task()).await.unwrap().keep();
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(4));
        assert!(took <= Duration::from_secs(4) + 2 * PollInterval::default().max, "{took:?}");
    }

    /// A poll that takes long (a task list of thousands of replicas) spaces the next one by
    /// POLL_COST_FACTOR times its own cost, not by the poll ceiling.
    #[tokio::test(start_paused = true)]
    async fn expensive_polls_are_spaced_by_their_cost() {
        let fake =
            crate::FakeCluster::new().with_latency(Duration::from_secs(2)).with_call_delay(Duration::from_millis(100));
        let director = Director::new(fake.clone());
        director.deploy(&slow_task()).await.unwrap().keep();
        // Each wait lasts about 2 s; a poll costs 100 ms and is followed by a pause of at least
        // 400 ms: about 5 polls per wait, 10 in all (paced by the 50 ms ceiling it would be ~28).
        let polls = fake.calls(crate::cluster::fake::CallKind::Replicas);
        assert!(polls <= 12, "{polls} polls");
    }

    #[test]
    fn the_worker_list_is_comma_separated_in_slot_order() {
        let a: Vec<IpAddr> = vec!["10.0.0.3".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(worker_list(&a), "10.0.0.3,10.0.0.2");
        assert_eq!(worker_list(&[]), "");
    }
}
