//! The handle of a deployed task: [`Deployment`], and what its master did: [`Outcome`].

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::cluster::{LabelSelector, LogOptions, LogStream, Replica, ReplicaState, ResourceKind};
use crate::director::{collect_logs, remove_resources, replica_failed, Director, PollInterval};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::labels;
use crate::task::Task;

/// What the master did, once it exited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The task.
    pub task: String,
    /// The master's exit code.
    pub exit_code: i64,
    /// The master replica's final state (`complete` or `failed`).
    pub state: ReplicaState,
    /// The engine's message about the master, if it failed ("task: non-zero exit (3)").
    pub error: Option<String>,
    /// The master's logs (stdout and stderr, in order), a line per log line.
    pub logs: String,
    /// Workers that stopped while the master ran (died, were killed, exited).
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

/// A deployed task: its workers run and its master has started.
///
/// Call [`teardown`](Deployment::teardown) when done. Dropping a deployment that was neither
/// torn down nor [kept](Deployment::keep) tears it down in the background (tracked by
/// [`Director::settled`]), so a test that panics still leaves nothing behind.
#[derive(Debug)]
pub struct Deployment {
    director: Director,
    task: Task,
    workers: Vec<IpAddr>,
    /// What the deploy created (kind, id), in creation order.
    created: Vec<(ResourceKind, String)>,
    /// The task's slot in the director's queue; released at teardown.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Set once torn down or kept, so `Drop` does nothing.
    done: Mutex<bool>,
}

impl Deployment {
    pub(crate) fn new(
        director: Director,
        task: Task,
        workers: Vec<IpAddr>,
        created: Vec<(ResourceKind, String)>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Deployment { director, task, workers, created, permit: Mutex::new(Some(permit)), done: Mutex::new(false) }
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

    /// Waits for the master to exit (at most `timeout`, if given) and returns what it did,
    /// with its logs and any worker that stopped meanwhile.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<Outcome> {
        let inner = &self.director.inner;
        let cluster = &inner.cluster;
        let service = self.task.master_service_name();
        let network = self.task.network_name();
        let started = Instant::now();
        let mut interval = inner.poll.min;
        let master = loop {
            let asked = Instant::now();
            let replicas = cluster.replicas(&service, &network).await?;
            let took = asked.elapsed();
            match replicas.into_iter().next() {
                Some(r) if r.state.is_terminal() => break r,
                Some(_) => {}
                None => return Err(Error::TaskNotFound { name: self.name().to_owned() }),
            }
            if let Some(limit) = timeout {
                if started.elapsed() >= limit {
                    return Err(Error::Timeout {
                        phase: crate::error::Phase::Run,
                        waited: limit,
                        missing: "the master is still running".into(),
                    });
                }
            }
            let mut pause = PollInterval::pause(interval, took);
            if let Some(limit) = timeout {
                pause = pause.min(limit.saturating_sub(started.elapsed()));
            }
            tokio::time::sleep(pause).await;
            interval = inner.poll.next(interval);
        };
        let Some(exit_code) = master.exit_code else {
            return Err(replica_failed(&service, &master));
        };
        let logs = collect_logs(cluster.logs(&service, &LogOptions::all()).await?).await?;
        let mut failed_workers: Vec<Replica> = cluster
            .replicas(&self.task.worker_service_name(), &network)
            .await?
            .into_iter()
            .filter(|r| r.state.is_terminal())
            .collect();
        failed_workers.sort_by_key(|r| r.slot);
        self.director.emit(Event::MasterExited { task: self.name().to_owned(), exit_code });
        Ok(Outcome {
            task: self.name().to_owned(),
            exit_code,
            state: master.state,
            error: master.error.filter(|e| !e.is_empty()),
            logs,
            failed_workers,
            waited: started.elapsed(),
        })
    }

    /// The master's logs: what it printed so far, or with `follow`, also what it prints next,
    /// until it exits.
    pub async fn logs(&self, follow: bool) -> Result<LogStream> {
        self.director
            .inner
            .cluster
            .logs(&self.task.master_service_name(), &LogOptions { follow, ..LogOptions::default() })
            .await
    }

    /// The master's logs so far, as text (a line per log line).
    pub async fn logs_text(&self) -> Result<String> {
        collect_logs(self.logs(false).await?).await
    }

    /// The master's artifacts: a tar archive of the task's [`artifacts`](Task::artifacts)
    /// directory in the master's container, as the engine returns it (entries named
    /// `results/…` for `/atq/results`), or None when the task asks for no artifacts.
    ///
    /// Call it once the master exited (after [`wait`](Self::wait)) and before
    /// [`teardown`](Self::teardown), which removes the container.
    ///
    /// # Errors
    /// [`Error::ArtifactsNotFound`] when the master wrote nothing there; an
    /// [`Error::Engine`] when the archive is larger than
    /// [`MAX_ARCHIVE_BYTES`](crate::cluster::MAX_ARCHIVE_BYTES).
    pub async fn artifacts(&self) -> Result<Option<Vec<u8>>> {
        let Some(dir) = self.task.artifacts() else {
            return Ok(None);
        };
        let cluster = &self.director.inner.cluster;
        let service = self.task.master_service_name();
        let replicas = cluster.replicas(&service, &self.task.network_name()).await?;
        let Some(master) = replicas.into_iter().next() else {
            return Err(Error::TaskNotFound { name: self.name().to_owned() });
        };
        let Some(container) = master.container_id.as_deref() else {
            return Err(Error::NotFound {
                kind: "container",
                name: format!("{} (the master has none yet)", master.name),
            });
        };
        match cluster.copy_from_replica(container, dir).await {
            Ok(archive) => Ok(Some(archive)),
            Err(Error::NotFound { kind: "path", .. }) => Err(Error::ArtifactsNotFound { path: dir.to_owned() }),
            Err(other) => Err(other),
        }
    }

