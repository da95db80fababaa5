//! Benchmarks of atq, and the small helpers they share.
//!
//! # Layout
//! - `fake.rs` (Criterion, `cargo bench -p atq-benches --bench fake`): deploy + teardown of one
//!   task with N = 1 … 10,000 workers on a zero-latency [`FakeCluster`](atq_core::FakeCluster),
//!   and 100 tasks through the director's queue.
//! - `peak_memory.rs` (`cargo run -p atq-benches --profile bench --bin peak-memory`): peak
//!   resident memory of one 10,000-worker deploy, and how it grows with N.
//! - `engine_latency.rs` (`cargo run -p atq-benches --profile bench --bin engine-latency`): on a
//!   real engine, atq's deploy against the Engine API floor and the docker CLI, alternated.
//!   Run by hand, never in CI.
//! - `python_overhead.py`: the same fake deploy through the Python bindings.
//!
//! `BENCHMARKS.md` at the repository root has the commands, the numbers and what they mean.

use std::time::Duration;

use atq_core::{Service, Task};

/// The image every fake task names (the fake never pulls it).
pub const FAKE_IMAGE: &str = "bench/worker:1";

/// A task `name` with `workers` workers and one master, both of `image`, nothing else.
///
/// # Panics
/// If the name or the worker count is not valid (at most [`atq_core::task::MAX_WORKERS`]).
#[must_use]
pub fn task(name: &str, image: &str, workers: u32) -> Task {
    Task::builder(name)
        .workers(Service::new(image).replicas(workers))
        .master(Service::new(image))
        .build()
        .expect("a valid bench task")
}

/// Median, minimum and maximum of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (the mean of the two middle values for an even count).
    pub median: Duration,
    /// The fastest.
    pub min: Duration,
    /// The slowest.
    pub max: Duration,
    /// How many timings.
    pub count: usize,
}

impl Summary {
    /// Summarises `samples`; None when there are none.
    #[must_use]
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 };
        Some(Summary { median, min: sorted[0], max: sorted[n - 1], count: n })
    }

    /// This median over `other`'s.
    #[must_use]
    pub fn ratio(&self, other: &Summary) -> f64 {
        self.median.as_secs_f64() / other.median.as_secs_f64()
    }
}

/// Milliseconds, with one decimal: how the tables print timings.
#[must_use]
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// This process's peak resident set size (`VmHWM` of `/proc/self/status`), in KiB.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    status_field("VmHWM:")
}

/// This process's current resident set size (`VmRSS`), in KiB.
#[must_use]
pub fn rss_kib() -> Option<u64> {
    status_field("VmRSS:")
}

/// Resets the peak resident set size to the current one (writes `5` to
/// `/proc/self/clear_refs`, Linux ≥ 4.0). Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_field(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The first line of `uptime`'s load averages (`/proc/loadavg`), to print beside measurements.
#[must_use]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atq_core::cluster::fake::CallKind;
    use atq_core::{Director, FakeCluster};

    #[test]
    fn a_summary_gives_the_median_and_the_range() {
        let s = |v: &[u64]| Summary::of(&v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>()).unwrap();
        let odd = s(&[30, 10, 20]);
        assert_eq!(
            (odd.median, odd.min, odd.max),
            (Duration::from_millis(20), Duration::from_millis(10), Duration::from_millis(30))
        );
        assert_eq!(s(&[10, 40, 20, 30]).median, Duration::from_millis(25));
        assert!(Summary::of(&[]).is_none());
        assert!((s(&[30]).ratio(&s(&[20])) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
        assert!(rss_kib().is_some_and(|k| k > 0));
    }

    /// What makes deploy cost linear in N: on a zero-latency fake, the number of engine calls
    /// of a deploy + teardown does not depend on N (one replica listing per wait, not one per
    /// worker), so the cost per call is all that may grow, and the Criterion bench shows it does
    /// so linearly.
    #[tokio::test]
    async fn engine_calls_of_a_deploy_do_not_grow_with_the_worker_count() {
        let mut per_n = Vec::new();
        for n in [1, 100, 10_000] {
            let fake = FakeCluster::new();
            let director = Director::new(fake.clone());
            let deployment = director.deploy(&task("calls", FAKE_IMAGE, n)).await.unwrap();
            assert_eq!(deployment.workers().len(), n as usize);
            deployment.teardown().await.unwrap();
            assert!(fake.is_empty());
            per_n.push(CallKind::ALL.map(|k| fake.calls(k)));
        }
        assert!(per_n.windows(2).all(|w| w[0] == w[1]), "calls per kind by N: {per_n:?}");
    }
}
