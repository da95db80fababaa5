//! `atq run` and `atq up`: render the core's run stream; forward signals to its interrupt.
//!
//! Everything that happens — deploy, log following, waiting, artifacts, keep or teardown, what
//! an interrupt does — is `atq_core::run`'s. This module parses the options into
//! [`RunOptions`], forwards every SIGINT/SIGTERM/SIGHUP to the run's [`Interrupt`], and shows each
//! item of the stream ([`Display`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use atq_core::event::RunEventKind;
use atq_core::run::{FollowLogs, Keep, RunItem, RunOptions};
use atq_core::{DeployOptions, Director, Interrupt, Task, ValidationError};
use futures_util::StreamExt;
use serde_json::json;

use crate::cli::{RunArgs, UpArgs};
use crate::display::{self, Display, Mode};
use crate::error::CliError;
use crate::signals::Signals;
use crate::{engine, exit, taskfile};

/// Where `atq run` saves artifacts when the task has some and `--artifacts` is not given:
/// `./atq-artifacts/<task>/`.
const DEFAULT_ARTIFACTS_DIR: &str = "atq-artifacts";

/// `atq run`: the whole run flow; exits by [`atq_core::RunReport::exit_code`].
pub async fn run(args: RunArgs, signals: &mut Signals) -> Result<u8, CliError> {
    let mut task = taskfile::load(&args.file, args.name.as_deref(), signals).await?;
    let director = connect(signals).await?;
    if let Some(path) = &args.data {
        let id = tokio::select! {
            id = crate::data::push(&director, path, false, &args.split) => id?,
            () = signals.recv() => return Err(CliError::Interrupted { abandoned: false }),
        };
        task = task.with_data_bundle(&id).map_err(|error| CliError::Invalid { file: "--data".into(), error })?;
    }
    let mut options =
        RunOptions::new().follow_logs(if args.worker_logs { FollowLogs::All } else { FollowLogs::Master });
    if let Some(secs) = args.timeout {
        options = options.timeout(Duration::from_secs(secs));
    }
    if let Some(dir) = artifacts_dir(&task, args.artifacts)? {
        options = options.artifacts_dir(dir);
    }
    options = options.keep(match (args.keep, args.keep_on_failure) {
        (true, _) => Keep::Always,
        (false, true) => Keep::OnFailure,
        (false, false) => Keep::Never,
    });

    let mut display = Display::new(Mode::detect(args.json), task.name(), args.worker_logs);
    let interrupt = Interrupt::new();
    let mut stream = director.run_with(&task, options, interrupt.clone());
    display.start();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(RunItem::Event(event)) => match &event.kind {
                    RunEventKind::Progress(progress) => display.event(progress, &event),
                    RunEventKind::Log(line) => display.log(line, &event),
                    _ => {}
                },
                Some(RunItem::Done(result)) => break result,
                None => break Err(atq_core::Error::Cancelled("the run ended without a result".into())),
            },
            () = signals.recv() => interrupt.trigger(),
            _ = tick.tick() => display.tick(),
        }
    };
    match result {
        Ok(report) => {
            display.report(&report);
            let code = report.exit_code();
            if i64::from(code) != report.outcome.exit_code && report.outcome.exit_code != 0 {
                display::err(&format!(
                    "atq: the master's exit code {} is outside 0..=255: exiting {code}",
                    report.outcome.exit_code
                ));
            }
            Ok(code)
        }
        Err(atq_core::Error::Interrupted { .. }) => {
            display.clear();
            Err(CliError::Interrupted { abandoned: interrupt.count() >= 2 })
        }
        Err(e) => {
            display.clear();
            Err(e.into())
        }
    }
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

/// `atq up`: deploy (detached, so `prune` leaves it until its expiry), print the task name and
/// worker addresses, leave it running.
pub async fn up(args: UpArgs, signals: &mut Signals) -> Result<u8, CliError> {
    let task = taskfile::load(&args.file, args.name.as_deref(), signals).await?;
    let director = connect(signals).await?;
    let mode = Mode::detect(args.json);
    let mut display = Display::new(mode, task.name(), false);
    let mut events = director.subscribe();
    let interrupt = Interrupt::new();
    display.start();
    let deploy = director.deploy_interruptible(&task, DeployOptions::new().detached(true), &interrupt);
    tokio::pin!(deploy);
    let result = loop {
        tokio::select! {
            biased;
            Ok(event) = events.recv() => {
                let stamped = atq_core::event::RunEvent::progress(event.clone());
                display.event(&event, &stamped);
            }
            result = &mut deploy => break result,
            () = signals.recv() => interrupt.trigger(),
        }
    };
    while let Ok(event) = events.try_recv() {
        let stamped = atq_core::event::RunEvent::progress(event.clone());
        display.event(&event, &stamped);
    }
    let deployment = match result {
        Ok(d) => d,
        Err(atq_core::Error::Interrupted { .. }) => {
            display.clear();
            return Err(CliError::Interrupted { abandoned: interrupt.count() >= 2 });
        }
        Err(e) => {
            display.clear();
            return Err(e.into());
        }
    };
    display.clear();
    if mode == Mode::Json {
        let mut value = json!({"event": "up", "task": deployment.name(), "workers": deployment.workers()});
        atq_core::event::stamp(&mut value, std::time::SystemTime::now());
        display::out(&value.to_string());
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
        () = signals.recv() => Err(CliError::Interrupted { abandoned: false }),
    }
}
