//! `atq.RunReport`: what `Director.run` did (the core's [`RunReport`]), and the run options'
//! Python spellings (`follow_logs="master"`, `keep="on_failure"`).

use pyo3::prelude::*;

use atq_core::run::{FollowLogs, Keep, RunReport};

use crate::deployment::PyOutcome;
use crate::error::invalid;
use crate::results::PyResults;

/// `follow_logs=`: "none", "master" or "all".
pub(crate) fn follow_logs(value: &str) -> PyResult<FollowLogs> {
    match value {
        "none" => Ok(FollowLogs::None),
        "master" => Ok(FollowLogs::Master),
        "all" => Ok(FollowLogs::All),
        other => Err(invalid("follow_logs", format!("{other:?} is not one of \"none\", \"master\", \"all\""))),
    }
}

/// `keep=`: "never", "always" or "on_failure".
pub(crate) fn keep(value: &str) -> PyResult<Keep> {
    match value {
        "never" => Ok(Keep::Never),
        "always" => Ok(Keep::Always),
        "on_failure" => Ok(Keep::OnFailure),
        other => Err(invalid("keep", format!("{other:?} is not one of \"never\", \"always\", \"on_failure\""))),
    }
}

/// What a run did: the master's `outcome`, the artifacts saved, the results judged, whether the
/// task was kept, and `exit_code` by atq's one rule (what `atq run` exits with):
///
/// 1. the master's non-zero exit code (126/127 when it could not start);
/// 2. 125 when atq could not save the artifacts asked for, or could not tear the task down;
/// 3. 99 when a threshold failed, or the results were missing while thresholds are declared;
/// 4. 98 when workers stopped while the master ran (or were lost with their node);
/// 5. 0: `passed`.
#[pyclass(name = "RunReport", module = "atq", frozen)]
pub struct PyRunReport {
    task: String,
    outcome: Py<PyOutcome>,
    exit_code: u8,
    workers: Vec<String>,
    artifacts_dir: Option<String>,
    artifacts: Vec<String>,
    artifacts_error: Option<Py<PyAny>>,
    teardown_error: Option<Py<PyAny>>,
    results: Option<Py<PyResults>>,
    result_files: Vec<String>,
    kept: bool,
    duration: f64,
    /// Why it did not pass, in one line.
    failure: Option<String>,
    /// The results table, when thresholds failed.
    failed_table: Option<String>,
    /// The master's last lines.
    master_tail: String,
    json: serde_json::Value,
}

/// How many of the master's last lines `assert_passed` shows.
const ASSERT_TAIL: usize = 20;

impl PyRunReport {
    pub(crate) fn new(py: Python<'_>, mut report: RunReport) -> PyResult<Self> {
        let json = report.to_json();
        let exit_code = report.exit_code();
        let failure = failure(&report);
        let failed_table = report.results.as_ref().filter(|r| !r.passed()).map(|r| r.summary_table());
        let error_object = |e: atq_core::Error| crate::error::to_py(e).into_value(py).into_any();
        let lines: Vec<&str> = report.outcome.logs.lines().collect();
        let master_tail = lines[lines.len().saturating_sub(ASSERT_TAIL)..].join("\n");
        let paths = |paths: &[std::path::PathBuf]| paths.iter().map(|p| p.display().to_string()).collect();
        Ok(PyRunReport {
            task: report.task.clone(),
            exit_code,
            workers: report.workers.iter().map(ToString::to_string).collect(),
            artifacts_dir: report.artifacts_dir.as_ref().map(|d| d.display().to_string()),
            artifacts: paths(&report.artifacts),
            result_files: paths(&report.result_files),
            artifacts_error: report.artifacts_error.take().map(error_object),
            teardown_error: report.teardown_error.take().map(error_object),
            results: report.results.take().map(|r| Py::new(py, PyResults::new(r))).transpose()?,
            kept: report.kept,
            duration: report.duration.as_secs_f64(),
            outcome: Py::new(py, PyOutcome::from(report.outcome))?,
            failure,
            failed_table,
            master_tail,
            json,
        })
    }

    /// The task's name.
    pub(crate) fn task_name(&self) -> &str {
        &self.task
    }

    /// The results table of a run whose thresholds failed.
    pub(crate) fn failed_table(&self) -> Option<&str> {
        self.failed_table.as_deref()
    }

    /// Whether the task is torn down without error (nothing of it is left).
    pub(crate) fn torn_down(&self) -> bool {
        !self.kept && self.teardown_error.is_none()
    }
}

