//! `atq.Task` and `atq.WaitCommand`: what to run.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use atq_core::{Task, WaitCommand};

use crate::convert::opt_seconds;
use crate::error::invalid;
use crate::error::validation;
use crate::service::PyService;

/// The seed's "wait command": a probe run once the workers run and before the master starts, as
/// `sh -c "<command>"` in a one-off container on the task network with `WORKER_CSV_VIPS` and
/// `REMOTES` in its environment, retried until it passes or `timeout` seconds (default 60) pass
/// (`atq.ProbeTimeout`). It passes when it exits 0 and, if `expected_result` is set, its trimmed
/// output equals that. It runs in `image`, by default the master's.
#[pyclass(name = "WaitCommand", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyWaitCommand {
    pub(crate) inner: WaitCommand,
}

#[pymethods]
impl PyWaitCommand {
    /// A probe running the shell command `command`; `image` defaults to the master's image.
    #[new]
    #[pyo3(signature = (command, *, expected_result=None, timeout=None, image=None))]
    fn new(
        command: String,
        expected_result: Option<String>,
        timeout: Option<&Bound<'_, PyAny>>,
        image: Option<String>,
    ) -> PyResult<Self> {
        let mut w = WaitCommand::new(command);
        if let Some(e) = expected_result {
            w = w.expect(e);
        }
        if let Some(t) = opt_seconds("waitCommand.timeout", timeout)? {
            w = w.timeout(t);
        }
        if let Some(i) = image {
            w = w.image(i);
        }
        Ok(PyWaitCommand { inner: w })
    }

    /// The shell command.
    #[getter]
    fn command(&self) -> &str {
        &self.inner.command
    }

    /// The text the trimmed output must equal (besides exiting 0), if any.
    #[getter]
    fn expected_result(&self) -> Option<&str> {
        self.inner.expected_result.as_deref()
    }

    /// How long to keep trying, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.inner.timeout.as_secs_f64()
    }

    /// The probe's image, if not the master's.
    #[getter]
    fn image(&self) -> Option<&str> {
        self.inner.image.as_deref()
    }

    fn __repr__(&self) -> String {
        format!("WaitCommand({:?}, expected_result={:?})", self.inner.command, self.inner.expected_result)
    }
}

/// A validated task: a name, the workers, the master, and optional wait command, delay,
/// timeouts and labels. Built from arguments, or read from ATQ-Director's payload format
/// (`from_yaml`, `from_json`, `from_dict`). Invalid input raises `atq.ValidationError` naming
/// the field.
#[pyclass(name = "Task", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyTask {
    pub(crate) inner: Task,
}

