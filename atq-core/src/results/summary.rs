//! The numbers: a [`Summary`] per group (total, each label, each worker), the time
//! [`Series`], and where they came from ([`Source`]), together a [`Results`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::results::collect::ErrorKind;
use crate::results::Format;

/// The percentiles every summary lists (also in `summary.json` and the reports).
pub const STANDARD_PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

/// What a group's latency distribution is known from.
#[derive(Debug, Clone)]
pub(crate) enum Distribution {
    /// Every sample, in an HDR histogram (JTL, k6); any percentile can be read.
    Histogram {
        /// Values in `unit_us` microseconds.
        histogram: Box<Histogram<u64>>,
        /// Microseconds per histogram unit (1000 for JTL's milliseconds, 1 for k6).
        unit_us: u64,
    },
    /// Percentiles given by the source (Locust), as (percentile, ms), ascending.
    Given(Vec<(f64, f64)>),
    /// Nothing.
    None,
}

/// The numbers of one group of samples.
///
/// Latencies are milliseconds. Percentiles come from an HDR histogram of every sample (3
/// significant digits: exact below 2048 units, at most 0.1% above the nearest-rank value
/// beyond, never below it), or, for Locust, from Locust's own merged numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Failed samples.
    pub errors: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Bytes sent (JMeter ≥ 3.1 `sentBytes`; 0 when unknown).
    pub sent_bytes: u64,
    /// Start of the first sample, ms since the Unix epoch.
    pub first_ms: Option<i64>,
    /// End of the last sample (start + elapsed), ms since the Unix epoch.
    pub last_ms: Option<i64>,
    /// Fastest sample.
    pub min_ms: Option<f64>,
    /// Mean latency (exact: the sum of every sample over the count).
    pub mean_ms: Option<f64>,
    /// Slowest sample.
    pub max_ms: Option<f64>,
    /// Samples per second, when the source gives it directly (Locust); else derived from the span.
    #[serde(skip)]
    pub(crate) given_throughput: Option<f64>,
    #[serde(skip)]
    pub(crate) distribution: Distribution,
}

impl Summary {
    pub(crate) fn empty() -> Self {
        Summary {
            count: 0,
            errors: 0,
            bytes: 0,
            sent_bytes: 0,
            first_ms: None,
            last_ms: None,
            min_ms: None,
            mean_ms: None,
            max_ms: None,
            given_throughput: None,
            distribution: Distribution::None,
        }
    }

    /// Failed samples over all samples (0..=1); None without samples.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn error_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.errors as f64 / self.count as f64)
    }

    /// The span from the first sample's start to the last one's end, in seconds (at least 1 ms).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn duration_s(&self) -> Option<f64> {
        match (self.first_ms, self.last_ms) {
            (Some(a), Some(b)) => Some((b.saturating_sub(a)).max(1) as f64 / 1000.0),
            _ => None,
        }
    }

    /// Samples per second over the group's own span ([`duration_s`](Summary::duration_s)), as
    /// JMeter's aggregate report computes it; Locust's own figure for Locust results.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn throughput(&self) -> Option<f64> {
        if let Some(t) = self.given_throughput {
            return Some(t);
        }
        if self.count == 0 {
            return None;
        }
        self.duration_s().map(|d| self.count as f64 / d)
    }

    /// The `q`-th percentile (0 < q ≤ 100) in ms; None without samples, or when the source does
    /// not give that percentile (Locust gives 50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn percentile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(q > 0.0 && q <= 100.0) {
            return None;
        }
        match &self.distribution {
            Distribution::Histogram { histogram, unit_us } => {
                let v = histogram.value_at_quantile(q / 100.0);
                // The histogram's bucket top, capped by the exact maximum.
                let ms = (v * unit_us) as f64 / 1000.0;
                Some(self.max_ms.map_or(ms, |max| ms.min(max)))
            }
            Distribution::Given(list) => list.iter().find(|(p, _)| (p - q).abs() < 1e-9).map(|(_, v)| *v),
            Distribution::None => None,
        }
    }

    /// The standard percentiles ([`STANDARD_PERCENTILES`]), in ms.
    #[must_use]
    pub fn percentiles(&self) -> [Option<f64>; 5] {
        STANDARD_PERCENTILES.map(|q| self.percentile(q))
    }
}

/// One bucket of the time series.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Start of the bucket, ms since the Unix epoch.
    pub t_ms: i64,
    /// Samples that started in it.
    pub count: u64,
    /// Failed samples among them.
    pub errors: u64,
    /// Samples per second in the bucket.
    pub throughput: f64,
    /// Latency percentiles of the bucket's samples: p50, p90, p95, p99 (ms), when known.
    pub p50_ms: Option<f64>,
    /// p90.
    pub p90_ms: Option<f64>,
    /// p95.
    pub p95_ms: Option<f64>,
    /// p99.
    pub p99_ms: Option<f64>,
    /// Slowest sample in the bucket.
    pub max_ms: Option<f64>,
}

/// Throughput, errors and latency over time, for charts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Width of each bucket in seconds: 1, or a power of two times 1 when a long run would
    /// need more than [`MAX_POINTS`](crate::results::MAX_POINTS) buckets.
    pub bucket_seconds: f64,
    /// The buckets, in time order (buckets without samples are left out).
    pub points: Vec<Point>,
}

/// Where the numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// The format read.
    pub format: Format,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Rows read as samples (JTL, k6) or summary rows (Locust).
    pub rows: u64,
    /// Malformed rows skipped (with [`OnMalformed::Skip`](crate::results::OnMalformed::Skip)).
    pub skipped_rows: u64,
    /// The first few malformed rows, as `file:line: message`.
    pub skipped_examples: Vec<String>,
    /// What the numbers cannot say for this source (Locust: no per-worker numbers, …) and
    /// limits that were reached (labels folded into `(other)`).
    pub notes: Vec<String>,
}

/// Everything read from one or more results files: the total, per label, per worker, over time.
#[derive(Debug, Clone)]
pub struct Results {
    /// Every sample.
    pub total: Summary,
    /// Per label (sorted by name).
    pub labels: BTreeMap<String, Summary>,
    /// Per worker (remote engine), when the source names them (sorted by name).
    pub workers: BTreeMap<String, Summary>,
    /// Over time.
    pub series: Series,
    /// The kinds of error seen, most frequent first (at most
    /// [`MAX_ERROR_KINDS`](crate::results::MAX_ERROR_KINDS)).
    pub errors: Vec<ErrorKind>,
    /// Where they came from.
    pub source: Source,
}

impl Results {
    /// One label's numbers.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&Summary> {
        self.labels.get(name)
    }

    /// One worker's numbers.
    #[must_use]
    pub fn worker(&self, name: &str) -> Option<&Summary> {
        self.workers.get(name)
    }
}
