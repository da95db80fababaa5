//! Cleanup as a concept: the one way atq removes what a deploy created, and the thread that does
//! it when nobody is left to wait.
//!
//! - `remove_deploy` is the one removal path: rollback of a failed deploy,
//!   [`Deployment::teardown`](crate::Deployment::teardown), [`Director::teardown`](crate::Director::teardown),
//!   `prune` and the cleanup of a dropped handle all call it. It selects objects by label — the
//!   deploy's own id ([`labels::DEPLOY`]) for a deployment, so a stale handle never touches a newer
//!   task of the same name — plus the ids the deploy recorded (an object whose labels could not be
//!   read). It lists what there is *before* removing anything (a service the record misses still
//!   holds the network), removes services (their containers go), then configs, then networks,
//!   each kind concurrently, counts "not found" as removed, sweeps once more for objects whose
//!   creation landed late, and reports what it could not remove ([`Error::TeardownIncomplete`]):
//!   calling it again retries exactly that. Replicas on a node that is down (or gone) are not
//!   waited for — their agent cannot answer; the engine removes their containers once the node is
//!   back — and the `Removal` names them, so the caller can say so
//!   ([`Event::LeftOnLostNodes`]).
//! - `Record` is what a deploy created so far; dropped uncommitted (the deploy future was
//!   cancelled), it hands its removal to the cleanup thread.
//! - The cleanup thread (`atq-cleanup`) runs removals on a runtime of its own, so they finish
//!   whatever runtime the user had: a current-thread runtime that a panicking `#[tokio::test]`
//!   drops, or a runtime shut down mid-deploy. [`wait_idle`] lets a process wait for them (within a
//!   bound) before it exits: the CLI calls it, the Python module registers it with `atexit`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use tokio::sync::{mpsc, Notify};

use crate::cluster::{Cluster, LabelSelector, Replica, ReplicaState, Resource, ResourceKind};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::labels;

/// How many objects of one kind are removed at once.
const REMOVALS_AT_ONCE: usize = 16;

/// The order of removal: services hold networks and configs, so they go first.
const REMOVAL_ORDER: [ResourceKind; 3] = [ResourceKind::Service, ResourceKind::Config, ResourceKind::Network];

/// What a removal that succeeded left to the engine.
#[derive(Debug, Default)]
#[must_use]
pub(crate) struct Removal {
    /// Replicas that were [lost](ReplicaState::Lost) with their node when their service was
    /// removed: their containers stay on that node until it is back (then the engine removes
    /// them) — nothing atq can do meanwhile.
    pub(crate) left_on_lost_nodes: Vec<Replica>,
}

impl Removal {
    /// The event that says what was left, if anything was.
    pub(crate) fn event(&self, task: &str) -> Option<Event> {
        if self.left_on_lost_nodes.is_empty() {
            return None;
        }
        let mut nodes: Vec<String> =
            self.left_on_lost_nodes.iter().filter_map(|r| r.node.clone().or_else(|| r.node_id.clone())).collect();
        nodes.sort_unstable();
        nodes.dedup();
        Some(Event::LeftOnLostNodes {
            task: task.to_owned(),
            replicas: self.left_on_lost_nodes.iter().map(|r| r.name.clone()).collect(),
            nodes,
        })
    }
}

/// The replicas of `services` (names) that are lost with their node, asked before removing them. A
/// listing that fails only means nothing is reported (the removal itself says what failed).
async fn lost_replicas(cluster: &dyn Cluster, services: Vec<String>) -> Vec<Replica> {
    let lists: Vec<Vec<Replica>> = stream::iter(services)
        .map(move |name| async move { cluster.replicas(&name, "").await.unwrap_or_default() })
        .buffer_unordered(REMOVALS_AT_ONCE)
        .collect()
        .await;
    let mut lost: Vec<Replica> = lists.into_iter().flatten().filter(|r| r.state == ReplicaState::Lost).collect();
    lost.sort_by(|a, b| a.name.cmp(&b.name));
    lost
}

/// Removes every object matching `selector`, and the `recorded` ones (kind, id) whatever their
/// labels; `task` names the task in the error. See the module docs for the order.
///
/// # Errors
/// [`Error::TeardownIncomplete`] naming what is left, when a removal failed; an engine error when
/// the objects could not even be listed.
pub(crate) async fn remove_matching(
    cluster: &dyn Cluster,
    task: &str,
    selector: &LabelSelector,
    recorded: &[(ResourceKind, String)],
) -> Result<Removal> {
    let mut objects = list(cluster, selector).await?;
    let services: Vec<String> =
        objects.iter().filter(|r| r.kind == ResourceKind::Service).map(|r| r.name.clone()).collect();
    let removal = Removal { left_on_lost_nodes: lost_replicas(cluster, services).await };
    for (kind, id) in recorded {
        if !objects.iter().any(|r| &r.id == id || &r.name == id) {
            objects.push(Resource {
                kind: *kind,
                id: id.clone(),
                name: id.clone(),
                labels: Default::default(),
                created_unix: None,
            });
        }
    }
    let mut failures = remove_in_order(cluster, objects).await;
    // Objects whose creation landed after the first listing (a create whose answer was lost).
    if failures.is_empty() {
        let late = list(cluster, selector).await?;
        failures = remove_in_order(cluster, late).await;
    }
    let Some((cause, what)) = failures.into_iter().next() else { return Ok(removal) };
    // Say everything that is left, not only what failed first.
    let mut left: Vec<String> = list(cluster, selector).await.unwrap_or_default().iter().map(describe).collect();
    if left.is_empty() {
        left.push(what);
    }
    Err(Error::TeardownIncomplete { task: task.to_owned(), left, cause: Box::new(cause) })
}

