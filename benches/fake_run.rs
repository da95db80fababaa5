//! The Rust side of `python_overhead.py`: `Director::run` of one task on a fresh zero-latency
//! FakeCluster director, `--iterations` times, printing the mean time per run in microseconds.
//! The Python script runs the same loop through the bindings, alternating with this binary.
//!
//! `cargo run -p atq-benches --profile bench --bin fake-run -- --workers 100 --iterations 200`

use std::time::Instant;

use atq_benches::{task, FAKE_IMAGE};
use atq_core::{Director, FakeCluster};

fn main() {
    let mut workers = 10_u32;
    let mut iterations = 100_u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), value) {
            ("--workers", Some(v)) => workers = v,
            ("--iterations", Some(v)) => iterations = v,
            _ => {
                eprintln!("fake-run [--workers N] [--iterations K]");
                std::process::exit(2);
            }
        }
    }
    // The bindings keep one global runtime; so does this.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let director = Director::new(FakeCluster::new());
    let task = task("overhead", FAKE_IMAGE, workers);
    rt.block_on(director.run(&task)).expect("warm-up run");
    let start = Instant::now();
    for _ in 0..iterations {
        let outcome = rt.block_on(director.run(&task)).expect("run");
        assert_eq!(outcome.exit_code, 0);
    }
    println!("{:.2}", start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations));
}
