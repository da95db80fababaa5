//! `atq.Results`: results files read, merged and judged by the core (`atq_core::results`),
//! exposed as plain dicts (the `summary.json` document's pieces) plus `passed`, the text table,
//! the exit-code rule and the three output files.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyType;
use serde_json::Value;

use atq_core::results::{self, OnMalformed, ReadOptions, Report, Threshold};

use crate::convert::json_to_py;
use crate::error::{invalid, results_error};

/// Results read from JMeter JTL (CSV), Locust `--csv` or k6 CSV files, with thresholds judged.
///
/// ```python
/// r = atq.Results.from_file("results.jtl", thresholds=["p95 < 500ms", "error_rate < 1%"])
/// r.passed, r.total["p95_ms"], r.labels["login"]["count"], r.workers
/// r.assert_passed()        # AssertionError with the summary table when a threshold failed
/// ```
#[pyclass(name = "Results", module = "atq", frozen)]
pub struct PyResults {
    report: Report,
    /// The `summary.json` document, computed once.
    summary: Value,
}

impl PyResults {
    /// Wraps a core report (the run flow's `outcome.results` will use this).
    pub(crate) fn new(report: Report) -> Self {
        let summary: Value = serde_json::from_str(&report.summary_json()).expect("summary.json is JSON");
        PyResults { report, summary }
    }

    fn by_name(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        let mut map = serde_json::Map::new();
        for item in self.summary[key].as_array().into_iter().flatten() {
            let mut item = item.clone();
            if let Some(name) =
                item.as_object_mut().and_then(|o| o.remove("name")).and_then(|n| n.as_str().map(str::to_owned))
            {
                map.insert(name, item);
            }
        }
        json_to_py(py, &Value::Object(map))
    }
}

fn parse_thresholds(texts: Option<Vec<String>>) -> PyResult<Vec<Threshold>> {
    results::parse_thresholds(&texts.unwrap_or_default()).map_err(|(i, e)| {
        invalid(&format!("thresholds[{i}]"), format!("{}; accepted forms: {}", e.message, results::EXAMPLES))
    })
}

fn options(format: &str, strict: bool) -> PyResult<ReadOptions> {
    let format = format.parse().map_err(|m: String| invalid("format", m))?;
    Ok(ReadOptions::default().format(format).on_malformed(if strict { OnMalformed::Fail } else { OnMalformed::Skip }))
}

#[pymethods]
impl PyResults {
    /// Reads one results file (a JTL, a k6 CSV, or a Locust `--csv` prefix or any of its files)
    /// and judges `thresholds` (strings such as `"p95 < 500ms"`). `format`: "auto", "jtl",
    /// "locust" or "k6". `strict`: raise on the first malformed row instead of skipping it.
    #[classmethod]
    #[pyo3(signature = (path, *, thresholds=None, format="auto", strict=false, title=None))]
    fn from_file(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        thresholds: Option<Vec<String>>,
        format: &str,
        strict: bool,
        title: Option<String>,
    ) -> PyResult<Self> {
        Self::read(py, vec![path], thresholds, format, strict, title)
    }

    /// Reads several files (runs, or one per worker) merged into one summary.
    #[classmethod]
    #[pyo3(signature = (paths, *, thresholds=None, format="auto", strict=false, title=None))]
    fn from_files(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        paths: Vec<PathBuf>,
        thresholds: Option<Vec<String>>,
        format: &str,
        strict: bool,
        title: Option<String>,
    ) -> PyResult<Self> {
        Self::read(py, paths, thresholds, format, strict, title)
    }

    /// Whether every threshold held (True without thresholds).
    #[getter]
    fn passed(&self) -> bool {
        self.report.passed()
    }

    /// Every sample's numbers: count, errors, error_rate, throughput, min/mean/max_ms,
    /// p50/p90/p95/p99/p99_9_ms, bytes, first_ms/last_ms (None without results).
    #[getter]
    fn total(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary["total"])
    }

    /// Per label: `{name: numbers}`.
    #[getter]
    fn labels(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.by_name(py, "labels")
    }

    /// Per worker: `{name: numbers}` (empty when the source names no workers).
    #[getter]
    fn workers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.by_name(py, "workers")
    }

    /// One dict per threshold: threshold, scope, metric, op, limit, unit, observed, passed, message.
    #[getter]
    fn verdicts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary["thresholds"])
    }

    /// The time series: `{"bucket_seconds": s, "points": [{t_ms, count, errors, throughput, p50_ms, ...}]}`.
    #[getter]
    fn series(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary["series"])
    }

    /// The kinds of error seen: `[{label, code, message, count}]`, most frequent first.
    #[getter]
    fn errors(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary["errors"])
    }

    /// Where the numbers came from: format, files, rows, skipped_rows, notes.
    #[getter]
    fn source(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary["source"])
    }

    /// Why there are no results, when there are none.
    #[getter]
    fn problem(&self) -> Option<&str> {
        self.report.problem()
    }

    /// The whole `summary.json` document as a dict (schema `atq.summary/1`).
    fn summary(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.summary)
    }

    /// `summary.json` as text.
    fn to_json(&self) -> String {
        self.report.summary_json()
    }

    /// The compact table `atq run` and `atq report` print.
    fn table(&self) -> String {
        self.report.summary_table()
    }

    /// `report.html`: a self-contained page.
    fn html(&self) -> String {
        self.report.html()
    }

    /// `junit.xml`: a test case per threshold and per label.
    fn junit_xml(&self) -> String {
        self.report.junit_xml()
    }

    /// Writes summary.json, junit.xml and report.html into `dir`; returns their paths.
    fn write_outputs(&self, py: Python<'_>, dir: PathBuf) -> PyResult<Vec<String>> {
        let written = py.detach(|| self.report.write_outputs(&dir)).map_err(results_error)?;
        Ok(written.iter().map(|p| p.display().to_string()).collect())
    }

    /// The exit code of a run whose master exited `master_code`: that code when non-zero, else
    /// 99 when a threshold failed, else 0.
    #[pyo3(signature = (master_code=0))]
    fn exit_code(&self, master_code: i64) -> i64 {
        self.report.exit_code(master_code)
    }

    /// Raises `AssertionError` with the summary table when a threshold failed (for tests).
    fn assert_passed(&self) -> PyResult<()> {
        if self.report.passed() {
            return Ok(());
        }
        let failed = self.report.verdicts().iter().filter(|v| !v.passed).count();
        Err(pyo3::exceptions::PyAssertionError::new_err(format!(
            "{failed} threshold(s) failed:\n{}",
            self.report.summary_table().trim_end()
        )))
    }

    fn __bool__(&self) -> bool {
        self.report.passed()
    }

    fn __repr__(&self) -> String {
        let count = self.report.results().map_or(0, |r| r.total.count);
        format!(
            "Results(title={:?}, samples={count}, passed={})",
            self.report.title(),
            if self.report.passed() { "True" } else { "False" }
        )
    }
}

impl PyResults {
    fn read(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        thresholds: Option<Vec<String>>,
        format: &str,
        strict: bool,
        title: Option<String>,
    ) -> PyResult<Self> {
        let thresholds = parse_thresholds(thresholds)?;
        let options = options(format, strict)?;
        let results = py.detach(|| results::read_files(&paths, options)).map_err(results_error)?;
        let title = title.unwrap_or_else(|| {
            paths.first().and_then(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        });
        Ok(PyResults::new(Report::new(results, &thresholds).titled(title)))
    }
}
