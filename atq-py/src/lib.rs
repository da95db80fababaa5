//! # atq-py
//!
//! Python bindings of atq (the extension module `atq._atq`, re-exported by the package
//! `atq`): conversions, error mapping and rendering only; every behaviour — the run flow,
//! waiting, cleanup, the interrupt protocol — comes from `atq-core`.
//!
//! ## Layout
//! The modules mirror the core's:
//! - [`task`] and `service`: `Task`, `WaitCommand`, `Service`, `HealthCheck`, `Resources`, `Shard`.
//! - `cluster`: `FakeCluster` (in memory) and `DockerCluster`.
//! - `director`: `Director` (deploy, run, list, inspect, logs, teardown, prune, data).
//! - `deployment`: `Deployment` (context manager) and `Outcome`.
//! - `run`: `RunReport` (what `Director.run` did, the exit-code rule) and the run options.
//! - `results`: `Results` (results files read, merged and judged; summary dicts, `passed`).
//! - `error`: the exception classes and the one mapping from the core's `Error`.
//! - `journal`: what a `Director` deployed (so a fixture removes only its own) and captured.
//! - `runtime`: the global tokio runtime; a call's events and result, waited for with the
//!   GIL released; Ctrl-C handed to the core's interrupt; the asyncio bridge.
//! - `convert`: JSON-shaped values and seconds.
//!
//! At exit the module waits (at most [`EXIT_WAIT`]) for the cleanups still running on atq's
//! cleanup thread — of dropped deployments, of a cleanup a second Ctrl-C stopped waiting for.

pub mod cluster;
mod convert;
pub mod deployment;
pub mod director;
pub mod error;
mod journal;
pub mod results;
pub mod run;
mod runtime;
pub mod service;
pub mod task;

use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How long the interpreter waits at exit for atq's background cleanups.
pub const EXIT_WAIT: Duration = Duration::from_secs(60);

/// The slices of a wait for cleanups, between which Ctrl-C is noticed.
const SLICE: Duration = Duration::from_millis(50);

/// Waits until atq's background cleanups (of dropped deployments and cancelled deploys, of a
/// cleanup a second Ctrl-C stopped waiting for) have finished, at most `timeout` seconds;
/// returns whether they all did (default: 60 s). Ctrl-C stops waiting (KeyboardInterrupt).
#[pyfunction]
#[pyo3(signature = (timeout=None))]
fn wait_for_cleanups(py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    let timeout = convert::opt_seconds("timeout", timeout)?.unwrap_or(EXIT_WAIT);
    wait_idle(py, timeout)
}

/// How many of atq's background cleanups have not finished.
#[pyfunction]
fn pending_cleanups() -> usize {
    atq_core::cleanup::pending()
}

fn wait_idle(py: Python<'_>, timeout: Duration) -> PyResult<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if py.detach(|| atq_core::cleanup::wait_idle(left.min(SLICE))) {
            return Ok(true);
        }
        if left.is_zero() {
            return Ok(false);
        }
        py.check_signals()?;
    }
}

/// Registered with `atexit`: waits for pending cleanups (at most [`EXIT_WAIT`]), saying so.
#[pyfunction]
fn _wait_at_exit(py: Python<'_>) -> PyResult<()> {
    let pending = atq_core::cleanup::pending();
    if pending == 0 {
        return Ok(());
    }
    let stderr = py.import("sys")?.getattr("stderr")?;
    stderr.call_method1(
        "write",
        (format!(
            "atq: waiting for {pending} cleanup(s) to finish (at most {} s; Ctrl-C to stop waiting)\n",
            EXIT_WAIT.as_secs()
        ),),
    )?;
    let message = match wait_idle(py, EXIT_WAIT) {
        Ok(true) => return Ok(()),
        Ok(false) => "atq: cleanups still running at exit: `atq prune` removes what they leave\n",
        Err(_) => "atq: stopped waiting for cleanups: `atq prune` removes what they leave\n",
    };
    stderr.call_method1("write", (message,))?;
    Ok(())
}

/// The extension module `atq._atq`.
#[pymodule]
fn _atq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<task::PyTask>()?;
    m.add_class::<task::PyWaitCommand>()?;
    m.add_class::<service::PyService>()?;
    m.add_class::<service::PyHealthCheck>()?;
    m.add_class::<service::PyResources>()?;
    m.add_class::<service::PyShard>()?;
    m.add_class::<cluster::PyFakeCluster>()?;
    m.add_class::<cluster::PyDockerCluster>()?;
    m.add_class::<director::PyDirector>()?;
    m.add_class::<deployment::PyDeployment>()?;
    m.add_class::<deployment::PyOutcome>()?;
    m.add_class::<run::PyRunReport>()?;
    m.add_class::<results::PyResults>()?;
    m.add_function(wrap_pyfunction!(wait_for_cleanups, m)?)?;
    m.add_function(wrap_pyfunction!(pending_cleanups, m)?)?;
    let at_exit = wrap_pyfunction!(_wait_at_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (at_exit,))?;
    error::register(m)?;
    Ok(())
}
