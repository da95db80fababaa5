//! The run flow, in one place: deploy → follow logs → wait → artifacts → keep or tear down, as a
//! stream that every front renders ([`Director::run_with`]).
//!
//! - **Events**: the stream yields [`RunItem::Event`]s — progress [`Event`]s and log lines
//!   ([`LogRecord`]: role, replica, stream), each with its time — and ends with one
//!   [`RunItem::Done`] holding the [`RunReport`] (the master's [`Outcome`], the artifacts saved,
//!   whether the task was kept) or the error.
//! - **Interrupts**: the caller hands in an [`Interrupt`] (mini-redis's shutdown signal) and
//!   triggers it on SIGINT, SIGTERM, SIGHUP, a Ctrl-C in Python, an HTTP `DELETE`. The protocol
//!   lives here, once: the *first* trigger stops what runs (a deploy in progress rolls back, a
//!   running task is torn down) and waits for that cleanup, emitting its progress; the *second*
//!   gives up waiting ([`Event::CleanupAbandoned`], `atq prune` removes what is left). Either way
//!   the run ends with [`Error::Interrupted`], which says which.
//! - **Keep**: [`Keep::Never`] tears down after the run, [`Keep::Always`] leaves the task up,
//!   [`Keep::OnFailure`] leaves it up only when something failed (the deploy, the master, a
//!   worker, the artifacts), for debugging. A task that may stay is deployed *detached*, so
//!   `prune` does not remove it for its owner having exited.
//! - **Exit codes**: [`RunReport::exit_code`] is the rule every front uses (documented there).

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::cluster::{LogOptions, LogStream};
use crate::deployment::{collect_logs, Deployment, Outcome, DEFAULT_LOG_TAIL};
use crate::director::{DeployOptions, Director};
use crate::error::{Error, Result};
use crate::event::{stamp, Event, LogRecord, RunEvent};
use crate::labels::Role;
use crate::results::{self, Report};
use crate::task::Task;

/// The process exit code of a run whose workers stopped while the master ran, though the master
/// itself exited 0: the load was lower than asked, so CI must not go green.
pub const EXIT_WORKERS_LOST: u8 = 98;

/// The process exit code of a run whose thresholds failed, though the master exited 0 (k6's
/// convention; [`results::THRESHOLDS_FAILED`]).
pub const EXIT_THRESHOLDS_FAILED: u8 = 99;

/// The process exit code of a failure of atq itself (it could not deploy, save artifacts, tear
/// down), as the docker CLI uses 125 for its own errors.
pub const EXIT_ATQ_ERROR: u8 = 125;

/// The process exit code of an interrupted run (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long the master's log stream may still deliver lines after it exited (the backend ends a
/// followed log itself once every replica exited; this only bounds a misbehaving engine).
const LOG_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What to do with the task once its run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Tear it down (the default).
    #[default]
    Never,
    /// Leave it on the engine (`atq down NAME` removes it).
    Always,
    /// Leave it on the engine only when something failed, for debugging; tear it down otherwise.
    OnFailure,
}

/// Whose logs a run streams as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowLogs {
    /// None (the outcome still has the master's last lines).
    None,
    /// The master's (the default).
    #[default]
    Master,
    /// The master's and every worker's.
    All,
}

/// How [`Director::run_with`] runs a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RunOptions {
    /// How long the master may run; None: the task's `runTimeout` (or no limit).
    pub timeout: Option<Duration>,
    /// Whose logs to stream.
    pub follow_logs: FollowLogs,
    /// Where to save the master's artifacts (when the task names an artifacts directory).
    pub artifacts_dir: Option<PathBuf>,
    /// Keep the task afterwards, or not.
    pub keep: Keep,
    /// How many of the master's last log lines the outcome keeps.
    pub log_tail: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: None,
            follow_logs: FollowLogs::Master,
            artifacts_dir: None,
            keep: Keep::Never,
            log_tail: DEFAULT_LOG_TAIL,
        }
    }
}

impl RunOptions {
    /// Follow the master's logs, tear down afterwards, no artifacts, the task's own timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the master may run (instead of the task's `runTimeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whose logs to stream.
    pub fn follow_logs(mut self, follow: FollowLogs) -> Self {
        self.follow_logs = follow;
        self
    }

