//! Criterion benches of the CSV splitter ([`atq_core::data::split_csv`]): a 25,000-row users
//! file (about 600 KB, the size of a bundle file near the config limit) split for 4, 100 and
//! 10,000 workers in both modes, beside the floor: the `csv` crate only finding the records.
//! Throughput is bytes, so the ratios to the floor read off directly.
//!
//! `cargo bench -p atq-benches --bench shard` (add `-- --quick` on a busy machine).

use std::time::Duration;

use atq_core::data::{split_csv, Shard, SplitMode};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// `user,password,note` and 25,000 rows, every hundredth with a quoted newline.
fn users() -> Vec<u8> {
    let mut out = b"user,password,note\n".to_vec();
    for k in 1..=25_000 {
        let note = if k % 100 == 0 { "\"two\nlines\"".to_owned() } else { format!("n{k}") };
        out.extend_from_slice(format!("user{k:05},pw{k:05},{note}\n").as_bytes());
    }
    out
}

fn split(c: &mut Criterion) {
    let file = users();
    let mut group = c.benchmark_group("split_csv");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    group.bench_function("floor_csv_records", |b| {
        b.iter(|| {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file.as_slice());
            let mut record = csv::ByteRecord::new();
            let mut n = 0usize;
            while reader.read_byte_record(&mut record).expect("a record") {
                n += 1;
            }
            n
        });
    });
    for mode in [SplitMode::RoundRobin, SplitMode::Blocks] {
        for workers in [4, 100, 10_000] {
            let shard = Shard::new("users.csv").split(mode);
            group.bench_with_input(BenchmarkId::new(mode.as_str(), workers), &workers, |b, &n| {
                b.iter(|| split_csv(&file, n, &shard).expect("split"));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
