//! Pass/fail thresholds: a small grammar, parsed once, judged against a [`Results`].
//!
//! ## Grammar
//! ```text
//! threshold = [scope ":"] metric op number unit
//! scope     = "total" | "label=" NAME | "worker=" NAME      (default: total)
//! metric    = "p" Q | "p(" Q ")" | "median" | "mean" | "avg" | "min" | "max"   (latency; unit ms or s)
//!           | "error_rate"                                                   (unit %)
//!           | "throughput" | "rps"                                           (unit /s)
//!           | "errors" | "count"                                             (no unit)
//! op        = "<" | "<=" | ">" | ">="
//! ```
//! `Q` is a percentile in (0, 100], such as `95`, `99.9`. A `NAME` runs up to the last `:`
//! (so a label may itself hold colons), or is written in double quotes (`label="GET /a": p95 <
//! 1s`, with `\"` and `\\` inside). Spaces around tokens are optional; metric names and units are
//! case-insensitive. Units are required where the table says so, because `p95 < 500` or
//! `error_rate < 1` are ambiguous.
//!
//! Ideas borrowed: Taurus `passfail` (`p90 of label>500ms`, per-label scopes, units) and k6
//! thresholds (`p(95)<500`, `rate<0.01`, exit code 99).
//!
//! ## Verdicts
//! A threshold about a label or worker that has no samples **fails** ("no samples"): a misspelt
//! label must not pass silently. So does a percentile the source does not give (Locust writes a
//! fixed set of percentiles and no per-worker numbers).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::results::summary::{Results, Summary};

/// The forms every error message shows as examples.
pub const EXAMPLES: &str = r#""p95 < 500ms", "error_rate < 1%", "throughput > 50/s", "label=login: p99 < 1s""#;

/// A threshold that does not parse: the text, what is wrong, and an accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold {text:?}: {message}")]
pub struct ThresholdError {
    /// The threshold as written.
    pub text: String,
    /// What is wrong, with an accepted form.
    pub message: String,
}

/// Which samples a threshold is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Scope {
    /// Every sample.
    Total,
    /// The samples of one label (JMeter sampler name, Locust/k6 request name).
    Label(String),
    /// The samples of one worker (remote engine).
    Worker(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Total => f.write_str("total"),
            Scope::Label(name) => write!(f, "label {name:?}"),
            Scope::Worker(name) => write!(f, "worker {name:?}"),
        }
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile, 0 < q ≤ 100 (milliseconds).
    Percentile(f64),
    /// Mean latency (milliseconds).
    Mean,
    /// Fastest sample (milliseconds).
    Min,
    /// Slowest sample (milliseconds).
    Max,
    /// Failed samples over all samples (a fraction; written in %).
    ErrorRate,
    /// Samples per second over the group's span.
    Throughput,
    /// Number of failed samples.
    Errors,
    /// Number of samples.
    Count,
}

impl Metric {
    /// The metric's name as a threshold writes it (`p95`, `p99.9`, `error_rate`, …).
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Metric::Percentile(q) => format!("p{}", trim_float(*q)),
            Metric::Mean => "mean".into(),
            Metric::Min => "min".into(),
            Metric::Max => "max".into(),
            Metric::ErrorRate => "error_rate".into(),
            Metric::Throughput => "throughput".into(),
            Metric::Errors => "errors".into(),
            Metric::Count => "count".into(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Metric::Percentile(_) | Metric::Mean | Metric::Min | Metric::Max => Kind::Latency,
            Metric::ErrorRate => Kind::Rate,
            Metric::Throughput => Kind::PerSecond,
            Metric::Errors | Metric::Count => Kind::Number,
        }
    }

    /// The metric's value for a group, in canonical units (ms, fraction, per second, count);
    /// None when the source does not give it.
    #[must_use]
    pub fn observe(&self, s: &Summary) -> Option<f64> {
        match self {
            Metric::Percentile(q) => s.percentile(*q),
            Metric::Mean => s.mean_ms,
            Metric::Min => s.min_ms,
            Metric::Max => s.max_ms,
            Metric::ErrorRate => s.error_rate(),
            Metric::Throughput => s.throughput(),
            #[allow(clippy::cast_precision_loss)]
            Metric::Errors => Some(s.errors as f64),
            #[allow(clippy::cast_precision_loss)]
            Metric::Count => Some(s.count as f64),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Latency,
    Rate,
    PerSecond,
    Number,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }

    /// The operator as written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A unit a limit is written in; values are compared in canonical units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millis,
    /// Seconds (for latencies).
    #[serde(rename = "s")]
    Seconds,
    /// Percent (for error_rate).
    #[serde(rename = "%")]
    Percent,
    /// Per second (for throughput).
    #[serde(rename = "/s")]
    PerSecond,
    /// A plain count.
    #[serde(rename = "")]
    None,
}

