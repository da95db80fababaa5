//! `atq.FakeCluster` and `atq.DockerCluster`: the engines a `Director` can drive.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;

use atq_core::cluster::fake::{CallKind, Matcher, Script};
use atq_core::cluster::select::{self, Connected, EngineChoice};
use atq_core::labels::Role;
use atq_core::{Cluster, FakeCluster};

use crate::convert::seconds;
use crate::error::invalid;

/// An in-memory engine for your own unit tests: deterministic, instant by default, scriptable.
///
/// Replicas start after `latency` seconds and get addresses from their network's subnet; the
/// master exits with `master_exit_code` (0 by default) after printing `master_logs`; images in
/// `missing_images` are rejected as on an engine where they do not exist. Keep a reference to
/// inspect the engine (`is_empty()`, `services()`) while a `Director` drives it.
#[pyclass(name = "FakeCluster", module = "atq", frozen)]
#[derive(Clone)]
pub struct PyFakeCluster {
    pub(crate) inner: FakeCluster,
}

#[pymethods]
impl PyFakeCluster {
    /// A fresh fake engine (one node, following the rules both real backends follow).
    #[new]
    #[pyo3(signature = (*, latency=None, master_exit_code=None, master_logs=None, missing_images=None))]
    fn new(
        latency: Option<&Bound<'_, PyAny>>,
        master_exit_code: Option<i64>,
        master_logs: Option<&Bound<'_, PyAny>>,
        missing_images: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let fake = PyFakeCluster { inner: FakeCluster::new() };
        if let Some(l) = latency {
            fake.set_latency(l)?;
        }
        if master_exit_code.is_some() || master_logs.is_some() {
            fake.master_exits(master_exit_code.unwrap_or(0), master_logs)?;
        }
        for image in missing_images.unwrap_or_default() {
            fake.inner.missing_image(image);
        }
        Ok(fake)
    }

    /// Replicas of services created from now on stay pending for `latency` seconds.
    fn set_latency(&self, latency: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_latency(seconds("latency", latency)?);
        Ok(())
    }

    /// Masters created from now on exit with `code` right after starting, having printed `logs`
    /// (a string, split into lines, or a list of lines).
    #[pyo3(signature = (code, logs=None))]
    fn master_exits(&self, code: i64, logs: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.inner.master_exits(code, lines("master_logs", logs)?);
        Ok(())
    }

    /// Masters created from now on write `files` (absolute path in the container -> `bytes`),
    /// for `Deployment.save_artifacts`.
    fn master_artifacts(&self, files: BTreeMap<String, Vec<u8>>) {
        let script = files.into_iter().fold(Script::new(), |script, (path, content)| script.artifact(path, content));
        self.inner.script(Matcher::role(Role::Master), script);
    }

    /// Masters created from now on run until removed (for `Deployment.wait(timeout=...)`).
    fn master_never_exits(&self) {
        self.inner.script(Matcher::role(Role::Master), Script::runs_until_removed());
    }

    /// Wait-command probes created from now on exit with `code` having printed `output`.
    fn probe_output(&self, code: i64, output: &str) {
        self.inner.probe_output(code, output);
    }

    /// The image does not exist: replicas of services using it are rejected
    /// (`atq.ReplicaFailed`, "No such image").
    fn missing_image(&self, image: String) {
        self.inner.missing_image(image);
    }

    /// Replicas of services using `image` stay pending for ever (for `atq.DeployTimeout`).
    fn never_starts(&self, image: String) {
        self.inner.never_starts(Matcher::image(image));
    }

