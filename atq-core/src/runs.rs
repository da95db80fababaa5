//! The runs of a shared service ([`RunManager`]): every client's runs go through one
//! [`RunQueue`], each is checked against its client's [`Policy`], recorded in [`Records`], and
//! run by the core's one run flow ([`Director::run_with`]); its events are kept in a bounded
//! buffer that any number of readers follow and resume by event id.
//!
//! The HTTP service (`atq serve`) parses requests, calls this and renders the answers; nothing
//! of what a run does is decided there.
//!
//! **Restarts.** [`RunManager::reconcile`] settles the runs the records say were not over when
//! the previous service stopped: one that never started is queued again (in its original order);
//! one that was running and whose master is still on the engine is **adopted** — the run flow
//! picks it up from its deploy ([`Director::resume_with`]: logs, the master's exit, artifacts,
//! results, teardown); one that was deploying (a deploy cannot be resumed halfway) or whose
//! master is gone is torn down — exactly what its deploy created (by its deploy id); one of which
//! nothing is left is marked lost. Each record's note says which, and why.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::director::Director;
use crate::error::Error;
use crate::event::{Event, RunEvent, RunEventKind};
use crate::policy::{Policy, PolicyRefusal};
use crate::queue::RunQueue;
use crate::records::{Records, RecordsError, RunEnd, RunFilter, RunRecord, RunState};
use crate::run::{self, FollowLogs, Interrupt, RunItem, RunOptions, RunReport};
use crate::task::Task;

/// How many events of one run are kept for readers that join late or resume (older ones are
/// dropped first; a reader resuming before them starts at the oldest kept).
pub const EVENT_BUFFER: usize = 10_000;

/// How many finished runs keep their event buffers in memory (older ones replay their phases
/// and outcome from the records; the outcome keeps the master's last log lines). With
/// [`EVENT_BUFFER`] this bounds what finished runs hold to 2 million events.
const FINISHED_IN_MEMORY: usize = 200;

/// Who asks: a client of the service (a token's name), whether it may see everyone's runs, and
/// the rules its runs follow.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Its name (the owner recorded on its runs).
    pub name: String,
    /// Whether it may see, abort and delete every client's runs.
    pub admin: bool,
    /// What its runs may do.
    pub policy: Policy,
}

/// Why a run was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The client's policy refuses the task.
    #[error(transparent)]
    Policy(#[from] PolicyRefusal),
    /// The client already has as many runs queued or running as its policy allows.
    #[error("{client} already has {limit} runs queued or running, the most allowed; wait for one to end or abort one")]
    TooManyRuns {
        /// The client.
        client: String,
        /// Its limit.
        limit: usize,
    },
    /// A run of this service with the same task name is queued or running (the engine's names
    /// are the lock: it could not run anyway).
    #[error(
        "a run of a task named `{name}` is already queued or running here (run {run}); pick another name or abort it"
    )]
    NameInUse {
        /// The task's name.
        name: String,
        /// The run holding it.
        run: String,
    },
    /// The run could not be recorded.
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// One event of a run's buffer: its id (1, 2, … within the run) and its JSON form (the run
/// event schema of `atq run --json`, ending with the `outcome` or `error` object).
#[derive(Debug, Clone)]
pub struct BufferedEvent {
    /// Its id within the run (SSE's `id`).
    pub id: u64,
    /// The event.
    pub data: Arc<serde_json::Value>,
}

impl BufferedEvent {
    /// The event's name (`workers_ready`, `log`, `outcome`, …).
    #[must_use]
    pub fn name(&self) -> &str {
        self.data.get("event").and_then(serde_json::Value::as_str).unwrap_or("event")
    }
}

#[derive(Debug, Default)]
struct EventLog {
    /// The events kept, oldest first.
    entries: VecDeque<BufferedEvent>,
    /// The id of the last event appended.
    last: u64,
    /// No more events will come.
    done: bool,
}

