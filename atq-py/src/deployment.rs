//! `atq.Deployment` (a deployed task, a context manager) and `atq.Outcome` (what its master did).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use atq_core::{Deployment, Director, Outcome};

use crate::convert::opt_seconds;
use crate::error::AtqError;
use crate::runtime::{block_on, runtime, to_asyncio, Listener, OnCancel};
use crate::task::PyTask;

/// A deployed task: its workers run and its master has started.
///
/// Use it as a context manager (`with director.deploy(task) as d:`, or `async with`): the task
/// is torn down when the block exits, even on error. A deployment that is garbage-collected
/// without `teardown()` or `keep()` is torn down in the background.
#[pyclass(name = "Deployment", module = "atq", frozen)]
pub struct PyDeployment {
    /// The core handle; `None` once kept.
    inner: Mutex<Option<Arc<Deployment>>>,
    director: Director,
    on_event: Option<Py<PyAny>>,
    name: String,
    task: PyTask,
    workers: Vec<String>,
}

impl PyDeployment {
    pub(crate) fn new(deployment: Deployment, director: Director, on_event: Option<Py<PyAny>>) -> Self {
        PyDeployment {
            name: deployment.name().to_owned(),
            task: PyTask { inner: deployment.task().clone() },
            workers: deployment.workers().iter().map(ToString::to_string).collect(),
            inner: Mutex::new(Some(Arc::new(deployment))),
            director,
            on_event,
        }
    }

    fn handle(&self) -> PyResult<Arc<Deployment>> {
        self.inner.lock().expect("lock").clone().ok_or_else(|| {
            AtqError::new_err(format!("deployment '{}' was kept: use Director.teardown(name) to remove it", self.name))
        })
    }

    fn listener(&self, py: Python<'_>) -> Option<Listener> {
        Listener::new(&self.director, self.on_event.as_ref().map(|c| c.clone_ref(py)), Some(self.name.clone()))
    }
}

impl Drop for PyDeployment {
    fn drop(&mut self) {
        // The core's drop tears down in the background: it needs to be inside the runtime.
        let handle = self.inner.get_mut().ok().and_then(Option::take);
        if handle.is_some() {
            let _guard = runtime().enter();
            drop(handle);
        }
    }
}

#[pymethods]
impl PyDeployment {
    /// The task's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The task that was deployed.
    #[getter]
    fn task(&self) -> PyTask {
        self.task.clone()
    }

    /// Every worker's address on the task network (`["10.0.1.3", ...]`), by slot.
    #[getter]
    fn workers(&self) -> Vec<String> {
        self.workers.clone()
    }

