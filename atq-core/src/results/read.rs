//! Reading results files: formats, options, detection, and the bounds every reader shares.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::results::collect::Collector;
use crate::results::error::ResultsError;
use crate::results::summary::{Results, Source};
use crate::results::{jtl, k6, locust};

/// Longest row accepted (bytes between two row ends, quoted newlines included): 1 MiB. A longer
/// one is almost always an unclosed quote swallowing the rest of the file; it stops the read.
pub const MAX_ROW_BYTES: u64 = 1024 * 1024;

/// How many malformed rows a report quotes.
pub const MAX_EXAMPLES: usize = 5;

/// A results format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Tell from the file's content (and, for Locust, its name).
    #[default]
    Auto,
    /// Apache JMeter's JTL in CSV form (2.13 headerless, or with a header line).
    Jtl,
    /// Locust's `--csv PREFIX` files (`PREFIX_stats.csv`, `_stats_history.csv`, `_failures.csv`).
    Locust,
    /// k6's `--out csv=FILE`.
    K6,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Jtl => "jtl",
            Format::Locust => "locust",
            Format::K6 => "k6",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "jtl" | "jmeter" => Ok(Format::Jtl),
            "locust" => Ok(Format::Locust),
            "k6" => Ok(Format::K6),
            other => Err(format!("unknown results format {other:?}: use jtl, locust, k6 or auto")),
        }
    }
}

/// What to do with a malformed row (wrong column count, a number that is not one, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMalformed {
    /// Count it, quote the first few in the report, and go on (a killed JMeter often leaves a
    /// truncated last line).
    #[default]
    Skip,
    /// Stop with an error naming the line.
    Fail,
}

/// How to read results.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct ReadOptions {
    /// The format; [`Format::Auto`] tells it from each file.
    pub format: Format,
    /// Malformed rows: skip (default) or fail.
    pub on_malformed: OnMalformed,
}

impl ReadOptions {
    /// Reads `format`.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Skips or fails on malformed rows.
    pub fn on_malformed(mut self, on: OnMalformed) -> Self {
        self.on_malformed = on;
        self
    }
}

/// Counts of rows, shared by the readers.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub read: u64,
    pub skipped: u64,
    pub examples: Vec<String>,
}

impl Rows {
    /// A malformed row: an error with [`OnMalformed::Fail`], else counted.
    pub(crate) fn malformed(
        &mut self,
        path: &Path,
        line: u64,
        message: String,
        on: OnMalformed,
    ) -> Result<(), ResultsError> {
        if on == OnMalformed::Fail {
            return Err(ResultsError::Malformed { path: path.to_owned(), line, message });
        }
        self.skipped += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(format!("{}:{line}: {message}", path.display()));
        }
        Ok(())
    }
}

/// A reader that refuses to hand over more than [`MAX_ROW_BYTES`] (plus one buffer) since the
/// last [`RowGuard::reset`]: the CSV parser's record buffer stays bounded.
pub(crate) struct Bounded<R> {
    inner: R,
    since_reset: Rc<Cell<u64>>,
}

/// The handle the row loop resets after each row.
#[derive(Clone)]
pub(crate) struct RowGuard(Rc<Cell<u64>>);

impl RowGuard {
    #[inline]
    pub(crate) fn reset(&self) {
        self.0.set(0);
    }

    /// Whether a read error is this guard's (a row too long).
    pub(crate) fn tripped(&self) -> bool {
        self.0.get() > MAX_ROW_BYTES
    }
}

pub(crate) fn bounded<R: Read>(inner: R) -> (Bounded<R>, RowGuard) {
    let cell = Rc::new(Cell::new(0));
    (Bounded { inner, since_reset: cell.clone() }, RowGuard(cell))
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.since_reset.get() > MAX_ROW_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "row too long"));
        }
        let n = self.inner.read(buf)?;
        self.since_reset.set(self.since_reset.get() + n as u64);
        Ok(n)
    }
}

/// The message for a row longer than [`MAX_ROW_BYTES`].
pub(crate) fn too_long() -> String {
    format!(
        "a row longer than {} KiB starts here (an unclosed quote?): the rest of the file cannot be read",
        MAX_ROW_BYTES / 1024
    )
}

