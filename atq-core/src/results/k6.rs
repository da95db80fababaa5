//! k6's `--out csv=FILE`: one row per metric sample; each `http_req_duration` row is a request.
//!
//! Read: `timestamp` (Unix seconds, k6's default `timeFormat`), `metric_value` (ms), `name`
//! (the request name, k6 sets it to the URL unless tagged), `expected_response` (else `status`
//! below 400) for success, `status` and `error` for the error table. Not in k6's CSV: a worker's
//! name (k6 runs as one process, or as independent instances) and per-request bytes.

use std::io::Read;
use std::path::Path;

use crate::results::collect::{Collector, Failure, Sample};
use crate::results::error::ResultsError;
use crate::results::read::{bounded, header_name, parse_f64, parse_u64, too_long, OnMalformed, Rows};

/// The metric whose rows are requests.
const REQUEST_METRIC: &[u8] = b"http_req_duration";
/// Longest latency accepted: one day, in µs.
const MAX_ELAPSED_US: f64 = 24.0 * 3600.0 * 1e6;

struct Columns {
    metric: usize,
    ts: usize,
    value: usize,
    name: Option<usize>,
    url: Option<usize>,
    status: Option<usize>,
    expected: Option<usize>,
    error: Option<usize>,
}

/// Reads one k6 CSV into `collector` (whose unit is 1 µs).
pub(crate) fn read(
    path: &Path,
    reader: impl Read,
    collector: &mut Collector,
    on_malformed: OnMalformed,
    rows: &mut Rows,
) -> Result<(), ResultsError> {
    debug_assert_eq!(collector.unit_us(), 1);
    let (reader, guard) = bounded(reader);
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<Columns> = None;
    loop {
        let line_before = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(line_before, csv::Position::line);
                if guard.tripped() {
                    return Err(ResultsError::Malformed { path: path.to_owned(), line, message: too_long() });
                }
                if let csv::ErrorKind::Io(_) = e.kind() {
                    let csv::ErrorKind::Io(io) = e.into_kind() else { unreachable!() };
                    return Err(ResultsError::io(path, io));
                }
                rows.malformed(path, line, e.to_string(), on_malformed)?;
                continue;
            }
        }
        guard.reset();
        let line = record.position().map_or(line_before, csv::Position::line);
        let Some(cols) = &columns else {
            columns = Some(header(&record).map_err(|message| ResultsError::Malformed {
                path: path.to_owned(),
                line,
                message,
            })?);
            continue;
        };
        if record.get(cols.metric).map(<[u8]>::trim_ascii) != Some(REQUEST_METRIC) {
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or_default();
        let opt = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or_default();
        let parsed = (|| {
            let ts_field = field(cols.ts);
            let ts = parse_f64(ts_field).filter(|t| *t >= 0.0 && *t < 1e13).ok_or_else(|| {
                format!(
                    "timestamp {:?} is not Unix seconds: run k6 with K6_CSV_TIME_FORMAT=unix (the default)",
                    String::from_utf8_lossy(ts_field)
                )
            })?;
            let value = parse_f64(field(cols.value)).filter(|v| *v >= 0.0 && v * 1000.0 <= MAX_ELAPSED_US).ok_or_else(
                || format!("metric_value {:?} is not a duration in ms", String::from_utf8_lossy(field(cols.value))),
            )?;
            let status = opt(cols.status);
            let success = match opt(cols.expected).trim_ascii() {
                b"true" => true,
                b"false" => false,
                _ => parse_u64(status).is_some_and(|s| (1..400).contains(&s)),
            };
            let name = match opt(cols.name) {
                n if !n.trim_ascii().is_empty() => n,
                _ => opt(cols.url),
            };
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let sample = Sample {
                ts_ms: (ts * 1000.0) as i64,
                elapsed: (value * 1000.0).round() as u64,
                label: name,
                worker: None,
                success,
                bytes: 0,
                sent_bytes: 0,
            };
            Ok::<_, String>((sample, Failure { code: status, message: opt(cols.error) }))
        })();
        match parsed {
            Ok((sample, failure)) => {
                rows.read += 1;
                collector.add(&sample, Some(failure));
            }
            Err(message) => rows.malformed(path, line, message, on_malformed)?,
        }
    }
    Ok(())
}

fn header(record: &csv::ByteRecord) -> Result<Columns, String> {
    let find = |name: &str| record.iter().position(|h| header_name(h).eq_ignore_ascii_case(name.as_bytes()));
    let need = |name: &str| {
        find(name).ok_or_else(|| format!("the header has no `{name}` column: is this k6's --out csv output?"))
    };
    Ok(Columns {
        metric: need("metric_name")?,
        ts: need("timestamp")?,
        value: need("metric_value")?,
        name: find("name"),
        url: find("url"),
        status: find("status"),
        expected: find("expected_response"),
        error: find("error"),
    })
}