    /// The `nth` call (1: the next) of the engine operation `kind` (`create_network`,
    /// `create_service`, `remove_service`, `replicas`, `logs`, `list_resources`, …) fails
    /// with an engine error (`atq.EngineError`).
    #[pyo3(signature = (kind, nth=1))]
    fn fail_call(&self, kind: &str, nth: u64) -> PyResult<()> {
        let Some(k) = CallKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
            let names: Vec<&str> = CallKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(invalid("kind", format!("unknown call {kind:?}; one of: {}", names.join(", "))));
        };
        self.inner.fail_call(k, nth);
        Ok(())
    }

    /// Kills the running replica `slot` (from 1) of `service` with `exit_code`.
    #[pyo3(signature = (service, slot, exit_code=137))]
    fn kill_replica(&self, service: &str, slot: u32, exit_code: i64) -> PyResult<()> {
        self.inner.kill_replica(service, slot, exit_code).map_err(crate::error::to_py)
    }

    /// Whether the engine holds no network, service or config (nothing was left behind).
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Names of the services on the engine, sorted.
    fn services(&self) -> Vec<String> {
        self.inner.services()
    }

    /// Names of the networks on the engine, sorted.
    fn networks(&self) -> Vec<String> {
        self.inner.networks()
    }

    /// The environment a service was created with (`WORKER_CSV_VIPS`, `ATQ_ROLE`, …), or None.
    fn service_env(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.inner.service_spec(name).map(|s| s.env.into_iter().collect())
    }

    fn __repr__(&self) -> String {
        format!("FakeCluster(services={:?})", self.inner.services())
    }
}

fn lines(field: &str, logs: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(logs) = logs.filter(|l| !l.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(text) = logs.extract::<String>() {
        return Ok(text.lines().map(str::to_owned).collect());
    }
    logs.extract().map_err(|_| invalid(field, "must be a string or a list of strings"))
}

/// A real Docker engine, connected when created: `host`, else `DOCKER_HOST`, else the local socket.
///
/// It drives the engine with the backend that fits it: Docker Swarm (services on an overlay
/// network, across every node) on a swarm manager, plain Docker (containers on a bridge network
/// of one machine) otherwise. `engine="swarm"` or `engine="docker"` (or the environment variable
/// `ATQ_ENGINE`, as the CLI reads it) picks one explicitly; `backend` and `reason` say which and why.
///
/// Raises `atq.EngineError` when the engine is unreachable, or when `engine="swarm"` names an
/// engine that is not a swarm manager; `atq.AtqError` for an `engine` or `ATQ_ENGINE` that is
/// neither `swarm` nor `docker`.
#[pyclass(name = "DockerCluster", module = "atq", frozen)]
pub struct PyDockerCluster {
    pub(crate) inner: Arc<dyn Cluster>,
    /// `swarm` or `docker`.
    backend: String,
    /// Why that backend.
    reason: String,
    /// The engine's address.
    host: String,
}

#[pymethods]
impl PyDockerCluster {
    /// Connects to the engine at `host` (`unix:///var/run/docker.sock`, `tcp://…`), or where
    /// `DOCKER_HOST` points, or the default socket, with the backend `engine` names (`"swarm"`,
    /// `"docker"`), or `ATQ_ENGINE`, or the one that fits the engine.
    #[new]
    #[pyo3(signature = (host=None, engine=None))]
    fn new(py: Python<'_>, host: Option<String>, engine: Option<String>) -> PyResult<Self> {
        let connected = crate::runtime::block_on(py, None, None, None, connect(host, engine))?;
        Ok(PyDockerCluster {
            inner: connected.cluster,
            backend: connected.backend.to_string(),
            reason: connected.reason,
            host: connected.host,
        })
    }

    /// The backend in use: `"swarm"` or `"docker"`.
    #[getter]
    fn backend(&self) -> &str {
        &self.backend
    }

    /// Why that backend (`"ATQ_ENGINE=docker"`, `"chosen by the engine: it is a swarm manager"`).
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }

    /// The engine's address.
    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    fn __repr__(&self) -> String {
        format!("DockerCluster(host={:?}, backend={:?})", self.host, self.backend)
    }
}

/// Connects with the backend `engine` names, or `ATQ_ENGINE`, or the one that fits the engine.
async fn connect(host: Option<String>, engine: Option<String>) -> atq_core::Result<Connected> {
    let choice = match engine {
        Some(name) => name.parse::<EngineChoice>()?,
        None => EngineChoice::from_env()?,
    };
    select::connect(choice, host.as_deref()).await
}
