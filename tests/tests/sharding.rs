//! Worker indexes and sharded data on the real engine: each of 4 workers prints its index and
//! the first and last row of its slice (and the slice's bytes); the slices are checked to be
//! the file, every row exactly once, the header in each.

use std::collections::BTreeMap;
use std::time::Duration;

use atq_core::data::{remove_bundle, DataBundle, Shard, SplitMode};
use atq_core::labels::Role;
use atq_core::{Director, Service, Task};
use atq_tests::*;
use futures_util::StreamExt;

const WORKERS: u32 = 4;

/// What a worker prints for one sharded file: a line with its index, count and the first and
/// last rows, and a line with the slice's bytes in hex.
fn report(file: &str) -> String {
    let path = format!("/atq/data/{file}");
    format!(
        "echo \"slice {file} $ATQ_WORKER_INDEX/$ATQ_WORKER_COUNT first=$(sed -n 2p {path} | tr -d '\\r') last=$(tail -n1 {path} | tr -d '\\r')\"; \
         echo \"hex {file} $ATQ_WORKER_INDEX $(od -An -tx1 -v {path} | tr -d ' \\n')\""
    )
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

async fn four_workers_each_read_their_own_slice_and_the_slices_are_the_file(backend: Backend) {
    let run = unique("sharding");
    // users.csv: split round-robin; one row holds a quoted newline, endings are CRLF.
    let header = "user,password,note\r\n";
    let rows: Vec<String> = (1..=10)
        .map(|k| match k {
            6 => format!("user{k},pw{k},\"two\nlines\"\r\n"),
            _ => format!("user{k},pw{k},{run}\r\n"),
        })
        .collect();
    let users = format!("{header}{}", rows.concat());
    // ids.csv: split in blocks, no header.
    let ids: String = (1..=9).map(|k| format!("{k}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), &users).unwrap();
    std::fs::write(dir.path().join("ids.csv"), &ids).unwrap();
    let bundle = DataBundle::from_dir(dir.path()).unwrap();

    let cluster = cluster(backend).await;
    let id = bundle.push(cluster.as_ref()).await.unwrap();
    let bundle_scope = Scope::for_bundle(backend, &id).await;
    let name = unique("sharding");
    let scope = Scope::for_task(backend, &name).await;

    let worker = Service::new(BUSYBOX)
        .replicas(WORKERS)
        .data(&id)
        .shard(Shard::new("users.csv"))
        .shard(Shard::new("ids.csv").split(SplitMode::Blocks).header(false))
        .command(["sh", "-c"])
        .args([format!("{}; {}; {RUN_UNTIL_STOPPED}", report("users.csv"), report("ids.csv"))]);
    let master = Service::new(BUSYBOX)
        .command(["sh", "-c"])
        .args(["echo \"indexes=$ATQ_WORKER_INDEXES count=$ATQ_WORKER_COUNT vips=$WORKER_CSV_VIPS\""]);
    let task = Task::builder(&name).workers(worker).master(master).build().unwrap();
    let director = Director::from_arc(cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.logs.contains("indexes=1,2,3,4 count=4 vips="), "{}", outcome.logs);
    let vips = outcome.logs.split("vips=").nth(1).unwrap().trim();
    assert_eq!(vips.split(',').count(), 4, "{vips}");

    // Every worker has printed its two files (its logs can lag behind its start).
    let worker_logs = || async {
        let stream = director.logs(&name, Role::Worker, &atq_core::cluster::LogOptions::all()).await.unwrap();
        let lines: Vec<String> = stream.map(|l| l.unwrap().text).collect().await;
        (lines.iter().filter(|l| l.starts_with("hex ")).count() == 2 * WORKERS as usize).then_some(lines)
    };
    let lines = eventually("every worker prints its slices", Duration::from_secs(20), worker_logs).await;
    let mut slices: BTreeMap<(String, u32), Vec<u8>> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.starts_with("hex ")) {
        let mut parts = line.splitn(4, ' ').skip(1);
        let (file, index, hex) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
        slices.insert((file.to_owned(), index.parse().unwrap()), unhex(hex));
    }

    // users.csv, round-robin: worker w has rows w, w + 4, …, under the header, byte for byte.
    let mut seen = Vec::new();
    for w in 1..=WORKERS {
        let mine: Vec<&String> = rows.iter().skip(w as usize - 1).step_by(WORKERS as usize).collect();
        let expected = format!("{header}{}", mine.iter().map(|r| r.as_str()).collect::<String>());
        assert_eq!(String::from_utf8_lossy(&slices[&("users.csv".to_owned(), w)]), expected, "worker {w}");
        seen.extend(mine.iter().copied());
        let first = mine[0].split('\r').next().unwrap();
        let last = mine.last().unwrap().split('\r').next().unwrap();
        let summary = format!("slice users.csv {w}/{WORKERS} first={first} last={last}");
        assert!(lines.contains(&summary), "{summary} in {lines:#?}");
    }
    seen.sort();
    let mut all: Vec<&String> = rows.iter().collect();
    all.sort();
    assert_eq!(seen, all, "every row of users.csv in exactly one slice");

    // ids.csv, blocks without a header: the slices in worker order are the file.
    let joined: Vec<u8> = (1..=WORKERS).flat_map(|w| slices[&("ids.csv".to_owned(), w)].clone()).collect();
    assert_eq!(String::from_utf8(joined).unwrap(), ids);
    assert_eq!(slices[&("ids.csv".to_owned(), 1)], b"1\n2\n3\n", "the first block has the extra row");

    deployment.teardown().await.unwrap();
    scope.assert_nothing_left().await;
    remove_bundle(cluster.as_ref(), &id).await.unwrap();
    bundle_scope.assert_nothing_left().await;
}

on_both!(four_workers_each_read_their_own_slice_and_the_slices_are_the_file);
