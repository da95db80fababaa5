//! The exception classes of `atq`, and the one place where [`atq_core::Error`] maps to them.
//!
//! One class per kind of error, each with the error's details as attributes
//! (`DeployTimeout.phase`, `TeardownIncomplete.left`, `ArtifactsNotFound.path`, …). Every class
//! derives from `atq.AtqError`, so `except atq.AtqError` catches all of atq's failures; none of
//! them is a bare `RuntimeError`. An interrupted call raises `KeyboardInterrupt` (with
//! `abandoned`), never an `AtqError`: `except Exception` must not swallow a Ctrl-C.

use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use pyo3::{create_exception, IntoPyObjectExt, PyErr};

use atq_core::error::DataError as CoreDataError;
use atq_core::Error;

create_exception!(atq, AtqError, PyException, "Base class of every error atq raises.");
create_exception!(
    atq,
    ValidationError,
    AtqError,
    "The task breaks a rule. The message names the field (`worker.replicas`); `problems` lists \
     every broken rule as `(field, message)` pairs and `field` is the first one's field."
);
create_exception!(atq, TaskExists, AtqError, "A task of this name already exists on the engine; `task` is its name.");
create_exception!(atq, TaskNotFound, AtqError, "No task of this name is on the engine; `task` is the name.");
create_exception!(
    atq,
    EngineError,
    AtqError,
    "The container engine refused or failed an operation; `operation` (\"create service\", …) and \
     `resource` name it (None for the subclasses, which say more)."
);
create_exception!(
    atq,
    EngineUnreachable,
    EngineError,
    "The engine's API cannot be reached at all; `host` is the address tried (DOCKER_HOST or the \
     default socket)."
);
create_exception!(
    atq,
    EngineAddress,
    EngineError,
    "The engine's address (DOCKER_HOST) or its TLS files cannot or will not be used; `host`, \
     `reason`, and `fix` (what to do)."
);
create_exception!(
    atq,
    EngineUnsuitable,
    EngineError,
    "The engine answers but cannot run the backend asked for (a swarm backend on an engine that is \
     not a swarm manager); `host`, `backend`, `reason`, `fix`."
);
create_exception!(
    atq,
    ObjectNotFound,
    EngineError,
    "An engine object (network, service, config, …) does not exist; `kind` and `name`."
);
create_exception!(atq, ObjectExists, EngineError, "An engine object of this name already exists; `kind` and `name`.");
create_exception!(
    atq,
    ObjectInUse,
    EngineError,
    "An engine object cannot be removed because others still use it; `kind`, `name`, `users` (who, \
     when the engine says)."
);
create_exception!(
    atq,
    DeployTimeout,
    AtqError,
    "A wait ran out of time. `phase` says which: \"workers\" (running by the task's start \
     timeout), \"probe\" (the wait command passing), \"master\" (running), \"run\" (the master \
     finishing: run_timeout, `timeout=`), \"teardown\", \"discovery\"; `waited` (seconds) and \
     `missing` (what was still missing)."
);
create_exception!(
    atq,
    ProbeTimeout,
    DeployTimeout,
    "The wait command never passed within its timeout (`phase` \"probe\"); `attempts` and `last` \
     (the exit code and output of the last try)."
);
create_exception!(
    atq,
    ReplicaFailed,
    AtqError,
    "A replica failed to start or stopped unexpectedly (missing image, no node fits, it exited). \
     Attributes: `service`, `replica`, `state`, `reason` (the engine's message)."
);
create_exception!(
    atq,
    DataError,
    AtqError,
    "A data bundle could not be read, stored or found; `id` (the bundle, when known) and `entry` \
     (the archive entry refused, when one is)."
);
create_exception!(
    atq,
    ResultsError,
    AtqError,
    "Results files could not be read or merged (missing, XML JTL, malformed with strict=True, \
     mixed formats). Attributes: `path` (the file, or None), `line` (1-based, or None)."
);
create_exception!(atq, ArtifactsError, AtqError, "The master's artifacts could not be saved.");
create_exception!(
    atq,
    ArtifactsNotFound,
    ArtifactsError,
    "The master wrote nothing where the task's `artifacts` directory says; `path` is that directory \
     in its container (have the master write into $ATQ_RESULTS_DIR)."
);
create_exception!(
    atq,
    UnsafeArtifact,
    ArtifactsError,
    "An artifact archive entry would write outside the destination or through a link; nothing of \
     it was written. `entry` and `reason`."
);
create_exception!(
    atq,
    TeardownIncomplete,
    AtqError,
    "A teardown removed some of the task's objects but not all; calling it again retries. `task`, \
     `left` (what is still there: \"service t_worker\", …) and `cause` (the first failure, also \
     `__cause__`)."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AtqError", py.get_type::<AtqError>())?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add("TaskExists", py.get_type::<TaskExists>())?;
    m.add("TaskNotFound", py.get_type::<TaskNotFound>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("EngineUnreachable", py.get_type::<EngineUnreachable>())?;
    m.add("EngineAddress", py.get_type::<EngineAddress>())?;
    m.add("EngineUnsuitable", py.get_type::<EngineUnsuitable>())?;
    m.add("ObjectNotFound", py.get_type::<ObjectNotFound>())?;
    m.add("ObjectExists", py.get_type::<ObjectExists>())?;
    m.add("ObjectInUse", py.get_type::<ObjectInUse>())?;
    m.add("DeployTimeout", py.get_type::<DeployTimeout>())?;
    m.add("ProbeTimeout", py.get_type::<ProbeTimeout>())?;
    m.add("ReplicaFailed", py.get_type::<ReplicaFailed>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ResultsError", py.get_type::<ResultsError>())?;
    m.add("ArtifactsError", py.get_type::<ArtifactsError>())?;
    m.add("ArtifactsNotFound", py.get_type::<ArtifactsNotFound>())?;
    m.add("UnsafeArtifact", py.get_type::<UnsafeArtifact>())?;
    m.add("TeardownIncomplete", py.get_type::<TeardownIncomplete>())?;
    Ok(())
}

/// An attribute value.
type Attr = (&'static str, Py<PyAny>);

/// A core error as the matching Python exception, with its details as attributes.
pub(crate) fn to_py(err: Error) -> PyErr {
    Python::attach(|py| to_py_in(py, err))
}

fn to_py_in(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let s = |text: &str| str_obj(py, text);
    let none = || py.None();
    let engine = |exc: PyErr, mut attrs: Vec<Attr>| {
        attrs.extend([("operation", none()), ("resource", none())]);
        (exc, attrs)
    };
    let (exc, attrs): (PyErr, Vec<Attr>) = match err {
        Error::Validation(v) => return validation(py, v),
        Error::Results(e) => return results_error(e),
        Error::TeardownIncomplete { task, left, cause } => {
            let cause = to_py_in(py, *cause);
            let exc = TeardownIncomplete::new_err(message);
            exc.set_cause(py, Some(cause.clone_ref(py)));
            let left = PyList::new(py, left).map_or_else(|_| none(), |l| l.into_any().unbind());
            (exc, vec![("task", s(&task)), ("left", left), ("cause", cause.into_value(py).into_any())])
        }
        Error::TaskExists { name } => (TaskExists::new_err(message), vec![("task", s(&name))]),
        Error::TaskNotFound { name } => (TaskNotFound::new_err(message), vec![("task", s(&name))]),
        Error::NotFound { kind, name } => {
            engine(ObjectNotFound::new_err(message), vec![("kind", s(kind)), ("name", s(&name))])
        }
        Error::Conflict { kind, name } => {
            engine(ObjectExists::new_err(message), vec![("kind", s(kind)), ("name", s(&name))])
        }
        Error::InUse { kind, name, users } => {
            let users = PyList::new(py, users).map_or_else(|_| none(), |l| l.into_any().unbind());
            engine(ObjectInUse::new_err(message), vec![("kind", s(kind)), ("name", s(&name)), ("users", users)])
        }
        Error::EngineUnreachable { host, .. } => engine(EngineUnreachable::new_err(message), vec![("host", s(&host))]),
        Error::EngineAddress { host, reason, fix } => {
            engine(EngineAddress::new_err(message), vec![("host", s(&host)), ("reason", s(&reason)), ("fix", s(&fix))])
        }
        Error::EngineUnsuitable { host, backend, reason, fix } => engine(
            EngineUnsuitable::new_err(message),
            vec![("host", s(&host)), ("backend", s(backend)), ("reason", s(&reason)), ("fix", s(&fix))],
        ),
        Error::Engine { operation, resource, .. } => {
            (EngineError::new_err(message), vec![("operation", s(operation)), ("resource", s(&resource))])
        }
        Error::ReplicaFailed { service, replica, state, message: reason } => (
            ReplicaFailed::new_err(message),
            vec![("service", s(&service)), ("replica", s(&replica)), ("state", s(&state)), ("reason", s(&reason))],
        ),
        Error::Timeout { phase, waited, missing } => (
            DeployTimeout::new_err(message),
            vec![("phase", s(phase.as_str())), ("waited", float(py, waited.as_secs_f64())), ("missing", s(&missing))],
        ),
        Error::ProbeTimeout { attempts, waited, last } => (
            ProbeTimeout::new_err(message),
            vec![
                ("phase", s("probe")),
                ("waited", float(py, waited.as_secs_f64())),
                ("missing", s("the wait command to pass")),
                ("attempts", attempts.into_py_any(py).unwrap_or_else(|_| none())),
                ("last", s(&last)),
            ],
        ),
        Error::Data(e) => {
            let (id, entry) = data_details(&e);
            let opt = |v: Option<&str>| v.map_or_else(none, s);
            (DataError::new_err(message), vec![("id", opt(id)), ("entry", opt(entry))])
        }
        Error::ArtifactsNotFound { path } => (ArtifactsNotFound::new_err(message), vec![("path", s(&path))]),
        Error::UnsafeArtifact { entry, reason } => {
            (UnsafeArtifact::new_err(message), vec![("entry", s(&entry)), ("reason", s(&reason))])
        }
        Error::Interrupted { abandoned } => (
            PyKeyboardInterrupt::new_err(message),
            vec![("abandoned", abandoned.into_py_any(py).unwrap_or_else(|_| none()))],
        ),
        // Io, Cancelled, and variants added later: still an atq error, never a bare RuntimeError.
        _ => (AtqError::new_err(message), vec![]),
    };
    set_attrs(py, exc, attrs)
}

/// The bundle id and the entry a data error names, when it names them.
fn data_details(err: &CoreDataError) -> (Option<&str>, Option<&str>) {
    use CoreDataError as E;
    match err {
        E::NotFound { id } | E::Incomplete { id, .. } | E::InUse { id, .. } | E::Mismatch { id, .. } => {
            (Some(id), None)
        }
        E::UnsafePath { entry, .. }
        | E::Symlink { entry, .. }
        | E::Changed { entry, .. }
        | E::SpecialFile { entry, .. }
        | E::Clash { entry, .. }
        | E::EmptyFile { entry, .. }
        | E::TooLarge { entry, .. }
        | E::FileTooLarge { entry, .. } => (None, Some(entry)),
        E::Archive { entry, .. } => (None, entry.as_deref()),
        E::Shard { file, .. } => (None, Some(file)),
        _ => (None, None),
    }
}

/// A results error as `atq.ResultsError`, with `path` and `line` when known.
pub(crate) fn results_error(err: atq_core::results::ResultsError) -> PyErr {
    use atq_core::results::ResultsError as E;
    let message = err.to_string();
    let (path, line) = match &err {
        E::NotFound { path, .. }
        | E::Io { path, .. }
        | E::XmlJtl { path }
        | E::UnknownFormat { path, .. }
        | E::Empty { path } => (Some(path.display().to_string()), None),
        E::Malformed { path, line, .. } => (Some(path.display().to_string()), Some(*line)),
        _ => (None, None),
    };
    Python::attach(|py| {
        let path = path.map_or_else(|| py.None(), |p| str_obj(py, &p));
        let line = line.map_or_else(|| py.None(), |l| l.into_py_any(py).unwrap_or_else(|_| py.None()));
        set_attrs(py, ResultsError::new_err(message), vec![("path", path), ("line", line)])
    })
}

/// A validation error as `atq.ValidationError`, with `problems` and `field`.
pub(crate) fn validation(py: Python<'_>, err: atq_core::ValidationError) -> PyErr {
    let message = err.to_string();
    let problems: Vec<Py<PyAny>> = err
        .problems
        .iter()
        .map(|p| {
            PyTuple::new(py, [p.field.as_str(), p.message.as_str()])
                .map(|t| t.into_any().unbind())
                .expect("tuple of str")
        })
        .collect();
    let field = err.problems.first().map(|p| p.field.clone()).unwrap_or_default();
    let problems = PyList::new(py, problems).expect("list").into_any().unbind();
    set_attrs(py, ValidationError::new_err(message), vec![("problems", problems), ("field", str_obj(py, &field))])
}

/// A validation error about one field, raised by the bindings' own argument checks.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> PyErr {
    Python::attach(|py| validation(py, atq_core::ValidationError::single(field, message)))
}

fn str_obj(py: Python<'_>, s: &str) -> Py<PyAny> {
    PyString::new(py, s).into_any().unbind()
}

fn float(py: Python<'_>, value: f64) -> Py<PyAny> {
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}

fn set_attrs(py: Python<'_>, exc: PyErr, attrs: Vec<Attr>) -> PyErr {
    let value = exc.value(py);
    for (name, v) in attrs {
        if let Err(e) = value.setattr(name, v) {
            return e;
        }
    }
    exc
}
