//! Locust's `--csv PREFIX` output, as its master writes it (already merged across workers).
//!
//! - `PREFIX_stats.csv` (required): one row per request name, plus `Aggregated`: count, failures,
//!   mean/min/max, average content size, requests/s, and percentiles 50, 66, 75, 80, 90, 95, 98,
//!   99, 99.9, 99.99, 100. Those percentiles are Locust's own, computed by its master from every
//!   worker's response-time counts, so they are merged correctly; but they are all there is:
//!   Locust writes **no raw samples**, so no other percentile can be derived, two Locust runs
//!   cannot be merged into correct percentiles, and there are **no per-worker numbers**.
//! - `PREFIX_stats_history.csv` (optional): the time series (Locust's `Aggregated` rows, one per
//!   `CSV_STATS_INTERVAL_SEC`; its percentiles are over a recent window, not per bucket).
//! - `PREFIX_failures.csv` (optional): the error table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::collect::{ErrorKind, MAX_ERROR_KINDS, MAX_LABELS, MAX_POINTS};
use crate::results::error::ResultsError;
use crate::results::read::{bounded, header_name, open, parse_f64, parse_u64, too_long, Format};
use crate::results::summary::{Distribution, Point, Results, Series, Source, Summary};

const SUFFIXES: [&str; 4] = ["_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv"];
/// Names Locust gives its total row.
const TOTAL_NAMES: [&str; 2] = ["Aggregated", "Total"];

/// Whether `path` names a Locust file set: a `--csv` prefix whose `_stats.csv` exists, or one of
/// the set's files.
pub(crate) fn is_prefix(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    SUFFIXES.iter().any(|s| name.ends_with(s)) || (!path.exists() && stats_path(path).exists())
}

/// The `--csv` prefix of a path (a prefix, or a file of the set).
fn prefix_of(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    for s in SUFFIXES {
        if let Some(prefix) = text.strip_suffix(s) {
            return PathBuf::from(prefix);
        }
    }
    path.to_owned()
}

fn stats_path(prefix: &Path) -> PathBuf {
    PathBuf::from(format!("{}_stats.csv", prefix.to_string_lossy()))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", prefix.to_string_lossy()))
}

/// Reads one Locust set; several paths must all name the same set.
pub(crate) fn read_set(paths: &[PathBuf]) -> Result<Results, ResultsError> {
    let prefixes: Vec<PathBuf> = paths.iter().map(|p| prefix_of(p)).collect();
    if prefixes.iter().any(|p| *p != prefixes[0]) {
        return Err(ResultsError::CannotMerge {
            files: paths.to_owned(),
            reason: "Locust writes merged summaries (percentiles per name, no raw samples), so two Locust runs cannot be merged into correct percentiles: report them one at a time".into(),
        });
    }
    let prefix = &prefixes[0];
    let stats = stats_path(prefix);
    if !stats.exists() {
        return Err(ResultsError::NotFound {
            path: stats,
            hint: "Locust writes PREFIX_stats.csv with --csv PREFIX (on the master, with --headless)".into(),
        });
    }
    let mut files = vec![stats.clone()];
    let mut notes = vec!["Locust's CSV holds merged summaries, not samples: percentiles are Locust's own (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100), and there are no per-worker numbers".to_owned()];
    let (mut total, mut labels, rows) = read_stats(&stats)?;
    let history = with_suffix(prefix, "_stats_history.csv");
    let mut series = Series { bucket_seconds: 1.0, points: Vec::new() };
    if history.exists() {
        let (s, span) = read_history(&history)?;
        series = s;
        if let Some((first, last)) = span {
            total.first_ms = Some(first);
            total.last_ms = Some(last);
        }
        files.push(history);
    } else {
        notes.push("no _stats_history.csv: no time series".into());
    }
    for s in labels.values_mut() {
        s.first_ms = total.first_ms;
        s.last_ms = total.last_ms;
    }
    let failures = with_suffix(prefix, "_failures.csv");
    let mut errors = Vec::new();
    if failures.exists() {
        errors = read_failures(&failures)?;
        files.push(failures);
    }
    if total.count == 0 && labels.values().all(|s| s.count == 0) {
        return Err(ResultsError::Empty { path: stats });
    }
    if total.count == 0 {
        total.count = labels.values().map(|s| s.count).sum();
        total.errors = labels.values().map(|s| s.errors).sum();
    }
    Ok(Results {
        total,
        labels,
        workers: BTreeMap::new(),
        series,
        errors,
        source: Source { format: Format::Locust, files, rows, skipped_rows: 0, skipped_examples: Vec::new(), notes },
    })
}

