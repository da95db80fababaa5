//! A [`Report`]: results (or why there are none) and the thresholds' verdicts; the exit-code
//! rule, the text table for a terminal, and the three output files.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::results::error::ResultsError;
use crate::results::summary::{Results, Summary};
use crate::results::threshold::{Scope, Threshold, Verdict};
use crate::results::{html, json, junit};

/// The exit code of a run whose master exited 0 but whose thresholds failed (k6's convention).
/// Results that are missing or unreadable while thresholds are declared also give 99: a
/// threshold that cannot be shown to hold has failed, and the report says why.
pub const THRESHOLDS_FAILED: i64 = 99;

/// The file names [`Report::write_outputs`] writes.
pub const SUMMARY_JSON: &str = "summary.json";
/// See [`SUMMARY_JSON`].
pub const JUNIT_XML: &str = "junit.xml";
/// See [`SUMMARY_JSON`].
pub const REPORT_HTML: &str = "report.html";

/// The exit-code rule: the master's non-zero code wins; else [`THRESHOLDS_FAILED`] when a
/// threshold failed; else 0.
#[must_use]
pub fn exit_code(master_code: i64, thresholds_passed: bool) -> i64 {
    if master_code != 0 {
        master_code
    } else if thresholds_passed {
        0
    } else {
        THRESHOLDS_FAILED
    }
}

/// Results and verdicts, ready to print, write or decide an exit code with.
#[derive(Debug, Clone)]
pub struct Report {
    pub(crate) title: String,
    pub(crate) results: Option<Results>,
    pub(crate) problem: Option<String>,
    pub(crate) verdicts: Vec<Verdict>,
}

impl Report {
    /// Judges `thresholds` against `results`.
    #[must_use]
    pub fn new(results: Results, thresholds: &[Threshold]) -> Self {
        let verdicts = thresholds.iter().map(|t| t.judge(&results)).collect();
        Report { title: "atq results".into(), results: Some(results), problem: None, verdicts }
    }

    /// A report without results (missing, unreadable): every threshold fails with `reason`.
    #[must_use]
    pub fn without_results(reason: impl fmt::Display, thresholds: &[Threshold]) -> Self {
        let reason = reason.to_string();
        let verdicts = thresholds.iter().map(|t| t.unjudged(&format!("no results: {reason}"))).collect();
        Report { title: "atq results".into(), results: None, problem: Some(reason), verdicts }
    }

    /// Sets the title the HTML report and the JUnit suite carry (the task's name, say).
    #[must_use]
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The title.
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The numbers, when they could be read.
    #[must_use]
    pub fn results(&self) -> Option<&Results> {
        self.results.as_ref()
    }

    /// Why there are no numbers, when there are none.
    #[must_use]
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// One verdict per threshold, in the order given.
    #[must_use]
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// The names of the labels (or workers: `name_of` picks) that a failed threshold is about.
    pub(crate) fn failed_scopes(&self, name_of: impl Fn(&Scope) -> Option<&String>) -> Vec<&str> {
        self.verdicts
            .iter()
            .filter(|v| !v.passed)
            .filter_map(|v| name_of(v.threshold.scope()))
            .map(String::as_str)
            .collect()
    }

    /// Whether every threshold held (true when there are none).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }

    /// The exit code of a run whose master exited `master_code` (see [`exit_code`]).
    #[must_use]
    pub fn exit_code(&self, master_code: i64) -> i64 {
        exit_code(master_code, self.passed())
    }

    /// `summary.json` (schema [`SCHEMA`](crate::results::SCHEMA)), pretty-printed.
    #[must_use]
    pub fn summary_json(&self) -> String {
        json::summary(self)
    }

    /// `junit.xml`: a test suite with a case per threshold and a case per label.
    #[must_use]
    pub fn junit_xml(&self) -> String {
        junit::write(self)
    }

    /// `report.html`: one self-contained page (no external URL).
    #[must_use]
    pub fn html(&self) -> String {
        html::write(self)
    }

    /// Writes `summary.json`, `junit.xml` and `report.html` into `dir` (created if needed);
    /// returns their paths.
    pub fn write_outputs(&self, dir: &Path) -> Result<Vec<PathBuf>, ResultsError> {
        std::fs::create_dir_all(dir).map_err(|e| ResultsError::io(dir, e))?;
        let mut written = Vec::new();
        for (name, text) in
            [(SUMMARY_JSON, self.summary_json()), (JUNIT_XML, self.junit_xml()), (REPORT_HTML, self.html())]
        {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| ResultsError::io(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// A compact table for a terminal: per label count, error %, p50/p95/p99 and rps, the total,
    /// then the verdicts. Input text is cleaned of control characters.
    #[must_use]
    pub fn summary_table(&self) -> String {
        let mut out = String::new();
        match &self.results {
            Some(r) => {
                let mut rows = vec![["LABEL", "COUNT", "ERR%", "P50", "P95", "P99", "RPS"].map(str::to_owned)];
                for (name, s) in &r.labels {
                    rows.push(table_row(&terminal_text(name, 40), s));
                }
                rows.push(table_row("TOTAL", &r.total));
                let widths: Vec<usize> =
                    (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
                for row in &rows {
                    let cells: Vec<String> = row
                        .iter()
                        .zip(&widths)
                        .enumerate()
                        .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
                        .collect();
                    let _ = writeln!(out, "{}", cells.join("  ").trim_end());
                }
                if r.source.skipped_rows > 0 {
                    let _ = writeln!(
                        out,
                        "skipped {} malformed row(s); first: {}",
                        r.source.skipped_rows,
                        terminal_text(r.source.skipped_examples.first().map_or("", String::as_str), 200)
                    );
                }
            }
            None => {
                let _ =
                    writeln!(out, "no results: {}", terminal_text(self.problem.as_deref().unwrap_or("unknown"), 400));
            }
        }
        if !self.verdicts.is_empty() {
            let failed = self.verdicts.iter().filter(|v| !v.passed).count();
            let _ = writeln!(out, "thresholds: {} passed, {failed} failed", self.verdicts.len() - failed);
            for v in &self.verdicts {
                let mark = if v.passed { "PASS" } else { "FAIL" };
                let _ = writeln!(
                    out,
                    "  {mark}  {}  ({})",
                    terminal_text(v.threshold.text(), 200),
                    terminal_text(&v.message, 300)
                );
            }
        }
        out
    }
}

fn table_row(name: &str, s: &Summary) -> [String; 7] {
    let p = |q: f64| s.percentile(q).map_or_else(|| "-".into(), format_ms);
    [
        name.to_owned(),
        s.count.to_string(),
        s.error_rate().map_or_else(|| "-".into(), |r| format!("{:.2}%", r * 100.0)),
        p(50.0),
        p(95.0),
        p(99.0),
        s.throughput().map_or_else(|| "-".into(), |t| format!("{t:.1}")),
    ]
}

/// A latency for people: `0.85 ms`, `12.3 ms`, `250 ms`, `1.25 s`.
#[must_use]
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Text safe to print on a terminal: control characters (escape sequences) become `?`, at most
/// `max` characters.
pub(crate) fn terminal_text(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}