    /// Save the master's artifacts into `dir`.
    pub fn artifacts_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifacts_dir = Some(dir.into());
        self
    }

    /// Keep the task afterwards: never, always, or on failure.
    pub fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }

    /// How many of the master's last log lines the outcome keeps (default [`DEFAULT_LOG_TAIL`]).
    pub fn log_tail(mut self, lines: usize) -> Self {
        self.log_tail = lines;
        self
    }
}

/// The caller's way to stop a run: trigger it once to stop and clean up, twice to stop waiting
/// for the cleanup. Cheap to clone; clones trigger the same run(s).
#[derive(Debug, Clone)]
pub struct Interrupt {
    /// How many times it was triggered.
    count: Arc<watch::Sender<u32>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt { count: Arc::new(watch::channel(0).0) }
    }
}

impl Interrupt {
    /// Not triggered yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers it (once more).
    pub fn trigger(&self) {
        self.count.send_modify(|n| *n = n.saturating_add(1));
    }

    /// How many times it was triggered.
    #[must_use]
    pub fn count(&self) -> u32 {
        *self.count.borrow()
    }

    /// Resolves once it was triggered at least `n` times.
    pub async fn reached(&self, n: u32) {
        let mut rx = self.count.subscribe();
        // The sender lives in `self`, so the channel never closes while we wait.
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The task.
    pub task: String,
    /// What the master did.
    pub outcome: Outcome,
    /// The workers' addresses, by slot.
    pub workers: Vec<IpAddr>,
    /// Where the artifacts were saved (when asked and the task has some).
    pub artifacts_dir: Option<PathBuf>,
    /// The files saved there.
    pub artifacts: Vec<PathBuf>,
    /// Why the artifacts could not be saved.
    #[serde(serialize_with = "error_text")]
    pub artifacts_error: Option<Error>,
    /// Why the teardown did not finish (what is left is named).
    #[serde(serialize_with = "error_text")]
    pub teardown_error: Option<Error>,
    /// The results judged (when the task declares `results` or `thresholds`): the merged summary
    /// and the thresholds' verdicts. In JSON, `results` is `summary.json`.
    #[serde(skip)]
    pub results: Option<Report>,
    /// `summary.json`, `junit.xml` and `report.html`, written beside the artifacts.
    pub result_files: Vec<PathBuf>,
    /// Whether the task was left on the engine.
    pub kept: bool,
    /// How long the whole run took.
    #[serde(serialize_with = "secs_f64")]
    pub duration: Duration,
}

impl RunReport {
    /// Whether everything worked: the master exited 0, every worker stayed up, the artifacts
    /// (if asked) were saved, every threshold held, the teardown (if done) finished.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.exit_code() == 0
    }

    /// Whether the thresholds (if any) held.
    #[must_use]
    pub fn thresholds_passed(&self) -> bool {
        self.results.as_ref().is_none_or(Report::passed)
    }

    /// An artifacts error that is atq's own failure: not "the master wrote none" when results are
    /// judged (the results then say they are missing, and the thresholds fail).
    fn atq_artifacts_error(&self) -> bool {
        match &self.artifacts_error {
            Some(Error::ArtifactsNotFound { .. }) => self.results.is_none(),
            Some(_) => true,
            None => false,
        }
    }

    /// The process exit code for this run, the one rule of every front:
    /// 1. the master's non-zero exit code, as is (one outside `1..=255` becomes
    ///    [`EXIT_ATQ_ERROR`]); a master that could not start keeps the engine's code (126, 127);
    /// 2. [`EXIT_ATQ_ERROR`] (125) when atq could not save the artifacts asked for, or could not
    ///    tear the task down;
    /// 3. [`EXIT_THRESHOLDS_FAILED`] (99, k6's convention) when a threshold failed — or the results
    ///    were missing or unreadable while thresholds are declared;
    /// 4. [`EXIT_WORKERS_LOST`] (98) when workers stopped while the master ran;
    /// 5. 0.
    ///
    /// (Errors before a report exists — a failed deploy — are [`EXIT_ATQ_ERROR`]; an interrupted
    /// run is [`EXIT_INTERRUPTED`].)
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self.outcome.exit_code {
            0 => {}
            code => return u8::try_from(code).unwrap_or(EXIT_ATQ_ERROR),
        }
        if self.atq_artifacts_error() || self.teardown_error.is_some() {
            EXIT_ATQ_ERROR
        } else if !self.thresholds_passed() {
            EXIT_THRESHOLDS_FAILED
        } else if !self.outcome.failed_workers.is_empty() {
            EXIT_WORKERS_LOST
        } else {
            0
        }
    }

    /// The report as the JSON object that ends a run's stream:
    /// `{"schema": 1, "time": …, "event": "outcome", "task": …, "exit_code": <atq's exit code>,
    /// "outcome": {…}, …}`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("reports always serialise");
        value["event"] = "outcome".into();
        if let Some(report) = &self.results {
            value["results"] = serde_json::from_str(&report.summary_json()).unwrap_or_default();
            value["thresholds_passed"] = report.passed().into();
        }
        value["exit_code"] = self.exit_code().into();
        stamp(&mut value, SystemTime::now());
        value
    }
}

