//! `Director::prune` on the fake: it follows `prune::decide` (a live owner keeps even an expired
//! task; a detached task outlives its owner until it expires; an owner that cannot be checked
//! is not taken for gone).

use atq_core::cluster::{Cluster, NetworkSpec};
use atq_core::labels;
use atq_core::{Director, FakeCluster, Owner};

/// A task's network, as a deploy elsewhere (or long ago) left it.
async fn leftover(fake: &FakeCluster, task: &str, extra: &[(&str, &str)]) {
    let mut l: std::collections::BTreeMap<String, String> =
        [(labels::MANAGED, "true"), (labels::TASK, task), (labels::ROLE, "network")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    fake.create_network(&NetworkSpec { name: format!("{task}_net"), labels: l, attachable: true, capacity: 1 })
        .await
        .unwrap();
}

fn in_a_day() -> String {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400).to_string()
}

#[tokio::test]
async fn an_expired_task_whose_owner_runs_is_not_pruned() {
    let fake = FakeCluster::new();
    // ttl 60 and no runTimeout: a long run outlives its expiry while its process runs.
    leftover(&fake, "long-run", &[(labels::OWNER, &Owner::current().to_string()), (labels::EXPIRES, "1000")]).await;
    let report = Director::new(fake.clone()).prune().await.unwrap();
    assert!(report.tasks.is_empty(), "{:?}", report.tasks);
    assert_eq!(fake.networks(), vec!["long-run_net".to_owned()]);
}

#[tokio::test]
async fn a_detached_task_is_not_pruned_for_a_gone_owner_before_it_expires() {
    let fake = FakeCluster::new();
    let gone = Owner { pid: u32::MAX - 1, ..Owner::current() };
    assert!(gone.is_gone());
    let expiry = in_a_day();
    leftover(
        &fake,
        "up",
        &[(labels::OWNER, &gone.to_string()), (labels::EXPIRES, &expiry), (labels::DETACHED, "true")],
    )
    .await;
    leftover(&fake, "run", &[(labels::OWNER, &gone.to_string()), (labels::EXPIRES, &expiry)]).await;
    let report = Director::new(fake.clone()).prune().await.unwrap();
    assert_eq!(report.removed(), ["run"], "only the task that was not detached");
    assert_eq!(fake.networks(), vec!["up_net".to_owned()]);
}

#[tokio::test]
async fn an_owner_with_this_host_name_but_unknown_identity_is_not_gone() {
    // Another container with our host name, or an older atq's label: its pid is not in our /proc.
    let host = Owner::current().host;
    let fake = FakeCluster::new();
    leftover(
        &fake,
        "neighbour",
        &[(labels::OWNER, &format!("{host}:{}:12345", u32::MAX - 1)), (labels::EXPIRES, &in_a_day())],
    )
    .await;
    let mut twin = Owner { pid: u32::MAX - 1, ..Owner::current() };
    twin.pid_namespace = twin.pid_namespace.map(|n| n + 1);
    leftover(&fake, "container", &[(labels::OWNER, &twin.to_string()), (labels::EXPIRES, &in_a_day())]).await;
    let report = Director::new(fake.clone()).prune().await.unwrap();
    assert!(report.tasks.is_empty(), "{:?}", report.tasks);
}
