//! The streaming aggregator: samples in, one HDR histogram per label, per worker and in total,
//! plus the time series; memory bounded by the number of groups and buckets, never by samples.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use hdrhistogram::Histogram;

use crate::results::summary::{Distribution, Point, Series, Summary};

/// Most distinct labels kept apart; beyond it, samples count under [`OTHER`].
pub const MAX_LABELS: usize = 500;
/// Most distinct workers kept apart; beyond it, samples count under [`OTHER`].
pub const MAX_WORKERS: usize = 500;
/// Most buckets in the time series: past it, buckets double in width (1 s, 2 s, 4 s, …).
pub const MAX_POINTS: usize = 400;
/// Most distinct (label, code, message) error kinds kept for the report.
pub const MAX_ERROR_KINDS: usize = 200;
/// The group samples fold into once a limit above is reached.
pub const OTHER: &str = "(other)";

/// One sample, as every reader hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample<'a> {
    /// Start, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Latency in the collector's histogram unit.
    pub elapsed: u64,
    pub label: &'a [u8],
    pub worker: Option<&'a [u8]>,
    pub success: bool,
    pub bytes: u64,
    pub sent_bytes: u64,
}

/// What a failed sample said, for the report's error table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure<'a> {
    pub code: &'a [u8],
    pub message: &'a [u8],
}

/// One kind of error: where, what, how often.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorKind {
    /// The label (request name).
    pub label: String,
    /// Response code (JMeter `responseCode`, k6 `status`, Locust: the method).
    pub code: String,
    /// Message (JMeter `failureMessage` or `responseMessage`, Locust's error).
    pub message: String,
    /// How many samples failed so.
    pub count: u64,
}

/// Accumulates one group.
#[derive(Debug, Clone)]
struct Group {
    count: u64,
    errors: u64,
    bytes: u64,
    sent_bytes: u64,
    first_ms: i64,
    last_ms: i64,
    min: u64,
    max: u64,
    sum: u128,
    histogram: Histogram<u64>,
}

impl Group {
    fn new(sigfig: u8) -> Self {
        Group {
            count: 0,
            errors: 0,
            bytes: 0,
            sent_bytes: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            min: u64::MAX,
            max: 0,
            sum: 0,
            histogram: Histogram::new(sigfig).expect("3 significant digits is a valid histogram"),
        }
    }

    #[inline]
    fn add(&mut self, s: &Sample<'_>, end_ms: i64) {
        self.count += 1;
        self.errors += u64::from(!s.success);
        self.bytes = self.bytes.saturating_add(s.bytes);
        self.sent_bytes = self.sent_bytes.saturating_add(s.sent_bytes);
        self.first_ms = self.first_ms.min(s.ts_ms);
        self.last_ms = self.last_ms.max(end_ms);
        self.min = self.min.min(s.elapsed);
        self.max = self.max.max(s.elapsed);
        self.sum += u128::from(s.elapsed);
        record(&mut self.histogram, s.elapsed);
    }

    fn merge(&mut self, other: &Group) {
        self.count += other.count;
        self.errors += other.errors;
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.sent_bytes = self.sent_bytes.saturating_add(other.sent_bytes);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        // Auto-resizing histograms of the same precision always add.
        let _ = self.histogram.add(&other.histogram);
    }

    #[allow(clippy::cast_precision_loss)]
    fn summary(self, unit_us: u64) -> Summary {
        if self.count == 0 {
            return Summary::empty();
        }
        let ms = |v: u64| (u128::from(v) * u128::from(unit_us)) as f64 / 1000.0;
        Summary {
            count: self.count,
            errors: self.errors,
            bytes: self.bytes,
            sent_bytes: self.sent_bytes,
            first_ms: Some(self.first_ms),
            last_ms: Some(self.last_ms),
            min_ms: Some(ms(self.min)),
            mean_ms: Some((self.sum * u128::from(unit_us)) as f64 / self.count as f64 / 1000.0),
            max_ms: Some(ms(self.max)),
            given_throughput: None,
            distribution: Distribution::Histogram { histogram: Box::new(self.histogram), unit_us },
        }
    }
}

/// Groups keyed by name, at most `max` of them; the rest fold into [`OTHER`].
#[derive(Debug, Clone)]
struct Groups {
    index: FxHashMap<Box<[u8]>, usize>,
    names: Vec<String>,
    groups: Vec<Group>,
    other: Option<usize>,
    max: usize,
}

impl Groups {
    fn new(max: usize) -> Self {
        Groups { index: FxHashMap::default(), names: Vec::new(), groups: Vec::new(), other: None, max }
    }