/// The JSON object that ends a run's stream when it failed:
/// `{"schema": 1, "time": …, "event": "error", "task": …, "kind": "timeout", "message": …,
/// "exit_code": 125}`.
#[must_use]
pub fn error_json(task: &str, error: &Error) -> serde_json::Value {
    let mut value = serde_json::json!({
        "event": "error",
        "task": task,
        "kind": error_kind(error),
        "message": error.to_string(),
        "exit_code": error_exit_code(error),
    });
    if let Error::Timeout { phase, .. } = error {
        value["phase"] = phase.as_str().into();
    }
    stamp(&mut value, SystemTime::now());
    value
}

/// The process exit code of a run that ended in `error`.
#[must_use]
pub fn error_exit_code(error: &Error) -> u8 {
    match error {
        Error::Interrupted { .. } => EXIT_INTERRUPTED,
        _ => EXIT_ATQ_ERROR,
    }
}

/// A short stable name of the error's kind, for JSON.
#[must_use]
pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Validation(_) => "validation",
        Error::TaskExists { .. } => "task_exists",
        Error::TaskNotFound { .. } => "task_not_found",
        Error::NotFound { .. } => "not_found",
        Error::Conflict { .. } => "conflict",
        Error::EngineUnreachable { .. } => "engine_unreachable",
        Error::EngineAddress { .. } => "engine_address",
        Error::EngineUnsuitable { .. } => "engine_unsuitable",
        Error::Engine { .. } => "engine",
        Error::InUse { .. } => "in_use",
        Error::ReplicaFailed { .. } => "replica_failed",
        Error::Timeout { .. } => "timeout",
        Error::ProbeTimeout { .. } => "probe_timeout",
        Error::Data(_) => "data",
        Error::Io { .. } => "io",
        Error::ArtifactsNotFound { .. } => "artifacts_not_found",
        Error::UnsafeArtifact { .. } => "unsafe_artifact",
        Error::TeardownIncomplete { .. } => "teardown_incomplete",
        Error::Cancelled(_) => "cancelled",
        Error::Interrupted { .. } => "interrupted",
        Error::Results(_) => "results",
        Error::Setting { .. } => "setting",
    }
}

fn error_text<S: serde::Serializer>(error: &Option<Error>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.serialize_str(&e.to_string()),
        None => s.serialize_none(),
    }
}

fn secs_f64<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One item of a [`Run`]: an event, or (last) how the run ended.
#[derive(Debug)]
pub enum RunItem {
    /// A progress event or a log line.
    Event(RunEvent),
    /// The run is over: its report, or the error that ended it.
    Done(Result<Box<RunReport>>),
}

/// A run in progress, as a stream of [`RunItem`]s ending with [`RunItem::Done`].
///
/// The flow makes progress only while the stream is polled; dropping it stops the run as an
/// interrupt would, except that nothing waits for the cleanup (atq's cleanup thread does it).
#[must_use = "a run only makes progress while its stream is polled"]
pub struct Run {
    /// Events the flow sent.
    events: mpsc::UnboundedReceiver<RunEvent>,
    /// The flow, until it finished.
    flow: Option<Pin<Box<dyn Future<Output = Result<RunReport>> + Send>>>,
    /// How it ended, until handed out.
    result: Option<Result<RunReport>>,
    /// Set once `Done` was handed out.
    finished: bool,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("running", &self.flow.is_some()).field("finished", &self.finished).finish()
    }
}