/// Why the run did not pass, by the exit-code rule's order.
fn failure(report: &RunReport) -> Option<String> {
    let outcome = &report.outcome;
    if report.exit_code() == 0 {
        return None;
    }
    if outcome.exit_code != 0 {
        let how = if outcome.failed_to_start { "could not start" } else { "exited" };
        return Some(match &outcome.error {
            Some(e) if outcome.failed_to_start => format!("the master {how} (exit code {}): {e}", outcome.exit_code),
            _ => format!("the master {how} with code {}", outcome.exit_code),
        });
    }
    if let Some(e) = &report.artifacts_error {
        if report.results.is_none() || !matches!(e, atq_core::Error::ArtifactsNotFound { .. }) {
            return Some(format!("artifacts: {e}"));
        }
    }
    if let Some(e) = &report.teardown_error {
        return Some(format!("teardown: {e}"));
    }
    if let Some(results) = report.results.as_ref().filter(|r| !r.passed()) {
        let failed: Vec<String> = results
            .verdicts()
            .iter()
            .filter(|v| !v.passed)
            .map(|v| format!("{} ({})", v.threshold, v.message))
            .collect();
        return Some(match (failed.is_empty(), results.problem()) {
            (true, Some(problem)) => format!("no results: {problem}"),
            _ => format!("{} threshold(s) failed: {}", failed.len(), failed.join("; ")),
        });
    }
    if !outcome.failed_workers.is_empty() {
        let lost = outcome.failed_workers.iter().filter(|w| w.state == atq_core::cluster::ReplicaState::Lost).count();
        return Some(match lost {
            0 => format!("{} worker(s) stopped while the master ran", outcome.failed_workers.len()),
            _ => format!(
                "{} worker(s) stopped while the master ran ({lost} lost with their node)",
                outcome.failed_workers.len()
            ),
        });
    }
    Some(format!("exit code {}", report.exit_code()))
}

#[pymethods]
impl PyRunReport {
    /// The task.
    #[getter]
    fn task(&self) -> &str {
        &self.task
    }

    /// What the master did.
    #[getter]
    fn outcome(&self, py: Python<'_>) -> Py<PyOutcome> {
        self.outcome.clone_ref(py)
    }

    /// atq's exit code for this run (the rule in the class docs).
    #[getter]
    fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// Whether everything worked: `exit_code == 0`.
    #[getter]
    fn passed(&self) -> bool {
        self.exit_code == 0
    }

    /// Why it did not pass, in one line (None when it passed).
    #[getter]
    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The workers' addresses, by slot.
    #[getter]
    fn workers(&self) -> Vec<String> {
        self.workers.clone()
    }

    /// Where the artifacts were saved (`artifacts_dir=`, when the task has some).
    #[getter]
    fn artifacts_dir(&self) -> Option<&str> {
        self.artifacts_dir.as_deref()
    }

    /// The artifact files saved.
    #[getter]
    fn artifacts(&self) -> Vec<String> {
        self.artifacts.clone()
    }

    /// Why the artifacts could not be saved (an `atq.ArtifactsError`), or None.
    #[getter]
    fn artifacts_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.artifacts_error.as_ref().map(|e| e.clone_ref(py))
    }

    /// Why the teardown did not finish (an `atq.TeardownIncomplete` naming what is left), or None.
    #[getter]
    fn teardown_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.teardown_error.as_ref().map(|e| e.clone_ref(py))
    }

    /// The results judged (when the task declares `results` or `thresholds`), or None.
    #[getter]
    fn results(&self, py: Python<'_>) -> Option<Py<PyResults>> {
        self.results.as_ref().map(|r| r.clone_ref(py))
    }

    /// `summary.json`, `junit.xml` and `report.html`, written beside the artifacts.
    #[getter]
    fn result_files(&self) -> Vec<String> {
        self.result_files.clone()
    }

    /// Whether the task was left on the engine (`keep=`); `Director.teardown(name)` removes it.
    #[getter]
    fn kept(&self) -> bool {
        self.kept
    }

    /// Seconds the whole run took.
    #[getter]
    fn duration(&self) -> f64 {
        self.duration
    }

    /// The report as a dict: the JSON object `atq run --json` ends with (`exit_code`, `outcome`,
    /// `results` as `summary.json`, …).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::convert::json_to_py(py, &self.json)
    }

    /// Raises `AssertionError` saying why the run did not pass (the results table when thresholds
    /// failed, the master's last lines), for tests.
    fn assert_passed(&self) -> PyResult<()> {
        let Some(failure) = &self.failure else { return Ok(()) };
        let mut message = format!("run of {} failed (exit code {}): {failure}", self.task, self.exit_code);
        if let Some(table) = &self.failed_table {
            message.push_str("\n\n");
            message.push_str(table.trim_end());
        }
        if !self.master_tail.is_empty() {
            message.push_str(&format!("\n\nthe master's last lines:\n{}", self.master_tail));
        }
        Err(pyo3::exceptions::PyAssertionError::new_err(message))
    }

    fn __repr__(&self) -> String {
        let mut repr = format!("RunReport(task={:?}, exit_code={}", self.task, self.exit_code);
        if self.kept {
            repr.push_str(", kept=True");
        }
        if let Some(failure) = &self.failure {
            repr.push_str(&format!(", failure={failure:?}"));
        }
        repr.push(')');
        repr
    }
}