/// Removes everything carrying the deploy id `deploy_id`, and the recorded objects.
///
/// # Errors
/// As [`remove_matching`].
pub(crate) async fn remove_deploy(
    cluster: &dyn Cluster,
    task: &str,
    deploy_id: &str,
    recorded: &[(ResourceKind, String)],
) -> Result<Removal> {
    remove_matching(cluster, task, &LabelSelector::new().eq(labels::DEPLOY, deploy_id), recorded).await
}

/// Every object of every kind matching `selector`, listed concurrently.
pub(crate) async fn list(cluster: &dyn Cluster, selector: &LabelSelector) -> Result<Vec<Resource>> {
    let (services, configs, networks) = tokio::try_join!(
        cluster.list_resources(ResourceKind::Service, selector),
        cluster.list_resources(ResourceKind::Config, selector),
        cluster.list_resources(ResourceKind::Network, selector),
    )?;
    Ok(services.into_iter().chain(configs).chain(networks).collect())
}

/// Removes `objects` kind by kind in [`REMOVAL_ORDER`], each kind concurrently; returns the
/// failures (error, "kind name"). A kind is removed only once the kinds before it are gone.
async fn remove_in_order(cluster: &dyn Cluster, objects: Vec<Resource>) -> Vec<(Error, String)> {
    let mut failures = Vec::new();
    let mut seen = HashSet::new();
    for kind in REMOVAL_ORDER {
        let batch: Vec<(String, String)> = objects
            .iter()
            .filter(|r| r.kind == kind && seen.insert(r.id.clone()))
            .map(|r| (r.id.clone(), describe(r)))
            .collect();
        if !failures.is_empty() {
            // A service still there holds its network and configs: do not try them now.
            failures.extend(
                batch
                    .into_iter()
                    .map(|(id, what)| (Error::InUse { kind: kind.as_str(), name: id, users: Vec::new() }, what)),
            );
            continue;
        }
        let results: Vec<(Result<()>, String)> = stream::iter(batch)
            .map(move |(id, what)| async move { (remove_one(cluster, kind, &id).await, what) })
            .buffer_unordered(REMOVALS_AT_ONCE)
            .collect()
            .await;
        failures.extend(results.into_iter().filter_map(|(result, what)| result.err().map(|e| (e, what))));
    }
    failures
}

fn describe(r: &Resource) -> String {
    format!("{} {}", r.kind.as_str(), r.name)
}