impl Run {
    /// Runs to the end, dropping the events; returns how it ended.
    ///
    /// # Errors
    /// The error that ended the run.
    pub async fn finish(mut self) -> Result<RunReport> {
        while let Some(item) = self.next().await {
            if let RunItem::Done(result) = item {
                return result.map(|report| *report);
            }
        }
        Err(Error::Cancelled("the run ended without a result".into()))
    }
}

impl Stream for Run {
    type Item = RunItem;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<RunItem>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Poll::Ready(Some(event)) = this.events.poll_recv(cx) {
            return Poll::Ready(Some(RunItem::Event(event)));
        }
        if let Some(flow) = this.flow.as_mut() {
            match flow.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    this.flow = None;
                    this.result = Some(result);
                }
                Poll::Pending => {
                    // Polling the flow may have sent events.
                    return match this.events.poll_recv(cx) {
                        Poll::Ready(Some(event)) => Poll::Ready(Some(RunItem::Event(event))),
                        _ => Poll::Pending,
                    };
                }
            }
        }
        if let Ok(event) = this.events.try_recv() {
            return Poll::Ready(Some(RunItem::Event(event)));
        }
        this.finished = true;
        Poll::Ready(this.result.take().map(|result| RunItem::Done(result.map(Box::new))))
    }
}

impl Director {
    /// Runs `task` to the end: deploys it, streams its progress and the master's logs, waits for
    /// the master to exit (at most the timeout), saves its artifacts, then keeps or tears it down
    /// as `options` say. `interrupt` stops it (see the module docs for the protocol).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), atq_core::Error> {
    /// use atq_core::run::{Interrupt, RunItem, RunOptions};
    /// use atq_core::{Director, FakeCluster, Service, Task};
    /// use futures_util::StreamExt;
    ///
    /// let fake = FakeCluster::new();
    /// fake.master_exits(0, ["done"]);
    /// let director = Director::new(fake);
    /// let task = Task::builder("demo").workers(Service::new("img").replicas(2)).master(Service::new("img")).build()?;
    /// let mut run = director.run_with(&task, RunOptions::new(), Interrupt::new());
    /// while let Some(item) = run.next().await {
    ///     match item {
    ///         RunItem::Event(event) => println!("{}", event.to_json()),
    ///         RunItem::Done(report) => assert_eq!(report?.exit_code(), 0),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_with(&self, task: &Task, options: RunOptions, interrupt: Interrupt) -> Run {
        let (tx, events) = mpsc::unbounded_channel();
        let flow = Flow { director: self.clone(), task: task.clone(), options, interrupt, tx, resume: None };
        Run { events, flow: Some(Box::pin(flow.run())), result: None, finished: false }
    }

    /// Runs `task` as [`run_with`](Self::run_with) does, from an existing deploy (`deploy_id`)
    /// that another process made and can no longer follow — a restarted service adopting its
    /// runs: the flow picks it up where the deploy ends (following the logs, waiting for the
    /// master, artifacts, results, keep or teardown). The stream starts with the master's logs
    /// from the beginning. A deploy with no master on the engine ends the run with
    /// [`Error::TaskNotFound`].
    pub fn resume_with(&self, task: &Task, deploy_id: &str, options: RunOptions, interrupt: Interrupt) -> Run {
        let (tx, events) = mpsc::unbounded_channel();
        let resume = Some(deploy_id.to_owned());
        let flow = Flow { director: self.clone(), task: task.clone(), options, interrupt, tx, resume };
        Run { events, flow: Some(Box::pin(flow.run())), result: None, finished: false }
    }

    /// Deploys `task` as [`deploy_with`](Self::deploy_with) does, stopped by `interrupt` by the
    /// same protocol as a run (`atq up` uses it): the first trigger rolls the deploy back and
    /// waits for that; the second gives up waiting. Progress goes to the [subscribers](Self::subscribe).
    ///
    /// # Errors
    /// The deploy's error, or [`Error::Interrupted`].
    pub async fn deploy_interruptible(
        &self,
        task: &Task,
        options: DeployOptions,
        interrupt: &Interrupt,
    ) -> Result<Deployment> {
        tokio::select! {
            biased;
            () = interrupt.reached(1) => {}
            deployed = self.deploy_with(task, options) => return deployed,
        }
        let emit = |event| self.ctx.emit(event);
        Err(settle_rollback(self, task.name(), interrupt, emit).await)
    }

    /// Deploys `task`, waits for its master to exit (at most the task's `runTimeout`), tears
    /// it down and returns what the master did. Teardown happens whatever the outcome.
    ///
    /// # Errors
    /// A failed deploy, a wait that timed out, or a teardown that did not finish.
    pub async fn run(&self, task: &Task) -> Result<Outcome> {
        let options = RunOptions::new().follow_logs(FollowLogs::None);
        let report = self.run_with(task, options, Interrupt::new()).finish().await?;
        match report.teardown_error {
            Some(e) => Err(e),
            None => Ok(report.outcome),
        }
    }
}

