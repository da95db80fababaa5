//! Progress of a task, as a stream of [`Event`]s.
//!
//! Subscribe with [`Director::subscribe`](crate::Director::subscribe); every event names its
//! task, so one subscription can follow many tasks. Progress bars, the CLI's `--json` output and
//! the Python callbacks all read these.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cluster::LogSource;
use crate::labels::Role;

/// One step of a task's life.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The deploy waits for a free slot in the queue.
    Queued {
        /// The task.
        task: String,
    },
    /// The task's network exists.
    NetworkCreated {
        /// The task.
        task: String,
        /// The network's name.
        network: String,
        /// This deploy's id: the value of [`labels::DEPLOY`](crate::labels::DEPLOY) on everything
        /// it creates ([`Director::teardown_deploy`](crate::Director::teardown_deploy) removes
        /// exactly that, whatever else carries the task's name).
        deploy_id: String,
    },
    /// The worker service exists; its replicas are being scheduled.
    WorkersCreated {
        /// The task.
        task: String,
        /// The worker service's name.
        service: String,
        /// How many replicas were asked for.
        replicas: u32,
    },
    /// Some more workers run (emitted when the count changes).
    WorkersRunning {
        /// The task.
        task: String,
        /// Workers running (and healthy, with a health check) with an address.
        running: u32,
        /// Workers asked for.
        total: u32,
    },
    /// All workers run; here are their addresses.
    WorkersReady {
        /// The task.
        task: String,
        /// Every worker's address on the task network.
        addresses: Vec<IpAddr>,
    },
    /// One try of the wait command finished without passing.
    ProbeAttempt {
        /// The task.
        task: String,
        /// Which try (from 1).
        attempt: u32,
        /// Its exit code and trimmed output.
        result: String,
    },
    /// The wait command starts (its first try).
    ProbeStarted {
        /// The task.
        task: String,
        /// The image it runs in.
        image: String,
    },
    /// The wait command passed.
    ProbePassed {
        /// The task.
        task: String,
        /// Tries it took.
        attempts: u32,
    },
    /// Waiting the task's delay before starting the master.
    Delay {
        /// The task.
        task: String,
        /// How long.
        #[serde(serialize_with = "secs_f64")]
        duration: Duration,
    },
    /// The master service exists.
    MasterCreated {
        /// The task.
        task: String,
        /// The master service's name.
        service: String,
    },
    /// The master runs: the deploy is complete.
    MasterRunning {
        /// The task.
        task: String,
    },
    /// The master exited.
    MasterExited {
        /// The task.
        task: String,
        /// Its exit code.
        exit_code: i64,
    },
    /// The master's artifacts were saved.
    ArtifactsSaved {
        /// The task.
        task: String,
        /// The directory they were written to.
        dir: String,
        /// How many files.
        files: usize,
    },
    /// The results were read and the thresholds judged.
    ResultsJudged {
        /// The task.
        task: String,
        /// Thresholds declared.
        thresholds: usize,
        /// Thresholds that failed.
        failed: usize,
        /// Why there are no results, if there are none (missing, unreadable).
        problem: Option<String>,
    },
    /// Removing the task's objects begins (after its run, on request, or on interrupt).
    TeardownStarted {
        /// The task.
        task: String,
    },
    /// The run was interrupted (a signal, or the caller's shutdown): what was deployed is removed next.
    Interrupted {
        /// The task.
        task: String,
    },
    /// A second interrupt gave up waiting for the cleanup; `atq prune` removes what is left.
    CleanupAbandoned {
        /// The task.
        task: String,
    },
    /// The task is left on the engine (as asked, or for debugging a failure); `atq down` removes it.
    Kept {
        /// The task.
        task: String,
        /// Why it stays.
        reason: String,
    },
    /// A deploy failed; what it created is being removed.
    RollingBack {
        /// The task.
        task: String,
        /// Why.
        reason: String,
    },
    /// The teardown removed the task's services, but replicas on nodes that are down (or gone
    /// from the swarm) could not be waited for: their containers stay on those nodes until they
    /// are back, when the engine removes them (`atq prune` then finds nothing of the task).
    /// Emitted just before [`TornDown`](Event::TornDown).
    LeftOnLostNodes {
        /// The task.
        task: String,
        /// The replicas left (`service.slot`).
        replicas: Vec<String>,
        /// Their nodes (hostnames, or ids when the swarm no longer knows the node).
        nodes: Vec<String>,
    },
    /// Everything the task created is gone (after a teardown, or after a failed deploy rolled back).
    TornDown {
        /// The task.
        task: String,
    },
}

