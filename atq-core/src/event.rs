//! Progress of a task, as a stream of [`Event`]s.
//!
//! Subscribe with [`Director::subscribe`](crate::Director::subscribe); every event names its
//! task, so one subscription can follow many tasks. Progress bars, the CLI's `--json` output and
//! the Python callbacks all read these.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

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
    /// A deploy failed; what it created is being removed.
    RollingBack {
        /// The task.
        task: String,
        /// Why.
        reason: String,
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
            | Event::ProbePassed { task, .. }
            | Event::Delay { task, .. }
            | Event::MasterCreated { task, .. }
            | Event::MasterRunning { task }
            | Event::MasterExited { task, .. }
            | Event::RollingBack { task, .. }
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