/// The state of one run.
struct Flow {
    director: Director,
    task: Task,
    options: RunOptions,
    interrupt: Interrupt,
    /// The run's own stream.
    tx: mpsc::UnboundedSender<RunEvent>,
    /// The deploy to pick up instead of deploying (a run adopted after a restart).
    resume: Option<String>,
}

impl Flow {
    fn emit(&self, event: Event) {
        let _ = self.tx.send(RunEvent::progress(event.clone()));
        self.director.ctx.emit(event);
    }

    fn name(&self) -> String {
        self.task.name().to_owned()
    }

    async fn run(self) -> Result<RunReport> {
        let started = Instant::now();
        let keep = self.options.keep;
        let deploy_options = DeployOptions::new()
            .keep_on_failure(keep == Keep::OnFailure)
            .detached(keep != Keep::Never)
            .sink(self.tx.clone());
        let deployment = match &self.resume {
            Some(deploy_id) => self.director.attach(&self.task, deploy_id, Some(self.tx.clone())).await?,
            None => tokio::select! {
                biased;
                () = self.interrupt.reached(1) => return self.interrupted_while_deploying().await,
                deployed = self.director.deploy_with(&self.task, deploy_options) => deployed?,
            },
        };
        let workers = deployment.workers().to_vec();

        // Follow the logs while waiting for the master to exit.
        let timeout = self.options.timeout.or(self.task.run_timeout());
        let mut follower = LogFollower::open(&self, self.options.follow_logs).await;
        let exit = {
            let wait = deployment.wait_exit(timeout);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    biased;
                    () = self.interrupt.reached(1) => break None,
                    exit = &mut wait => break Some(exit),
                    Some(record) = follower.next(), if follower.is_open() => follower.deliver(&self.tx, record),
                }
            }
        };
        let Some(exit) = exit else {
            return self.interrupted_while_running(deployment).await;
        };
        let exit = match exit {
            Ok(exit) => exit,
            // A master still running (a timeout) has a log that does not end: no drain.
            Err(e) => return self.end_after_failure(deployment, e).await,
        };
        // A master lost with its node has no exit code, and its log cannot be read to its end.
        if let Some(e) = exit.without_exit_code(self.task.name()) {
            return self.end_after_failure(deployment, e).await;
        }
        // The master's followed log ends by itself once it exited: read it to its end.
        follower.drain(&self.tx).await;
        let logs = match follower.master_tail() {
            Some(tail) => tail,
            None => match self.master_logs_tail().await {
                Ok(logs) => logs,
                Err(e) => return self.end_after_failure(deployment, e).await,
            },
        };
        let outcome = match exit.into_outcome(self.task.name(), logs) {
            Ok(outcome) => outcome,
            Err(e) => return self.end_after_failure(deployment, e).await,
        };

        // Artifacts are read from the master's container: before any teardown removes it. When
        // results are to be judged but no directory was asked for, they go to a temporary one.
        let judge = self.task.results().is_some() || !self.task.thresholds().is_empty();
        let scratch = match (&self.options.artifacts_dir, self.task.artifacts(), judge) {
            (None, Some(_), true) => tempfile::tempdir().ok(),
            _ => None,
        };
        let dir = self.options.artifacts_dir.clone().or_else(|| scratch.as_ref().map(|t| t.path().to_path_buf()));
        let (mut artifacts, mut artifacts_error, mut artifacts_dir) = (Vec::new(), None, None);
        if let (Some(dir), Some(_)) = (&dir, self.task.artifacts()) {
            artifacts_dir = scratch.is_none().then(|| dir.clone());
            match deployment.save_artifacts(dir).await {
                Ok(files) => {
                    self.emit(Event::ArtifactsSaved {
                        task: self.name(),
                        dir: dir.display().to_string(),
                        files: files.len(),
                    });
                    artifacts = files;
                }
                Err(e) => artifacts_error = Some(e),
            }
        }
        let (mut judged, mut result_files) = (None, Vec::new());
        if let Some(dir) = dir.as_deref().filter(|_| judge) {
            if let Some(report) = results::analyze_task(dir, &self.task) {
                if scratch.is_none() {
                    match report.write_outputs(dir) {
                        Ok(files) => result_files = files,
                        Err(e) => tracing::warn!(error = %e, "cannot write the result reports"),
                    }
                }
                let failed = report.verdicts().iter().filter(|v| !v.passed).count();
                self.emit(Event::ResultsJudged {
                    task: self.name(),
                    thresholds: report.verdicts().len(),
                    failed,
                    problem: report.problem().map(str::to_owned),
                });
                judged = Some(report);
            }
        }

        let failed = !outcome.succeeded() || artifacts_error.is_some() || judged.as_ref().is_some_and(|r| !r.passed());
        let mut report = RunReport {
            task: self.name(),
            outcome,
            workers,
            artifacts_dir,
            artifacts,
            artifacts_error,
            teardown_error: None,
            results: judged,
            result_files,
            kept: false,
            duration: Duration::ZERO,
        };
        if keep == Keep::Always || (keep == Keep::OnFailure && failed) {
            let reason = if keep == Keep::Always { "asked to keep it" } else { "the run failed; kept for debugging" };
            self.emit(Event::Kept {
                task: self.name(),
                reason: format!("{reason}: `atq down {}` removes it", self.task.name()),
            });
            deployment.keep();
            report.kept = true;
        } else {
            tokio::select! {
                biased;
                () = self.interrupt.reached(2) => return self.abandon(deployment),
                torn_down = deployment.teardown() => report.teardown_error = torn_down.err(),
            }
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    /// The master's last lines, read from the engine (when its logs were not followed).
    async fn master_logs_tail(&self) -> Result<String> {
        let options = LogOptions { tail: Some(self.options.log_tail), ..LogOptions::default() };
        let logs = self.director.ctx.cluster.logs(&self.task.master_service_name(), &options).await?;
        collect_logs(logs, self.options.log_tail).await
    }

    /// The wait (or reading its result) failed: keep the task if asked, else tear it down; the
    /// run ends with that error either way.
    async fn end_after_failure(&self, deployment: Deployment, error: Error) -> Result<RunReport> {
        if self.options.keep != Keep::Never {
            self.emit(Event::Kept {
                task: self.name(),
                reason: format!(
                    "the run failed ({error}); kept for debugging: `atq down {}` removes it",
                    self.task.name()
                ),
            });
            deployment.keep();
            return Err(error);
        }
        tokio::select! {
            biased;
            () = self.interrupt.reached(2) => return self.abandon(deployment),
            torn_down = deployment.teardown() => {
                if let Err(e) = torn_down {
                    tracing::warn!(task = %self.name(), error = %e, "teardown after a failed run left objects behind");
                }
            }
        }
        Err(error)
    }

    /// The first interrupt came while deploying: the deploy future was dropped (it rolls back on
    /// atq's cleanup thread); wait for that, unless a second interrupt comes.
    async fn interrupted_while_deploying(&self) -> Result<RunReport> {
        Err(settle_rollback(&self.director, self.task.name(), &self.interrupt, |event| self.emit(event)).await)
    }

    /// The first interrupt came while the master ran: tear down, unless a second interrupt comes.
    async fn interrupted_while_running(&self, deployment: Deployment) -> Result<RunReport> {
        self.emit(Event::Interrupted { task: self.name() });
        tokio::select! {
            biased;
            () = self.interrupt.reached(2) => self.abandon(deployment),
            torn_down = deployment.teardown() => match torn_down {
                Ok(()) => Err(Error::Interrupted { abandoned: false }),
                Err(e) => Err(e),
            },
        }
    }

    /// A second interrupt: stop waiting for the cleanup (it goes on, on atq's cleanup thread,
    /// for as long as the process lives).
    fn abandon(&self, deployment: Deployment) -> Result<RunReport> {
        self.emit(Event::CleanupAbandoned { task: self.name() });
        drop(deployment);
        Err(Error::Interrupted { abandoned: true })
    }
}

