//! `atq.Service`, `atq.HealthCheck`, `atq.Resources`: one role's container spec.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use atq_core::data::{Shard, SplitMode};
use atq_core::{HealthCheck, Resources, Service};

use crate::convert::{count, opt_seconds};
use crate::error::invalid;

/// One role's container spec (the workers' or the master's): image, replicas, environment,
/// arguments, health check, resources, placement constraints, data bundle.
#[pyclass(name = "Service", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyService {
    pub(crate) inner: Service,
}

#[pymethods]
impl PyService {
    /// A service running `image` (which must exist on the engine's nodes).
    #[new]
    #[pyo3(signature = (image, *, replicas=1, env=None, args=None, command=None, tty=false, alias=None, data=None,
                        health_check=None, resources=None, constraints=None, labels=None, shards=None, stop_grace_period=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        image: String,
        replicas: i64,
        env: Option<&Bound<'_, PyDict>>,
        args: Option<Vec<String>>,
        command: Option<Vec<String>>,
        tty: bool,
        alias: Option<String>,
        data: Option<String>,
        health_check: Option<PyRef<'_, PyHealthCheck>>,
        resources: Option<PyRef<'_, PyResources>>,
        constraints: Option<Vec<String>>,
        labels: Option<BTreeMap<String, String>>,
        shards: Option<Vec<PyRef<'_, PyShard>>>,
        stop_grace_period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut s = Service::new(image).replicas(count("replicas", replicas)?).tty(tty);
        if let Some(env) = env {
            for (k, v) in env.iter() {
                let key: String = k.extract().map_err(|_| invalid("environment", "keys must be strings"))?;
                let value: String =
                    v.extract().map_err(|_| invalid(&format!("environment.{key}"), "must be a string"))?;
                s = s.env(key, value);
            }
        }
        if let Some(args) = args {
            s = s.args(args);
        }
        if let Some(command) = command {
            s = s.command(command);
        }
        if let Some(alias) = alias {
            s = s.alias(alias);
        }
        if let Some(data) = data {
            s = s.data(data);
        }
        if let Some(h) = health_check {
            s = s.health_check(h.inner.clone());
        }
        if let Some(r) = resources {
            s = s.resources(r.inner);
        }
        for c in constraints.unwrap_or_default() {
            s = s.constraint(c);
        }
        for (k, v) in labels.unwrap_or_default() {
            s = s.label(k, v);
        }
        for shard in shards.unwrap_or_default() {
            s = s.shard(shard.inner.clone());
        }
        if let Some(grace) = opt_seconds("stop_grace_period", stop_grace_period)? {
            s = s.stop_grace_period(grace);
        }
        Ok(PyService { inner: s })
    }

    /// Seconds each replica has to stop after SIGTERM at teardown (default 1).
    #[getter]
    fn stop_grace_period(&self) -> f64 {
        self.inner.stop_grace_period.as_secs_f64()
    }

    /// The image reference.
    #[getter]
    fn image(&self) -> &str {
        &self.inner.image
    }

    /// How many replicas (workers: N; master: 1).
    #[getter]
    fn replicas(&self) -> u32 {
        self.inner.replicas
    }

    /// Environment variables, in the order given (a later value for the same key wins).
    #[getter]
    fn env<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.environment {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The container's arguments: they replace the image's CMD.
    #[getter]
    fn args(&self) -> Vec<String> {
        self.inner.args.clone()
    }

    /// The command replacing the image's entrypoint, if any.
    #[getter]
    fn command(&self) -> Option<Vec<String>> {
        self.inner.command.clone()
    }

    /// Whether the containers get a TTY.
    #[getter]
    fn tty(&self) -> bool {
        self.inner.tty
    }

    /// The files of the bundle split across the replicas (workers only).
    #[getter]
    fn shards(&self) -> Vec<PyShard> {
        self.inner.shards.iter().map(|s| PyShard { inner: s.clone() }).collect()
    }

    /// The service's alias on the task network (default `worker` / `master`).
    #[getter]
    fn alias(&self) -> Option<&str> {
        self.inner.alias.as_deref()
    }

    /// The data bundle id mounted at `/atq/data`, if any.
    #[getter]
    fn data(&self) -> Option<&str> {
        self.inner.fileid.as_deref()
    }

    /// The health check, if any.
    #[getter]
    fn health_check(&self) -> Option<PyHealthCheck> {
        self.inner.health_check.clone().map(|inner| PyHealthCheck { inner })
    }

    /// CPU and memory limits, if any.
    #[getter]
    fn resources(&self) -> Option<PyResources> {
        self.inner.resources.map(|inner| PyResources { inner })
    }

    /// Placement constraints (`node.labels.zone==a`).
    #[getter]
    fn constraints(&self) -> Vec<String> {
        self.inner.constraints.clone()
    }

    /// Labels on the service (keys `io.atq.*` are reserved).
    #[getter]
    fn labels(&self) -> BTreeMap<String, String> {
        self.inner.labels.clone()
    }

    fn __repr__(&self) -> String {
        format!("Service({:?}, replicas={})", self.inner.image, self.inner.replicas)
    }
}