    #[inline]
    fn slot(&mut self, name: &[u8]) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        if self.index.len() >= self.max {
            return *self.other.get_or_insert_with(|| {
                self.names.push(OTHER.to_owned());
                self.groups.push(Group::new(SIGFIG));
                self.groups.len() - 1
            });
        }
        let i = self.groups.len();
        self.names.push(String::from_utf8_lossy(name).into_owned());
        self.groups.push(Group::new(SIGFIG));
        self.index.insert(name.into(), i);
        i
    }

    fn into_summaries(self, unit_us: u64) -> BTreeMap<String, Summary> {
        let mut out: BTreeMap<String, Summary> = BTreeMap::new();
        // Two byte strings may decode to the same lossy name: their groups merge.
        let mut merged: BTreeMap<String, Group> = BTreeMap::new();
        for (name, group) in self.names.into_iter().zip(self.groups) {
            match merged.get_mut(&name) {
                Some(g) => g.merge(&group),
                None => {
                    merged.insert(name, group);
                }
            }
        }
        for (name, group) in merged {
            out.insert(name, group.summary(unit_us));
        }
        out
    }

    fn folded(&self) -> bool {
        self.other.is_some()
    }
}

/// Records a value, growing the histogram as needed (`saturating_record` would clamp instead);
/// a value beyond what any histogram can hold (never, with the readers' bounds) is clamped.
#[inline]
fn record(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}

/// Histogram precision of the summaries: 3 significant digits (0.1%).
const SIGFIG: u8 = 3;
/// Histogram precision of the time series' buckets: 2 significant digits (1%), enough for a chart.
const SERIES_SIGFIG: u8 = 2;

#[derive(Debug, Clone)]
struct Bucket {
    count: u64,
    errors: u64,
    max: u64,
    /// Earliest and latest sample start in the bucket (ms): the run's first and last buckets
    /// are only partly covered, and their throughput is over the part covered.
    first_ms: i64,
    last_ms: i64,
    histogram: Histogram<u64>,
}

/// Per-bucket counts and histograms, keyed by `ts / width`; widths double to stay within
/// [`MAX_POINTS`] buckets, whatever order the samples come in.
#[derive(Debug, Clone)]
struct SeriesAcc {
    width_ms: i64,
    buckets: BTreeMap<i64, Bucket>,
}

impl SeriesAcc {
    #[inline]
    fn add(&mut self, s: &Sample<'_>) {
        let key = s.ts_ms.div_euclid(self.width_ms);
        let bucket = self.buckets.entry(key).or_insert_with(|| Bucket {
            count: 0,
            errors: 0,
            max: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            histogram: Histogram::new(SERIES_SIGFIG).expect("valid precision"),
        });
        bucket.count += 1;
        bucket.first_ms = bucket.first_ms.min(s.ts_ms);
        bucket.last_ms = bucket.last_ms.max(s.ts_ms);
        bucket.errors += u64::from(!s.success);
        bucket.max = bucket.max.max(s.elapsed);
        record(&mut bucket.histogram, s.elapsed);
        if self.buckets.len() > MAX_POINTS {
            self.widen();
        }
    }

    /// Doubles the bucket width until the buckets fit, merging neighbours.
    fn widen(&mut self) {
        while self.buckets.len() > MAX_POINTS {
            self.width_ms = self.width_ms.saturating_mul(2);
            let old = std::mem::take(&mut self.buckets);
            for (key, b) in old {
                match self.buckets.entry(key.div_euclid(2)) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(b);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        let into = o.get_mut();
                        into.count += b.count;
                        into.errors += b.errors;
                        into.max = into.max.max(b.max);
                        into.first_ms = into.first_ms.min(b.first_ms);
                        into.last_ms = into.last_ms.max(b.last_ms);
                        let _ = into.histogram.add(&b.histogram);
                    }
                }
            }
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(self, unit_us: u64) -> Series {
        let ms = |v: u64| (u128::from(v) * u128::from(unit_us)) as f64 / 1000.0;
        let seconds = self.width_ms as f64 / 1000.0;
        let first_key = self.buckets.keys().next().copied();
        let last_key = self.buckets.keys().next_back().copied();
        let points = self
            .buckets
            .into_iter()
            .map(|(key, b)| {
                let q = |p: f64| Some(ms(b.histogram.value_at_quantile(p).min(b.max)));
                let start = key.saturating_mul(self.width_ms);
                let end = start.saturating_add(self.width_ms);
                // The run's first and last buckets count over the part the run covered.
                let from = if Some(key) == first_key { b.first_ms } else { start };
                let to = if Some(key) == last_key { b.last_ms.saturating_add(1) } else { end };
                let covered = if first_key == last_key && to - from < 1000 {
                    self.width_ms
                } else {
                    (to - from).clamp(1, self.width_ms)
                };
                Point {
                    t_ms: start,
                    count: b.count,
                    errors: b.errors,
                    throughput: b.count as f64 / (covered as f64 / 1000.0),
                    p50_ms: q(0.50),
                    p90_ms: q(0.90),
                    p95_ms: q(0.95),
                    p99_ms: q(0.99),
                    max_ms: Some(ms(b.max)),
                }
            })
            .collect();
        Series { bucket_seconds: seconds, points }
    }
}

