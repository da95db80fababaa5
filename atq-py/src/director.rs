//! `atq.Director`: deploys, runs, lists and removes tasks on a cluster.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use atq_core::cluster::LogOptions;
use atq_core::labels::Role;
use atq_core::run::{FollowLogs, Keep, RunOptions};
use atq_core::{Cluster, DeployOptions, Director};

use crate::cluster::{PyDockerCluster, PyFakeCluster};
use crate::convert::opt_seconds;
use crate::deployment::{Origin, PyDeployment};
use crate::error::invalid;
use crate::journal::Journal;
use crate::run::{follow_logs, keep, PyRunReport};
use crate::runtime::{run_blocking, to_asyncio, Call, Events, Observer, OnInterrupt, Sink};
use crate::task::PyTask;

/// Runs tasks on a cluster (`atq.DockerCluster()` or `atq.FakeCluster()`).
///
/// - `on_event`, if given, is called with a dict per progress event of this director's calls
///   (`{"schema": 1, "time": "…", "event": "workers_running", "task": ..., "running": 2,
///   "total": 3}`, the form of `atq run --json` lines) on the calling thread while a call waits.
///   An exception raised by the callback stops the call as a Ctrl-C would (the core removes
///   what it deployed) and is raised once the call ended.
/// - `concurrency` caps how many tasks run at once (further deploys wait their turn).
/// - `keep_on_failure`: the default of `deploy(keep_on_failure=)` and of `run(keep=)`
///   ("on_failure"), and a `with` block that raises keeps its task (for debugging; `atq down
///   NAME` removes it). pytest's `--atq-keep-on-failure` sets it.
/// - `capture=N` keeps the last N log lines of the master and of the workers of every task
///   this director runs (runs follow every log; a `Deployment` reads them before its teardown)
///   and the results table of runs whose thresholds failed: `captured()`. The pytest plugin
///   attaches them to a failed test's report.
///
/// Ctrl-C during a call follows atq's protocol: the first stops what runs and removes what was
/// deployed, saying so (to `on_event`, or one line on stderr); a second stops waiting for that
/// cleanup (it goes on in the background until the interpreter exits); then the call raises
/// `KeyboardInterrupt` (its `abandoned` attribute says whether the cleanup was given up).
#[pyclass(name = "Director", module = "atq", frozen)]
pub struct PyDirector {
    inner: Director,
    on_event: Option<Py<PyAny>>,
    keep_on_failure: bool,
    journal: Arc<Journal>,
}

#[pymethods]
impl PyDirector {
    /// A director driving `cluster`.
    #[new]
    #[pyo3(signature = (cluster, *, on_event=None, concurrency=None, keep_on_failure=false, capture=0))]
    fn new(
        cluster: &Bound<'_, PyAny>,
        on_event: Option<Py<PyAny>>,
        concurrency: Option<usize>,
        keep_on_failure: bool,
        capture: usize,
    ) -> PyResult<Self> {
        let cluster: Arc<dyn Cluster> = if let Ok(fake) = cluster.cast::<PyFakeCluster>() {
            Arc::new(fake.get().inner.clone())
        } else if let Ok(docker) = cluster.cast::<PyDockerCluster>() {
            docker.get().inner.clone()
        } else {
            return Err(PyTypeError::new_err("Director(cluster): expected atq.DockerCluster or atq.FakeCluster"));
        };
        let mut inner = Director::from_arc(cluster);
        if let Some(k) = concurrency {
            inner = inner.with_concurrency(k);
        }
        Ok(PyDirector { inner, on_event, keep_on_failure, journal: Arc::new(Journal::new(capture)) })
    }