/// A run this process knows in memory: its interrupt and its event buffer.
#[derive(Debug)]
struct LiveRun {
    id: String,
    owner: String,
    task_name: String,
    /// Stops it (a client's abort).
    interrupt: Interrupt,
    /// Its events.
    log: Mutex<EventLog>,
    /// The id of the last event, for readers to wait on.
    changed: watch::Sender<u64>,
}

impl LiveRun {
    fn new(id: &str, owner: &str, task_name: &str) -> Arc<LiveRun> {
        Arc::new(LiveRun {
            id: id.to_owned(),
            owner: owner.to_owned(),
            task_name: task_name.to_owned(),
            interrupt: Interrupt::new(),
            log: Mutex::new(EventLog::default()),
            changed: watch::channel(0).0,
        })
    }

    fn log(&self) -> MutexGuard<'_, EventLog> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, data: serde_json::Value) {
        let last = {
            let mut log = self.log();
            log.last += 1;
            let id = log.last;
            log.entries.push_back(BufferedEvent { id, data: Arc::new(data) });
            if log.entries.len() > EVENT_BUFFER {
                log.entries.pop_front();
            }
            id
        };
        self.changed.send_replace(last);
    }

    fn close(&self) {
        let last = {
            let mut log = self.log();
            log.done = true;
            log.last
        };
        self.changed.send_replace(last);
    }

    fn is_done(&self) -> bool {
        self.log().done
    }
}

/// Follows one run's events from a point on: [`next`](Self::next) yields each event once, in
/// order, waiting for new ones, and returns None once the run is over and every event was read.
#[derive(Debug)]
pub struct EventCursor {
    run: Arc<LiveRun>,
    /// The id of the last event handed out.
    after: u64,
    /// Wakes the reader when an event comes.
    changed: watch::Receiver<u64>,
}

impl EventCursor {
    /// The next event already there, without waiting (None: none yet, or the run is over).
    pub fn next_now(&mut self) -> Option<BufferedEvent> {
        let log = self.run.log();
        let event = log.entries.iter().find(|e| e.id > self.after).cloned();
        if let Some(event) = &event {
            self.after = event.id;
        }
        event
    }

