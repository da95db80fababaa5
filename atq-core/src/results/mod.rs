//! Results: read what the load generator wrote, merge it correctly, judge thresholds, report.
//!
//! ```text
//! JTL / Locust / k6 files ──read──▶ HDR histograms per label, per worker, in total ──▶ Results
//! Results + thresholds ──judge──▶ Report ──▶ summary table, summary.json, junit.xml, report.html
//!                                        └─▶ exit code (master's non-zero code, else 99 on a failed threshold)
//! ```
//!
//! ```
//! use atq_core::results::{read_file, ReadOptions, Report, Threshold};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let jtl = dir.path().join("results.jtl");
//! std::fs::write(&jtl, "timeStamp,elapsed,label,responseCode,success,bytes\n\
//!                       1700000000000,120,login,200,true,512\n\
//!                       1700000000500,480,login,500,false,0\n")?;
//! let results = read_file(&jtl, ReadOptions::default())?;
//! let thresholds: Vec<Threshold> = vec!["p95 < 500ms".parse()?, "error_rate < 1%".parse()?];
//! let report = Report::new(results, &thresholds);
//! assert!(!report.passed());                  // one sample in two failed
//! assert_eq!(report.exit_code(0), 99);        // the master's 0, but a threshold failed
//! assert_eq!(report.exit_code(3), 3);         // the master's own failure wins
//! report.write_outputs(dir.path())?;          // summary.json, junit.xml, report.html
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//! - [`read`](read_files): formats ([`Format`]), options ([`ReadOptions`], [`OnMalformed`]),
//!   detection, and the bounds every reader shares ([`MAX_ROW_BYTES`]); one module per format:
//!   `jtl` (JMeter CSV), `locust` (`--csv` files), `k6` (`--out csv`).
//! - `collect`: the streaming aggregator — one HDR histogram per label, per worker and in total,
//!   a time series of bounded size ([`MAX_POINTS`]); memory is bounded by the number of groups
//!   ([`MAX_LABELS`], [`MAX_WORKERS`]), never by the number of samples.
//! - [`summary`](Summary): the numbers ([`Results`], [`Summary`], [`Series`]).
//! - [`threshold`](Threshold): the threshold grammar and [`Verdict`]s.
//! - [`report`](Report): verdicts with results, [`exit_code`], the terminal table, and the
//!   outputs: `json` (`summary.json`, schema [`SCHEMA`]), `junit`, `html` (self-contained page
//!   with inline SVG charts).
//! - [`spec`](ResultsSpec): the task's `results` field and the validation of `thresholds`.
//!
//! ## Merging done right
//! Percentiles are never averaged: every sample goes into the histograms of its label, its
//! worker and the total, and several files (runs, or one per worker) go through one collector.
//! HDR precision is 3 significant digits: a reported percentile is exact below 2048 ms (JTL
//! counts in whole milliseconds; k6 in microseconds: below 2.048 ms) and at most 0.1% above the
//! nearest-rank value beyond — never below it. Means, minima and maxima are exact.

mod collect;
mod error;
mod html;
mod json;
mod jtl;
mod junit;
mod k6;
mod locust;
mod read;
mod report;
mod rows;
mod spec;
mod summary;
mod threshold;

use std::path::{Path, PathBuf};

pub use collect::{ErrorKind, MAX_ERROR_KINDS, MAX_LABELS, MAX_POINTS, MAX_WORKERS, OTHER};
pub use error::ResultsError;
pub use json::SCHEMA;
pub use read::{read_file, read_files, Format, OnMalformed, ReadOptions, MAX_ROW_BYTES};
pub use report::{exit_code, format_ms, Report, JUNIT_XML, REPORT_HTML, SUMMARY_JSON, THRESHOLDS_FAILED};
pub use spec::ResultsSpec;
pub use summary::{Point, Results, Series, Source, Summary, STANDARD_PERCENTILES};
pub use threshold::{parse_thresholds, Metric, Op, Scope, Threshold, ThresholdError, Unit, Verdict, EXAMPLES};

pub(crate) use spec::validate;

/// Most directory entries looked at when finding results in an artifacts directory.
const MAX_DETECT_ENTRIES: usize = 10_000;

/// Reads the results in an artifacts directory and judges `thresholds` against them.
///
/// `spec` names the file (relative to `artifacts_dir`) and format; without one, the results are
/// found in the directory: the first `*.jtl`, else a Locust `*_stats.csv`, else a `*.csv`
/// (in name order, top level only).
pub fn analyze(
    artifacts_dir: &Path,
    spec: Option<&ResultsSpec>,
    thresholds: &[Threshold],
) -> Result<Report, ResultsError> {
    let (path, format) = match spec {
        Some(s) => (artifacts_dir.join(&s.path), s.format),
        None => (find_results(artifacts_dir)?, Format::Auto),
    };
    let results = read_file(&path, ReadOptions::default().format(format))?;
    Ok(Report::new(results, thresholds))
}

/// What the run flow calls once the master's artifacts are saved: `None` when the task declares
/// neither results nor thresholds; else a report — without results (every threshold failed, the
/// reason in [`Report::problem`]) when they are missing or unreadable.
#[must_use]
pub fn analyze_task(artifacts_dir: &Path, task: &crate::Task) -> Option<Report> {
    let thresholds = task.thresholds();
    if task.results().is_none() && thresholds.is_empty() {
        return None;
    }
    let report = match analyze(artifacts_dir, task.results(), &thresholds) {
        Ok(report) => report,
        Err(e) => Report::without_results(e, &thresholds),
    };
    Some(report.titled(task.name()))
}

/// The results file in a directory, by the rule of [`analyze`].
pub fn find_results(dir: &Path) -> Result<PathBuf, ResultsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ResultsError::NotFound {
            path: dir.to_owned(),
            hint: "no artifacts were saved: does the task set artifacts, and did the master write there?".into(),
        },
        _ => ResultsError::io(dir, e),
    })?;
    let mut names: Vec<PathBuf> =
        entries.take(MAX_DETECT_ENTRIES).filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    names.sort();
    let ends = |p: &PathBuf, suffix: &str| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix));
    names
        .iter()
        .find(|p| ends(p, ".jtl"))
        .or_else(|| names.iter().find(|p| ends(p, "_stats.csv")))
        .or_else(|| names.iter().find(|p| ends(p, ".csv")))
        .cloned()
        .ok_or_else(|| ResultsError::NotFound {
            path: dir.join("*.jtl"),
            hint: "no *.jtl, *_stats.csv or *.csv among the artifacts: name the file with results: {path: ...} in the task".into(),
        })
}

#[cfg(test)]
mod tests;
