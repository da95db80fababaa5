//! Apache JMeter's JTL in CSV form.
//!
//! - **Headerless** (JMeter 2.13's default): the 12 columns `timeStamp, elapsed, label,
//!   responseCode, responseMessage, threadName, dataType, success, bytes, grpThreads,
//!   allThreads, Latency`, plus `Hostname` as a 13th with `jmeter.save.saveservice.hostname=true`.
//! - **With a header line** (3.0+'s default, or `print_field_names=true`): columns are found by
//!   name, in any order; `timeStamp`, `elapsed`, `label` and `success` are required.
//!
//! `timeStamp` must be milliseconds since the epoch (JMeter's default). The worker of a sample is
//! its `Hostname` column when saved, else the remote engine's address JMeter prefixes to
//! `threadName` (`10.0.0.3-Thread Group 1-1`) in distributed runs of some versions; 2.13 adds no
//! prefix, so save the host name there (`-Jjmeter.save.saveservice.hostname=true`).

use std::io::Read;
use std::path::Path;

use crate::results::collect::{Collector, Failure, Sample};
use crate::results::error::ResultsError;
use crate::results::read::{header_name, parse_u64, too_long, OnMalformed, Rows};
use crate::results::rows::{Fields, Row, RowError, Rows as RowReader};

/// Longest latency accepted: one day, in ms. A larger `elapsed` is a malformed row.
const MAX_ELAPSED_MS: u64 = 24 * 3600 * 1000;

/// Where each column is.
#[derive(Debug, Clone, Copy)]
struct Columns {
    ts: usize,
    elapsed: usize,
    label: usize,
    code: Option<usize>,
    message: Option<usize>,
    thread: Option<usize>,
    success: usize,
    failure_message: Option<usize>,
    bytes: Option<usize>,
    sent_bytes: Option<usize>,
    hostname: Option<usize>,
    /// Fewest fields a row must have.
    needed: usize,
}

impl Columns {
    /// JMeter 2.13's default, headerless; a 13th column is `Hostname`.
    fn v2_13(fields: usize) -> Self {
        let mut c = Columns {
            ts: 0,
            elapsed: 1,
            label: 2,
            code: Some(3),
            message: Some(4),
            thread: Some(5),
            success: 7,
            failure_message: None,
            bytes: Some(8),
            sent_bytes: None,
            hostname: None,
            needed: 12,
        };
        if fields == 13 {
            c.hostname = Some(12);
            c.needed = 13;
        }
        c
    }

    fn from_header(header: &impl Fields) -> Result<Self, String> {
        let find = |name: &str| header.iter().position(|h| header_name(h).eq_ignore_ascii_case(name.as_bytes()));
        let required = |name: &str, property: &str| {
            find(name).ok_or_else(|| {
                format!(
                    "the header has no `{name}` column: JMeter saves it with -Jjmeter.save.saveservice.{property}=true"
                )
            })
        };
        let ts = required("timeStamp", "timestamp_format=ms -Jjmeter.save.saveservice.time")?;
        let elapsed = required("elapsed", "time")?;
        let label = required("label", "label")?;
        let success = required("success", "success")?;
        let c = Columns {
            ts,
            elapsed,
            label,
            code: find("responseCode"),
            message: find("responseMessage"),
            thread: find("threadName"),
            success,
            failure_message: find("failureMessage"),
            bytes: find("bytes"),
            sent_bytes: find("sentBytes"),
            hostname: find("Hostname"),
            needed: 0,
        };
        let needed = [Some(ts), Some(elapsed), Some(label), Some(success), c.bytes, c.sent_bytes, c.hostname, c.thread]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Columns { needed, ..c })
    }
}

/// Reads one JTL into `collector`.
pub(crate) fn read(
    path: &Path,
    reader: impl Read,
    collector: &mut Collector,
    on_malformed: OnMalformed,
    rows: &mut Rows,
) -> Result<(), ResultsError> {
    let mut columns: Option<Columns> = None;
    let mut first_data = true;
    let mut lines = RowReader::new(reader);
    lines.for_each(
        |line, row| match row {
            Row::Plain(fields) => {
                one(path, line, &fields, &mut columns, &mut first_data, collector, on_malformed, rows)
            }
            Row::Quoted(fields) => {
                one(path, line, fields, &mut columns, &mut first_data, collector, on_malformed, rows)
            }
        },
        |e| match e {
            RowError::Io(e) => ResultsError::io(path, e),
            RowError::TooLong(line) => ResultsError::Malformed { path: path.to_owned(), line, message: too_long() },
            RowError::Csv(line, message) => ResultsError::Malformed { path: path.to_owned(), line, message },
        },
    )
}