impl Unit {
    /// Canonical value → the unit's value.
    fn canonical_to_unit(self, v: f64) -> f64 {
        match self {
            Unit::Seconds => v / 1000.0,
            Unit::Percent => v * 100.0,
            Unit::Millis | Unit::PerSecond | Unit::None => v,
        }
    }

    /// The unit's value → canonical.
    fn unit_to_canonical(self, v: f64) -> f64 {
        match self {
            Unit::Seconds => v * 1000.0,
            Unit::Percent => v / 100.0,
            Unit::Millis | Unit::PerSecond | Unit::None => v,
        }
    }

    /// The unit as written after a number.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::Percent => "%",
            Unit::PerSecond => "/s",
            Unit::None => "",
        }
    }
}

/// One pass/fail rule, such as `label=login: p99 < 1s`.
///
/// ```
/// use atq_core::results::Threshold;
///
/// let t: Threshold = "label=login: p99 < 1s".parse()?;
/// assert_eq!(t.to_string(), "label=login: p99 < 1s");
/// assert!("p95 < 500".parse::<Threshold>().unwrap_err().message.contains("p95 < 500ms"));
/// # Ok::<(), atq_core::results::ThresholdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Threshold {
    text: String,
    scope: Scope,
    metric: Metric,
    op: Op,
    /// In the unit as written.
    value: f64,
    unit: Unit,
}

impl Threshold {
    /// The threshold as written (trimmed).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Which samples it is about.
    #[must_use]
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// What it measures.
    #[must_use]
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The comparison.
    #[must_use]
    pub fn op(&self) -> Op {
        self.op
    }

    /// The limit, in [`unit`](Threshold::unit).
    #[must_use]
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The unit the limit is written in.
    #[must_use]
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The limit in canonical units (ms, fraction, per second, count).
    #[must_use]
    pub fn limit(&self) -> f64 {
        self.unit.unit_to_canonical(self.value)
    }

    /// Judges the threshold against `results`.
    #[must_use]
    pub fn judge(&self, results: &Results) -> Verdict {
        let group = match &self.scope {
            Scope::Total => Some(&results.total),
            Scope::Label(name) => results.label(name),
            Scope::Worker(name) => results.worker(name),
        };
        let Some(group) = group.filter(|g| g.count > 0) else {
            let message = match &self.scope {
                Scope::Worker(_) if results.workers.is_empty() => {
                    format!("no per-worker numbers in these results ({})", results.source.format)
                }
                scope => format!("no samples for {scope}"),
            };
            return self.verdict(None, message);
        };
        match self.metric.observe(group) {
            Some(observed) => {
                let passed = self.op.holds(observed, self.limit());
                let shown = format!("{}{}", readable(self.unit.canonical_to_unit(observed)), self.unit.suffix());
                let message = if passed {
                    format!("{} = {shown}", self.metric.name())
                } else {
                    format!(
                        "{} = {shown}, not {} {}{}",
                        self.metric.name(),
                        self.op.symbol(),
                        trim_float(self.value),
                        self.unit.suffix()
                    )
                };
                Verdict { threshold: self.clone(), observed: Some(observed), passed, message }
            }
            None => self.verdict(
                None,
                format!("{} is not available from {} results", self.metric.name(), results.source.format),
            ),
        }
    }

    /// A failed verdict without an observation ("no results: …").
    #[must_use]
    pub fn unjudged(&self, reason: &str) -> Verdict {
        self.verdict(None, reason.to_owned())
    }

    fn verdict(&self, observed: Option<f64>, message: String) -> Verdict {
        Verdict { threshold: self.clone(), observed, passed: false, message }
    }
}

/// Whether a threshold held, with what was observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The threshold judged.
    pub threshold: Threshold,
    /// The observed value in canonical units (ms, fraction, per second, count); None when there
    /// was nothing to observe.
    pub observed: Option<f64>,
    /// Whether it held. A threshold without an observation fails.
    pub passed: bool,
    /// One line: the observed value against the limit, or why there is none.
    pub message: String,
}

