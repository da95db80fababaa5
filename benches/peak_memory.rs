//! Peak resident memory of deploying and tearing down one task on a zero-latency FakeCluster,
//! for N = 1, 1,000 and 10,000 workers: the growth of `VmHWM` over the process's memory before
//! the deploy (the peak is reset between sizes through `/proc/self/clear_refs`).
//!
//! `cargo run -p atq-benches --profile bench --bin peak-memory`

use atq_benches::{peak_rss_kib, reset_peak_rss, rss_kib, task, FAKE_IMAGE};
use atq_core::{Director, FakeCluster};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    // Warm up: the allocator's arenas, the runtime, lazily built statics.
    let warm = director.deploy(&task("warm", FAKE_IMAGE, 100)).await.expect("deploy");
    warm.teardown().await.expect("teardown");

    println!("| N workers | RSS before (KiB) | peak during deploy+teardown (KiB) | growth (KiB) | bytes per worker |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [1_u32, 1_000, 10_000] {
        let task = task("mem", FAKE_IMAGE, n);
        let before = rss_kib().expect("VmRSS");
        let reset = reset_peak_rss();
        let deployment = director.deploy(&task).await.expect("deploy");
        deployment.teardown().await.expect("teardown");
        let peak = peak_rss_kib().expect("VmHWM");
        let growth = peak.saturating_sub(before);
        let note = if reset { "" } else { " (peak not reset: since start)" };
        println!("| {n} | {before} | {peak}{note} | {growth} | {} |", growth * 1024 / u64::from(n));
        assert!(fake.is_empty());
    }
}