    /// Waits for the master to exit (at most `timeout` seconds, if given; `atq.DeployTimeout`
    /// after that) and returns its `Outcome`. Ctrl-C cancels the wait and tears the task down.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<PyOutcome> {
        let timeout = opt_seconds("timeout", timeout)?;
        let d = self.handle()?;
        let on_cancel: OnCancel = {
            let d = d.clone();
            Box::pin(async move {
                let _ = d.teardown().await;
            })
        };
        let outcome =
            block_on(
                py,
                Some(&self.director),
                self.listener(py),
                Some(on_cancel),
                async move { d.wait(timeout).await },
            )?;
        Ok(PyOutcome::from(outcome))
    }

    /// `wait` for asyncio.
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds("timeout", timeout)?;
        let d = self.handle()?;
        to_asyncio(
            py,
            self.listener(py),
            async move { d.wait(timeout).await },
            Box::new(|py, o| Ok(Py::new(py, PyOutcome::from(o))?.into_any())),
        )
    }

    /// The master's logs so far (stdout and stderr, a line per log line), while it runs or after.
    fn logs(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.handle()?;
        block_on(py, Some(&self.director), None, None, async move { d.logs_text().await })
    }

    /// Copies the files the master wrote in the task's `artifacts` directory into `dir` (created
    /// if needed), keeping their relative paths, and returns the paths written; `[]` when the
    /// task has no `artifacts`. Call it after `wait()` and before teardown. Raises
    /// `atq.AtqError` when the master wrote nothing there or the archive is unsafe.
    fn save_artifacts(&self, py: Python<'_>, dir: std::path::PathBuf) -> PyResult<Vec<String>> {
        let d = self.handle()?;
        let files = block_on(py, Some(&self.director), None, None, async move { d.save_artifacts(&dir).await })?;
        Ok(files.iter().map(|p| p.display().to_string()).collect())
    }

    /// Removes everything the task created. Idempotent.
    fn teardown(&self, py: Python<'_>) -> PyResult<()> {
        let d = self.handle()?;
        block_on(py, Some(&self.director), self.listener(py), None, async move { d.teardown().await })
    }

    /// `teardown` for asyncio.
    fn teardown_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.handle()?;
        to_asyncio(py, self.listener(py), async move { d.teardown().await }, Box::new(|py, ()| Ok(py.None())))
    }

    /// Leaves the task on the engine (no teardown at exit or collection); `Director.teardown(name)`
    /// or `prune` removes it later.
    fn keep(&self) -> PyResult<()> {
        let d = self.handle()?;
        *self.inner.lock().expect("lock") = None;
        match Arc::try_unwrap(d) {
            Ok(d) => {
                d.keep();
                Ok(())
            }
            Err(d) => {
                *self.inner.lock().expect("lock") = Some(d);
                Err(AtqError::new_err("cannot keep a deployment while another call (a wait) is using it"))
            }
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Tears the task down (unless kept); never swallows the block's exception.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        if self.inner.lock().expect("lock").is_some() {
            self.teardown(py)?;
        }
        Ok(false)
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let future = py.import("asyncio")?.call_method0("get_running_loop")?.call_method0("create_future")?;
        future.call_method1("set_result", (slf,))?;
        Ok(future)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        if self.inner.lock().expect("lock").is_some() {
            return self.teardown_async(py);
        }
        let future = py.import("asyncio")?.call_method0("get_running_loop")?.call_method0("create_future")?;
        future.call_method1("set_result", (false,))?;
        Ok(future)
    }

    fn __repr__(&self) -> String {
        format!("Deployment({:?}, workers={:?})", self.name, self.workers)
    }
}

/// What the master did once it exited.
#[pyclass(name = "Outcome", module = "atq", frozen)]
pub struct PyOutcome {
    inner: Outcome,
}

impl From<Outcome> for PyOutcome {
    fn from(inner: Outcome) -> Self {
        PyOutcome { inner }
    }
}

#[pymethods]
impl PyOutcome {
    /// The task's name.
    #[getter]
    fn task(&self) -> &str {
        &self.inner.task
    }

    /// The master's exit code.
    #[getter]
    fn exit_code(&self) -> i64 {
        self.inner.exit_code
    }

    /// The master replica's final state (`"complete"` or `"failed"`).
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state.as_str()
    }

    /// The engine's message about the master, if it failed.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }

    /// The master's logs (stdout and stderr), one line per log line.
    #[getter]
    fn logs(&self) -> &str {
        &self.inner.logs
    }

    /// Workers that stopped while the master ran, as dicts (`name`, `slot`, `state`, `address`,
    /// `exit_code`, `error`, ...).
    #[getter]
    fn failed_workers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::convert::to_py(py, &self.inner.failed_workers)
    }

    /// Seconds from the start of the wait until the master's exit was seen.
    #[getter]
    fn waited(&self) -> f64 {
        self.inner.waited.as_secs_f64()
    }

    /// Whether the master exited 0 and every worker stayed up.
    #[getter]
    fn succeeded(&self) -> bool {
        self.inner.succeeded()
    }

    /// The outcome as a dict (`waited` in seconds).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut json = serde_json::to_value(&self.inner).map_err(|e| AtqError::new_err(e.to_string()))?;
        json["waited"] = self.inner.waited.as_secs_f64().into();
        crate::convert::json_to_py(py, &json)
    }

    fn __repr__(&self) -> String {
        format!(
            "Outcome(task={:?}, exit_code={}, state={:?})",
            self.inner.task,
            self.inner.exit_code,
            self.inner.state.as_str()
        )
    }
}