/// After a first interrupt dropped a deploy (which rolls back on atq's cleanup thread): waits for
/// that rollback, reporting it, unless a second interrupt comes; returns the error the call ends with.
async fn settle_rollback(director: &Director, task: &str, interrupt: &Interrupt, emit: impl Fn(Event)) -> Error {
    emit(Event::Interrupted { task: task.to_owned() });
    emit(Event::TeardownStarted { task: task.to_owned() });
    tokio::select! {
        biased;
        () = interrupt.reached(2) => {
            emit(Event::CleanupAbandoned { task: task.to_owned() });
            Error::Interrupted { abandoned: true }
        }
        () = director.settled() => {
            emit(Event::TornDown { task: task.to_owned() });
            Error::Interrupted { abandoned: false }
        }
    }
}

/// The logs a run follows: the master's (which end once it exited) and, if asked, the workers'
/// (which run until the teardown, so they are not waited for).
struct LogFollower {
    task: String,
    master: Option<LogStream>,
    workers: Option<LogStream>,
    /// The master's last lines, kept for the outcome (None: the master's logs are not followed).
    tail: Option<VecDeque<String>>,
    /// Bound of `tail`.
    keep: usize,
}

impl LogFollower {
    async fn open(flow: &Flow, follow: FollowLogs) -> LogFollower {
        let cluster = &flow.director.ctx.cluster;
        let open = |service: String| async move {
            match cluster.logs(&service, &LogOptions::follow()).await {
                Ok(stream) => Some(stream),
                Err(e) => {
                    tracing::warn!(service, error = %e, "cannot follow these logs; the outcome has the master's last lines");
                    None
                }
            }
        };
        let master = match follow {
            FollowLogs::None => None,
            FollowLogs::Master | FollowLogs::All => open(flow.task.master_service_name()).await,
        };
        let workers = match follow {
            FollowLogs::All => open(flow.task.worker_service_name()).await,
            FollowLogs::None | FollowLogs::Master => None,
        };
        LogFollower {
            task: flow.task.name().to_owned(),
            tail: master.is_some().then(VecDeque::new),
            master,
            workers,
            keep: flow.options.log_tail,
        }
    }