    /// The next event (waiting for it); None when the run is over and everything was read.
    pub async fn next(&mut self) -> Option<BufferedEvent> {
        loop {
            self.changed.borrow_and_update();
            {
                let log = self.run.log();
                if let Some(event) = log.entries.iter().find(|e| e.id > self.after) {
                    self.after = event.id;
                    return Some(event.clone());
                }
                if log.done {
                    return None;
                }
            }
            if self.changed.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// What [`RunManager::reconcile`] did with one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The run.
    pub id: String,
    /// Its task.
    pub task: String,
    /// What was done with it, and why (also its record's note).
    pub note: String,
    /// Its state now.
    pub state: RunState,
}

struct Inner {
    director: Director,
    queue: RunQueue,
    records: Records,
    /// Where each run's artifacts go: `<root>/<run id>/`.
    artifacts_root: PathBuf,
    /// Keeps a temporary artifacts root alive (when no state directory was given).
    _scratch: Option<tempfile::TempDir>,
    /// Runs known in memory, by id.
    runs: Mutex<HashMap<String, Arc<LiveRun>>>,
    /// Finished runs in memory, oldest first (the first to be forgotten).
    finished: Mutex<VecDeque<String>>,
    /// Task names of runs queued or running, and the run holding each.
    names: Mutex<HashMap<String, String>>,
    /// Held from recording a submission to queueing it, so that the queue's order is the
    /// records' (a run's `seq`) even when clients submit at the same instant.
    submission: Mutex<()>,
}

/// The runs of a shared service: the queue, the records, and the run flow. Cheap to clone.
#[derive(Clone)]
pub struct RunManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RunManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunManager")
            .field("concurrency", &self.inner.queue.limit())
            .field("artifacts", &self.inner.artifacts_root)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A new run id: 16 random hex digits (the process's clock and a counter, hashed).
fn new_run_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}:{}:{:?}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
    );
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl RunManager {
    /// A manager running at most `concurrency` runs at once on `director`, recording them in
    /// `records`; artifacts go under `state_dir/runs/<id>/` (None: a temporary directory).
    ///
    /// # Errors
    /// The temporary directory cannot be created.
    pub fn new(
        director: Director,
        concurrency: usize,
        records: Records,
        state_dir: Option<&Path>,
    ) -> std::io::Result<RunManager> {
        let (artifacts_root, scratch) = match state_dir {
            Some(dir) => (dir.join("runs"), None),
            None => {
                let scratch = tempfile::tempdir()?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        Ok(RunManager {
            inner: Arc::new(Inner {
                director,
                queue: RunQueue::new(concurrency),
                records,
                artifacts_root,
                _scratch: scratch,
                runs: Mutex::new(HashMap::new()),
                finished: Mutex::new(VecDeque::new()),
                names: Mutex::new(HashMap::new()),
                submission: Mutex::new(()),
            }),
        })
    }

    /// The director the runs go to.
    #[must_use]
    pub fn director(&self) -> &Director {
        &self.inner.director
    }

    /// The records.
    #[must_use]
    pub fn records(&self) -> &Records {
        &self.inner.records
    }

    /// The queue.
    #[must_use]
    pub fn queue(&self) -> &RunQueue {
        &self.inner.queue
    }

    /// The directory of run `id`'s artifacts (and result reports).
    #[must_use]
    pub fn artifacts_dir(&self, id: &str) -> PathBuf {
        self.inner.artifacts_root.join(id)
    }

    /// Accepts `task` from `client`: checks the client's policy and limits, records the run and
    /// queues it behind every run submitted before. Returns its record.
    ///
    /// # Errors
    /// [`SubmitError`]: refused by the policy, too many runs, the name in use, or not recorded.
    pub fn submit(&self, task: &Task, client: &Client) -> Result<RunRecord, SubmitError> {
        client.policy.check(task)?;
        let id = new_run_id();
        {
            let runs = lock(&self.inner.runs);
            if let Some(limit) = client.policy.max_concurrent_runs {
                let active = runs.values().filter(|r| r.owner == client.name && !r.is_done()).count();
                if active >= limit {
                    return Err(SubmitError::TooManyRuns { client: client.name.clone(), limit });
                }
            }
            let mut names = lock(&self.inner.names);
            if let Some(run) = names.get(task.name()) {
                return Err(SubmitError::NameInUse { name: task.name().to_owned(), run: run.clone() });
            }
            names.insert(task.name().to_owned(), id.clone());
        }
        {
            let _order = lock(&self.inner.submission);
            let recorded = self.inner.records.insert(
                &id,
                task.name(),
                &task.to_json(),
                &client.name,
                task.labels(),
                SystemTime::now(),
            );
            if let Err(e) = recorded {
                lock(&self.inner.names).remove(task.name());
                return Err(e.into());
            }
            self.start(&id, &client.name, task.clone(), None);
        }
        self.inner.records.get(&id)?.ok_or_else(|| self.inner.records.missing(&id).into())
    }

    /// Puts run `id` (recorded as queued) into memory and the queue, and drives it; with
    /// `resume`, from that deploy already on the engine (adopted after a restart).
    fn start(&self, id: &str, owner: &str, task: Task, resume: Option<String>) {
        let live = LiveRun::new(id, owner, task.name());
        let mut queued = Event::Queued { task: task.name().to_owned() }.to_json();
        crate::event::stamp(&mut queued, SystemTime::now());
        live.push(queued);
        lock(&self.inner.names).insert(task.name().to_owned(), id.to_owned());
        lock(&self.inner.runs).insert(id.to_owned(), live.clone());
        // Joined now: the queue order is the order of submission, not of the first poll.
        let ticket = self.inner.queue.submit(id);
        let manager = self.clone();
        tokio::spawn(async move { manager.drive(live, task, ticket, resume).await });
    }

    async fn drive(self, live: Arc<LiveRun>, task: Task, ticket: crate::queue::Ticket, resume: Option<String>) {
        let slot = tokio::select! {
            biased;
            () = live.interrupt.reached(1) => None,
            admitted = ticket.admitted() => admitted.ok(),
        };
        let Some(slot) = slot else {
            self.inner.queue.withdraw(&live.id);
            let error = Error::Interrupted { abandoned: false };
            self.end(&live, RunState::Aborted, None, run::error_json(task.name(), &error), None, Vec::new());
            return;
        };
        // Its turn came: the `deploying` phase has the admission's time, so that phases show the
        // queue's order (deploys admitted together race to their first engine call).
        let dir = self.artifacts_dir(&live.id);
        let options = RunOptions::new().follow_logs(FollowLogs::All).artifacts_dir(&dir);
        let mut flow = match &resume {
            Some(deploy_id) => {
                self.record(&live.id, |r| r.add_phase(&live.id, "adopted", slot.admitted_at()));
                self.inner.director.resume_with(&task, deploy_id, options, live.interrupt.clone())
            }
            None => {
                self.record(&live.id, |r| r.set_state(&live.id, RunState::Deploying));
                self.record(&live.id, |r| r.add_phase(&live.id, "deploying", slot.admitted_at()));
                self.inner.director.run_with(&task, options, live.interrupt.clone())
            }
        };
        while let Some(item) = flow.next().await {
            match item {
                RunItem::Event(event) => self.on_event(&live, &event),
                RunItem::Done(Ok(report)) => {
                    let state = if report.succeeded() { RunState::Succeeded } else { RunState::Failed };
                    let summary = report.results.as_ref().and_then(|r| serde_json::from_str(&r.summary_json()).ok());
                    let files = artifact_names(&dir, &report);
                    let code = i64::from(report.exit_code());
                    self.end(&live, state, Some(code), report.to_json(), summary, files);
                }
                RunItem::Done(Err(error)) => {
                    let state =
                        if matches!(error, Error::Interrupted { .. }) { RunState::Aborted } else { RunState::Failed };
                    let code = i64::from(run::error_exit_code(&error));
                    self.end(&live, state, Some(code), run::error_json(task.name(), &error), None, Vec::new());
                }
            }
        }
        // The slot goes back only now: the run's end is recorded before the next run starts.
        drop(slot);
    }

    /// Writes to the records; a failure is logged (the run goes on: the engine is the truth for
    /// what runs, and the client still sees the run's events).
    fn record(&self, id: &str, write: impl FnOnce(&Records) -> Result<(), RecordsError>) {
        if let Err(e) = write(&self.inner.records) {
            tracing::error!(run = %id, error = %e, "cannot record the run");
        }
    }

    fn on_event(&self, live: &LiveRun, event: &RunEvent) {
        if let RunEventKind::Progress(progress) = &event.kind {
            let id = &live.id;
            match progress {
                Event::NetworkCreated { deploy_id, .. } => self.record(id, |r| r.set_deploy_id(id, deploy_id)),
                Event::WorkersReady { addresses, .. } => {
                    let workers: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                    self.record(id, |r| r.set_workers(id, &workers));
                }
                Event::MasterRunning { .. } => self.record(id, |r| r.set_state(id, RunState::Running)),
                _ => {}
            }
            if !matches!(progress, Event::WorkersRunning { .. } | Event::ProbeAttempt { .. }) {
                let json = progress.to_json();
                let name = json.get("event").and_then(serde_json::Value::as_str).unwrap_or("event");
                self.record(id, |r| r.add_phase(id, name, event.time));
            }
        }
        live.push(event.to_json());
    }

    fn end(
        &self,
        live: &LiveRun,
        state: RunState,
        exit_code: Option<i64>,
        outcome: serde_json::Value,
        summary: Option<serde_json::Value>,
        artifacts: Vec<String>,
    ) {
        let end = RunEnd {
            state,
            time: SystemTime::now(),
            exit_code,
            outcome: Some(outcome.clone()),
            summary,
            artifacts,
            note: None,
        };
        self.record(&live.id, |r| r.finish(&live.id, &end));
        {
            let mut names = lock(&self.inner.names);
            if names.get(&live.task_name) == Some(&live.id) {
                names.remove(&live.task_name);
            }
        }
        live.push(outcome);
        live.close();
        let mut finished = lock(&self.inner.finished);
        finished.push_back(live.id.clone());
        if finished.len() > FINISHED_IN_MEMORY {
            if let Some(old) = finished.pop_front() {
                lock(&self.inner.runs).remove(&old);
            }
        }
    }

    /// Whether `client` may see run `record`.
    fn visible(record: &RunRecord, client: &Client) -> bool {
        client.admin || record.owner == client.name
    }

    /// The record of run `id`, if `client` may see it (another client's run is None, as if
    /// it did not exist).
    ///
    /// # Errors
    /// The records cannot be read.
    pub fn get(&self, id: &str, client: &Client) -> Result<Option<RunRecord>, RecordsError> {
        Ok(self.inner.records.get(id)?.filter(|r| Self::visible(r, client)))
    }

    /// The runs `client` may see that match `filter` (its `owner` is forced to the client unless
    /// it is an admin).
    ///
    /// # Errors
    /// The records cannot be read.
    pub fn list(&self, filter: &RunFilter, client: &Client) -> Result<Vec<RunRecord>, RecordsError> {
        let mut filter = filter.clone();
        if !client.admin {
            filter.owner = Some(client.name.clone());
        }
        self.inner.records.list(&filter)
    }

    /// Its place among the runs waiting (0: next), while it is queued.
    #[must_use]
    pub fn queue_position(&self, id: &str) -> Option<usize> {
        self.inner.queue.position(id)
    }

    /// Aborts run `id` for `client`: a queued run leaves the queue and never runs; a deploying
    /// run rolls back; a running one is torn down. Idempotent: a run already over (or already
    /// being aborted) is left as it is. Returns its record as it is now (None: no such run that
    /// the client may see).
    ///
    /// # Errors
    /// The records cannot be read.
    pub fn abort(&self, id: &str, client: &Client) -> Result<Option<RunRecord>, RecordsError> {
        let Some(record) = self.get(id, client)? else { return Ok(None) };
        let live = lock(&self.inner.runs).get(id).cloned();
        if let Some(live) = live {
            if !live.is_done() && live.interrupt.count() == 0 {
                self.inner.queue.withdraw(id);
                live.interrupt.trigger();
            }
        }
        Ok(Some(record))
    }

    /// Waits until run `id` is over (it is known in memory); returns at once otherwise.
    pub async fn settled(&self, id: &str) {
        let live = lock(&self.inner.runs).get(id).cloned();
        if let Some(live) = live {
            let mut cursor = EventCursor { after: u64::MAX, changed: live.changed.subscribe(), run: live };
            while !cursor.run.is_done() {
                if cursor.changed.changed().await.is_err() {
                    break;
                }
            }
        }
    }

    /// Follows run `id`'s events after event `after` (0: from the start), for `client`. A run no
    /// longer in memory replays its recorded phases and its outcome. None: no such run the client
    /// may see.
    ///
    /// # Errors
    /// The records cannot be read.
    pub fn events(&self, id: &str, after: u64, client: &Client) -> Result<Option<EventCursor>, RecordsError> {
        let Some(record) = self.get(id, client)? else { return Ok(None) };
        let live = lock(&self.inner.runs).get(id).cloned();
        let run = match live {
            Some(live) => live,
            None => Self::replay(&record),
        };
        let changed = run.changed.subscribe();
        Ok(Some(EventCursor { run, after, changed }))
    }

    /// A closed event buffer rebuilt from a record: its phases, then its outcome.
    fn replay(record: &RunRecord) -> Arc<LiveRun> {
        let run = LiveRun::new(&record.id, &record.owner, &record.task_name);
        for phase in &record.phases {
            let mut value = serde_json::json!({"event": phase.name, "task": record.task_name});
            crate::event::stamp(&mut value, crate::records::time_of(phase.time_ms));
            run.push(value);
        }
        if let Some(outcome) = &record.outcome {
            run.push(outcome.clone());
        }
        if record.state.is_final() {
            run.close();
        }
        run
    }

    /// Settles the runs that the records say were not over when the previous service stopped
    /// (see the module docs): re-queues those that never started, tears down those still on the
    /// engine, marks the others lost. Call once at start, before accepting runs.
    ///
    /// # Errors
    /// The records cannot be read.
    pub async fn reconcile(&self) -> Result<Vec<Reconciled>, RecordsError> {
        let mut done = Vec::new();
        for record in self.inner.records.unfinished()? {
            let task = Task::from_json_str(&record.task);
            let (state, note) = match (record.state, task, record.deploy_id.clone()) {
                (_, Err(e), _) => {
                    (RunState::Failed, format!("not run after a restart: its recorded task no longer reads ({e})"))
                }
                (RunState::Queued, Ok(task), _) => {
                    self.start(&record.id, &record.owner, task, None);
                    (RunState::Queued, "queued again after a restart of the service: it had not started".to_owned())
                }
                (RunState::Running, Ok(task), Some(deploy_id)) if self.adoptable(&task, &deploy_id).await => {
                    self.start(&record.id, &record.owner, task, Some(deploy_id.clone()));
                    let note = format!(
                        "adopted after a restart of the service: its master (deploy {deploy_id}) was still on the \
                         engine, so the run is followed to its end from there (logs from the master's start)"
                    );
                    (RunState::Running, note)
                }
                _ => self.settle_interrupted(&record).await,
            };
            match state {
                RunState::Queued | RunState::Running => self.record(&record.id, |r| r.set_note(&record.id, &note)),
                _ => {
                    let end = RunEnd {
                        state,
                        time: SystemTime::now(),
                        exit_code: Some(i64::from(run::EXIT_ATQ_ERROR)),
                        outcome: None,
                        summary: None,
                        artifacts: Vec::new(),
                        note: Some(note.clone()),
                    };
                    self.record(&record.id, |r| r.finish(&record.id, &end));
                }
            }
            tracing::warn!(run = %record.id, task = %record.task_name, state = state.as_str(), "{note}");
            done.push(Reconciled { id: record.id, task: record.task_name, note, state });
        }
        Ok(done)
    }

    /// Whether the deploy `deploy_id` of `task` can be followed: its master's service is there.
    async fn adoptable(&self, task: &Task, deploy_id: &str) -> bool {
        let selector = crate::cluster::LabelSelector::new().eq(crate::labels::DEPLOY, deploy_id);
        match self.inner.director.cluster().list_resources(crate::cluster::ResourceKind::Service, &selector).await {
            Ok(services) => services.iter().any(|s| s.name == task.master_service_name()),
            Err(e) => {
                tracing::warn!(task = %task.name(), error = %e, "cannot tell whether a run can be adopted");
                false
            }
        }
    }

    /// A run that was deploying (a deploy cannot be resumed halfway) or running without a master
    /// to follow when its service stopped: what it created is removed (by its deploy id: nothing
    /// of another deploy).
    async fn settle_interrupted(&self, record: &RunRecord) -> (RunState, String) {
        let Some(deploy_id) = &record.deploy_id else {
            return (
                RunState::Failed,
                "lost: the service stopped before the run created anything on the engine".to_owned(),
            );
        };
        match self.inner.director.teardown_deploy(&record.task_name, deploy_id).await {
            Ok(true) => (
                RunState::Aborted,
                format!(
                    "torn down after a restart of the service: it was {} when the service stopped, and a deploy \
                     cannot be resumed halfway (nor a run whose master is gone), so its objects (deploy \
                     {deploy_id}) were removed rather than left on the engine unwatched",
                    record.state.as_str()
                ),
            ),
            Ok(false) => (
                RunState::Failed,
                format!(
                    "lost: it was {} when the service stopped, and nothing of it (deploy {deploy_id}) is left on the engine",
                    record.state.as_str()
                ),
            ),
            Err(e) => (
                RunState::Failed,
                format!("the service stopped while it ran, and removing its objects after the restart failed: {e}"),
            ),
        }
    }

    /// Stops every run of this process (the service is stopping): each is aborted as a client's
    /// `DELETE` would, and this waits until every one is over (the caller bounds the wait).
    /// Calling it again only waits.
    pub async fn shutdown(&self) {
        let live: Vec<Arc<LiveRun>> = lock(&self.inner.runs).values().filter(|r| !r.is_done()).cloned().collect();
        for run in &live {
            self.inner.queue.withdraw(&run.id);
            // Once only: a second trigger would give up waiting for the cleanup.
            if run.interrupt.count() == 0 {
                run.interrupt.trigger();
            }
        }
        for run in live {
            self.settled(&run.id).await;
        }
    }

    /// How many runs are queued or running in this process.
    #[must_use]
    pub fn active(&self) -> usize {
        lock(&self.inner.runs).values().filter(|r| !r.is_done()).count()
    }
}

/// The run's artifact files (and result reports), relative to its directory.
fn artifact_names(dir: &Path, report: &RunReport) -> Vec<String> {
    report
        .artifacts
        .iter()
        .chain(&report.result_files)
        .map(|p| p.strip_prefix(dir).unwrap_or(p).to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::cluster::fake::{Matcher, Script};
    use crate::labels::Role;
    use crate::{FakeCluster, Service};

    fn task(name: &str) -> Task {
        Task::builder(name).workers(Service::new("img").replicas(2)).master(Service::new("img")).build().unwrap()
    }

    fn client(name: &str) -> Client {
        Client { name: name.into(), ..Client::default() }
    }

    async fn over(manager: &RunManager, id: &str) -> RunRecord {
        manager.settled(id).await;
        manager.records().get(id).unwrap().unwrap()
    }

    #[tokio::test]
    async fn every_accepted_run_runs_exactly_once() {
        let fake = FakeCluster::new();
        let manager = RunManager::new(Director::new(fake.clone()), 3, Records::in_memory().unwrap(), None).unwrap();
        let ids: Vec<String> =
            (0..20).map(|i| manager.submit(&task(&format!("t{i}")), &client("a")).unwrap().id).collect();
        for id in &ids {
            let record = over(&manager, id).await;
            assert_eq!(record.state, RunState::Succeeded);
            let deploys = record.phases.iter().filter(|p| p.name == "network_created").count();
            assert_eq!(deploys, 1, "run {id} deployed once");
        }
        assert!(fake.is_empty());
        assert_eq!(manager.active(), 0);
    }

    #[tokio::test]
    async fn an_old_finished_run_replays_its_recorded_phases_and_outcome() {
        let manager =
            RunManager::new(Director::new(FakeCluster::new()), 8, Records::in_memory().unwrap(), None).unwrap();
        let ids: Vec<String> = (0..=FINISHED_IN_MEMORY)
            .map(|i| manager.submit(&task(&format!("t{i}")), &client("a")).unwrap().id)
            .collect();
        for id in &ids {
            over(&manager, id).await;
        }
        let mut cursor = manager.events(&ids[0], 0, &client("a")).unwrap().unwrap();
        let mut names = Vec::new();
        while let Some(event) = cursor.next().await {
            names.push(event.name().to_owned());
        }
        assert_eq!(names.first().map(String::as_str), Some("queued"));
        assert!(names.contains(&"master_running".to_owned()), "{names:?}");
        assert_eq!(names.last().map(String::as_str), Some("outcome"));
        assert!(manager.events(&ids[0], 0, &client("someone else")).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_client_over_its_run_limit_is_refused() {
        let fake = FakeCluster::new();
        fake.script(Matcher::role(Role::Master), Script::exits_after(0, Duration::from_secs(30)));
        let manager = RunManager::new(Director::new(fake), 1, Records::in_memory().unwrap(), None).unwrap();
        let limited = Client {
            name: "a".into(),
            policy: Policy { max_concurrent_runs: Some(1), ..Policy::default() },
            ..Client::default()
        };
        let first = manager.submit(&task("one"), &limited).unwrap();
        assert!(matches!(manager.submit(&task("two"), &limited), Err(SubmitError::TooManyRuns { limit: 1, .. })));
        assert!(manager.submit(&task("two"), &client("b")).is_ok(), "another client has its own limit");
        manager.shutdown().await;
        assert_eq!(manager.records().get(&first.id).unwrap().unwrap().state, RunState::Aborted);
    }

    #[tokio::test]
    async fn a_restart_requeues_adopts_tears_down_and_marks_lost_each_for_its_reason() {
        let fake = FakeCluster::new();
        fake.script(Matcher::role(Role::Master), Script::exits_after(0, Duration::from_millis(300)).stdout(["hi"]));
        let director = Director::new(fake.clone());
        let dir = tempfile::tempdir().unwrap();
        // What a killed service left: a run whose master still runs, a run caught deploying
        // (its objects on the engine), one still queued, one deploying that created nothing.
        let running = task("left-running");
        let deployment = director.deploy(&running).await.unwrap();
        let running_deploy = deployment.deploy_id().to_owned();
        deployment.keep();
        let deploying = task("left-deploying");
        let deployment = director.deploy(&deploying).await.unwrap();
        let deploying_deploy = deployment.deploy_id().to_owned();
        deployment.keep();
        {
            let records = Records::open(dir.path()).unwrap();
            let none = BTreeMap::new();
            let now = SystemTime::now();
            records.insert("r-running", running.name(), &running.to_json(), "a", &none, now).unwrap();
            records.set_state("r-running", RunState::Running).unwrap();
            records.set_deploy_id("r-running", &running_deploy).unwrap();
            records.insert("r-deploying", deploying.name(), &deploying.to_json(), "a", &none, now).unwrap();
            records.set_state("r-deploying", RunState::Deploying).unwrap();
            records.set_deploy_id("r-deploying", &deploying_deploy).unwrap();
            let queued = task("was-queued");
            records.insert("r-queued", queued.name(), &queued.to_json(), "a", &none, now).unwrap();
            let lost = task("lost");
            records.insert("r-lost", lost.name(), &lost.to_json(), "a", &none, now).unwrap();
            records.set_state("r-lost", RunState::Deploying).unwrap();
        }
        let manager = RunManager::new(director, 2, Records::open(dir.path()).unwrap(), Some(dir.path())).unwrap();
        let settled = manager.reconcile().await.unwrap();
        let by_id = |id: &str| settled.iter().find(|s| s.id == id).unwrap().clone();
        assert_eq!(by_id("r-running").state, RunState::Running);
        assert!(by_id("r-running").note.starts_with("adopted"), "{:?}", by_id("r-running"));
        assert_eq!(by_id("r-deploying").state, RunState::Aborted);
        assert!(by_id("r-deploying").note.contains("torn down after a restart"));
        assert_eq!(by_id("r-queued").state, RunState::Queued);
        assert_eq!(by_id("r-lost").state, RunState::Failed);
        assert!(by_id("r-lost").note.starts_with("lost"));
        assert!(!fake.services().iter().any(|s| s.starts_with("left-deploying")), "torn down");

        let adopted = over(&manager, "r-running").await;
        assert_eq!(adopted.state, RunState::Succeeded, "{adopted:?}");
        assert_eq!(adopted.exit_code, Some(0));
        assert!(adopted.note.unwrap().starts_with("adopted"));
        assert!(adopted.outcome.unwrap()["outcome"]["logs"].as_str().unwrap().contains("hi"));
        assert!(!fake.services().iter().any(|s| s.starts_with("left-running")), "torn down at its end");
        let requeued = over(&manager, "r-queued").await;
        assert_eq!(requeued.state, RunState::Succeeded);
        assert!(requeued.note.unwrap().contains("queued again"));
    }
}
