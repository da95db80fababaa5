//! `atq run` and `atq up`: deploy with progress, follow the master, clean up on interrupt.
//!
//! Interrupts: the whole flow is one future raced against SIGINT/SIGTERM. When a signal wins,
//! the flow is dropped: a deploy in progress rolls back (the core removes what its dropped
//! future created) and a deployment tears down (dropping it does); the CLI then waits for
//! those background cleanups (`Director::settled`) and exits 130. A second signal abandons the
//! cleanup (`atq prune` removes what is left).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atq_core::cluster::LogStream;
use atq_core::{Director, Event, Task, ValidationError};
use futures_util::stream::{self, Fuse, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;

use crate::cli::{RunArgs, UpArgs};
use crate::display::{self, Display, Mode};
use crate::error::CliError;
use crate::signals::Signals;
use crate::{engine, exit, taskfile};

/// Where `atq run` saves artifacts when the task has some and `--artifacts` is not given:
/// `./atq-artifacts/<task>/`.
const DEFAULT_ARTIFACTS_DIR: &str = "atq-artifacts";

/// How long to keep reading the master's log stream after it exited, for lines still in flight.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Shows events and log lines while some future runs.
struct Feed {
    /// The director's events.
    events: broadcast::Receiver<Event>,
    /// False once the event channel closed (so it is not polled again).
    events_open: bool,
    /// The master's log stream, once followed (empty before).
    logs: Fuse<LogStream>,
    /// Where it all goes.
    display: Display,
}

impl Feed {
    fn new(director: &Director, display: Display) -> Self {
        Feed { events: director.subscribe(), events_open: true, logs: no_logs(), display }
    }

    /// Runs `fut` to completion, showing events and log lines as they come.
    async fn until<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                biased;
                event = self.events.recv(), if self.events_open => self.on_event(event),
                Some(line) = self.logs.next() => match line {
                    Ok(line) => self.display.log(&line),
                    Err(e) => {
                        tracing::warn!(error = %e, "the master's log stream failed; its logs are printed at exit");
                        self.logs = no_logs();
                    }
                },
                out = &mut fut => {
                    self.drain_events();
                    return out;
                }
                _ = tick.tick() => self.display.tick(),
            }
        }
    }

    fn on_event(&mut self, event: Result<Event, broadcast::error::RecvError>) {
        match event {
            Ok(event) => self.display.event(&event),
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!(missed = n, "display lagged behind events"),
            Err(broadcast::error::RecvError::Closed) => self.events_open = false,
        }
    }

    /// Shows the events already sent.
    fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.display.event(&event);
        }
    }

    /// Reads what is left of the log stream, for at most `limit`.
    async fn drain_logs(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Some(Ok(line))) = tokio::time::timeout_at(deadline, self.logs.next()).await {
            self.display.log(&line);
        }
        self.logs = no_logs();
    }
}

fn no_logs() -> Fuse<LogStream> {
    let empty: LogStream = stream::empty().boxed();
    empty.fuse()
}

/// Runs `flow`; on SIGINT/SIGTERM drops it, waits for the director's cleanups, and returns
/// [`CliError::Interrupted`].
async fn interruptible<T>(
    director: &Director,
    feed: &mut Feed,
    signals: &mut Signals,
    flow: impl AsyncFnOnce(&mut Feed) -> Result<T, CliError>,
) -> Result<T, CliError> {
    tokio::select! {
        result = flow(feed) => return result,
        () = signals.recv() => {}
    }
    // The flow is dropped here: its deploy rolls back, its deployment tears down, in the background.
    feed.display.interrupted();
    tokio::select! {
        () = feed.until(director.settled()) => {}
        () = signals.recv() => {
            feed.display.clear();
            display::err("atq: cleanup abandoned: `atq prune` removes what is left");
        }
    }
    Err(CliError::Interrupted)
}

/// `atq run`: deploy, follow the master's logs while waiting for it, tear down, return its code.
pub async fn run(args: RunArgs, signals: &mut Signals) -> Result<u8, CliError> {
    let mut task = taskfile::load(&args.file, args.name.as_deref())?;
    let director = connect(signals).await?;
    if let Some(path) = &args.data {
        let id = tokio::select! {
            id = crate::data::push(&director, path) => id?,
            () = signals.recv() => return Err(CliError::Interrupted),
        };
        task = task.with_data_bundle(&id).map_err(|error| CliError::Invalid { file: "--data".into(), error })?;
    }
    let mut feed = Feed::new(&director, Display::new(Mode::detect(args.json), task.name()));
    let timeout = args.timeout.map(Duration::from_secs).or(task.run_timeout());
    let keep = args.keep;
    let artifacts = artifacts_dir(&task, args.artifacts)?;
    interruptible(&director, &mut feed, signals, async |feed: &mut Feed| {
        run_flow(&director, &task, keep, timeout, artifacts.as_deref(), feed).await
    })
    .await
}