impl Event {
    /// The task this event is about.
    #[must_use]
    pub fn task(&self) -> &str {
        match self {
            Event::Queued { task }
            | Event::NetworkCreated { task, .. }
            | Event::WorkersCreated { task, .. }
            | Event::WorkersRunning { task, .. }
            | Event::WorkersReady { task, .. }
            | Event::ProbeAttempt { task, .. }
            | Event::ProbeStarted { task, .. }
            | Event::ProbePassed { task, .. }
            | Event::ArtifactsSaved { task, .. }
            | Event::ResultsJudged { task, .. }
            | Event::TeardownStarted { task }
            | Event::Interrupted { task }
            | Event::CleanupAbandoned { task }
            | Event::Kept { task, .. }
            | Event::Delay { task, .. }
            | Event::MasterCreated { task, .. }
            | Event::MasterRunning { task }
            | Event::MasterExited { task, .. }
            | Event::RollingBack { task, .. }
            | Event::LeftOnLostNodes { task, .. }
            | Event::TornDown { task } => task,
        }
    }

    /// The event as a JSON object (`{"event": "workers_running", "task": …, …}`).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("events always serialise")
    }
}

fn secs_f64<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The version of the JSON form of run events ([`RunEvent::to_json`]), in every object's
/// `schema` field. It changes only when a field is removed or changes meaning; fields may be added.
pub const SCHEMA_VERSION: u32 = 1;

/// One item of a run's stream ([`Director::run_with`](crate::Director::run_with)): a progress
/// [`Event`] or a log line, with the time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// When it happened (for a log line: when the engine received it, if it says).
    pub time: SystemTime,
    /// What happened.
    pub kind: RunEventKind,
}

/// What a [`RunEvent`] is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEventKind {
    /// A step of the task's life.
    Progress(Event),
    /// A line one of the task's replicas printed.
    Log(LogRecord),
}

/// A log line of a run, naming who printed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// The task.
    pub task: String,
    /// The role that printed it.
    pub role: Role,
    /// The replica's slot (from 1), when the engine says.
    pub replica: Option<u32>,
    /// stdout or stderr.
    #[serde(rename = "stream")]
    pub source: LogSource,
    /// The line, as printed (without its newline): raw bytes of the container, lossily UTF-8.
    pub text: String,
}

impl RunEvent {
    /// A progress event, now.
    #[must_use]
    pub fn progress(event: Event) -> Self {
        RunEvent { time: SystemTime::now(), kind: RunEventKind::Progress(event) }
    }

    /// A log line, at the engine's time for it (else now).
    #[must_use]
    pub fn log(record: LogRecord, time: Option<SystemTime>) -> Self {
        RunEvent { time: time.unwrap_or_else(SystemTime::now), kind: RunEventKind::Log(record) }
    }

    /// The task it is about.
    #[must_use]
    pub fn task(&self) -> &str {
        match &self.kind {
            RunEventKind::Progress(e) => e.task(),
            RunEventKind::Log(l) => &l.task,
        }
    }

    /// The event as one JSON object, the form of `atq run --json` lines and of the HTTP service's
    /// event streams: `{"schema": 1, "time": "2026-12-01T23:59:01.123Z", "event": "workers_running",
    /// "task": …, …}`; a log line is `{"event": "log", "role": "master", "replica": 1, "stream":
    /// "stdout", "text": …}`. The README documents every event.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = match &self.kind {
            RunEventKind::Progress(e) => e.to_json(),
            RunEventKind::Log(l) => {
                let mut v = serde_json::to_value(l).expect("log records always serialise");
                v["event"] = "log".into();
                v
            }
        };
        stamp(&mut value, self.time);
        value
    }
}

/// Adds the `schema` and `time` fields to a JSON object of a run's stream.
pub fn stamp(value: &mut serde_json::Value, time: SystemTime) {
    if let Some(object) = value.as_object_mut() {
        object.insert("schema".into(), SCHEMA_VERSION.into());
        object.insert("time".into(), humantime::format_rfc3339_millis(time).to_string().into());
    }
}