/// A container health check, run by the engine (Docker's HEALTHCHECK): a replica counts as
/// running only once it passes.
#[pyclass(name = "HealthCheck", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyHealthCheck {
    pub(crate) inner: HealthCheck,
}

#[pymethods]
impl PyHealthCheck {
    /// A check running `test` with `/bin/sh -c` in the container (exit 0: healthy); times in
    /// seconds (or `datetime.timedelta`): `interval` between checks, `timeout` of one check,
    /// `retries` (failed checks in a row before unhealthy), `start_period` (failures within it do
    /// not count). Unset values are the engine's defaults (Docker: 30 s, 30 s, 3, 0 s).
    #[new]
    #[pyo3(signature = (test, *, interval=None, timeout=None, retries=None, start_period=None))]
    fn new(
        test: String,
        interval: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        retries: Option<i64>,
        start_period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut h = HealthCheck::new(test);
        if let Some(d) = opt_seconds("healthCheck.interval", interval)? {
            h = h.interval(d);
        }
        if let Some(d) = opt_seconds("healthCheck.timeout", timeout)? {
            h = h.timeout(d);
        }
        if let Some(r) = retries {
            h = h.retries(count("healthCheck.retries", r)?);
        }
        if let Some(d) = opt_seconds("healthCheck.startPeriod", start_period)? {
            h = h.start_period(d);
        }
        Ok(PyHealthCheck { inner: h })
    }

    /// The shell command.
    #[getter]
    fn test(&self) -> &str {
        &self.inner.test
    }

    fn __repr__(&self) -> String {
        format!("HealthCheck({:?})", self.inner.test)
    }
}

/// CPU and memory limits of each replica.
#[pyclass(name = "Resources", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyResources {
    pub(crate) inner: Resources,
}

#[pymethods]
impl PyResources {
    /// Limits: `cpus` (fractions allowed) and `memory` in bytes.
    #[new]
    #[pyo3(signature = (*, cpus=None, memory=None))]
    fn new(cpus: Option<f64>, memory: Option<u64>) -> Self {
        let mut r = Resources::new();
        if let Some(c) = cpus {
            r = r.cpus(c);
        }
        if let Some(m) = memory {
            r = r.memory_bytes(m);
        }
        PyResources { inner: r }
    }

    /// The CPU limit, if any.
    #[getter]
    fn cpus(&self) -> Option<f64> {
        self.inner.cpus
    }

    /// The memory limit in bytes, if any.
    #[getter]
    fn memory(&self) -> Option<u64> {
        self.inner.memory.map(|m| m.0)
    }

    fn __repr__(&self) -> String {
        format!("Resources(cpus={:?}, memory={:?})", self.inner.cpus, self.inner.memory.map(|m| m.0))
    }
}

/// A CSV file of the workers' data bundle split across them: each worker reads only its slice
/// (header first) at the file's usual path under `/atq/data`, and `ATQ_WORKER_INDEX` (1 to N)
/// says which one it is.
#[pyclass(name = "Shard", module = "atq", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyShard {
    pub(crate) inner: Shard,
}

#[pymethods]
impl PyShard {
    /// `file` is the path inside the bundle; `split` is "round-robin" or "blocks".
    #[new]
    #[pyo3(signature = (file, *, split="round-robin", header=true, delimiter=","))]
    fn new(file: String, split: &str, header: bool, delimiter: &str) -> PyResult<Self> {
        let mode: SplitMode = split.parse().map_err(|m: String| invalid("shards.split", m))?;
        let mut chars = delimiter.chars();
        let (Some(d), None) = (chars.next(), chars.next()) else {
            return Err(invalid("shards.delimiter", format!("{delimiter:?} is not one character")));
        };
        let mut inner = Shard::new(file).split(mode).header(header);
        inner.delimiter = d;
        inner.delimiter_check().map_err(|m| invalid("shards.delimiter", m))?;
        Ok(PyShard { inner })
    }

    /// The file's path inside the bundle.
    #[getter]
    fn file(&self) -> &str {
        &self.inner.file
    }

    /// "round-robin" or "blocks".
    #[getter]
    fn split(&self) -> &'static str {
        self.inner.split.as_str()
    }

    /// Whether the first record is a header, repeated in every slice.
    #[getter]
    fn header(&self) -> bool {
        self.inner.header
    }

    /// The field delimiter.
    #[getter]
    fn delimiter(&self) -> String {
        self.inner.delimiter.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Shard({:?}, split={:?}, header={}, delimiter={:?})",
            self.inner.file,
            self.split(),
            if self.inner.header { "True" } else { "False" },
            self.delimiter()
        )
    }
}