/// Calls `row` with the header and each row's cells (trimmed), one row in memory at a time.
fn stream_table(path: &Path, mut row: impl FnMut(&[String], &[String])) -> Result<(), ResultsError> {
    let (reader, guard) = bounded(open(path)?);
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut header: Vec<String> = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut cells: Vec<String> = Vec::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                let message = if guard.tripped() { too_long() } else { e.to_string() };
                return Err(ResultsError::Malformed { path: path.to_owned(), line, message });
            }
        }
        guard.reset();
        if header.is_empty() {
            header = record.iter().map(|c| String::from_utf8_lossy(header_name(c)).into_owned()).collect();
            continue;
        }
        cells.clear();
        cells.extend(record.iter().map(|c| String::from_utf8_lossy(c).trim().to_owned()));
        row(&header, &cells);
    }
}

/// Reads a small CSV file whole: its header and at most `max_rows` rows.
fn read_table(path: &Path, max_rows: usize) -> Result<(Vec<String>, Vec<Vec<String>>), ResultsError> {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    stream_table(path, |h, cells| {
        if header.is_empty() {
            header = h.to_vec();
        }
        if rows.len() < max_rows {
            rows.push(cells.to_vec());
        }
    })?;
    if header.is_empty() {
        // A header only: stream_table never called back.
        let text = std::fs::read(path).map_err(|e| ResultsError::io(path, e))?;
        let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
        header = first
            .split(|&b| b == b',')
            .map(|c| String::from_utf8_lossy(header_name(c)).trim_matches('"').to_owned())
            .collect();
    }
    Ok((header, rows))
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

/// The percentile columns (`50%`, `99.9%`, …) with their percentile.
fn percentile_columns(header: &[String]) -> Vec<(usize, f64)> {
    header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_suffix('%').and_then(|q| q.parse::<f64>().ok()).map(|q| (i, q)))
        .filter(|(_, q)| *q > 0.0 && *q <= 100.0)
        .collect()
}

#[allow(clippy::type_complexity)]
fn read_stats(path: &Path) -> Result<(Summary, BTreeMap<String, Summary>, u64), ResultsError> {
    let (header, rows) = read_table(path, MAX_LABELS + 1)?;
    let bad = |message: String| ResultsError::Malformed { path: path.to_owned(), line: 1, message };
    let name = column(&header, &["Name"])
        .ok_or_else(|| bad("the header has no `Name` column: is this Locust's _stats.csv?".into()))?;
    let count = column(&header, &["Request Count", "# requests"])
        .ok_or_else(|| bad("the header has no `Request Count` column: is this Locust's _stats.csv?".into()))?;
    let kind = column(&header, &["Type", "Method"]);
    let failures = column(&header, &["Failure Count", "# failures"]);
    let mean = column(&header, &["Average Response Time"]);
    let min = column(&header, &["Min Response Time"]);
    let max = column(&header, &["Max Response Time"]);
    let median = column(&header, &["Median Response Time"]);
    let size = column(&header, &["Average Content Size"]);
    let rps = column(&header, &["Requests/s"]);
    let percentiles = percentile_columns(&header);

    let mut parsed: Vec<(String, String, Summary)> = Vec::new();
    let mut total = None;
    for (i, row) in rows.iter().enumerate() {
        let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).map_or("", String::as_str);
        let number = |c: Option<usize>| parse_f64(cell(c).as_bytes());
        let line = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(2);
        let n = parse_u64(cell(Some(count)).as_bytes()).ok_or_else(|| ResultsError::Malformed {
            path: path.to_owned(),
            line,
            message: format!("Request Count {:?} is not a whole number", cell(Some(count))),
        })?;
        let errors = parse_u64(cell(failures).as_bytes()).unwrap_or(0).min(n);
        let mut given: Vec<(f64, f64)> =
            percentiles.iter().filter_map(|(c, q)| number(Some(*c)).map(|v| (*q, v))).collect();
        if !given.iter().any(|(q, _)| *q == 50.0) {
            if let Some(m) = number(median) {
                given.push((50.0, m));
            }
        }
        given.sort_by(|a, b| a.0.total_cmp(&b.0));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let bytes = number(size).map_or(0, |s| (s.max(0.0) * n as f64) as u64);
        let summary = Summary {
            count: n,
            errors,
            bytes,
            sent_bytes: 0,
            first_ms: None,
            last_ms: None,
            min_ms: number(min).filter(|_| n > 0),
            mean_ms: number(mean).filter(|_| n > 0),
            max_ms: number(max).filter(|_| n > 0),
            given_throughput: number(rps),
            distribution: if given.is_empty() { Distribution::None } else { Distribution::Given(given) },
        };
        let label = cell(Some(name)).to_owned();
        if cell(kind).is_empty() && TOTAL_NAMES.contains(&label.as_str()) {
            total = Some(summary);
        } else {
            parsed.push((cell(kind).to_owned(), label, summary));
        }
    }
    // A name used with two methods (GET /x, POST /x) is told apart by its method.
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, label, _) in &parsed {
        *uses.entry(label.as_str()).or_default() += 1;
    }
    let ambiguous: Vec<String> = uses.iter().filter(|(_, n)| **n > 1).map(|(l, _)| (*l).to_owned()).collect();
    let mut labels = BTreeMap::new();
    for (kind, label, summary) in parsed {
        let key = if ambiguous.contains(&label) && !kind.is_empty() { format!("{kind} {label}") } else { label };
        labels.insert(key, summary);
    }
    let rows = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    Ok((total.unwrap_or_else(Summary::empty), labels, rows))
}