    /// Writes the master's [`artifacts`](Self::artifacts) into `dir` (created if needed) and
    /// returns the files written, in archive order; an empty list when the task asks for none.
    ///
    /// Paths are relative to the artifacts directory: `/atq/results/sub/data.csv` lands in
    /// `dir/sub/data.csv`. The archive comes from a container, so it is not trusted: an entry
    /// that is absolute, has a `..` component, or is a link (symbolic or hard) is refused
    /// before anything is written, and nothing is ever written outside `dir`.
    pub async fn save_artifacts(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        match self.artifacts().await? {
            Some(archive) => unpack_artifacts(&archive, dir),
            None => Ok(Vec::new()),
        }
    }

    /// Removes everything the task created. Idempotent: a second call does nothing.
    pub async fn teardown(&self) -> Result<()> {
        {
            let mut done = self.done.lock().expect("lock");
            if *done {
                return Ok(());
            }
            *done = true;
        }
        let result = teardown_task(&self.director, self.name(), &self.created).await;
        self.permit.lock().expect("lock").take();
        result
    }

    /// Leaves the task on the engine (no teardown on drop); `atq down NAME` or `prune` removes
    /// it later. Frees its slot in the director's queue.
    pub fn keep(self) {
        *self.done.lock().expect("lock") = true;
        self.permit.lock().expect("lock").take();
    }
}

/// What one archive entry becomes: a directory or a file, at a path relative to the target.
enum Planned {
    Dir(PathBuf),
    File(PathBuf, Vec<u8>),
}

/// Unpacks an artifacts archive into `dir`, dropping the first path component (the
/// artifacts directory's own name). Every entry is checked before anything is written.
pub(crate) fn unpack_artifacts(archive: &[u8], dir: &Path) -> Result<Vec<PathBuf>> {
    let bad = |message: String| Error::engine("save artifacts to", dir.display().to_string(), message);
    let io = |path: &Path, source: std::io::Error| Error::Io { path: path.display().to_string(), source };
    let mut planned = Vec::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(|e| bad(format!("not a tar archive: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("broken tar archive: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut relative = PathBuf::new();
        for (i, component) in Path::new(&raw).components().enumerate() {
            match component {
                Component::Normal(part) if i > 0 => relative.push(part),
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(Error::UnsafeArtifact {
                        entry: raw,
                        reason: "it points outside the artifacts directory; nothing was saved".into(),
                    });
                }
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(Error::UnsafeArtifact {
                entry: raw,
                reason: "it is a link, and atq saves plain files only; nothing was saved".into(),
            });
        }
        if kind.is_dir() {
            planned.push(Planned::Dir(relative));
        } else if kind.is_file() {
            if relative.as_os_str().is_empty() {
                // The artifacts path was a file: keep its name.
                relative = Path::new(&raw).file_name().map(PathBuf::from).unwrap_or_default();
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).map_err(|e| bad(format!("broken tar archive: {e}")))?;
            planned.push(Planned::File(relative, data));
        }
        // Other entries (devices, fifos, pax headers) are skipped.
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::new();
    for item in planned {
        match item {
            Planned::Dir(relative) => {
                let path = dir.join(relative);
                std::fs::create_dir_all(&path).map_err(|e| io(&path, e))?;
            }
            Planned::File(relative, data) => {
                let path = dir.join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                // A link already in `dir` is not followed: it is replaced by the file.
                if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                }
                std::fs::write(&path, data).map_err(|e| io(&path, e))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Removes the task's objects: what the deploy recorded, plus anything else carrying its label.
async fn teardown_task(director: &Director, name: &str, created: &[(ResourceKind, String)]) -> Result<()> {
    let cluster = &*director.inner.cluster;
    let selector = LabelSelector::new().eq(labels::MANAGED, "true").eq(labels::TASK, name);
    let mut resources = Vec::new();
    for kind in [ResourceKind::Service, ResourceKind::Config, ResourceKind::Network] {
        resources.extend(cluster.list_resources(kind, &selector).await?);
    }
    // Objects recorded by id but (for whatever reason) not found by label are removed too.
    for (kind, id) in created {
        if !resources.iter().any(|r| &r.id == id) {
            resources.push(crate::cluster::Resource {
                kind: *kind,
                id: id.clone(),
                name: id.clone(),
                labels: Default::default(),
                created_unix: None,
            });
        }
    }
    remove_resources(cluster, resources).await?;
    director.emit(Event::TornDown { task: name.to_owned() });
    Ok(())
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let done = self.done.get_mut().map(|d| *d).unwrap_or(true);
        if done {
            return;
        }
        let director = self.director.clone();
        let name = self.name().to_owned();
        let created = std::mem::take(&mut self.created);
        let permit = self.permit.get_mut().ok().and_then(Option::take);
        director.inner.background.clone().spawn(async move {
            if let Err(e) = teardown_task(&director, &name, &created).await {
                tracing::warn!(task = %name, error = %e, "teardown on drop failed; `atq prune` will remove what is left");
            }
            drop(permit);
        });
    }
}
