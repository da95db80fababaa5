//! `atq.Deployment` (a deployed task, a context manager) and `atq.Outcome` (what its master did).

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use pyo3::prelude::*;

use atq_core::cluster::LogOptions;
use atq_core::labels::Role;
use atq_core::{Deployment, Director, Interrupt, Outcome};

use crate::convert::opt_seconds;
use crate::error::AtqError;
use crate::journal::Journal;
use crate::runtime::{run_blocking, to_asyncio, Call, Events, Observer, OnInterrupt, Sink};
use crate::task::PyTask;

/// What a deployment shares with the director that made it.
pub(crate) struct Origin {
    /// The director.
    pub(crate) director: Director,
    /// Its journal (deploys, captured logs).
    pub(crate) journal: Arc<Journal>,
    /// The callback of the call that deployed it (or the director's).
    pub(crate) on_event: Option<Py<PyAny>>,
    /// Keep the task when a `with` block exits with an exception.
    pub(crate) keep_on_failure: bool,
}

/// Where a Python handle stands.
enum Handle {
    /// The core handle.
    Live(Arc<Deployment>),
    /// Kept on the engine (`keep()`, or a failed block with keep-on-failure).
    Kept,
    /// Handed to atq's cleanup thread: a second Ctrl-C gave up waiting for its removal.
    Abandoned,
    /// Removed (a teardown, or an interrupted wait, finished).
    TornDown,
}

/// A deployed task: its workers run and its master has started.
///
/// Use it as a context manager (`with director.deploy(task) as d:`, or `async with`): the task
/// is torn down when the block exits, even on error (kept instead when the director has
/// `keep_on_failure=True` and the block raised). A deployment that is garbage-collected
/// without `teardown()` or `keep()` is removed in the background, on atq's cleanup thread (which
/// the interpreter waits for at exit, within a bound).
#[pyclass(name = "Deployment", module = "atq", frozen)]
pub struct PyDeployment {
    handle: Mutex<Handle>,
    origin: Origin,
    name: String,
    deploy_id: String,
    task: PyTask,
    workers: Vec<String>,
}

