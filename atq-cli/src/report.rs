//! `atq report FILE...`: the results layer offline — read and merge JTL/Locust/k6 files, judge
//! thresholds, print the summary table (or `summary.json`), write the outputs asked for, and exit
//! by the run's rule (99 when a threshold failed).

use std::path::{Path, PathBuf};

use atq_core::results::{self, OnMalformed, ReadOptions, Report, Threshold};

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
