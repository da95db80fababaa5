//! The crate's one error type.
//!
//! Every variant says what failed, on which resource, and what to do about it. Engine
//! failures are mapped to meaning (`NotFound`, `TaskExists`, …) in one place per engine
//! (see `cluster::docker`), never with a blanket `From`.

use std::fmt;
use std::time::Duration;

/// The result type of every fallible operation in `atq-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in atq.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task (or a task file) breaks a rule; every problem names its field.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// A task of this name already has resources on the engine.
    #[error("task '{name}' already exists on the engine: pick another name, or remove it with `atq down {name}`")]
    TaskExists {
        /// The task name that is taken.
        name: String,
    },

    /// No task of this name has resources on the engine.
    #[error("no task named '{name}' on the engine: `atq ls` lists the tasks there are")]
    TaskNotFound {
        /// The task name that was looked up.
        name: String,
    },

    /// An engine object (network, service, config, volume) does not exist.
    #[error("{kind} '{name}' not found on the engine")]
    NotFound {
        /// What kind of object: "network", "service", "config", ….
        kind: &'static str,
        /// Its name or id.
        name: String,
    },

    /// An engine object of this name already exists.
    #[error("{kind} '{name}' already exists on the engine")]
    Conflict {
        /// What kind of object.
        kind: &'static str,
        /// Its name.
        name: String,
    },

    /// The engine's API could not be reached at all.
    #[error("cannot reach the Docker engine at {host}: {message}. Start the engine, or point DOCKER_HOST at one")]
    EngineUnreachable {
        /// The address that was tried (DOCKER_HOST or the default socket).
        host: String,
        /// What the connection attempt reported.
        message: String,
    },

    /// The engine is reachable but is not a swarm manager.
    #[error("the Docker engine at {host} is not a swarm manager ({state}): run `docker swarm init` (on one machine: `docker swarm init --advertise-addr 127.0.0.1`)")]
    NotSwarmManager {
        /// The address of the engine.
        host: String,
        /// The swarm state the engine reported ("inactive", "worker", …).
        state: String,
    },

    /// The engine refused or failed an operation.
    #[error("engine failed to {operation} '{resource}': {message}")]
    Engine {
        /// What atq asked for ("create service", "remove network", …).
        operation: &'static str,
        /// The object it concerned.
        resource: String,
        /// The engine's own message.
        message: String,
    },

    /// A replica of a service failed to start or stopped unexpectedly.
    #[error("replica {replica} of service '{service}' {state}: {message}")]
    ReplicaFailed {
        /// The service the replica belongs to.
        service: String,
        /// The replica's name (`service.slot`).
        replica: String,
        /// Its final state ("rejected", "failed", "complete", …).
        state: String,
        /// The engine's message (for example "No such image: lab/x:1").
        message: String,
    },

    /// A wait ran out of time.
    #[error("timed out after {waited:?} waiting for {phase}: {missing}. Raise the timeout in the task, or look at `atq logs`")]
    Timeout {
        /// What was being waited for ("workers running", "master running", …).
        phase: String,
        /// How long atq waited.
        waited: Duration,
        /// What was still missing when time ran out.
        missing: String,
    },

    /// The wait command (probe) never passed within its timeout.
    #[error("wait command did not pass after {attempts} attempt(s) in {waited:?}; last attempt: {last}. Check the command, or raise waitCommand.timeout")]
    ProbeTimeout {
        /// How many attempts ran.
        attempts: u32,
        /// How long atq tried.
        waited: Duration,
        /// The exit code and output of the last failed attempt.
        last: String,
    },

    /// A data bundle could not be read, stored or found.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    /// Results could not be read, merged or written (see [`crate::results::ResultsError`]).
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),

    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The operation was cancelled before it finished; what it created was removed.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl Error {
    /// Shorthand for an [`Error::Engine`].
    pub fn engine(operation: &'static str, resource: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Engine { operation, resource: resource.into(), message: message.to_string() }
    }

    /// Whether this error is the engine saying an object does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// One broken rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, as written in a task file (`worker.replicas`, `waitCommand.timeout`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// Line in the task file, when the parser knows it.
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A task that breaks one or more rules. It lists every problem, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Every problem found, in field order.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    /// A validation error with a single problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { problems: vec![Problem { field: field.into(), message: message.into(), line: None }] }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid task: {one}"),
            many => {
                write!(f, "invalid task ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ValidationError {}