/// The `Aggregated` rows of the history as points, merged pairwise to stay within
/// [`MAX_POINTS`]; and the span (first, last timestamp in ms).
fn read_history(path: &Path) -> Result<(Series, Option<(i64, i64)>), ResultsError> {
    let mut points: Vec<Point> = Vec::new();
    let (mut prev_count, mut prev_failures) = (0u64, 0u64);
    let mut span: Option<(i64, i64)> = None;
    let mut width = 1.0f64;
    let mut has_timestamp = true;
    stream_table(path, |header, row| {
        let ts = column(header, &["Timestamp"]);
        let Some(ts) = ts else {
            has_timestamp = false;
            return;
        };
        let name = column(header, &["Name"]);
        let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).map_or("", String::as_str);
        let number = |names: &[&str]| parse_f64(cell(column(header, names)).as_bytes());
        if !name.is_none_or(|_| TOTAL_NAMES.contains(&cell(name))) {
            return;
        }
        let Some(t) =
            parse_u64(cell(Some(ts)).as_bytes()).and_then(|t| i64::try_from(t).ok()).map(|t| t.saturating_mul(1000))
        else {
            return;
        };
        span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let count = parse_u64(cell(column(header, &["Total Request Count"])).as_bytes()).unwrap_or(prev_count);
        let failures = parse_u64(cell(column(header, &["Total Failure Count"])).as_bytes()).unwrap_or(prev_failures);
        points.push(Point {
            t_ms: t,
            count: count.saturating_sub(prev_count),
            errors: failures.saturating_sub(prev_failures),
            throughput: number(&["Requests/s"]).unwrap_or(0.0),
            p50_ms: number(&["50%"]),
            p90_ms: number(&["90%"]),
            p95_ms: number(&["95%"]),
            p99_ms: number(&["99%"]),
            max_ms: number(&["100%"]),
        });
        (prev_count, prev_failures) = (count, failures);
        if points.len() > MAX_POINTS {
            points = halve(std::mem::take(&mut points));
            width *= 2.0;
        }
    })?;
    if !has_timestamp {
        return Err(ResultsError::Malformed {
            path: path.to_owned(),
            line: 1,
            message: "the header has no `Timestamp` column: is this Locust's _stats_history.csv?".into(),
        });
    }
    Ok((Series { bucket_seconds: width, points }, span))
}

/// Merges neighbouring points: counts add, throughput averages, percentiles keep the highest
/// (Locust's window percentiles cannot be merged exactly; the chart shows the worst).
fn halve(points: Vec<Point>) -> Vec<Point> {
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    points
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => Point {
                t_ms: a.t_ms,
                count: a.count + b.count,
                errors: a.errors + b.errors,
                throughput: (a.throughput + b.throughput) / 2.0,
                p50_ms: max(a.p50_ms, b.p50_ms),
                p90_ms: max(a.p90_ms, b.p90_ms),
                p95_ms: max(a.p95_ms, b.p95_ms),
                p99_ms: max(a.p99_ms, b.p99_ms),
                max_ms: max(a.max_ms, b.max_ms),
            },
            [a] => a.clone(),
            _ => unreachable!("chunks of two"),
        })
        .collect()
}

fn read_failures(path: &Path) -> Result<Vec<ErrorKind>, ResultsError> {
    let (header, rows) = read_table(path, MAX_ERROR_KINDS)?;
    let method = column(&header, &["Method"]);
    let name = column(&header, &["Name"]);
    let error = column(&header, &["Error"]);
    let occurrences = column(&header, &["Occurrences"]);
    let mut out: Vec<ErrorKind> = rows
        .iter()
        .map(|row| {
            let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).map_or("", String::as_str).to_owned();
            ErrorKind {
                label: cell(name),
                code: cell(method),
                message: cell(error),
                count: parse_u64(cell(occurrences).as_bytes()).unwrap_or(0),
            }
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.count));
    Ok(out)
}
