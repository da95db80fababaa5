//! `summary.json`: a stable, documented schema.
//!
//! ```text
//! {
//!   "schema": "atq.summary/1",        // bumped only on an incompatible change
//!   "title": "checkout",
//!   "passed": true,                   // every threshold held (true without thresholds)
//!   "problem": null,                  // why there are no results, when there are none
//!   "source": {"format": "jtl", "files": [..], "rows": 1000, "skipped_rows": 0,
//!              "skipped_examples": [..], "notes": [..]},
//!   "total": GROUP,                   // null without results
//!   "labels": [GROUP + {"name"}],     // sorted by name
//!   "workers": [GROUP + {"name"}],    // empty when the source names no workers
//!   "thresholds": [{"threshold": "p95 < 500ms", "scope": {"kind": "total"} | {"kind": "label",
//!                   "name": ".."}, "metric": "p95", "op": "<", "limit": 500, "unit": "ms",
//!                   "observed": 123.4 | null, "passed": true, "message": ".."}],
//!   "errors": [{"label", "code", "message", "count"}],   // most frequent first
//!   "series": {"bucket_seconds": 1, "points": [{"t_ms", "count", "errors", "throughput",
//!              "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"}]}
//! }
//! GROUP = {"count", "errors", "error_rate" (0..1), "throughput" (per s), "duration_s",
//!          "min_ms", "mean_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms",
//!          "bytes", "sent_bytes", "first_ms", "last_ms"}      // ms since the epoch for first/last
//! ```
//! Numbers a source does not give are `null`. `observed` and `limit` are in the threshold's unit.

use serde_json::{json, Map, Value};

use crate::results::report::Report;
use crate::results::summary::Summary;

/// The `schema` field of `summary.json`.
pub const SCHEMA: &str = "atq.summary/1";

pub(crate) fn group(s: &Summary) -> Value {
    let [p50, p90, p95, p99, p999] = s.percentiles();
    json!({
        "count": s.count,
        "errors": s.errors,
        "error_rate": s.error_rate(),
        "throughput": s.throughput(),
        "duration_s": s.duration_s(),
        "min_ms": s.min_ms,
        "mean_ms": s.mean_ms,
        "max_ms": s.max_ms,
        "p50_ms": p50,
        "p90_ms": p90,
        "p95_ms": p95,
        "p99_ms": p99,
        "p99_9_ms": p999,
        "bytes": s.bytes,
        "sent_bytes": s.sent_bytes,
        "first_ms": s.first_ms,
        "last_ms": s.last_ms,
    })
}

fn named(name: &str, s: &Summary) -> Value {
    let mut v = group(s);
    if let Value::Object(map) = &mut v {
        let mut with_name = Map::new();
        with_name.insert("name".into(), Value::String(name.to_owned()));
        with_name.append(map);
        return Value::Object(with_name);
    }
    v
}

/// The whole document as a value.
pub(crate) fn value(report: &Report) -> Value {
    let thresholds: Vec<Value> = report
        .verdicts
        .iter()
        .map(|v| {
            let t = &v.threshold;
            json!({
                "threshold": t.text(),
                "scope": t.scope(),
                "metric": t.metric().name(),
                "op": t.op().symbol(),
                "limit": t.value(),
                "unit": t.unit().suffix(),
                "observed": v.observed_in_unit(),
                "passed": v.passed,
                "message": v.message,
            })
        })
        .collect();
    let r = report.results.as_ref();
    json!({
        "schema": SCHEMA,
        "title": report.title,
        "passed": report.passed(),
        "problem": report.problem,
        "source": r.map(|r| &r.source),
        "total": r.map(|r| group(&r.total)),
        "labels": r.map_or_else(Vec::new, |r| r.labels.iter().map(|(n, s)| named(n, s)).collect()),
        "workers": r.map_or_else(Vec::new, |r| r.workers.iter().map(|(n, s)| named(n, s)).collect()),
        "thresholds": thresholds,
        "errors": r.map_or_else(Vec::new, |r| r.errors.clone()),
        "series": r.map(|r| &r.series),
    })
}

pub(crate) fn summary(report: &Report) -> String {
    serde_json::to_string_pretty(&value(report)).expect("a JSON value always serialises")
}