#[pymethods]
impl PyTask {
    /// A task: `worker` runs `worker.replicas` times, then `master` runs once with
    /// `WORKER_CSV_VIPS` listing the workers' addresses. Times are seconds (or `timedelta`).
    #[new]
    #[pyo3(signature = (name, worker, master, *, wait_command=None, delay=None, start_timeout=None,
                        run_timeout=None, ttl=None, labels=None, artifacts=None, results=None,
                        thresholds=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: String,
        worker: PyRef<'_, PyService>,
        master: PyRef<'_, PyService>,
        wait_command: Option<PyRef<'_, PyWaitCommand>>,
        delay: Option<&Bound<'_, PyAny>>,
        start_timeout: Option<&Bound<'_, PyAny>>,
        run_timeout: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        labels: Option<BTreeMap<String, String>>,
        artifacts: Option<String>,
        results: Option<&Bound<'_, PyAny>>,
        thresholds: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let mut b = Task::builder(name).workers(worker.inner.clone()).master(master.inner.clone());
        if let Some(w) = wait_command {
            b = b.wait_command(w.inner.clone());
        }
        if let Some(d) = opt_seconds("delay", delay)? {
            b = b.delay(d);
        }
        if let Some(d) = opt_seconds("startTimeout", start_timeout)? {
            b = b.start_timeout(d);
        }
        if let Some(d) = opt_seconds("runTimeout", run_timeout)? {
            b = b.run_timeout(d);
        }
        if let Some(d) = opt_seconds("ttl", ttl)? {
            b = b.ttl(d);
        }
        for (k, v) in labels.unwrap_or_default() {
            b = b.label(k, v);
        }
        if let Some(dir) = artifacts {
            b = b.artifacts(dir);
        }
        if let Some(spec) = results {
            b = b.results(results_spec(spec)?);
        }
        b = b.thresholds(thresholds.unwrap_or_default());
        let py = worker.py();
        b.build().map(|inner| PyTask { inner }).map_err(|e| validation(py, e))
    }

    /// Reads a task file (YAML, ATQ-Director's field names).
    #[classmethod]
    fn from_yaml(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        Task::from_yaml_str(text).map(|inner| PyTask { inner }).map_err(|e| Python::attach(|py| validation(py, e)))
    }

    /// Reads a task from JSON (ATQ-Director's payload).
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        Task::from_json_str(text).map(|inner| PyTask { inner }).map_err(|e| Python::attach(|py| validation(py, e)))
    }

    /// Reads a task from a dict shaped like ATQ-Director's JSON payload.
    #[classmethod]
    fn from_dict(cls: &Bound<'_, PyType>, data: &Bound<'_, PyDict>) -> PyResult<Self> {
        let text: String = cls.py().import("json")?.call_method1("dumps", (data,))?.extract()?;
        Self::from_json(cls, &text)
    }

    /// The task as JSON (ATQ-Director's payload format).
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// The task as a YAML task file.
    fn to_yaml(&self) -> String {
        self.inner.to_yaml()
    }

    /// The task as a dict (the JSON payload, parsed).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::convert::to_py(py, &self.inner)
    }

    /// The same task under another name (validated again).
    fn renamed(&self, py: Python<'_>, name: String) -> PyResult<Self> {
        self.inner.renamed(name).map(|inner| PyTask { inner }).map_err(|e| validation(py, e))
    }

    /// The task's name; its engine objects are named after it: `<name>_net`, and
    /// `<name>_<alias>` for each role (`<name>_worker`, `<name>_master` by default).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The workers' service.
    #[getter]
    fn worker(&self) -> PyService {
        PyService { inner: self.inner.workers().clone() }
    }

    /// The master's service.
    #[getter]
    fn master(&self) -> PyService {
        PyService { inner: self.inner.master().clone() }
    }

    /// The wait command (probe), if any.
    #[getter]
    fn wait_command(&self) -> Option<PyWaitCommand> {
        self.inner.wait_command().cloned().map(|inner| PyWaitCommand { inner })
    }

    /// Seconds to pause between the wait command passing (or, without one, the workers running)
    /// and the master starting.
    #[getter]
    fn delay(&self) -> f64 {
        self.inner.delay().as_secs_f64()
    }

    /// Seconds allowed for the workers, then the master, to be running (`atq.DeployTimeout` with
    /// `phase` "workers" or "master").
    #[getter]
    fn start_timeout(&self) -> f64 {
        self.inner.start_timeout().as_secs_f64()
    }

    /// Seconds the master may run once started, if limited (`Director.run` then raises
    /// `atq.DeployTimeout` with `phase` "run"; its `timeout=` overrides it).
    #[getter]
    fn run_timeout(&self) -> Option<f64> {
        self.inner.run_timeout().map(|d| d.as_secs_f64())
    }

    /// Seconds after the deploy when the task expires (default one day): `prune` removes an
    /// expired task unless its owner process still runs; before that, only one whose owner is
    /// gone, and never a detached one.
    #[getter]
    fn ttl(&self) -> f64 {
        self.inner.ttl().as_secs_f64()
    }

    /// Extra labels on every engine object of the task (keys under `io.atq.` are reserved).
    #[getter]
    fn labels(&self) -> BTreeMap<String, String> {
        self.inner.labels().clone()
    }

    /// The directory in the master's container whose files are the task's artifacts, if any
    /// (the master finds it in `ATQ_RESULTS_DIR`).
    #[getter]
    fn artifacts(&self) -> Option<&str> {
        self.inner.artifacts()
    }

    /// Where the master's results are among its artifacts: `{"format": ..., "path": ...}`, or None.
    #[getter]
    fn results(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.inner.results() {
            Some(spec) => crate::convert::to_py(py, spec),
            None => Ok(py.None()),
        }
    }

    /// The pass/fail thresholds, as written (`["p95 < 500ms", ...]`).
    #[getter]
    fn thresholds(&self) -> Vec<String> {
        self.inner.thresholds().iter().map(ToString::to_string).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Task({:?}, worker={:?} x{}, master={:?})",
            self.inner.name(),
            self.inner.workers().image,
            self.inner.workers().replicas,
            self.inner.master().image
        )
    }
}

/// `results=`: a path (`"results.jtl"`, format told from the file) or a dict
/// `{"path": "results.jtl", "format": "jtl"}`.
fn results_spec(value: &Bound<'_, PyAny>) -> PyResult<atq_core::results::ResultsSpec> {
    use atq_core::results::ResultsSpec;
    if let Ok(path) = value.extract::<String>() {
        return Ok(ResultsSpec::new(path));
    }
    let dict = value
        .cast::<PyDict>()
        .map_err(|_| invalid("results", "must be a path or a dict {\"path\": ..., \"format\": ...}"))?;
    let path: String = dict
        .get_item("path")?
        .ok_or_else(|| invalid("results.path", "missing: name the results file relative to the artifacts directory"))?
        .extract()
        .map_err(|_| invalid("results.path", "must be a string"))?;
    let mut spec = ResultsSpec::new(path);
    if let Some(format) = dict.get_item("format")? {
        let format: String = format.extract().map_err(|_| invalid("results.format", "must be a string"))?;
        spec = spec.format(format.parse().map_err(|m: String| invalid("results.format", m))?);
    }
    for key in dict.keys() {
        let key: String = key.extract()?;
        if key != "path" && key != "format" {
            return Err(invalid(&format!("results.{key}"), "unknown field: results has path and format"));
        }
    }
    Ok(spec)
}
