//! `atq.Director`: deploys, runs, lists and removes tasks on a cluster.

use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use atq_core::{Cluster, Director};

use crate::cluster::{PyDockerCluster, PyFakeCluster};
use crate::deployment::{PyDeployment, PyOutcome};
use crate::runtime::{block_on, to_asyncio, Listener};
use crate::task::PyTask;

/// Runs tasks on a cluster (`atq.DockerCluster()` or `atq.FakeCluster()`).
///
/// `on_event`, if given, is called with a dict per progress event (`{"event": "workers_running",
/// "task": ..., "running": 2, "total": 3}`) on the calling thread while a call of this director
/// waits. An exception raised by the callback cancels the call (rolling back) and propagates.
/// `concurrency` caps how many tasks run at once (further deploys wait their turn).
#[pyclass(name = "Director", module = "atq", frozen)]
pub struct PyDirector {
    inner: Director,
    on_event: Option<Py<PyAny>>,
}

#[pymethods]
impl PyDirector {
    /// A director driving `cluster`.
    #[new]
    #[pyo3(signature = (cluster, *, on_event=None, concurrency=None))]
    fn new(cluster: &Bound<'_, PyAny>, on_event: Option<Py<PyAny>>, concurrency: Option<usize>) -> PyResult<Self> {
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
        Ok(PyDirector { inner, on_event })
    }

    /// Deploys `task` and returns its `Deployment` once every worker runs and the master has
    /// started. Use it as a context manager: the task is torn down when the block exits, even
    /// on error. On failure or Ctrl-C, everything created is removed before the error is raised.
    #[pyo3(signature = (task, *, on_event=None))]
    fn deploy(&self, py: Python<'_>, task: PyRef<'_, PyTask>, on_event: Option<Py<PyAny>>) -> PyResult<PyDeployment> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let listener = Listener::new(&self.inner, callback.as_ref().map(|c| c.clone_ref(py)), Some(task.name().into()));
        let deployment = block_on(py, Some(&self.inner), listener, None, async move { director.deploy(&task).await })?;
        Ok(PyDeployment::new(deployment, self.inner.clone(), callback))
    }

    /// `deploy` for asyncio: `async with await director.deploy_async(task) as d: ...`.
    /// Cancelling the awaitable rolls the deploy back (in the background).
    #[pyo3(signature = (task, *, on_event=None))]
    fn deploy_async<'py>(
        &self,
        py: Python<'py>,
        task: PyRef<'_, PyTask>,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let listener = Listener::new(&self.inner, callback.as_ref().map(|c| c.clone_ref(py)), Some(task.name().into()));
        let owner = self.inner.clone();
        to_asyncio(
            py,
            listener,
            async move { director.deploy(&task).await },
            Box::new(move |py, d| Ok(Py::new(py, PyDeployment::new(d, owner, callback))?.into_any())),
        )
    }

    /// Deploys `task`, waits for its master to exit (at most the task's `run_timeout`), tears
    /// it down whatever happens, and returns the `Outcome`.
    #[pyo3(signature = (task, *, on_event=None))]
    fn run(&self, py: Python<'_>, task: PyRef<'_, PyTask>, on_event: Option<Py<PyAny>>) -> PyResult<PyOutcome> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let listener = Listener::new(&self.inner, callback, Some(task.name().into()));
        let outcome = block_on(py, Some(&self.inner), listener, None, async move { director.run(&task).await })?;
        Ok(PyOutcome::from(outcome))
    }

    /// `run` for asyncio.
    #[pyo3(signature = (task, *, on_event=None))]
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        task: PyRef<'_, PyTask>,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let callback = self.callback(py, on_event);
        let (director, task) = (self.inner.clone(), task.inner.clone());
        let listener = Listener::new(&self.inner, callback, Some(task.name().into()));
        to_asyncio(
            py,
            listener,
            async move { director.run(&task).await },
            Box::new(|py, o| Ok(Py::new(py, PyOutcome::from(o))?.into_any())),
        )
    }

    /// Every task on the engine, whoever deployed it, as dicts (`name`, `state`,
    /// `workers_running`, `workers_total`, `workers`, `owner`, `expires`, `created`, `resources`).
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let tasks = block_on(py, Some(&self.inner), None, None, async move { director.list().await })?;
        crate::convert::to_py(py, &tasks)
    }

    /// One task as the engine holds it (a dict, as in `list`); `atq.TaskNotFound` if none.
    fn inspect(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let info = block_on(py, Some(&self.inner), None, None, async move { director.inspect(&name).await })?;
        crate::convert::to_py(py, &info)
    }

    /// Removes every engine object of the task `name`; `atq.TaskNotFound` if there is none.
    fn teardown(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let director = self.inner.clone();
        let listener = Listener::new(&self.inner, self.callback(py, None), Some(name.clone()));
        block_on(py, Some(&self.inner), listener, None, async move { director.teardown(&name).await })
    }

    /// Removes tasks whose owner process is gone or whose ttl has passed; returns
    /// `{"tasks": [...], "resources": n}`.
    fn prune(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let report = block_on(py, Some(&self.inner), None, None, async move { director.prune().await })?;
        crate::convert::to_py(py, &report)
    }

    /// Removes everything atq created on the engine, whoever created it; returns
    /// `{"tasks": [...], "resources": n}`.
    fn prune_all(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let report = block_on(py, Some(&self.inner), None, None, async move { director.prune_all().await })?;
        crate::convert::to_py(py, &report)
    }

    /// Stores the zip file or directory at `path` as a data bundle on the engine and returns its
    /// id, for a service's `data=` (`fileid` in task files): its files appear under `/atq/data`.
    /// Raises `atq.DataError` for an unsafe or too large archive. `split` marks files of the
    /// bundle (path -> "round-robin" or "blocks") to be split across the workers of every task
    /// that mounts it.
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
                mode.parse().map_err(|m: String| crate::error::invalid(&format!("split.{file}"), m))?;
            shards.push(atq_core::data::Shard::new(file).split(mode));
        }
        let director = self.inner.clone();
        let bundle =
            block_on(
                py,
                Some(&self.inner),
                None,
                None,
                async move { director.push_data_sharded(&path, &shards).await },
            )?;
        Ok(bundle.id().to_owned())
    }

    /// The data bundles on the engine: a list of dicts (`id`, `files`, `bytes`, `created_unix`, …).
    fn data_bundles(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let director = self.inner.clone();
        let bundles = block_on(py, Some(&self.inner), None, None, async move { director.data_bundles().await })?;
        crate::convert::to_py(py, &bundles)
    }

    /// Removes a data bundle; raises `atq.DataError` while a task uses it.
    fn remove_data(&self, py: Python<'_>, id: String) -> PyResult<()> {
        let director = self.inner.clone();
        block_on(py, Some(&self.inner), None, None, async move { director.remove_data(&id).await })
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

impl PyDirector {
    /// The callback of this call: its own, or the director's.
    fn callback(&self, py: Python<'_>, own: Option<Py<PyAny>>) -> Option<Py<PyAny>> {
        own.or_else(|| self.on_event.as_ref().map(|c| c.clone_ref(py)))
    }
}
