//! The crate's one error type.
//!
//! Every variant says what failed, on which resource, and what to do about it. Engine
//! failures are mapped to meaning (`NotFound`, `Conflict`, `InUse`, …) in one place per
//! backend (`engine_error` in `cluster::swarm` and `cluster::docker`), never with a blanket
//! `From`; the engine's own error is kept as the [`source`](std::error::Error::source).
//!
//! This module is a leaf: it imports nothing else of the crate, so every module can use it.

use std::fmt;
use std::time::Duration;

mod data;

pub use crate::problem::{Problem, ValidationError};
pub use data::DataError;

/// The cause of an engine error, kept for [`std::error::Error::source`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a wait was waiting for when it ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Every worker running with an address (the task's `startTimeout`).
    Workers,
    /// The wait command passing (`waitCommand.timeout`).
    Probe,
    /// The master running (`startTimeout`).
    Master,
    /// The master finishing (`runTimeout`, or `atq run --timeout`).
    Run,
    /// Everything of the task removed.
    Teardown,
    /// Worker addresses resolving by DNS ([`crate::discovery`]).
    Discovery,
}

impl Phase {
    /// Its name in events and JSON (`workers`, `probe`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Workers => "workers",
            Phase::Probe => "probe",
            Phase::Master => "master",
            Phase::Run => "run",
            Phase::Teardown => "teardown",
            Phase::Discovery => "discovery",
        }
    }

    /// What was awaited, in words ("the workers to run").
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Workers => "the workers to run",
            Phase::Probe => "the wait command to pass",
            Phase::Master => "the master to run",
            Phase::Run => "the master to finish",
            Phase::Teardown => "the task's objects to be removed",
            Phase::Discovery => "worker addresses to resolve",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

    /// The engine's address (`DOCKER_HOST`) or its TLS files cannot or will not be used: a
    /// scheme atq does not speak, plain HTTP to another machine, a missing `ca.pem`. `fix` says
    /// what to do.
    #[error("cannot use the Docker engine address {host}: {reason}. {fix}")]
    EngineAddress {
        /// The address (`DOCKER_HOST`, or the default).
        host: String,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        fix: String,
    },

    /// The engine answers but cannot serve the chosen backend (a swarm backend on an engine that
    /// is not a swarm manager, say). `fix` says what to do.
    #[error("the Docker engine at {host} cannot run the {backend} backend: {reason}. {fix}")]
    EngineUnsuitable {
        /// The address of the engine.
        host: String,
        /// The backend asked for (`swarm`, `docker`).
        backend: &'static str,
        /// Why not, in the engine's terms.
        reason: String,
        /// What to do about it.
        fix: String,
    },

    /// A setting (an environment variable such as `ATQ_ENGINE` or `ATQ_SUBNET_POOL`, or the
    /// option that stands for it) has a value atq cannot use.
    #[error("{name}={value:?} is not valid: {expected}")]
    Setting {
        /// The setting's name (`ATQ_ENGINE`).
        name: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: String,
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
        /// The underlying error, when there is one.
        #[source]
        source: Option<Cause>,
    },

    /// An engine object cannot be removed because others still use it.
    #[error("{kind} '{name}' is still in use{}", if users.is_empty() { String::new() } else { format!(" by {}", users.join(", ")) })]
    InUse {
        /// What kind of object ("network", "config").
        kind: &'static str,
        /// Its name or id.
        name: String,
        /// Who uses it, when the engine says.
        users: Vec<String>,
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
    #[error("timed out after {waited:?} waiting for {}: {missing}. Raise the timeout in the task, or look at `atq logs`", phase.describe())]
    Timeout {
        /// What was being waited for.
        phase: Phase,
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
    Data(#[from] DataError),

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

    /// The master wrote nothing where the task's `artifacts` directory says.
    #[error("the master wrote no artifacts: {path} does not exist in its container. Have it write its results into $ATQ_RESULTS_DIR")]
    ArtifactsNotFound {
        /// The artifacts directory, in the master's container.
        path: String,
    },

    /// An artifact archive entry would write outside the destination, or through a link.
    #[error("refused artifact '{entry}': {reason}; nothing of it was written")]
    UnsafeArtifact {
        /// The archive entry (lossy).
        entry: String,
        /// Why it is refused.
        reason: String,
    },

    /// A teardown removed some of the task's objects but not all; calling it again retries.
    #[error("teardown of task '{task}' left {} object(s) on the engine ({}): {cause}. Retry, or `atq down {task}` / `atq prune`", left.len(), left.join(", "))]
    TeardownIncomplete {
        /// The task.
        task: String,
        /// What is left (`service t_worker`, `network t_net`).
        left: Vec<String>,
        /// The first removal that failed.
        #[source]
        cause: Box<Error>,
    },

    /// The operation was cancelled before it finished; what it created was removed.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// A run was interrupted (a signal, a shutdown of the caller's choosing). `abandoned` says
    /// whether its cleanup was given up (a second interrupt) before it finished.
    #[error("{}", if *abandoned { "interrupted; cleanup abandoned: `atq prune` removes what is left" } else { "interrupted; what was deployed has been removed" })]
    Interrupted {
        /// Whether cleanup was abandoned before it finished.
        abandoned: bool,
    },
}

impl Error {
    /// Shorthand for an [`Error::Engine`] without a cause.
    pub fn engine(operation: &'static str, resource: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Engine { operation, resource: resource.into(), message: message.to_string(), source: None }
    }

    /// An [`Error::Engine`] keeping `cause` as its source.
    pub fn engine_caused(
        operation: &'static str,
        resource: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Engine {
            operation,
            resource: resource.into(),
            message: cause.to_string(),
            source: Some(Box::new(cause)),
        }
    }

    /// Whether this error is the engine saying an object is still in use.
    #[must_use]
    pub fn is_in_use(&self) -> bool {
        matches!(self, Error::InUse { .. })
    }

    /// Whether this error is the engine saying an object does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
