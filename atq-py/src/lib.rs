//! # atq-py
//!
//! Python bindings of atq (the extension module `atq._atq`, re-exported by the package
//! `atq`): conversions and error mapping only; every behaviour comes from `atq-core`.
//!
//! ## Layout
//! The modules mirror the core's:
//! - [`task`] and [`service`]: `Task`, `WaitCommand`, `Service`, `HealthCheck`, `Resources`.
//! - [`cluster`]: `FakeCluster` (in memory) and `DockerCluster`.
//! - [`director`]: `Director` (deploy, run, list, inspect, teardown, prune).
//! - [`deployment`]: `Deployment` (context manager) and `Outcome`.
//! - [`results`]: `Results` (results files read, merged and judged; summary dicts, `passed`).
//! - [`error`]: the exception classes and the one mapping from the core's `Error`.
//! - [`runtime`]: the global tokio runtime, blocking waits that release the GIL and stay
//!   interruptible (Ctrl-C cancels and rolls back), progress callbacks, the asyncio bridge.
//! - [`convert`]: JSON-shaped values and seconds.

pub mod cluster;
mod convert;
pub mod deployment;
pub mod director;
pub mod error;
pub mod results;
mod runtime;
pub mod service;
pub mod task;

use pyo3::prelude::*;

/// The extension module `atq._atq`.
#[pymodule]
fn _atq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<task::PyTask>()?;
    m.add_class::<task::PyWaitCommand>()?;
    m.add_class::<service::PyService>()?;
    m.add_class::<service::PyHealthCheck>()?;
    m.add_class::<service::PyResources>()?;
    m.add_class::<cluster::PyFakeCluster>()?;
    m.add_class::<cluster::PyDockerCluster>()?;
    m.add_class::<director::PyDirector>()?;
    m.add_class::<deployment::PyDeployment>()?;
    m.add_class::<deployment::PyOutcome>()?;
    m.add_class::<results::PyResults>()?;
    error::register(m)?;
    Ok(())
}