    fn is_open(&self) -> bool {
        self.master.is_some() || self.workers.is_some()
    }

    /// The next line of either stream; a stream that ended or failed is closed.
    async fn next(&mut self) -> Option<(Role, Result<crate::cluster::LogLine>)> {
        let (master, workers) = (&mut self.master, &mut self.workers);
        let master = async {
            match master.as_mut() {
                Some(s) => (Role::Master, s.next().await),
                None => std::future::pending().await,
            }
        };
        let workers = async {
            match workers.as_mut() {
                Some(s) => (Role::Worker, s.next().await),
                None => std::future::pending().await,
            }
        };
        let (role, line) = tokio::select! {
            m = master => m,
            w = workers => w,
        };
        match line {
            Some(line) => Some((role, line)),
            None => {
                match role {
                    Role::Master => self.master = None,
                    _ => self.workers = None,
                }
                None
            }
        }
    }

    fn deliver(&mut self, tx: &mpsc::UnboundedSender<RunEvent>, (role, line): (Role, Result<crate::cluster::LogLine>)) {
        match line {
            Ok(line) => {
                if role == Role::Master {
                    if let Some(tail) = self.tail.as_mut() {
                        tail.push_back(line.text.clone());
                        if tail.len() > self.keep {
                            tail.pop_front();
                        }
                    }
                }
                let record = LogRecord {
                    task: self.task.clone(),
                    role,
                    replica: line.replica,
                    source: line.source,
                    text: line.text,
                };
                let _ = tx.send(RunEvent::log(record, line.time));
            }
            Err(e) => {
                tracing::warn!(role = %role, error = %e, "a log stream failed; the outcome has the master's last lines");
                match role {
                    Role::Master => {
                        self.master = None;
                        self.tail = None;
                    }
                    _ => self.workers = None,
                }
            }
        }
    }

    /// Reads the master's log to its end (bounded), and stops following the workers.
    async fn drain(&mut self, tx: &mpsc::UnboundedSender<RunEvent>) {
        self.workers = None;
        let deadline = Instant::now() + LOG_DRAIN_LIMIT;
        while self.master.is_some() {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(record)) => self.deliver(tx, record),
                Ok(None) => {}
                Err(_) => {
                    tracing::warn!("the master's log did not end after it exited; stopped reading it");
                    self.master = None;
                    self.tail = None;
                }
            }
        }
    }

    /// The master's last lines as text, if they were followed to the end.
    fn master_tail(&mut self) -> Option<String> {
        let tail = self.tail.take()?;
        let mut out = String::with_capacity(tail.iter().map(|l| l.len() + 1).sum());
        for line in tail {
            out.push_str(&line);
            out.push('\n');
        }
        Some(out)
    }
}