impl PyDeployment {
    pub(crate) fn new(deployment: Deployment, origin: Origin) -> Self {
        PyDeployment {
            name: deployment.name().to_owned(),
            deploy_id: deployment.deploy_id().to_owned(),
            task: PyTask { inner: deployment.task().clone() },
            workers: deployment.workers().iter().map(ToString::to_string).collect(),
            handle: Mutex::new(Handle::Live(Arc::new(deployment))),
            origin,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Handle> {
        self.handle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> PyResult<Arc<Deployment>> {
        match &*self.state() {
            Handle::Live(d) => Ok(d.clone()),
            Handle::Kept => Err(AtqError::new_err(format!(
                "deployment '{}' was kept: use Director.teardown(name) to remove it",
                self.name
            ))),
            Handle::Abandoned => Err(AtqError::new_err(format!(
                "deployment '{}' is being removed in the background (a second Ctrl-C stopped waiting for it)",
                self.name
            ))),
            Handle::TornDown => Err(AtqError::new_err(format!("deployment '{}' was torn down", self.name))),
        }
    }

    fn is_live(&self) -> bool {
        matches!(&*self.state(), Handle::Live(_))
    }

    fn events(&self, py: Python<'_>) -> (Option<(Events, Observer)>, Sink) {
        let events = Events::of(&self.origin.director, &self.name);
        let observer = Observer::new(self.origin.journal.clone(), atq_core::FollowLogs::None);
        let sink = Sink::new(self.origin.on_event.as_ref().map(|c| c.clone_ref(py)), None);
        (Some((events, observer)), sink)
    }

    /// Bookkeeping once a call on the handle ended: a torn-down task leaves the journal; an
    /// abandoned one is handed to atq's cleanup thread (dropping the core handle removes it there).
    fn settle<T>(&self, result: &PyResult<T>, py: Python<'_>, torn_down: bool) {
        match result {
            Ok(_) if torn_down => {
                *self.state() = Handle::TornDown;
                self.origin.journal.forget(&self.deploy_id);
            }
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) => {
                // The core's `Interrupted` says whether the cleanup was given up; a bare
                // KeyboardInterrupt (the call finished as Ctrl-C came) changed nothing.
                match e.value(py).getattr("abandoned").and_then(|a| a.extract::<bool>()) {
                    Ok(true) => *self.state() = Handle::Abandoned,
                    Ok(false) => {
                        *self.state() = Handle::TornDown;
                        self.origin.journal.forget(&self.deploy_id);
                    }
                    Err(_) => {}
                }
            }
            _ => {}
        }
    }

    /// Reads the master's and the workers' last lines into the journal before a teardown (when
    /// the director captures logs); a failure to read them is not an error of the teardown.
    async fn capture(director: Director, journal: Arc<Journal>, name: String) {
        let lines = journal.capture();
        if lines == 0 {
            return;
        }
        let read = |role: Role| {
            let (director, name) = (director.clone(), name.clone());
            async move {
                let options = LogOptions { tail: Some(lines), ..LogOptions::default() };
                let Ok(mut stream) = director.logs(&name, role, &options).await else { return Vec::new() };
                let mut out = Vec::new();
                while let Some(Ok(line)) = stream.next().await {
                    out.push(match (role, line.replica) {
                        (Role::Master, _) => line.text,
                        (_, Some(replica)) => format!("{role}.{replica} | {}", line.text),
                        (_, None) => format!("{role} | {}", line.text),
                    });
                }
                out
            }
        };
        let bounded =
            tokio::time::timeout(CAPTURE_LIMIT, async { tokio::join!(read(Role::Master), read(Role::Worker)) });
        if let Ok((master, workers)) = bounded.await {
            journal.replace_logs(&name, master, workers);
        }
    }

    /// `teardown` under `interrupt` (already triggered once when a Ctrl-C is propagating: the
    /// next one stops waiting).
    fn teardown_by(&self, py: Python<'_>, interrupt: Interrupt) -> PyResult<()> {
        let live = match &*self.state() {
            Handle::Live(d) => Some(d.clone()),
            Handle::Abandoned | Handle::TornDown => return Ok(()),
            Handle::Kept => None,
        };
        let d = match live {
            Some(d) => d,
            None => return self.live().map(drop),
        };
        let (call, sink) = self.teardown_call(py, d, interrupt);
        let result = call.wait(py, &sink, OnInterrupt::Protocol);
        self.settle(&result, py, true);
        result
    }

    /// The teardown of this handle, as a call.
    fn teardown_call(&self, py: Python<'_>, d: Arc<Deployment>, interrupt: Interrupt) -> (Call<()>, Sink) {
        let (events, sink) = self.events(py);
        let (director, journal, name) = (self.origin.director.clone(), self.origin.journal.clone(), self.name.clone());
        let call = Call::interruptible_by(interrupt, events, move |interrupt| async move {
            Self::capture(director, journal, name).await;
            d.teardown_interruptible(&interrupt).await
        });
        (call, sink)
    }
}

/// Whether a block exited with a KeyboardInterrupt.
fn is_interrupt(exc_type: Option<&Bound<'_, PyAny>>) -> bool {
    exc_type
        .and_then(|t| t.cast::<pyo3::types::PyType>().ok())
        .is_some_and(|t| t.is_subclass_of::<pyo3::exceptions::PyKeyboardInterrupt>().unwrap_or(false))
}

/// How long reading the logs before a teardown may take.
const CAPTURE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

#[pymethods]
impl PyDeployment {
    /// The task's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The id of this deploy: the `io.atq.deploy` label on everything it created
    /// (`Director.teardown_deploy(name, deploy_id)` removes exactly that).
    #[getter]
    fn deploy_id(&self) -> &str {
        &self.deploy_id
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
    /// with `phase == "run"` after that) and returns its `Outcome` (with its last 1000 log lines).
    ///
    /// Ctrl-C stops waiting and tears the task down (progress goes to `on_event`, or a line on
    /// stderr), then raises KeyboardInterrupt; a second Ctrl-C stops waiting for the teardown,
    /// which goes on in the background.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<PyOutcome> {
        let timeout = opt_seconds("timeout", timeout)?;
        let d = self.live()?;
        let (events, sink) = self.events(py);
        let call =
            Call::interruptible(
                events,
                move |interrupt| async move { d.wait_interruptible(timeout, &interrupt).await },
            );
        let result = call.wait(py, &sink, OnInterrupt::Protocol);
        self.settle(&result, py, false);
        let outcome = result?;
        self.origin.journal.replace_logs(&self.name, outcome.logs.lines().map(str::to_owned).collect(), Vec::new());
        Ok(PyOutcome::from(outcome))
    }

    /// `wait` for asyncio. Cancelling it stops waiting (the task stays up: `async with` removes it).
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds("timeout", timeout)?;
        let d = self.live()?;
        let (events, sink) = self.events(py);
        let call = Call::future(events, async move { d.wait(timeout).await });
        to_asyncio(py, call, &sink, Box::new(|py, o| Ok(Py::new(py, PyOutcome::from(o))?.into_any())))
    }

    /// The master's logs so far (stdout and stderr, a line per log line), while it runs or after.
    fn logs(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.live()?;
        run_blocking(py, async move { d.logs_text().await })
    }

    /// Copies the files the master wrote in the task's `artifacts` directory into `dir` (created
    /// if needed), keeping their relative paths, and returns the paths written; `[]` when the
    /// task has no `artifacts`. Call it after `wait()` and before teardown. Raises
    /// `atq.ArtifactsNotFound` when the master wrote nothing there, `atq.UnsafeArtifact` for an
    /// archive entry that would escape `dir` or write through a link.
    fn save_artifacts(&self, py: Python<'_>, dir: std::path::PathBuf) -> PyResult<Vec<String>> {
        let d = self.live()?;
        let files = run_blocking(py, async move { d.save_artifacts(&dir).await })?;
        Ok(files.iter().map(|p| p.display().to_string()).collect())
    }

    /// Removes everything this deploy created (selected by its deploy id: a newer task of the same
    /// name is never touched). Idempotent; a teardown that failed half-way raises
    /// `atq.TeardownIncomplete` naming what is left, and calling it again retries.
    ///
    /// Ctrl-C: the teardown goes on and is waited for (it says so); a second Ctrl-C stops
    /// waiting (the removal goes on in the background); then KeyboardInterrupt.
    fn teardown(&self, py: Python<'_>) -> PyResult<()> {
        self.teardown_by(py, Interrupt::new())
    }

    /// `teardown` for asyncio (cancelling it leaves the removal to atq's cleanup thread).
    fn teardown_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.live()?;
        let (call, sink) = self.teardown_call(py, d, Interrupt::new());
        let journal = self.origin.journal.clone();
        let deploy_id = self.deploy_id.clone();
        to_asyncio(
            py,
            call,
            &sink,
            Box::new(move |py, ()| {
                journal.forget(&deploy_id);
                Ok(py.None())
            }),
        )
    }