/// One row: the header, or a sample.
#[allow(clippy::too_many_arguments)]
#[inline]
fn one(
    path: &Path,
    line: u64,
    record: &impl Fields,
    columns: &mut Option<Columns>,
    first_data: &mut bool,
    collector: &mut Collector,
    on_malformed: OnMalformed,
    rows: &mut Rows,
) -> Result<(), ResultsError> {
    if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
        return Ok(()); // a blank line
    }
    let cols = match columns {
        Some(c) => *c,
        None => {
            if record.iter().any(|cell| header_name(cell).eq_ignore_ascii_case(b"timeStamp")) {
                let c = Columns::from_header(record).map_err(|message| ResultsError::Malformed {
                    path: path.to_owned(),
                    line,
                    message,
                })?;
                *columns = Some(c);
                return Ok(());
            }
            let c = headerless(path, line, record)?;
            *columns = Some(c);
            c
        }
    };
    match sample(record, &cols) {
        Ok((s, failure)) => {
            rows.read += 1;
            collector.add(&s, failure);
        }
        Err(message) => {
            if *first_data && message.starts_with(TIMESTAMP_PREFIX) {
                return Err(ResultsError::Malformed { path: path.to_owned(), line, message });
            }
            rows.malformed(path, line, message, on_malformed)?;
        }
    }
    *first_data = false;
    Ok(())
}

const TIMESTAMP_PREFIX: &str = "timeStamp ";

fn strip_bom(field: &[u8]) -> &[u8] {
    field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
}

/// The columns of a file without a header line, from its first row.
fn headerless(path: &Path, line: u64, record: &impl Fields) -> Result<Columns, ResultsError> {
    let n = record.len();
    if n == 12 || n == 13 {
        return Ok(Columns::v2_13(n));
    }
    Err(ResultsError::Malformed {
        path: path.to_owned(),
        line,
        message: format!(
            "no header line, and {n} columns where JMeter 2.13's default has 12 (13 with Hostname): let JMeter write the header with -Jjmeter.save.saveservice.print_field_names=true"
        ),
    })
}

#[inline]
fn sample<'r>(record: &'r impl Fields, c: &Columns) -> Result<(Sample<'r>, Option<Failure<'r>>), String> {
    if record.len() < c.needed {
        return Err(format!("{} fields where the columns need at least {}", record.len(), c.needed));
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let opt = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or_default();
    let ts_field = strip_bom(field(c.ts));
    let ts = parse_u64(ts_field).and_then(|v| i64::try_from(v).ok()).ok_or_else(|| {
        format!(
            "{TIMESTAMP_PREFIX}{:?} is not milliseconds since the epoch: run JMeter with -Jjmeter.save.saveservice.timestamp_format=ms",
            String::from_utf8_lossy(ts_field)
        )
    })?;
    let elapsed = parse_u64(field(c.elapsed)).filter(|&e| e <= MAX_ELAPSED_MS).ok_or_else(|| {
        format!(
            "elapsed {:?} is not a number of milliseconds (0 to one day)",
            String::from_utf8_lossy(field(c.elapsed))
        )
    })?;
    let success = match field(c.success).trim_ascii() {
        s if s.eq_ignore_ascii_case(b"true") => true,
        s if s.eq_ignore_ascii_case(b"false") => false,
        other => return Err(format!("success {:?} is neither true nor false", String::from_utf8_lossy(other))),
    };
    let number = |i: Option<usize>, name: &str| -> Result<u64, String> {
        let f = opt(i);
        if f.trim_ascii().is_empty() {
            return Ok(0);
        }
        parse_u64(f).ok_or_else(|| format!("{name} {:?} is not a whole number", String::from_utf8_lossy(f)))
    };
    let bytes = number(c.bytes, "bytes")?;
    let sent_bytes = number(c.sent_bytes, "sentBytes")?;
    let worker = match c.hostname.map(|i| field(i).trim_ascii()) {
        Some(h) if !h.is_empty() => Some(h),
        _ => c.thread.and_then(|i| address_prefix(field(i))),
    };
    let failure = (!success).then(|| {
        let message = match opt(c.failure_message).trim_ascii() {
            m if !m.is_empty() => m,
            _ => opt(c.message),
        };
        Failure { code: opt(c.code), message }
    });
    Ok((Sample { ts_ms: ts, elapsed, label: field(c.label), worker, success, bytes, sent_bytes }, failure))
}

/// The IPv4 address a distributed JMeter prefixes to remote threads' names (`10.0.0.3-Thread
/// Group 1-1` → `10.0.0.3`), if there is one.
fn address_prefix(thread: &[u8]) -> Option<&[u8]> {
    let dash = thread.iter().position(|&b| b == b'-')?;
    let head = &thread[..dash];
    let mut parts = 0;
    for part in head.split(|&b| b == b'.') {
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        parts += 1;
    }
    (parts == 4).then_some(head)
}

#[cfg(test)]
mod tests {
    use super::address_prefix;

    #[test]
    fn an_address_prefix_names_the_remote_engine() {
        assert_eq!(address_prefix(b"10.0.1.7-Thread Group 1-3"), Some(&b"10.0.1.7"[..]));
        assert_eq!(address_prefix(b"users 1-1"), None);
        assert_eq!(address_prefix(b"Thread Group 1-1"), None);
        assert_eq!(address_prefix(b"1.2.3-x"), None);
        assert_eq!(address_prefix(b"1.2.3.4"), None);
    }
}