/// Opens a file for reading, naming it in the error.
pub(crate) fn open(path: &Path) -> Result<BufReader<File>, ResultsError> {
    match File::open(path) {
        Ok(f) => Ok(BufReader::with_capacity(256 * 1024, f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ResultsError::NotFound {
            path: path.to_owned(),
            hint: "check the path (for `atq run`: results.path is relative to the artifacts directory)".into(),
        }),
        Err(e) => Err(ResultsError::io(path, e)),
    }
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Xml,
    Jtl,
    K6,
    Locust,
}

/// Tells a file's format from its first line (and refuses XML).
pub(crate) fn sniff(path: &Path, reader: &mut impl BufRead) -> Result<Sniffed, ResultsError> {
    let head = reader.fill_buf().map_err(|e| ResultsError::io(path, e))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let head = &head[start..];
    if head.starts_with(b"<") {
        return Ok(Sniffed::Xml);
    }
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let first = String::from_utf8_lossy(&head[..line_end]).to_ascii_lowercase();
    if first.starts_with("metric_name,") {
        return Ok(Sniffed::K6);
    }
    if first.contains("request count")
        || first.contains("# requests")
        || first.contains("user count")
        || first.contains("occurrences")
    {
        return Ok(Sniffed::Locust);
    }
    Ok(Sniffed::Jtl)
}

/// Reads and merges results files into one [`Results`].
///
/// JTL and k6 files merge sample by sample (several runs, or one file per worker); Locust's
/// files are already merged summaries and a set of them is read alone (see [`ResultsError::CannotMerge`]).
/// Locust files can be named by any file of the set or by the `--csv` prefix.
pub fn read_files<P: AsRef<Path>>(paths: &[P], options: ReadOptions) -> Result<Results, ResultsError> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_owned()).collect();
    let Some(first) = paths.first() else {
        return Err(ResultsError::CannotMerge { files: vec![], reason: "no file given".into() });
    };
    let mut formats = Vec::with_capacity(paths.len());
    for path in &paths {
        formats.push(format_of(path, options.format)?);
    }
    if formats.iter().any(|f| *f != formats[0]) {
        return Err(ResultsError::CannotMerge {
            files: paths.clone(),
            reason: "they are of different formats (JTL, Locust, k6): report each format on its own".into(),
        });
    }
    match formats[0] {
        Format::Locust => locust::read_set(&paths),
        format => {
            let unit_us = if format == Format::K6 { 1 } else { 1000 };
            let mut collector = Collector::new(unit_us);
            let mut rows = Rows::default();
            let mut notes = Vec::new();
            for path in &paths {
                let reader = open(path)?;
                if format == Format::K6 {
                    k6::read(path, reader, &mut collector, options.on_malformed, &mut rows)?;
                } else {
                    jtl::read(path, reader, &mut collector, options.on_malformed, &mut rows)?;
                }
            }
            if collector.is_empty() {
                return Err(ResultsError::Empty { path: first.clone() });
            }
            if format == Format::K6 {
                notes.push(
                    "k6's CSV has no worker names and no per-request byte counts: no per-worker table, bytes are 0"
                        .into(),
                );
            }
            let c = collector.finish();
            if format == Format::Jtl && c.workers.is_empty() {
                notes.push(
                    "no worker names (no Hostname column, no address prefix in threadName): run the master with -Jjmeter.save.saveservice.hostname=true for a per-worker table"
                        .into(),
                );
            }
            notes.extend(c.notes);
            notes.dedup();
            Ok(Results {
                total: c.total,
                labels: c.labels,
                workers: c.workers,
                series: c.series,
                errors: c.errors,
                source: Source {
                    format,
                    files: paths,
                    rows: rows.read,
                    skipped_rows: rows.skipped,
                    skipped_examples: rows.examples,
                    notes,
                },
            })
        }
    }
}

/// Reads one file (or Locust set).
pub fn read_file(path: impl AsRef<Path>, options: ReadOptions) -> Result<Results, ResultsError> {
    read_files(&[path.as_ref()], options)
}

/// The format of one path: given, or sniffed; XML JTL refused.
fn format_of(path: &Path, given: Format) -> Result<Format, ResultsError> {
    if given == Format::Locust || (given == Format::Auto && locust::is_prefix(path)) {
        return Ok(Format::Locust);
    }
    let mut reader = open(path)?;
    let sniffed = sniff(path, &mut reader)?;
    match (given, sniffed) {
        (Format::Jtl | Format::Auto, Sniffed::Xml) => Err(ResultsError::XmlJtl { path: path.to_owned() }),
        (Format::Auto, Sniffed::Jtl) => Ok(Format::Jtl),
        (Format::Auto, Sniffed::K6) => Ok(Format::K6),
        (Format::Auto, Sniffed::Locust) => Ok(Format::Locust),
        (Format::K6, Sniffed::Xml) => {
            Err(ResultsError::UnknownFormat { path: path.to_owned(), reason: "it is XML, not k6's CSV".into() })
        }
        (given, _) => Ok(given),
    }
}

/// A header cell as compared with a column name: without a UTF-8 BOM and surrounding spaces.
pub(crate) fn header_name(cell: &[u8]) -> &[u8] {
    cell.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(cell).trim_ascii()
}

/// Parses an unsigned decimal integer (ASCII digits, spaces around allowed).
#[inline]
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    let field = field.trim_ascii();
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// Parses a decimal number (as written in CSV files: digits, a point, an exponent).
pub(crate) fn parse_f64(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field.trim_ascii()).ok()?.parse::<f64>().ok().filter(|v| v.is_finite())
}