/// Samples in, summaries out. Feed several files through one collector to merge them.
#[derive(Debug, Clone)]
pub(crate) struct Collector {
    unit_us: u64,
    /// Samples added (the total's numbers are the labels' merged at the end: one histogram
    /// record less per sample, and exact, since histograms of one precision add exactly).
    count: u64,
    labels: Groups,
    workers: Groups,
    series: SeriesAcc,
    errors: HashMap<(String, String, String), u64>,
    errors_folded: u64,
}

/// Longest error message kept (characters).
const MAX_MESSAGE: usize = 200;

impl Collector {
    /// A collector whose histograms count in units of `unit_us` microseconds.
    pub(crate) fn new(unit_us: u64) -> Self {
        Collector {
            unit_us,
            count: 0,
            labels: Groups::new(MAX_LABELS),
            workers: Groups::new(MAX_WORKERS),
            series: SeriesAcc { width_ms: 1000, buckets: BTreeMap::new() },
            errors: HashMap::new(),
            errors_folded: 0,
        }
    }

    /// Microseconds per histogram unit.
    pub(crate) fn unit_us(&self) -> u64 {
        self.unit_us
    }

    /// Counts one sample in the total, its label, its worker (if named) and the series.
    #[inline]
    pub(crate) fn add(&mut self, s: &Sample<'_>, failure: Option<Failure<'_>>) {
        let elapsed_ms = i64::try_from(u128::from(s.elapsed) * u128::from(self.unit_us) / 1000).unwrap_or(i64::MAX);
        let end_ms = s.ts_ms.saturating_add(elapsed_ms);
        self.count += 1;
        let l = self.labels.slot(s.label);
        self.labels.groups[l].add(s, end_ms);
        if let Some(w) = s.worker.filter(|w| !w.is_empty()) {
            let w = self.workers.slot(w);
            self.workers.groups[w].add(s, end_ms);
        }
        self.series.add(s);
        if let (false, Some(f)) = (s.success, failure) {
            self.add_failure(l, f);
        }
    }

    #[cold]
    fn add_failure(&mut self, label: usize, f: Failure<'_>) {
        let text = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            let s = s.trim();
            if s.chars().count() > MAX_MESSAGE {
                s.chars().take(MAX_MESSAGE).chain(std::iter::once('…')).collect()
            } else {
                s.to_owned()
            }
        };
        let key = (self.labels.names[label].clone(), text(f.code), text(f.message));
        if let Some(n) = self.errors.get_mut(&key) {
            *n += 1;
        } else if self.errors.len() < MAX_ERROR_KINDS {
            self.errors.insert(key, 1);
        } else {
            self.errors_folded += 1;
        }
    }

    /// Whether no sample was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The summaries, the series, the error kinds (most frequent first) and the notes about
    /// limits that were reached.
    pub(crate) fn finish(self) -> Collected {
        let mut notes = Vec::new();
        if self.labels.folded() {
            notes.push(format!("more than {MAX_LABELS} labels: the rest are counted under {OTHER}"));
        }
        if self.workers.folded() {
            notes.push(format!("more than {MAX_WORKERS} workers: the rest are counted under {OTHER}"));
        }
        if self.errors_folded > 0 {
            notes.push(format!(
                "more than {MAX_ERROR_KINDS} kinds of error: {} failed samples are not in the error table",
                self.errors_folded
            ));
        }
        let mut errors: Vec<ErrorKind> = self
            .errors
            .into_iter()
            .map(|((label, code, message), count)| ErrorKind { label, code, message, count })
            .collect();
        errors.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| (&a.label, &a.code, &a.message).cmp(&(&b.label, &b.code, &b.message)))
        });
        let mut total = Group::new(SIGFIG);
        for g in &self.labels.groups {
            total.merge(g);
        }
        Collected {
            total: total.summary(self.unit_us),
            labels: self.labels.into_summaries(self.unit_us),
            workers: self.workers.into_summaries(self.unit_us),
            series: self.series.finish(self.unit_us),
            errors,
            notes,
        }
    }
}

/// What a [`Collector`] ends with.
pub(crate) struct Collected {
    pub total: Summary,
    pub labels: BTreeMap<String, Summary>,
    pub workers: BTreeMap<String, Summary>,
    pub series: Series,
    pub errors: Vec<ErrorKind>,
    pub notes: Vec<String>,
}