async fn remove_one(cluster: &dyn Cluster, kind: ResourceKind, id: &str) -> Result<()> {
    let result = match kind {
        ResourceKind::Service => cluster.remove_service(id).await,
        ResourceKind::Config => cluster.remove_config(id).await,
        ResourceKind::Network => cluster.remove_network(id).await,
    };
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// A new deploy id: unique per deploy call (process, counter, time).
#[must_use]
pub(crate) fn new_deploy_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What a deploy created so far: removed (by its deploy id and the recorded ids) unless committed.
///
/// Dropping it uncommitted — the deploy future was cancelled — hands the removal to the cleanup
/// thread, tracked by `tracker` so [`Director::settled`](crate::Director::settled) can wait for it.
pub(crate) struct Record {
    /// The cluster the objects are on.
    cluster: Arc<dyn Cluster>,
    /// Counts this record's background removal, if it needs one.
    tracker: Tracker,
    /// The task, for messages.
    task: String,
    /// The value of [`labels::DEPLOY`] on everything this deploy creates.
    deploy_id: String,
    /// What was created, in order (kind, id).
    items: Vec<(ResourceKind, String)>,
    /// Set once committed or removed: nothing left to do on drop.
    settled: bool,
}

impl Record {
    /// An empty record for a new deploy of `task`.
    pub(crate) fn new(cluster: Arc<dyn Cluster>, tracker: Tracker, task: &str) -> Self {
        Record {
            cluster,
            tracker,
            task: task.to_owned(),
            deploy_id: new_deploy_id(),
            items: Vec::new(),
            settled: false,
        }
    }

    /// This deploy's id.
    pub(crate) fn deploy_id(&self) -> &str {
        &self.deploy_id
    }

    /// Notes an object created.
    pub(crate) fn push(&mut self, kind: ResourceKind, id: String) {
        self.items.push((kind, id));
    }

    /// Forgets an object removed meanwhile.
    pub(crate) fn forget(&mut self, id: &str) {
        self.items.retain(|(_, i)| i != id);
    }

    /// The deploy succeeded: hands over (deploy id, what was created).
    pub(crate) fn commit(mut self) -> (String, Vec<(ResourceKind, String)>) {
        self.commit_inner()
    }

    /// The deploy failed: removes what it created, now.
    pub(crate) async fn rollback(mut self) -> Result<Removal> {
        self.settled = true;
        remove_deploy(&*self.cluster, &self.task, &self.deploy_id, &self.items).await
    }

    /// The deploy failed and the objects are to stay (keep on failure): nothing is removed.
    pub(crate) fn abandon(mut self) -> (String, Vec<(ResourceKind, String)>) {
        self.commit_inner()
    }

    fn commit_inner(&mut self) -> (String, Vec<(ResourceKind, String)>) {
        self.settled = true;
        (std::mem::take(&mut self.deploy_id), std::mem::take(&mut self.items))
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (cluster, task, deploy_id) = (self.cluster.clone(), self.task.clone(), self.deploy_id.clone());
        let items = std::mem::take(&mut self.items);
        self.tracker.spawn(async move {
            if let Err(e) = remove_deploy(&*cluster, &task, &deploy_id, &items).await.map(drop) {
                tracing::warn!(task, error = %e, "cleanup of a cancelled deploy failed; `atq prune` removes what is left");
            }
        });
    }
}

/// Counts the background cleanups of one director, so they can be awaited.
#[derive(Clone, Default)]
pub(crate) struct Tracker {
    /// Cleanups not yet finished, and who waits for them to reach 0.
    state: Arc<(AtomicUsize, Notify)>,
}

impl Tracker {
    /// Runs `work` on the cleanup thread, counted until it finishes.
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let state = self.state.clone();
        state.0.fetch_add(1, Ordering::SeqCst);
        reaper().spawn(Box::pin(async move {
            work.await;
            if state.0.fetch_sub(1, Ordering::SeqCst) == 1 {
                state.1.notify_waiters();
            }
        }));
    }

    /// Waits until every cleanup spawned through this tracker has finished.
    pub(crate) async fn settled(&self) {
        loop {
            let notified = self.state.1.notified();
            if self.state.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A cleanup job.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The process-wide cleanup thread: its queue and how many jobs it has not finished.
struct Reaper {
    /// Where jobs go; the thread spawns each on its own runtime.
    jobs: mpsc::UnboundedSender<Job>,
    /// Jobs not finished yet, and a condition to wait on for 0 (from any thread, no runtime needed).
    pending: Arc<(Mutex<usize>, Condvar)>,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER_STARTED.get_or_init(|| ());
    REAPER.get_or_init(|| {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let pending = Arc::new((Mutex::new(0), Condvar::new()));
        let spawned = std::thread::Builder::new().name("atq-cleanup".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start atq's cleanup runtime; `atq prune` removes what is left");
                    return;
                }
            };
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    tokio::spawn(job);
                }
            });
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start atq's cleanup thread; `atq prune` removes what is left");
        }
        Reaper { jobs, pending }
    })
}

impl Reaper {
    fn spawn(&self, job: Job) {
        let pending = self.pending.clone();
        *pending.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let counted: Job = Box::pin(async move {
            job.await;
            let mut n = pending.0.lock().unwrap_or_else(PoisonError::into_inner);
            *n = n.saturating_sub(1);
            pending.1.notify_all();
        });
        if self.jobs.send(counted).is_err() {
            tracing::error!("atq's cleanup thread is gone; `atq prune` removes what is left");
            let mut n = self.pending.0.lock().unwrap_or_else(PoisonError::into_inner);
            *n = n.saturating_sub(1);
        }
    }
}

/// Waits (blocking the calling thread, no runtime needed) until every background cleanup of the
/// process has finished, at most `timeout`; returns whether they all did. Call it before the
/// process exits: cleanups still running then are lost (`atq prune` removes what they leave).
#[must_use]
pub fn wait_idle(timeout: Duration) -> bool {
    let Some(reaper) = REAPER_STARTED.get().map(|()| reaper()) else { return true };
    let guard = reaper.pending.0.lock().unwrap_or_else(PoisonError::into_inner);
    let (guard, _) =
        reaper.pending.1.wait_timeout_while(guard, timeout, |n| *n > 0).unwrap_or_else(PoisonError::into_inner);
    *guard == 0
}

/// Set once the cleanup thread was asked for: [`wait_idle`] does not start one just to wait.
static REAPER_STARTED: OnceLock<()> = OnceLock::new();

/// How many background cleanups of the process have not finished.
#[must_use]
pub fn pending() -> usize {
    match REAPER_STARTED.get() {
        Some(()) => *reaper().pending.0.lock().unwrap_or_else(PoisonError::into_inner),
        None => 0,
    }
}