/// Where to save the task's artifacts: `--artifacts`, else `./atq-artifacts/<task>/` when the
/// task has an `artifacts` directory, else nowhere. `--artifacts` on a task without one is an error.
fn artifacts_dir(task: &Task, flag: Option<PathBuf>) -> Result<Option<PathBuf>, CliError> {
    match (flag, task.artifacts()) {
        (Some(dir), Some(_)) => Ok(Some(dir)),
        (None, Some(_)) => Ok(Some(Path::new(DEFAULT_ARTIFACTS_DIR).join(task.name()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CliError::Invalid {
            file: "--artifacts".into(),
            error: ValidationError::single(
                "artifacts",
                "the task names no artifacts directory: add `artifacts: /atq/results` to the task file and have the master write its files there ($ATQ_RESULTS_DIR)",
            ),
        }),
    }
}

async fn run_flow(
    director: &Director,
    task: &Task,
    keep: bool,
    timeout: Option<Duration>,
    artifacts: Option<&Path>,
    feed: &mut Feed,
) -> Result<u8, CliError> {
    let started = Instant::now();
    feed.display.start();
    let deployment = feed.until(director.deploy(task)).await?;
    match deployment.logs(true).await {
        Ok(logs) => feed.logs = logs.fuse(),
        Err(e) => tracing::warn!(error = %e, "cannot follow the master's logs; they are printed at exit"),
    }
    let outcome = feed.until(deployment.wait(timeout)).await;
    feed.drain_logs(LOG_DRAIN).await;
    // Artifacts are read from the master's container, so before teardown removes it.
    let saved = match (&outcome, artifacts) {
        (Ok(_), Some(dir)) => Some(feed.until(deployment.save_artifacts(dir)).await.map(|files| (dir, files))),
        _ => None,
    };
    let workers = deployment.workers().len();
    let teardown = if keep {
        deployment.keep();
        Ok(())
    } else {
        let result = feed.until(deployment.teardown()).await;
        drop(deployment);
        result
    };
    let outcome = outcome?;
    feed.display.rest_of_logs(&outcome);
    teardown?;
    feed.display.outcome(&outcome, workers, started.elapsed(), !keep);
    let mut exit_code = outcome.exit_code;
    if let Some(saved) = saved {
        let (dir, files) = saved?;
        feed.display.artifacts(&outcome.task, dir, &files);
        // Interim wiring (workloads helper) until the run flow calls the results layer itself:
        // judge the task's results, write summary.json, junit.xml and report.html beside the
        // artifacts, and exit 99 when a threshold failed and the master exited 0.
        if let Some(report) = atq_core::results::analyze_task(dir, task) {
            display::err(report.summary_table().trim_end());
            match report.write_outputs(dir) {
                Ok(written) => display::err(&format!("atq: results: {} file(s) in {}", written.len(), dir.display())),
                Err(e) => display::err(&format!("atq: warning: {e}")),
            }
            exit_code = report.exit_code(exit_code);
        }
    }
    let code = exit::of_master(exit_code);
    if i64::from(code) != exit_code {
        display::err(&format!("atq: the master's exit code {exit_code} is outside 0..=255: exiting {code}"));
    }
    Ok(code)
}

/// `atq up`: deploy, print the task name and worker addresses, leave it running.
pub async fn up(args: UpArgs, signals: &mut Signals) -> Result<u8, CliError> {
    let task = taskfile::load(&args.file, args.name.as_deref())?;
    let director = connect(signals).await?;
    let mode = Mode::detect(args.json);
    let mut feed = Feed::new(&director, Display::new(mode, task.name()));
    let deployment = interruptible(&director, &mut feed, signals, async |feed: &mut Feed| {
        feed.display.start();
        Ok(feed.until(director.deploy(&task)).await?)
    })
    .await?;
    feed.display.clear();
    if mode == Mode::Json {
        display::out(&json!({"event": "up", "task": deployment.name(), "workers": deployment.workers()}).to_string());
    } else {
        display::out(deployment.name());
        for address in deployment.workers() {
            display::out(&address.to_string());
        }
        display::err(&format!("atq: task {} is up: `atq down {}` removes it", deployment.name(), deployment.name()));
    }
    deployment.keep();
    Ok(exit::SUCCESS)
}

/// Connects to the engine; a signal meanwhile interrupts (nothing exists yet to clean up).
async fn connect(signals: &mut Signals) -> Result<Director, CliError> {
    tokio::select! {
        director = engine::director() => director,
        () = signals.recv() => Err(CliError::Interrupted),
    }
}
