//! Criterion benches of the director on a zero-latency [`FakeCluster`]: what atq itself costs,
//! with the engine taken out.
//!
//! - `deploy_teardown/N`: deploy one task of N workers (until the master runs) and tear it down,
//!   N = 1, 10, 100, 1,000, 10,000. Throughput is N elements, so Criterion reports the time per
//!   worker beside the time per task; a flat time per worker at large N means linear growth.
//! - `queue/100_tasks_k10`: 100 tasks of 10 workers each, submitted at once to a director with
//!   `with_concurrency(10)`, each deployed and torn down.
//!
//! `cargo bench -p atq-benches --bench fake` (add `-- --quick` on a busy machine).

use std::time::Duration;

use atq_benches::{task, FAKE_IMAGE};
use atq_core::{Director, FakeCluster};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};

const SIZES: [u32; 5] = [1, 10, 100, 1_000, 10_000];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn deploy_teardown(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("deploy_teardown");
    group.sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    for n in SIZES {
        // One director and one fake for every iteration: a fresh fake per iteration would time
        // its construction too. Teardown leaves the fake empty, so iterations are alike.
        let fake = FakeCluster::new();
        let director = Director::new(fake.clone());
        let task = task("bench", FAKE_IMAGE, n);
        group.throughput(Throughput::Elements(u64::from(n)));
        if n >= 1_000 {
            group.sample_size(20).measurement_time(Duration::from_secs(3));
        } else {
            group.sample_size(50).measurement_time(Duration::from_secs(2));
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &task, |b, task| {
            b.to_async(&rt).iter(|| async {
                let deployment = director.deploy(task).await.expect("deploy");
                deployment.teardown().await.expect("teardown");
            });
        });
        assert!(fake.is_empty(), "the bench left objects on the fake");
    }
    group.finish();
}

fn queue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let mut group = c.benchmark_group("queue");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone()).with_concurrency(10);
    let tasks: Vec<_> = (0..100).map(|i| task(&format!("q{i}"), FAKE_IMAGE, 10)).collect();
    group.throughput(Throughput::Elements(tasks.len() as u64));
    group.bench_function("100_tasks_k10", |b| {
        b.to_async(&rt).iter(|| async {
            let runs = tasks.iter().map(|task| {
                let director = director.clone();
                let task = task.clone();
                tokio::spawn(async move {
                    let deployment = director.deploy(&task).await.expect("deploy");
                    deployment.teardown().await.expect("teardown");
                })
            });
            for run in futures_util::future::join_all(runs).await {
                run.expect("a deploy task panicked");
            }
        });
    });
    assert!(fake.is_empty(), "the bench left objects on the fake");
    group.finish();
}

criterion_group!(benches, deploy_teardown, queue);
criterion_main!(benches);
