//! `atq report FILE...`: the results layer offline — read and merge JTL/Locust/k6 files, judge
//! thresholds, print the summary table (or `summary.json`), write the outputs asked for, and exit
//! by the run's rule (99 when a threshold failed).

use std::path::{Path, PathBuf};

use atq_core::results::{self, OnMalformed, ReadOptions, Report, Threshold};
use atq_core::Task;

use crate::cli::ReportArgs;
use crate::display::{err, out};
use crate::error::CliError;
use crate::exit;

/// Runs `atq report`; returns the exit code (0, or 99 when a threshold failed).
pub fn report(args: ReportArgs) -> Result<u8, CliError> {
    let thresholds = parse_thresholds(&args.threshold)?;
    let options = ReadOptions::default().format(args.format).on_malformed(if args.strict {
        OnMalformed::Fail
    } else {
        OnMalformed::Skip
    });
    let results = results::read_files(&args.files, options)?;
    let title = args.title.clone().unwrap_or_else(|| default_title(&args.files));
    let report = Report::new(results, &thresholds).titled(title);
    if args.json {
        out(&report.summary_json());
    } else {
        out(report.summary_table().trim_end());
    }
    if let Some(dir) = &args.out_dir {
        for path in report.write_outputs(dir)? {
            err(&format!("atq: wrote {}", path.display()));
        }
    }
    for (path, text) in [(&args.html, report.html()), (&args.junit, report.junit_xml())] {
        if let Some(path) = path {
            write(path, &text)?;
            err(&format!("atq: wrote {}", path.display()));
        }
    }
    if !report.passed() {
        let failed = report.verdicts().iter().filter(|v| !v.passed).count();
        err(&format!("atq: {failed} threshold(s) failed: exit {}", results::THRESHOLDS_FAILED));
    }
    Ok(exit::of_master(report.exit_code(0)))
}

/// What `atq run` does once the master's artifacts are saved in `dir` (for the run flow to call):
/// when the task declares results or thresholds, judge them, print the summary table (stderr;
/// with `json`, one `{"event":"results",...}` line on stdout holding `summary.json`), write
/// summary.json, junit.xml and report.html beside the artifacts, and return the exit code by the
/// rule (the master's non-zero code, else 99 on a failed threshold, else 0). None when the task
/// declares neither.
#[allow(dead_code)] // wired by the run flow (atq-cli/src/run.rs) once issue 10 lands
pub fn judge_run(dir: &Path, task: &Task, master_code: i64, json: bool) -> Option<u8> {
    let report = results::analyze_task(dir, task)?;
    if json {
        let summary: serde_json::Value = serde_json::from_str(&report.summary_json()).expect("summary.json is JSON");
        out(&serde_json::json!({"event": "results", "summary": summary}).to_string());
    } else {
        err(report.summary_table().trim_end());
    }
    match report.write_outputs(dir) {
        Ok(paths) if !json => {
            let names: Vec<String> =
                paths.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
            err(&format!("atq: results: {} in {}", names.join(", "), dir.display()));
        }
        Ok(_) => {}
        Err(e) => err(&format!("atq: warning: cannot write the reports: {e}")),
    }
    let code = report.exit_code(master_code);
    if master_code == 0 && code == results::THRESHOLDS_FAILED {
        let failed = report.verdicts().iter().filter(|v| !v.passed).count();
        err(&format!("atq: {failed} threshold(s) failed: exit {code}"));
    }
    Some(exit::of_master(code))
}

fn parse_thresholds(texts: &[String]) -> Result<Vec<Threshold>, CliError> {
    results::parse_thresholds(texts).map_err(|(i, e)| {
        CliError::Usage(format!("--threshold #{}: {e}; accepted forms: {}", i + 1, results::EXAMPLES))
    })
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Core(atq_core::Error::Io { path: parent.display().to_string(), source: e }))?;
    }
    std::fs::write(path, text)
        .map_err(|e| CliError::Core(atq_core::Error::Io { path: path.display().to_string(), source: e }))
}

/// The report's title: the first file's name without its extension (and without Locust's suffix).
fn default_title(files: &[PathBuf]) -> String {
    let name = files.first().and_then(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix("_stats.csv").map(str::to_owned).unwrap_or(name);
    let stem = Path::new(&name).file_stem().map_or(name.clone(), |s| s.to_string_lossy().into_owned());
    if files.len() > 1 {
        format!("{stem} (+{} more)", files.len() - 1)
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atq_core::Service;

    fn task(thresholds: &[&str]) -> Task {
        Task::builder("t")
            .workers(Service::new("i"))
            .master(Service::new("i"))
            .artifacts("/atq/results")
            .thresholds(thresholds.iter().copied())
            .build()
            .unwrap()
    }

    #[test]
    fn judge_run_applies_the_exit_code_rule_and_writes_the_reports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("results.jtl"), "timeStamp,elapsed,label,success\n1700000000000,50,a,true\n")
            .unwrap();
        assert_eq!(judge_run(dir.path(), &task(&["p95 < 1s"]), 0, false), Some(0));
        assert!(dir.path().join("report.html").is_file() && dir.path().join("junit.xml").is_file());
        assert_eq!(judge_run(dir.path(), &task(&["p95 < 10ms"]), 0, true), Some(99));
        assert_eq!(judge_run(dir.path(), &task(&["p95 < 10ms"]), 3, false), Some(3));
        let plain = Task::builder("p").workers(Service::new("i")).master(Service::new("i")).build().unwrap();
        assert_eq!(judge_run(dir.path(), &plain, 0, false), None);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            judge_run(empty.path(), &task(&["p95 < 1s"]), 0, false),
            Some(99),
            "no results, thresholds declared"
        );
    }
}