    /// Deploys `task` and returns its `Deployment` once every worker runs and the master has
    /// started. Use it as a context manager: the task is torn down when the block exits, even
    /// on error.
    ///
    /// On failure everything created is removed before the error is raised, unless
    /// `keep_on_failure` (default: the director's) leaves it for debugging. `detached` marks the
    /// task as meant to outlive this process (`prune` then removes it only past its `ttl`).
    /// Ctrl-C rolls the deploy back (see the class docs) and raises `KeyboardInterrupt`.
    #[pyo3(signature = (task, *, keep_on_failure=None, detached=false, on_event=None))]
    fn deploy(
        &self,
        py: Python<'_>,
        task: PyRef<'_, PyTask>,
        keep_on_failure: Option<bool>,
        detached: bool,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<PyDeployment> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let options = self.deploy_options(keep_on_failure, detached);
        let events = self.events(task.name(), FollowLogs::None);
        let call = Call::interruptible(Some(events), move |interrupt| async move {
            director.deploy_interruptible(&task, options, &interrupt).await
        });
        let sink = Sink::new(callback.as_ref().map(|c| c.clone_ref(py)), None);
        // A deploy that completed as the interrupt came is removed as a rollback would be.
        let deployment = call.wait_or_undo(py, &sink, |deployment, interrupt| {
            let events = self.events(deployment.name(), FollowLogs::None);
            Call::interruptible_by(interrupt, Some(events), move |interrupt| async move {
                deployment.teardown_interruptible(&interrupt).await
            })
        })?;
        Ok(PyDeployment::new(deployment, self.origin(callback)))
    }

