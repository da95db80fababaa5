//! The handle of a deployed task: [`Deployment`], and what its master did: [`Outcome`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::cleanup;
use crate::cluster::{LogOptions, LogStream, Replica, ReplicaState, ResourceKind};
use crate::context::Context;
use crate::error::{Error, Phase, Result};
use crate::event::{Event, RunEvent};
use crate::task::Task;
use crate::wait::{self, conditions};

/// How many of the master's last log lines an [`Outcome`] keeps by default.
pub const DEFAULT_LOG_TAIL: usize = 1000;

/// What the master did, once it exited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The task.
    pub task: String,
    /// The master's exit code.
    pub exit_code: i64,
    /// The master replica's final state (`complete` or `failed`).
    pub state: ReplicaState,
    /// The engine's message about the master, if it failed ("task: non-zero exit (3)", or why it
    /// could not start: `exec: "/atq/data/run.sh": permission denied`).
    pub error: Option<String>,
    /// Whether the master never started its program (the engine could not start the container);
    /// `error` says why.
    pub failed_to_start: bool,
    /// The master's last log lines (stdout and stderr, in order), a line per log line: at most
    /// [`DEFAULT_LOG_TAIL`] unless asked otherwise; the whole log streams as it comes with
    /// [`Director::run_with`](crate::Director::run_with).
    pub logs: String,
    /// Workers that stopped while the master ran (died, were killed, exited), or were
    /// [lost](ReplicaState::Lost) with their node (each names its node: `node_id`, `node`).
    pub failed_workers: Vec<Replica>,
    /// Time from when `wait` started until atq saw the master's exit.
    pub waited: Duration,
}

impl Outcome {
    /// Whether the master exited with code 0 and every worker stayed up.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 && self.failed_workers.is_empty()
    }
}

/// The master's replica once it exited, and the workers that stopped meanwhile.
pub(crate) struct Exit {
    pub(crate) master: Replica,
    pub(crate) failed_workers: Vec<Replica>,
    pub(crate) waited: Duration,
}

impl Exit {
    /// The error of a master that stopped without an exit code — lost with its node, or never
    /// started — for which there is no outcome (and no log worth waiting for: the engine cannot
    /// reach a container on a node that is down).
    pub(crate) fn without_exit_code(&self, task: &str) -> Option<Error> {
        self.master.exit_code.is_none().then(|| conditions::replica_failed(&format!("{task} master"), &self.master))
    }

    /// The outcome, with `logs` as its log tail.
    pub(crate) fn into_outcome(self, task: &str, logs: String) -> Result<Outcome> {
        if let Some(e) = self.without_exit_code(task) {
            return Err(e);
        }
        let exit_code = self.master.exit_code.unwrap_or_default();
        let error = self.master.error.filter(|e| !e.is_empty());
        Ok(Outcome {
            task: task.to_owned(),
            exit_code,
            state: self.master.state,
            failed_to_start: failed_to_start(error.as_deref()).is_some(),
            error,
            logs,
            failed_workers: self.failed_workers,
            waited: self.waited,
        })
    }
}

/// Whether a master replica that stopped with `error` never started its program (the engine
/// could not start the container: an entrypoint without the execute bit, a missing binary),
/// rather than running and exiting: swarm reports a plain exit as `task: non-zero exit (N)`.
#[must_use]
pub fn failed_to_start(error: Option<&str>) -> Option<&str> {
    error.filter(|e| !e.is_empty() && !e.starts_with("task: non-zero exit"))
}

/// Where a handle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handle {
    /// Deployed; removed on drop.
    Live,
    /// Removed.
    TornDown,
    /// Left on the engine on purpose.
    Kept,
}

/// A deployed task: its workers run and its master has started.
///
/// Call [`teardown`](Deployment::teardown) when done. Dropping a deployment that was neither
/// torn down nor [kept](Deployment::keep) removes it on atq's cleanup thread (tracked by
/// [`Director::settled`](crate::Director::settled)), whatever runtime is left: a test that panics
/// under `#[tokio::test]` still leaves nothing behind.
#[derive(Debug)]
pub struct Deployment {
    /// The cluster, events and background cleanups it shares with its director.
    ctx: Arc<Context>,
    task: Task,
    workers: Vec<IpAddr>,
    /// The value of the deploy label on everything this deploy created: the teardown selects by
    /// it, so a stale handle never touches a newer task of the same name.
    deploy_id: String,
    /// What the deploy created (kind, id), in creation order.
    created: Vec<(ResourceKind, String)>,
    /// The task's slot in the director's queue; released once torn down or kept.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Live until a teardown succeeds (a failed one can be retried) or it is kept.
    handle: Mutex<Handle>,
    /// Where the events of this deployment also go (the run flow that made it).
    sink: Option<mpsc::UnboundedSender<RunEvent>>,
}

