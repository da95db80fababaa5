//! Worker indexes and sharded data on FakeCluster: what each worker and the master are told,
//! what each worker reads at a sharded file's path, and what is left after a failure.

use atq_core::cluster::Cluster;
use atq_core::data::{DataBundle, DataError, Shard, SplitMode};
use atq_core::{Director, Error, FakeCluster, Service, Task};

fn env(fake: &FakeCluster, service: &str, slot: u32, key: &str) -> Option<String> {
    fake.replica_env(service, slot)?.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A bundle with a users file of `rows` rows (CRLF endings, one quoted field with a newline)
/// and a plan, pushed to `fake`; returns the bundle and the users file's bytes.
async fn push_users(fake: &FakeCluster, rows: usize) -> (DataBundle, Vec<u8>) {
    let mut users = b"user,password,note\r\n".to_vec();
    for k in 1..=rows {
        let note = if k == 2 { "\"two\nlines\"".to_owned() } else { format!("n{k}") };
        users.extend_from_slice(format!("user{k},pw{k},{note}\r\n").as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/users.csv"), &users).unwrap();
    std::fs::write(dir.path().join("plan.jmx"), "<jmeterTestPlan/>").unwrap();
    let bundle = DataBundle::from_dir(dir.path()).unwrap();
    bundle.push(fake).await.unwrap();
    (bundle, users)
}

fn sharded_task(name: &str, bundle: &str, workers: u32, shard: Shard) -> Task {
    Task::builder(name)
        .workers(Service::new("lab/worker:1").replicas(workers).data(bundle).shard(shard))
        .master(Service::new("lab/master:1").data(bundle))
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_worker_knows_its_index_and_the_master_knows_them_in_address_order() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let task = Task::builder("idx")
        .workers(Service::new("lab/worker:1").replicas(5))
        .master(Service::new("lab/master:1"))
        .build()
        .unwrap();
    let deployment = director.deploy(&task).await.unwrap();
    let replicas = fake.replicas("idx_worker", "idx_net").await.unwrap();
    let mut by_address = std::collections::BTreeMap::new();
    for r in &replicas {
        let index = env(&fake, "idx_worker", r.slot, "ATQ_WORKER_INDEX").unwrap();
        assert_eq!(index, r.slot.to_string(), "the index is the replica's slot, 1-based");
        assert_eq!(env(&fake, "idx_worker", r.slot, "ATQ_WORKER_COUNT").as_deref(), Some("5"));
        by_address.insert(r.address.unwrap().to_string(), index);
    }
    let mut indexes: Vec<u32> = by_address.values().map(|i| i.parse().unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [1, 2, 3, 4, 5]);

    let master = fake.replica_env("idx_master", 1).unwrap();
    let get = |key: &str| master.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    let addresses: Vec<String> = get("WORKER_CSV_VIPS").split(',').map(str::to_owned).collect();
    let told: Vec<String> = get("ATQ_WORKER_INDEXES").split(',').map(str::to_owned).collect();
    assert_eq!(addresses.len(), 5);
    for (address, index) in addresses.iter().zip(&told) {
        assert_eq!(&by_address[address], index, "{address}: the master's list pairs each address with its index");
    }
    assert_eq!(get("ATQ_WORKER_COUNT"), "5");
    assert!(env(&fake, "idx_master", 1, "ATQ_WORKER_INDEX").is_none(), "the master is no worker");
    deployment.teardown().await.unwrap();
}

#[tokio::test]
async fn each_worker_reads_only_its_slice_at_the_files_path_and_the_master_the_whole_file() {
    let fake = FakeCluster::new();
    let (bundle, users) = push_users(&fake, 10).await;
    let director = Director::new(fake.clone());
    let task = sharded_task("load", bundle.id(), 4, Shard::new("data/users.csv"));
    let deployment = director.deploy(&task).await.unwrap();

    let path = "/atq/data/data/users.csv";
    let mut rows_seen = Vec::new();
    for slot in 1..=4 {
        let slice = fake.replica_file("load_worker", slot, path).unwrap();
        let text = String::from_utf8(slice).unwrap();
        assert!(text.starts_with("user,password,note\r\n"), "worker {slot}: {text:?}");
        let body = &text["user,password,note\r\n".len()..];
        // Round-robin: worker `slot` has rows slot, slot + 4, …
        let expected: Vec<usize> = (slot as usize..=10).step_by(4).collect();
        let firsts: Vec<usize> = body
            .split("\r\n")
            .filter(|r| r.starts_with("user"))
            .map(|r| r["user".len()..r.find(',').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(firsts, expected, "worker {slot}: {body:?}");
        rows_seen.extend(firsts);
    }
    rows_seen.sort_unstable();
    assert_eq!(rows_seen, (1..=10).collect::<Vec<_>>(), "every row once");
    assert!(
        String::from_utf8(fake.replica_file("load_worker", 2, path).unwrap()).unwrap().contains("\"two\nlines\""),
        "the quoted newline stays in its row"
    );
    assert_eq!(fake.replica_file("load_master", 1, path).unwrap(), users, "the master is not sharded");
    assert_eq!(fake.replica_file("load_worker", 3, "/atq/data/plan.jmx").unwrap(), b"<jmeterTestPlan/>");

    deployment.teardown().await.unwrap();
    let left = fake.configs();
    assert!(left.iter().all(|c| c.starts_with("atq-data-")), "only the bundle stays: {left:?}");
}

#[tokio::test]
async fn blocks_give_each_worker_a_contiguous_run_of_rows() {
    let fake = FakeCluster::new();
    let (bundle, users) = push_users(&fake, 7).await;
    let director = Director::new(fake.clone());
    let task = sharded_task("blk", bundle.id(), 3, Shard::new("data/users.csv").split(SplitMode::Blocks));
    let deployment = director.deploy(&task).await.unwrap();
    let header = b"user,password,note\r\n".len();
    let mut joined = users[..header].to_vec();
    for slot in 1..=3 {
        let slice = fake.replica_file("blk_worker", slot, "/atq/data/data/users.csv").unwrap();
        assert_eq!(&slice[..header], &users[..header]);
        joined.extend_from_slice(&slice[header..]);
    }
    assert_eq!(joined, users, "the blocks, in worker order, are the file byte for byte");
    deployment.teardown().await.unwrap();
}

#[tokio::test]
async fn a_sharded_file_missing_from_the_bundle_fails_the_deploy_before_anything_is_created() {
    let fake = FakeCluster::new();
    let (bundle, _) = push_users(&fake, 3).await;
    let director = Director::new(fake.clone());
    let err = director.deploy(&sharded_task("miss", bundle.id(), 2, Shard::new("users.csv"))).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Shard { file, .. }) if file == "users.csv"), "{err:?}");
    assert!(err.to_string().contains("data/users.csv"), "the message lists the bundle's files: {err}");
    assert!(fake.services().is_empty() && fake.networks().is_empty());
}

#[tokio::test]
async fn a_slice_config_the_engine_refuses_rolls_the_deploy_back() {
    let fake = FakeCluster::new();
    let max = fake.info().await.unwrap().max_config_bytes;
    // A file just under the engine's limit: its slices, held in one per-replica config with
    // the header once, fit too.
    let row = "x".repeat(100);
    let mut users = b"h\n".to_vec();
    while users.len() + row.len() + 1 < max - 1 {
        users.extend_from_slice(row.as_bytes());
        users.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), &users).unwrap();
    let bundle =
        DataBundle::from_dir_with(dir.path(), &atq_core::data::Limits::default().max_file_bytes(max as u64)).unwrap();
    bundle.push(&fake).await.unwrap();
    let director = Director::new(fake.clone());
    let deployment = director.deploy(&sharded_task("fits", bundle.id(), 8, Shard::new("users.csv"))).await.unwrap();
    deployment.teardown().await.unwrap();

    fake.fail_call(atq_core::cluster::fake::CallKind::CreateConfig, 1);
    let err = director.deploy(&sharded_task("fails", bundle.id(), 8, Shard::new("users.csv"))).await.unwrap_err();
    assert!(matches!(err, Error::Engine { .. }), "{err:?}");
    director.settled().await;
    assert!(fake.services().is_empty() && fake.networks().is_empty(), "rolled back");
    assert!(fake.configs().iter().all(|c| c.starts_with("atq-data-")), "{:?}", fake.configs());
}

#[tokio::test]
async fn shards_without_a_bundle_fail_the_deploy_naming_the_file() {
    let fake = FakeCluster::new();
    let task = Task::builder("nob")
        .workers(Service::new("lab/worker:1").replicas(2).shard(Shard::new("users.csv")))
        .master(Service::new("lab/master:1"))
        .build()
        .expect("valid: `atq run --data` may name the bundle later");
    let err = Director::new(fake.clone()).deploy(&task).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Shard { file, .. }) if file == "users.csv"), "{err:?}");
    assert!(err.to_string().contains("worker.fileid"), "{err}");
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_bundle_can_mark_a_file_for_sharding_and_a_tasks_own_shard_wins() {
    let fake = FakeCluster::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ids.csv"), "id\n1\n2\n3\n4\n").unwrap();
    let plain = DataBundle::from_dir(dir.path()).unwrap();
    let marked = plain.clone().with_shard(Shard::new("ids.csv").split(SplitMode::Blocks)).unwrap();
    assert_ne!(plain.id(), marked.id(), "the marks are part of the id");
    marked.push(&fake).await.unwrap();
    let director = Director::new(fake.clone());

    let task = Task::builder("marks")
        .workers(Service::new("lab/worker:1").replicas(2).data(marked.id()))
        .master(Service::new("lab/master:1").data(marked.id()))
        .build()
        .unwrap();
    let deployment = director.deploy(&task).await.unwrap();
    assert_eq!(fake.replica_file("marks_worker", 1, "/atq/data/ids.csv").unwrap(), b"id\n1\n2\n");
    assert_eq!(fake.replica_file("marks_worker", 2, "/atq/data/ids.csv").unwrap(), b"id\n3\n4\n");
    assert_eq!(fake.replica_file("marks_master", 1, "/atq/data/ids.csv").unwrap(), b"id\n1\n2\n3\n4\n");
    deployment.teardown().await.unwrap();

    let own = sharded_task("own", marked.id(), 2, Shard::new("ids.csv"));
    let deployment = director.deploy(&own).await.unwrap();
    assert_eq!(fake.replica_file("own_worker", 1, "/atq/data/ids.csv").unwrap(), b"id\n1\n3\n", "round-robin wins");
    deployment.teardown().await.unwrap();

    let err = plain.with_shard(Shard::new("users.csv")).unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Shard { file, .. }) if file == "users.csv"), "{err:?}");
}