impl Verdict {
    /// The observed value in the threshold's own unit.
    #[must_use]
    pub fn observed_in_unit(&self) -> Option<f64> {
        self.observed.map(|v| self.threshold.unit.canonical_to_unit(v))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Threshold> for String {
    fn from(t: Threshold) -> String {
        t.text
    }
}

impl TryFrom<String> for Threshold {
    type Error = ThresholdError;
    fn try_from(text: String) -> Result<Self, ThresholdError> {
        text.parse()
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, ThresholdError> {
        let trimmed = text.trim();
        let fail = |message: String| ThresholdError { text: trimmed.to_owned(), message };
        if trimmed.is_empty() {
            return Err(fail(format!("empty: write a rule such as {EXAMPLES}")));
        }
        if trimmed.len() > MAX_TEXT {
            return Err(fail(format!("longer than {MAX_TEXT} characters")));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(fail("contains a control character".into()));
        }
        let (scope, rule) = split_scope(trimmed).map_err(fail)?;
        let (metric_text, op, limit_text) = split_op(rule).map_err(fail)?;
        let metric = parse_metric(metric_text).map_err(fail)?;
        let (value, unit) = parse_limit(metric, limit_text, &scope_prefix(&scope), op).map_err(fail)?;
        Ok(Threshold { text: trimmed.to_owned(), scope, metric, op, value, unit })
    }
}

/// Longest threshold text accepted.
pub const MAX_TEXT: usize = 1024;

fn scope_prefix(scope: &Scope) -> String {
    match scope {
        Scope::Total => String::new(),
        Scope::Label(n) => format!("label={n}: "),
        Scope::Worker(n) => format!("worker={n}: "),
    }
}

fn split_scope(text: &str) -> Result<(Scope, &str), String> {
    let lower = text.to_ascii_lowercase();
    for (prefix, make) in [("label=", Scope::Label as fn(String) -> Scope), ("worker=", Scope::Worker)] {
        if lower.starts_with(prefix) {
            let rest = &text[prefix.len()..];
            let (name, rule) = if let Some(quoted) = rest.strip_prefix('"') {
                let (name, after) = unquote(quoted)?;
                let rule = after.trim_start().strip_prefix(':').ok_or_else(|| {
                    format!("expected ':' after the quoted name, as in {prefix}\"{name}\": p95 < 500ms")
                })?;
                (name, rule)
            } else {
                let (name, rule) = rest.rsplit_once(':').ok_or_else(|| {
                    format!("a {prefix}NAME scope ends with ':' before the rule, as in {prefix}login: p99 < 1s")
                })?;
                (name.trim().to_owned(), rule)
            };
            if name.is_empty() {
                return Err(format!("the name after {prefix} is empty: write {prefix}login: p99 < 1s"));
            }
            return Ok((make(name), rule.trim()));
        }
    }
    if lower.starts_with("total") {
        if let Some(rule) = text[5..].trim_start().strip_prefix(':') {
            return Ok((Scope::Total, rule.trim()));
        }
    }
    if let Some((head, _)) = text.split_once(':') {
        if !head.contains(['<', '>']) {
            return Err(format!(
                "unknown scope {:?}: a scope is label=NAME, worker=NAME or total, as in label=login: p99 < 1s",
                head.trim()
            ));
        }
    }
    Ok((Scope::Total, text))
}

/// Reads a double-quoted name (after its opening quote); returns it and the text after it.
fn unquote(text: &str) -> Result<(String, &str), String> {
    let mut name = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((name, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => name.push(e),
                _ => return Err("in a quoted name, '\\' may only escape '\"' or '\\'".into()),
            },
            c => name.push(c),
        }
    }
    Err("the quoted name has no closing '\"'".into())
}

fn split_op(rule: &str) -> Result<(&str, Op, &str), String> {
    let Some(at) = rule.find(['<', '>', '=', '!']) else {
        return Err(format!("no comparison (<, <=, >, >=): write a rule such as {EXAMPLES}"));
    };
    let (metric, rest) = rule.split_at(at);
    let (op, len) = if rest.starts_with("<=") {
        (Op::Le, 2)
    } else if rest.starts_with(">=") {
        (Op::Ge, 2)
    } else if rest.starts_with('<') {
        (Op::Lt, 1)
    } else if rest.starts_with('>') {
        (Op::Gt, 1)
    } else {
        return Err(format!(
            "{:?} is not a comparison: use <, <=, > or >= (as in p95 < 500ms)",
            rest.chars().take(2).collect::<String>()
        ));
    };
    let limit = rest[len..].trim();
    if limit.starts_with(['<', '>', '=']) {
        return Err("one comparison only: <, <=, > or >=".into());
    }
    Ok((metric.trim(), op, limit))
}

fn parse_metric(text: &str) -> Result<Metric, String> {
    let lower = text.to_ascii_lowercase();
    let metric = match lower.as_str() {
        "" => return Err(format!("no metric before the comparison: write a rule such as {EXAMPLES}")),
        "median" => Metric::Percentile(50.0),
        "mean" | "avg" | "average" => Metric::Mean,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "error_rate" | "errors_rate" | "error-rate" | "failure_rate" => Metric::ErrorRate,
        "throughput" | "rps" => Metric::Throughput,
        "errors" | "failures" => Metric::Errors,
        "count" | "samples" | "requests" => Metric::Count,
        p if p.starts_with('p') => {
            let digits = p[1..].trim();
            let digits = digits.strip_prefix('(').and_then(|d| d.strip_suffix(')')).unwrap_or(digits).trim();
            match digits.parse::<f64>() {
                Ok(q) if q > 0.0 && q <= 100.0 && !digits.starts_with(['+', '-']) => Metric::Percentile(q),
                Ok(_) => return Err(format!("{text:?}: a percentile is above 0 and at most 100, as in p95 or p99.9")),
                Err(_) => return Err(unknown_metric(text)),
            }
        }
        _ => return Err(unknown_metric(text)),
    };
    Ok(metric)
}

fn unknown_metric(text: &str) -> String {
    format!(
        "unknown metric {text:?}: use p50..p99.9 (or p(95)), median, mean, min, max, error_rate, throughput, errors or count"
    )
}

fn parse_limit(metric: Metric, text: &str, prefix: &str, op: Op) -> Result<(f64, Unit), String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit_text) = text.split_at(split);
    let unit_text = unit_text.trim().to_ascii_lowercase();
    let name = metric.name();
    let op = op.symbol();
    let example = |unit: &str| {
        let n = if number.is_empty() { "500" } else { number };
        format!("\"{prefix}{name} {op} {n}{unit}\"")
    };
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
        format!("the limit {text:?} is not a number followed by a unit: write {}", example(default_unit(metric)))
    })?;
    let unit = match (metric.kind(), unit_text.as_str()) {
        (Kind::Latency, "ms") => Unit::Millis,
        (Kind::Latency, "s" | "sec") => Unit::Seconds,
        (Kind::Latency, "") => {
            return Err(format!("{name} needs a time unit, ms or s: write {}", example("ms")));
        }
        (Kind::Rate, "%") => Unit::Percent,
        (Kind::Rate, "") => {
            return Err(format!("error_rate is written in percent: write {}", example("%")));
        }
        (Kind::PerSecond, "/s" | "rps") => Unit::PerSecond,
        (Kind::PerSecond, "") => {
            return Err(format!("throughput is written per second: write {}", example("/s")));
        }
        (Kind::Number, "") => Unit::None,
        (kind, other) => {
            let allowed = match kind {
                Kind::Latency => "ms or s",
                Kind::Rate => "%",
                Kind::PerSecond => "/s",
                Kind::Number => "none (a plain count)",
            };
            return Err(format!(
                "unit {other:?} does not fit {name} (allowed: {allowed}): write {}",
                example(default_unit(metric))
            ));
        }
    };
    if unit == Unit::Percent && value > 100.0 {
        return Err(format!("{value}% is more than 100%"));
    }
    if unit == Unit::None && value.fract() != 0.0 {
        return Err(format!("{name} is a whole number: write {}", example("")));
    }
    Ok((value, unit))
}

fn default_unit(metric: Metric) -> &'static str {
    match metric.kind() {
        Kind::Latency => "ms",
        Kind::Rate => "%",
        Kind::PerSecond => "/s",
        Kind::Number => "",
    }
}

/// Parses every threshold; the error names the index of the first bad one's field
/// (`thresholds[2]`) for task validation.
pub fn parse_thresholds<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Threshold>, (usize, ThresholdError)> {
    texts.iter().enumerate().map(|(i, t)| t.as_ref().parse().map_err(|e| (i, e))).collect()
}

/// `95.0` → `95`, `99.9` → `99.9`.
pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
}

/// A number for people: 1 decimal from 100 up, 2 from 1, 3 below (trailing zeros dropped).
pub(crate) fn readable(v: f64) -> String {
    let a = v.abs();
    let rounded = if a >= 100.0 {
        (v * 10.0).round() / 10.0
    } else if a >= 1.0 {
        (v * 100.0).round() / 100.0
    } else {
        round3(v)
    };
    trim_float(rounded)
}

/// Rounds to three decimals (display only).
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