// The same protocol for the calls a front makes on a deployed task (Python's `Deployment.wait`,
// `teardown`, a context manager's exit): what the first and the second trigger do is decided here.

impl Deployment {
    /// [`wait`](Deployment::wait), stopped by `interrupt` as a run is: the first trigger stops
    /// waiting and tears the task down, waiting for that ([`Event::Interrupted`], then the
    /// teardown's events); the second gives up waiting ([`Event::CleanupAbandoned`]). An
    /// abandoned handle is still live: dropping it finishes the removal on atq's cleanup thread.
    ///
    /// # Errors
    /// As [`wait`](Deployment::wait); [`Error::Interrupted`] once interrupted (or the teardown's
    /// [`Error::TeardownIncomplete`]).
    pub async fn wait_interruptible(&self, timeout: Option<Duration>, interrupt: &Interrupt) -> Result<Outcome> {
        tokio::select! {
            biased;
            () = interrupt.reached(1) => {}
            outcome = self.wait(timeout) => return outcome,
        }
        self.emit(Event::Interrupted { task: self.name().to_owned() });
        let emit = |event| self.emit(event);
        unless_abandoned(self.name(), interrupt, self.teardown(), emit).await?;
        Err(Error::Interrupted { abandoned: false })
    }

    /// [`teardown`](Deployment::teardown), stopped by `interrupt`: the teardown *is* the cleanup,
    /// so the first trigger only says so ([`Event::Interrupted`]) and keeps waiting; the second
    /// gives up waiting ([`Event::CleanupAbandoned`]; the handle stays live, dropping it finishes
    /// the removal on atq's cleanup thread).
    ///
    /// # Errors
    /// As [`teardown`](Deployment::teardown); [`Error::Interrupted`] once interrupted.
    pub async fn teardown_interruptible(&self, interrupt: &Interrupt) -> Result<()> {
        let emit = |event| self.emit(event);
        cleanup_interruptible(self.name(), interrupt, self.teardown(), emit).await
    }
}

impl Director {
    /// [`teardown`](Director::teardown) stopped by `interrupt` as
    /// [`Deployment::teardown_interruptible`] is (the second trigger leaves the rest to `atq prune`).
    ///
    /// # Errors
    /// As [`teardown`](Director::teardown); [`Error::Interrupted`] once interrupted.
    pub async fn teardown_interruptible(&self, name: &str, interrupt: &Interrupt) -> Result<()> {
        let emit = |event| self.ctx.emit(event);
        cleanup_interruptible(name, interrupt, self.teardown(name), emit).await
    }
}

/// Waits for a cleanup under the interrupt protocol: a first trigger says the cleanup goes on
/// and is waited for; a second gives up. Ends with [`Error::Interrupted`] once triggered.
async fn cleanup_interruptible(
    task: &str,
    interrupt: &Interrupt,
    cleanup: impl Future<Output = Result<()>>,
    emit: impl Fn(Event),
) -> Result<()> {
    tokio::pin!(cleanup);
    tokio::select! {
        biased;
        () = interrupt.reached(1) => {}
        done = &mut cleanup => return done,
    }
    emit(Event::Interrupted { task: task.to_owned() });
    unless_abandoned(task, interrupt, cleanup, emit).await?;
    Err(Error::Interrupted { abandoned: false })
}

/// Waits for `cleanup` unless a second interrupt comes first: then says so
/// ([`Event::CleanupAbandoned`]) and ends with [`Error::Interrupted`] `{ abandoned: true }`.
async fn unless_abandoned(
    task: &str,
    interrupt: &Interrupt,
    cleanup: impl Future<Output = Result<()>>,
    emit: impl Fn(Event),
) -> Result<()> {
    tokio::select! {
        biased;
        () = interrupt.reached(2) => {
            emit(Event::CleanupAbandoned { task: task.to_owned() });
            Err(Error::Interrupted { abandoned: true })
        }
        done = cleanup => done,
    }
}
