//! The task's `results` field: where the master leaves its results, and in what format.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::problem::Problem;
use crate::results::read::Format;
use crate::results::threshold::{self, Threshold};

/// Where the master's results are, inside the saved artifacts: `results: {format: jtl, path:
/// results.jtl}` in a task file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct ResultsSpec {
    /// The format (default: auto, told from the file).
    #[serde(default)]
    pub format: Format,
    /// The file, relative to the artifacts directory (`results.jtl`); for Locust, the `--csv`
    /// prefix (`stats`) or any file of its set (`stats_stats.csv`).
    pub path: String,
}

impl ResultsSpec {
    /// Results at `path` (relative to the artifacts directory), format told from the file.
    pub fn new(path: impl Into<String>) -> Self {
        ResultsSpec { format: Format::Auto, path: path.into() }
    }

    /// Reads them as `format`.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
}

/// Task validation of `results` and `thresholds` (called from the task's own `validate`).
pub(crate) fn validate(results: Option<&ResultsSpec>, thresholds: &[String], artifacts: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let problem = |field: String, message: String| Problem { field, message, line: None };
    if let Some(spec) = results {
        let path = Path::new(&spec.path);
        let message = if spec.path.trim().is_empty() {
            Some("empty: name the results file relative to the artifacts directory, like results.jtl".to_owned())
        } else if path.is_absolute() {
            Some(format!(
                "\"{}\" is absolute: give it relative to the artifacts directory (for /atq/results/results.jtl, write results.jtl)",
                spec.path
            ))
        } else if path.components().any(|c| !matches!(c, Component::Normal(_))) {
            Some(format!("\"{}\" contains '.' or '..': write the plain relative path, like results.jtl", spec.path))
        } else if spec.path.chars().any(char::is_control) {
            Some(format!("{:?} contains a control character", spec.path))
        } else {
            None
        };
        if let Some(m) = message {
            out.push(problem("results.path".into(), m));
        }
        if artifacts.is_none() {
            out.push(problem(
                "results".into(),
                "needs the master's artifacts: set artifacts (the directory the master writes its results in, like /atq/results)".into(),
            ));
        }
    }
    for (i, text) in thresholds.iter().enumerate() {
        if let Err(e) = text.parse::<Threshold>() {
            out.push(problem(
                format!("thresholds[{i}]"),
                format!("{}; accepted forms: {}", e.message, threshold::EXAMPLES),
            ));
        }
    }
    if !thresholds.is_empty() && artifacts.is_none() {
        out.push(problem(
            "thresholds".into(),
            "are judged on the master's results: set artifacts (like /atq/results) and results (like {format: jtl, path: results.jtl})".into(),
        ));
    }
    out
}