    /// Leaves the task on the engine (no teardown at exit or collection); `Director.teardown(name)`
    /// or `prune` removes it later.
    fn keep(&self) -> PyResult<()> {
        let mut state = self.state();
        let Handle::Live(d) = &*state else {
            drop(state);
            return self.live().map(drop);
        };
        let d = d.clone();
        *state = Handle::Kept;
        match Arc::try_unwrap(d) {
            Ok(d) => {
                d.keep();
                Ok(())
            }
            Err(d) => {
                *state = Handle::Live(d);
                Err(AtqError::new_err("cannot keep a deployment while another call (a wait) is using it"))
            }
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Tears the task down (unless kept; kept instead when the director has `keep_on_failure`
    /// and the block raised); never swallows the block's exception.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if !self.is_live() {
            return Ok(false);
        }
        if self.keep_after_failure(py, exc_type)? {
            return Ok(false);
        }
        if !is_interrupt(exc_type) {
            self.teardown(py)?;
            return Ok(false);
        }
        // A Ctrl-C left the block: that was the first interrupt, and this teardown the cleanup it
        // asks for (it says so); another Ctrl-C stops waiting. The block's KeyboardInterrupt goes
        // on, not one of the teardown's own.
        let interrupt = Interrupt::new();
        interrupt.trigger();
        match self.teardown_by(py, interrupt) {
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) => Ok(false),
            other => other.map(|()| false),
        }
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let future = py.import("asyncio")?.call_method0("get_running_loop")?.call_method0("create_future")?;
        future.call_method1("set_result", (slf,))?;
        Ok(future)
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.is_live() && !self.keep_after_failure(py, exc_type)? {
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

impl PyDeployment {
    /// Keeps the task when a block raised (not a KeyboardInterrupt) and the director keeps on
    /// failure; returns whether it did. Says so on stderr (the logs stay readable with `atq logs`).
    fn keep_after_failure(&self, py: Python<'_>, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        if exc_type.is_none_or(|t| t.is_none()) || is_interrupt(exc_type) || !self.origin.keep_on_failure {
            return Ok(false);
        }
        let director = self.origin.director.clone();
        let journal = self.origin.journal.clone();
        let name = self.name.clone();
        run_blocking(py, async move {
            Self::capture(director, journal, name).await;
            Ok(())
        })?;
        self.keep()?;
        let line = format!(
            "atq: {}: kept for debugging (the block raised): `atq logs {0}`, `atq down {0}` removes it\n",
            self.name
        );
        py.import("sys")?.getattr("stderr")?.call_method1("write", (line,))?;
        Ok(true)
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

    /// The master's exit code (126 or 127 when the engine could not start its program).
    #[getter]
    fn exit_code(&self) -> i64 {
        self.inner.exit_code
    }

    /// The master replica's final state (`"complete"` or `"failed"`).
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state.as_str()
    }

    /// The engine's message about the master, if it failed ("task: non-zero exit (3)", or why it
    /// could not start: `exec: "/atq/data/run.sh": permission denied`).
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }

    /// Whether the master never started its program (the engine could not start the container);
    /// `error` says why.
    #[getter]
    fn failed_to_start(&self) -> bool {
        self.inner.failed_to_start
    }

    /// The master's last log lines (stdout and stderr, in order; 1000 unless `log_tail=` said
    /// otherwise), a line per log line.
    #[getter]
    fn logs(&self) -> &str {
        &self.inner.logs
    }

    /// Workers that stopped while the master ran, or were lost with their node (`state` "lost"),
    /// as dicts (`name`, `slot`, `state`, `address`, `exit_code`, `error`, `node_id`, `node` — the
    /// node's hostname —, ...).
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