    /// `deploy` for asyncio: `async with await director.deploy_async(task) as d: ...`.
    /// Cancelling the awaitable drops the deploy: it is rolled back on atq's cleanup thread.
    #[pyo3(signature = (task, *, keep_on_failure=None, detached=false, on_event=None))]
    fn deploy_async<'py>(
        &self,
        py: Python<'py>,
        task: PyRef<'_, PyTask>,
        keep_on_failure: Option<bool>,
        detached: bool,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let options = self.deploy_options(keep_on_failure, detached);
        let events = self.events(task.name(), FollowLogs::None);
        let call = Call::future(Some(events), async move { director.deploy_with(&task, options).await });
        let sink = Sink::new(callback.as_ref().map(|c| c.clone_ref(py)), None);
        let origin = self.origin(callback);
        to_asyncio(py, call, &sink, Box::new(move |py, d| Ok(Py::new(py, PyDeployment::new(d, origin))?.into_any())))
    }

    /// Runs `task` to the end: deploys it, streams its progress (`on_event`) and log lines
    /// (`on_log`, a dict per line: `role`, `replica`, `stream`, `text`, `time`; whose lines:
    /// `follow_logs` "none", "master" or "all"), waits for the master to exit (at most `timeout`
    /// seconds, else the task's `run_timeout`), saves its artifacts into `artifacts_dir` (when
    /// the task has an `artifacts` directory), judges its results, then keeps or tears it down
    /// (`keep`: "never", "always", or "on_failure" to leave a failed run up for debugging;
    /// default: the director's `keep_on_failure`). Returns the `RunReport` (`exit_code`,
    /// `passed`, `outcome`, `artifacts`, `results`, `kept`). `log_tail`: how many of the
    /// master's last lines the outcome keeps (default 1000).
    ///
    /// A failed deploy raises (`ReplicaFailed`, `DeployTimeout`, …); so does a master that
    /// runs past the timeout (`DeployTimeout`, `phase == "run"`). Ctrl-C: see the class docs.
    #[pyo3(signature = (task, *, timeout=None, artifacts_dir=None, follow_logs="master", keep=None,
                        log_tail=None, on_event=None, on_log=None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        task: PyRef<'_, PyTask>,
        timeout: Option<&Bound<'_, PyAny>>,
        artifacts_dir: Option<std::path::PathBuf>,
        follow_logs: &str,
        keep: Option<&str>,
        log_tail: Option<usize>,
        on_event: Option<Py<PyAny>>,
        on_log: Option<Py<PyAny>>,
    ) -> PyResult<PyRunReport> {
        let (call, sink) =
            self.run_call(py, &task, timeout, artifacts_dir, follow_logs, keep, log_tail, on_event, on_log)?;
        let report = call.wait(py, &sink, OnInterrupt::Protocol)?;
        self.report(py, *report)
    }

    /// `run` for asyncio. Cancelling the awaitable drops the run: what it deployed is removed on
    /// atq's cleanup thread.
    #[pyo3(signature = (task, *, timeout=None, artifacts_dir=None, follow_logs="master", keep=None,
                        log_tail=None, on_event=None, on_log=None))]
    #[allow(clippy::too_many_arguments)]
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        task: PyRef<'_, PyTask>,
        timeout: Option<&Bound<'_, PyAny>>,
        artifacts_dir: Option<std::path::PathBuf>,
        follow_logs: &str,
        keep: Option<&str>,
        log_tail: Option<usize>,
        on_event: Option<Py<PyAny>>,
        on_log: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (call, sink) =
            self.run_call(py, &task, timeout, artifacts_dir, follow_logs, keep, log_tail, on_event, on_log)?;
        let journal = self.journal.clone();
        to_asyncio(
            py,
            call,
            &sink,
            Box::new(move |py, report| Ok(Py::new(py, to_report(py, &journal, *report)?)?.into_any())),
        )
    }

    /// Every task on the engine, whoever deployed it, as dicts (`name`, `state`,
    /// `workers_running`, `workers_total`, `workers`, `owner`, `detached`, `expires`, `created`,
    /// `prune`, `resources`; `exit_code` when finished, `reason` when failed).
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let tasks = run_blocking(py, async move { director.list().await })?;
        crate::convert::to_py(py, &tasks)
    }

    /// One task as the engine holds it (a dict, as in `list`); `atq.TaskNotFound` if none.
    fn inspect(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let info = run_blocking(py, async move { director.inspect(&name).await })?;
        crate::convert::to_py(py, &info)
    }

    /// The logs of one role (`"master"`, `"worker"`, `"probe"`) of the task `name`, as text: a
    /// line per log line, each worker's or probe's prefixed with its replica (`worker.2 | …`).
    /// `tail`: only the last lines of each replica; `since`: only the lines of the last so many
    /// seconds. `atq.TaskNotFound` when there is no such task.
    #[pyo3(signature = (name, role="master", *, tail=None, since=None))]
    fn logs(
        &self,
        py: Python<'_>,
        name: String,
        role: &str,
        tail: Option<usize>,
        since: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let role = match role {
            "master" => Role::Master,
            "worker" => Role::Worker,
            "probe" => Role::Probe,
            other => return Err(invalid("role", format!("{other:?} is not one of \"master\", \"worker\", \"probe\""))),
        };
        let since = opt_seconds("since", since)?
            .map(|ago| SystemTime::now().checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH));
        let options = LogOptions { follow: false, tail, since };
        let director = self.inner.clone();
        run_blocking(py, async move {
            let mut stream = director.logs(&name, role, &options).await?;
            let mut out = String::new();
            while let Some(line) = stream.next().await {
                let line = line?;
                match (role, line.replica) {
                    (Role::Master, _) | (_, None) => {}
                    (_, Some(replica)) => out.push_str(&format!("{role}.{replica} | ")),
                }
                out.push_str(&line.text);
                out.push('\n');
            }
            Ok(out)
        })
    }

    /// Removes every engine object of the task `name`, whoever deployed it (`atq down`);
    /// `atq.TaskNotFound` if there is none, `atq.TeardownIncomplete` naming what is left when a
    /// removal failed (calling it again retries). Ctrl-C: the removal goes on and is waited for;
    /// a second Ctrl-C stops waiting.
    fn teardown(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let director = self.inner.clone();
        let events = self.events(&name, FollowLogs::None);
        let sink = Sink::new(self.callback(py, None), None);
        let journal = self.journal.clone();
        let call = Call::interruptible(Some(events), move |interrupt| async move {
            director.teardown_interruptible(&name, &interrupt).await?;
            journal.forget_task(&name);
            Ok(())
        });
        call.wait(py, &sink, OnInterrupt::Protocol)
    }

    /// Removes what the deploy `deploy_id` of the task `name` created, and nothing else (not a
    /// task of the same name deployed by anyone else); returns whether anything of it was left.
    fn teardown_deploy(&self, py: Python<'_>, name: String, deploy_id: String) -> PyResult<bool> {
        let director = self.inner.clone();
        let journal = self.journal.clone();
        run_blocking(py, async move {
            let removed = director.teardown_deploy(&name, &deploy_id).await?;
            journal.forget(&deploy_id);
            Ok(removed)
        })
    }

    /// The deploys this director made that may still be on the engine (kept, kept on failure,
    /// not torn down yet, or whose teardown failed), oldest first: dicts `task`, `deploy_id`.
    #[getter]
    fn deploys(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = pyo3::types::PyList::empty(py);
        for deploy in self.journal.deploys() {
            let dict = PyDict::new(py);
            dict.set_item("task", deploy.task)?;
            dict.set_item("deploy_id", deploy.deploy_id)?;
            list.append(dict)?;
        }
        Ok(list.into_any().unbind())
    }

    /// Removes what this director's own deploys left on the engine (see `deploys`), selected by
    /// deploy id — never a task that someone else deployed, even one of the same name — and
    /// returns the names of the tasks it removed something of. Tries every deploy; raises the
    /// first failure (`atq.TeardownIncomplete`) after that. Ctrl-C stops it at once (what is
    /// left stays in `deploys`, and for `atq prune`).
    fn teardown_own(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let director = self.inner.clone();
        let journal = self.journal.clone();
        let deploys = journal.deploys();
        run_blocking(py, async move {
            let (mut removed, mut first_error) = (Vec::new(), None);
            for deploy in deploys {
                match director.teardown_deploy(&deploy.task, &deploy.deploy_id).await {
                    Ok(found) => {
                        journal.forget(&deploy.deploy_id);
                        if found {
                            removed.push(deploy.task);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(removed), Err)
        })
    }

    /// What this director captured (`capture=N`), per task (oldest first): `{name: {"master":
    /// str, "workers": str, "results": str or None}}` — the last lines of each role, worker lines
    /// prefixed with their replica, and the results table of a run whose thresholds failed.
    fn captured(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let out = PyDict::new(py);
        for c in self.journal.captured() {
            let entry = PyDict::new(py);
            entry.set_item("master", join_lines(&c.master))?;
            entry.set_item("workers", join_lines(&c.workers))?;
            entry.set_item("results", c.results)?;
            out.set_item(c.task, entry)?;
        }
        Ok(out.into_any().unbind())
    }

    /// What `prune` would do with each task on the engine, removing nothing (`atq prune
    /// --dry-run`): dicts `name`, `remove`, `why` (a sentence) and `reason` (its parts).
    fn prune_plan(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let plan = run_blocking(py, async move { director.prune_plan().await })?;
        let list = pyo3::types::PyList::empty(py);
        for (name, decision) in plan {
            let dict = PyDict::new(py);
            dict.set_item("name", name)?;
            dict.set_item("remove", decision.remove)?;
            dict.set_item("why", decision.why.to_string())?;
            dict.set_item("reason", crate::convert::to_py(py, &decision.why)?)?;
            list.append(dict)?;
        }
        Ok(list.into_any().unbind())
    }

    /// Removes the tasks that may go: never one whose owner process runs; one whose owner is gone
    /// unless it is detached; otherwise only past its expiry. Returns `{"tasks": [{"name", "why",
    /// "resources", "error"}]}`: one failed removal does not stop the others (`error` says what
    /// failed, None when the task is gone).
    fn prune(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let report = run_blocking(py, async move { director.prune().await })?;
        crate::convert::to_py(py, &report)
    }

    /// Removes everything atq created on the engine, whoever created it (data bundles too); returns
    /// the report `prune` returns.
    fn prune_all(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let report = run_blocking(py, async move { director.prune_all().await })?;
        crate::convert::to_py(py, &report)
    }

    /// Stores the zip file or directory at `path` as a data bundle on the engine and returns its
    /// id, for a service's `data=` (`fileid` in task files): its files appear under `/atq/data`.
    /// Pushing the same content again stores nothing. Raises `atq.DataError` for an unsafe or too
    /// large archive. `split` marks files of the bundle (path -> "round-robin" or "blocks") to be
    /// split across the workers of every task that mounts it.
    #[pyo3(signature = (path, *, split=None))]
    fn push_data(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        split: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<String> {
        let mut shards = Vec::new();
        for (file, mode) in split.unwrap_or_default() {
            let mode: atq_core::data::SplitMode =
                mode.parse().map_err(|m: String| invalid(&format!("split.{file}"), m))?;
            shards.push(atq_core::data::Shard::new(file).split(mode));
        }
        let director = self.inner.clone();
        let bundle = run_blocking(py, async move { director.push_data_sharded(&path, &shards).await })?;
        Ok(bundle.id().to_owned())
    }

    /// The data bundles on the engine: a list of dicts (`id`, `files`, `bytes`, `created_unix`, …).
    fn data_bundles(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let bundles = run_blocking(py, async move { director.data_bundles().await })?;
        crate::convert::to_py(py, &bundles)
    }

    /// Removes a data bundle; raises `atq.DataError` while a task uses it.
    fn remove_data(&self, py: Python<'_>, id: String) -> PyResult<()> {
        let director = self.inner.clone();
        run_blocking(py, async move { director.remove_data(&id).await })
    }

    fn __repr__(&self) -> String {
        let deploys = self.journal.deploys().len();
        format!(
            "Director(keep_on_failure={}, capture={}, deploys={deploys})",
            if self.keep_on_failure { "True" } else { "False" },
            self.journal.capture()
        )
    }
}

/// Turns a core report into a Python one, noting in the journal what the run left.
fn to_report(py: Python<'_>, journal: &Journal, report: atq_core::RunReport) -> PyResult<PyRunReport> {
    let report = PyRunReport::new(py, report)?;
    if report.torn_down() {
        journal.forget_task(report.task_name());
    }
    if let Some(table) = report.failed_table() {
        journal.failed_results(report.task_name(), table.to_owned());
    }
    Ok(report)
}

impl PyDirector {
    /// The callback of this call: its own, or the director's.
    fn callback(&self, py: Python<'_>, own: Option<Py<PyAny>>) -> Option<Py<PyAny>> {
        own.or_else(|| self.on_event.as_ref().map(|c| c.clone_ref(py)))
    }

    /// The events of a call about `task`, noted in the journal; log lines of `logs` go on.
    fn events(&self, task: &str, logs: FollowLogs) -> (Events, Observer) {
        (Events::of(&self.inner, task), Observer::new(self.journal.clone(), logs))
    }

    fn deploy_options(&self, keep_on_failure: Option<bool>, detached: bool) -> DeployOptions {
        DeployOptions::new().keep_on_failure(keep_on_failure.unwrap_or(self.keep_on_failure)).detached(detached)
    }

    fn origin(&self, on_event: Option<Py<PyAny>>) -> Origin {
        Origin {
            director: self.inner.clone(),
            journal: self.journal.clone(),
            on_event,
            keep_on_failure: self.keep_on_failure,
        }
    }

    fn report(&self, py: Python<'_>, report: atq_core::RunReport) -> PyResult<PyRunReport> {
        to_report(py, &self.journal, report)
    }

    /// The run call of `run` and `run_async`, and where its events go.
    #[allow(clippy::too_many_arguments)]
    fn run_call(
        &self,
        py: Python<'_>,
        task: &PyTask,
        timeout: Option<&Bound<'_, PyAny>>,
        artifacts_dir: Option<std::path::PathBuf>,
        follow: &str,
        keep_as: Option<&str>,
        log_tail: Option<usize>,
        on_event: Option<Py<PyAny>>,
        on_log: Option<Py<PyAny>>,
    ) -> PyResult<(Call<Box<atq_core::RunReport>>, Sink)> {
        let asked = follow_logs(follow)?;
        let keep = match keep_as {
            Some(k) => keep(k)?,
            None if self.keep_on_failure => Keep::OnFailure,
            None => Keep::Never,
        };
        // The engine streams only what someone reads: the callback, or the capture (which wants all).
        let followed = match (self.journal.capture() > 0, on_log.is_some()) {
            (true, _) => FollowLogs::All,
            (false, true) => asked,
            (false, false) => FollowLogs::None,
        };
        let mut options = RunOptions::new().follow_logs(followed).keep(keep);
        if let Some(t) = opt_seconds("timeout", timeout)? {
            options = options.timeout(t);
        }
        if let Some(dir) = artifacts_dir {
            options = options.artifacts_dir(dir);
        }
        if let Some(lines) = log_tail {
            options = options.log_tail(lines);
        }
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let observer = Observer::new(self.journal.clone(), asked);
        let call = Call::run(observer, move |interrupt| director.run_with(&task, options, interrupt));
        let sink = Sink::new(self.callback(py, on_event), on_log);
        Ok((call, sink))
    }
}

fn join_lines(lines: &std::collections::VecDeque<String>) -> String {
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}
