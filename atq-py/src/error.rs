//! The exception classes of `atq`, and the one place where [`atq_core::Error`] maps to them.
//!
//! Every class derives from `atq.AtqError`, so `except atq.AtqError` catches all of atq's
//! failures; none of them is a bare `RuntimeError`.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{create_exception, PyErr};

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
    "The container engine is unreachable, is not a swarm manager, or refused an operation."
);
create_exception!(
    atq,
    DeployTimeout,
    AtqError,
    "A wait ran out of time: workers or master not running by the task's start timeout, the wait \
     command never passing, or `Deployment.wait(timeout=...)` expiring."
);
create_exception!(
    atq,
    ReplicaFailed,
    AtqError,
    "A replica failed to start or stopped unexpectedly (missing image, no node fits, it exited). \
     Attributes: `service`, `replica`, `state`, `reason` (the engine's message)."
);
create_exception!(atq, DataError, AtqError, "A data bundle could not be read, stored or found.");
create_exception!(
    atq,
    ResultsError,
    AtqError,
    "Results files could not be read or merged (missing, XML JTL, malformed with strict=True, \
     mixed formats). Attributes: `path` (the file, or None), `line` (1-based, or None)."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AtqError", py.get_type::<AtqError>())?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add("TaskExists", py.get_type::<TaskExists>())?;
    m.add("TaskNotFound", py.get_type::<TaskNotFound>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("DeployTimeout", py.get_type::<DeployTimeout>())?;
    m.add("ReplicaFailed", py.get_type::<ReplicaFailed>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ResultsError", py.get_type::<ResultsError>())?;
    Ok(())
}

/// A core error as the matching Python exception, with its details as attributes.
pub(crate) fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    Python::attach(|py| {
        let (exc, attrs): (PyErr, Vec<(&str, Py<PyAny>)>) = match err {
            Error::Validation(v) => return validation(py, v),
            Error::TaskExists { name } => (TaskExists::new_err(message), vec![("task", str_obj(py, &name))]),
            Error::TaskNotFound { name } => (TaskNotFound::new_err(message), vec![("task", str_obj(py, &name))]),
            Error::NotFound { .. }
            | Error::Conflict { .. }
            | Error::EngineUnreachable { .. }
            | Error::NotSwarmManager { .. }
            | Error::Engine { .. } => (EngineError::new_err(message), vec![]),
            Error::ReplicaFailed { service, replica, state, message: reason } => (
                ReplicaFailed::new_err(message),
                vec![
                    ("service", str_obj(py, &service)),
                    ("replica", str_obj(py, &replica)),
                    ("state", str_obj(py, &state)),
                    ("reason", str_obj(py, &reason)),
                ],
            ),
            Error::Timeout { .. } | Error::ProbeTimeout { .. } => (DeployTimeout::new_err(message), vec![]),
            Error::Data(_) => (DataError::new_err(message), vec![]),
            Error::Results(e) => return results_error(e),
            // Io, Cancelled, and variants added later: still an atq error, never a bare RuntimeError.
            _ => (AtqError::new_err(message), vec![]),
        };
        set_attrs(py, exc, attrs)
    })
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
        let line =
            line.map_or_else(|| py.None(), |l| pyo3::IntoPyObjectExt::into_py_any(l, py).unwrap_or_else(|_| py.None()));
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
    let problems = pyo3::types::PyList::new(py, problems).expect("list").into_any().unbind();
    set_attrs(py, ValidationError::new_err(message), vec![("problems", problems), ("field", str_obj(py, &field))])
}

/// A validation error about one field, raised by the bindings' own argument checks.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> PyErr {
    Python::attach(|py| validation(py, atq_core::ValidationError::single(field, message)))
}

fn str_obj(py: Python<'_>, s: &str) -> Py<PyAny> {
    pyo3::types::PyString::new(py, s).into_any().unbind()
}

fn set_attrs(py: Python<'_>, exc: PyErr, attrs: Vec<(&str, Py<PyAny>)>) -> PyErr {
    let value = exc.value(py);
    for (name, v) in attrs {
        if let Err(e) = value.setattr(name, v) {
            return e;
        }
    }
    exc
}
