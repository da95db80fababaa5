//! Summarising a large JMeter JTL: samples per second on one core, per-sample cost as the file
//! grows, and peak resident memory (`VmHWM`, the whole process).
//!
//! ```text
//! cargo run -p atq-benches --profile bench --bin results-summary -- generate FILE N
//! cargo run -p atq-benches --profile bench --bin results-summary -- summarize FILE
//! ```
//! `generate` writes N samples in JMeter 5's CSV form (header line, 17 columns, ~100 bytes a
//! row): 50 labels, 10 workers (`Hostname`), about 1% failures, lognormal-ish latencies from a
//! fixed seed. `summarize` reads it with `atq_core::results::read_file` (the total, 50 label and
//! 10 worker histograms, the time series), computes the standard percentiles of every group, and
//! prints one line: `atq samples=N wall_s=W cpu_s=S samples_per_cpu_s=R cpu_ns_per_sample=C peak_rss_kib=K`
//! (rates on CPU time, which other processes on a busy machine do not inflate).
//! `benches/results_vs_pandas.sh` runs both and the pandas equivalent side by side.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use atq_benches::{load_average, peak_rss_kib};
use atq_core::results::{read_file, ReadOptions};

const LABELS: u64 = 50;
const WORKERS: u64 = 10;
const HEADER: &str = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,Latency,IdleTime,Connect,Hostname\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["generate", path, n] => generate(Path::new(path), n.parse().expect("N: a number of samples")),
        ["summarize", path] => summarize(Path::new(path)),
        _ => {
            eprintln!("usage: results-summary generate FILE N | summarize FILE");
            std::process::exit(2);
        }
    }
}

/// A small, fast, deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn generate(path: &Path, n: u64) {
    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create the file"));
    out.write_all(HEADER.as_bytes()).unwrap();
    let mut rng = Rng(12_345);
    let t0: u64 = 1_764_633_600_000;
    for i in 0..n {
        let r = rng.next();
        let label = r % LABELS;
        let worker = (r >> 8) % WORKERS;
        let thread = (r >> 16) % 200 + 1;
        // Latency: a base per label (5..250 ms) times a heavy-tailed factor.
        let base = 5 + label * 5;
        let tail = match (r >> 24) % 100 {
            0..=79 => 1,
            80..=94 => 2,
            95..=98 => 5,
            _ => 20,
        };
        let elapsed = base * tail + (r >> 32) % (base + 1);
        let ok = (r >> 40) % 100 != 0;
        let (code, message, failure) =
            if ok { ("200", "OK", "") } else { ("500", "Internal Server Error", "Test failed") };
        // 10M samples over ~1 hour: about 2,800 samples a second.
        let ts = t0 + i * 36 / 100 + (r >> 48) % 50;
        let bytes = 500 + (r >> 20) % 4000;
        writeln!(
            out,
            "{ts},{elapsed},label-{label:02},{code},{message},Thread Group 1-{thread},text,{ok},{failure},{bytes},120,200,2000,{},0,{},worker-{worker:02}",
            elapsed / 2,
            (r >> 56) % 5
        )
        .unwrap();
    }
    out.flush().unwrap();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    eprintln!("generated {n} samples, {} MB, in {:.1} s", size / 1_000_000, started.elapsed().as_secs_f64());
}

/// CPU time of this process so far (`/proc/self/schedstat`: nanoseconds on a CPU), which a busy
/// machine's waits for a core do not inflate.
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).map_or(0.0, |ns| ns as f64 / 1e9)
}

fn summarize(path: &Path) {
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let results = read_file(path, ReadOptions::default()).expect("read the JTL");
    // Every group's standard percentiles, as the report computes them.
    let mut checksum = 0.0;
    for s in std::iter::once(&results.total).chain(results.labels.values()).chain(results.workers.values()) {
        checksum += s.percentiles().iter().flatten().sum::<f64>();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let n = results.total.count;
    #[allow(clippy::cast_precision_loss)]
    let (rate, cost) = (n as f64 / cpu, cpu * 1e9 / n as f64);
    println!(
        "atq samples={n} wall_s={seconds:.3} cpu_s={cpu:.3} samples_per_cpu_s={rate:.0} cpu_ns_per_sample={cost:.0} peak_rss_kib={} labels={} workers={} p95_total_ms={} checksum={checksum:.0} load=\"{}\"",
        peak_rss_kib().unwrap_or(0),
        results.labels.len(),
        results.workers.len(),
        results.total.percentile(95.0).unwrap_or(0.0),
        load_average(),
    );
}