impl Deployment {
    pub(crate) fn new(
        ctx: Arc<Context>,
        task: Task,
        workers: Vec<IpAddr>,
        deploy_id: String,
        created: Vec<(ResourceKind, String)>,
        permit: OwnedSemaphorePermit,
        sink: Option<mpsc::UnboundedSender<RunEvent>>,
    ) -> Self {
        Deployment {
            ctx,
            task,
            workers,
            deploy_id,
            created,
            permit: Mutex::new(Some(permit)),
            handle: Mutex::new(Handle::Live),
            sink,
        }
    }

    /// Sends `event` to the director's subscribers and to this deployment's run, if any.
    pub(crate) fn emit(&self, event: Event) {
        if let Some(sink) = &self.sink {
            let _ = sink.send(RunEvent::progress(event.clone()));
        }
        self.ctx.emit(event);
    }

    /// The task's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.task.name()
    }

    /// The task that was deployed.
    #[must_use]
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Every worker's address on the task network, by slot.
    #[must_use]
    pub fn workers(&self) -> &[IpAddr] {
        &self.workers
    }

    /// The id of this deploy: the value of [`labels::DEPLOY`](crate::labels::DEPLOY) on every object it created.
    #[must_use]
    pub fn deploy_id(&self) -> &str {
        &self.deploy_id
    }

    /// Waits for the master to exit (at most `timeout`, if given) and returns what it did, with
    /// its last [`DEFAULT_LOG_TAIL`] log lines and any worker that stopped meanwhile.
    ///
    /// # Errors
    /// [`Error::Timeout`] (phase [`Phase::Run`]) when `timeout` passes first;
    /// [`Error::TaskNotFound`] when the master is gone (the task was removed meanwhile).
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<Outcome> {
        let exit = self.wait_exit(timeout).await?;
        if let Some(e) = exit.without_exit_code(self.name()) {
            return Err(e);
        }
        let logs = self.logs_text_tail(DEFAULT_LOG_TAIL).await?;
        exit.into_outcome(self.name(), logs)
    }

    /// Waits for the master to exit; what [`wait`](Self::wait) does, without reading its logs.
    pub(crate) async fn wait_exit(&self, timeout: Option<Duration>) -> Result<Exit> {
        let started = Instant::now();
        let name = self.name().to_owned();
        let master = wait::replicas_until(
            &*self.ctx.cluster,
            &self.task.master_service_name(),
            &self.task.network_name(),
            self.ctx.poll,
            timeout.map(wait::deadline_in),
            Phase::Run,
            conditions::exited(move || Error::TaskNotFound { name: name.clone() }, conditions::SCHEDULE_GRACE),
        )
        .await?;
        let mut failed_workers: Vec<Replica> = self
            .ctx
            .cluster
            .replicas(&self.task.worker_service_name(), &self.task.network_name())
            .await?
            .into_iter()
            .filter(|r| r.state.is_terminal())
            .collect();
        failed_workers.sort_by_key(|r| r.slot);
        if let Some(exit_code) = master.exit_code {
            self.emit(Event::MasterExited { task: self.name().to_owned(), exit_code });
        }
        Ok(Exit { master, failed_workers, waited: started.elapsed() })
    }

    /// The master's logs: what it printed so far, or with `follow`, also what it prints next,
    /// until it exits.
    pub async fn logs(&self, follow: bool) -> Result<LogStream> {
        let options = LogOptions { follow, ..LogOptions::default() };
        self.ctx.cluster.logs(&self.task.master_service_name(), &options).await
    }

    /// The master's logs so far, as text (a line per log line).
    pub async fn logs_text(&self) -> Result<String> {
        collect_logs(self.logs(false).await?, usize::MAX).await
    }

    /// The master's last `n` log lines, as text.
    async fn logs_text_tail(&self, n: usize) -> Result<String> {
        let options = LogOptions { tail: Some(n), ..LogOptions::default() };
        collect_logs(self.ctx.cluster.logs(&self.task.master_service_name(), &options).await?, n).await
    }

    /// Writes the master's artifacts — the task's [`artifacts`](Task::artifacts) directory in its
    /// container — into `dir` (created if needed) and returns the files written, in archive
    /// order; an empty list when the task asks for none. See [`crate::artifacts`] for how the
    /// archive is bounded and checked.
    ///
    /// Call it once the master exited (after [`wait`](Self::wait)) and before
    /// [`teardown`](Self::teardown), which removes the container.
    ///
    /// # Errors
    /// [`Error::ArtifactsNotFound`] when the master wrote nothing there;
    /// [`Error::UnsafeArtifact`] for an archive entry that would escape `dir`.
    pub async fn save_artifacts(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let Some(path) = self.task.artifacts() else {
            return Ok(Vec::new());
        };
        let cluster = &self.ctx.cluster;
        let replicas = cluster.replicas(&self.task.master_service_name(), &self.task.network_name()).await?;
        let Some(master) = replicas.into_iter().next() else {
            return Err(Error::TaskNotFound { name: self.name().to_owned() });
        };
        let Some(container) = master.container_id.as_deref() else {
            return Err(Error::ArtifactsNotFound { path: path.to_owned() });
        };
        let archive = match cluster.copy_from_replica(container, path).await {
            Ok(archive) => archive,
            Err(Error::NotFound { kind: "path", .. }) => {
                return Err(Error::ArtifactsNotFound { path: path.to_owned() })
            }
            Err(other) => return Err(other),
        };
        crate::artifacts::save(archive, dir).await
    }

    /// Removes everything this deploy created. Once it succeeded, a second call does nothing; a
    /// teardown that failed half-way ([`Error::TeardownIncomplete`], naming what is left) is
    /// retried in full by the next call.
    pub async fn teardown(&self) -> Result<()> {
        if *self.handle.lock().unwrap_or_else(PoisonError::into_inner) != Handle::Live {
            return Ok(());
        }
        self.emit(Event::TeardownStarted { task: self.name().to_owned() });
        let removal = cleanup::remove_deploy(&*self.ctx.cluster, self.name(), &self.deploy_id, &self.created).await?;
        if let Some(event) = removal.event(self.name()) {
            self.emit(event);
        }
        *self.handle.lock().unwrap_or_else(PoisonError::into_inner) = Handle::TornDown;
        self.permit.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.emit(Event::TornDown { task: self.name().to_owned() });
        Ok(())
    }

    /// Leaves the task on the engine (no teardown on drop); `atq down NAME` or `prune` removes
    /// it later. Frees its slot in the director's queue.
    pub fn keep(self) {
        *self.handle.lock().unwrap_or_else(PoisonError::into_inner) = Handle::Kept;
        self.permit.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// How long a finished (not followed) log read may go without a line before atq gives up on it.
pub const LOG_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads a finite log stream into one string, a line per log line, keeping the last `keep` lines;
/// gives up when the engine sends nothing for [`LOG_IDLE_TIMEOUT`].
pub(crate) async fn collect_logs(mut stream: LogStream, keep: usize) -> Result<String> {
    let mut lines = std::collections::VecDeque::new();
    loop {
        let Ok(next) = tokio::time::timeout(LOG_IDLE_TIMEOUT, stream.next()).await else {
            return Err(Error::engine("read logs of", "the master", format!("nothing for {LOG_IDLE_TIMEOUT:?}")));
        };
        let Some(line) = next else { break };
        lines.push_back(line?.text);
        if lines.len() > keep {
            lines.pop_front();
        }
    }
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let handle = *self.handle.get_mut().unwrap_or_else(PoisonError::into_inner);
        if handle != Handle::Live {
            return;
        }
        let cluster = self.ctx.cluster.clone();
        let (task, deploy_id) = (self.name().to_owned(), self.deploy_id.clone());
        let created = std::mem::take(&mut self.created);
        let permit = self.permit.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        let ctx = self.ctx.clone();
        self.ctx.background.spawn(async move {
            match cleanup::remove_deploy(&*cluster, &task, &deploy_id, &created).await {
                Ok(removal) => {
                    if let Some(event) = removal.event(&task) {
                        ctx.emit(event);
                    }
                    ctx.emit(Event::TornDown { task });
                }
                Err(e) => tracing::warn!(task, error = %e, "teardown on drop failed; `atq prune` removes what is left"),
            }
            drop(permit);
        });
    }
}
