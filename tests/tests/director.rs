//! The Director driving `DockerCluster`: whole tasks on the real engine.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use atq_core::cluster::{ReplicaState, ResourceKind};
use atq_core::{Director, Error, Service, Task};
use atq_tests::*;

/// A worker: listens on TCP 7000 until stopped (and exits at once on SIGTERM). Debian's
/// busybox `nc` has no `-k`: `-ll` keeps listening.
fn listening_worker(replicas: u32) -> Service {
    Service::new(BUSYBOX)
        .replicas(replicas)
        .command(["sh", "-c"])
        .args(["trap 'exit 0' TERM; nc -ll -p 7000 -e /bin/true & wait"])
}

/// A master running `script` with `sh -c`.
fn master(script: &str) -> Service {
    Service::new(BUSYBOX).command(["sh", "-c"]).args([script])
}

/// Asserts that nothing carrying the task's label is left on the engine.
async fn assert_nothing_left(scope: &Scope) {
    for kind in [ResourceKind::Service, ResourceKind::Network, ResourceKind::Config] {
        assert!(scope.leftovers(kind).await.is_empty(), "{kind:?} left: {:?}", scope.leftovers(kind).await);
    }
    assert!(scope.leftover_containers().is_empty(), "containers left: {:?}", scope.leftover_containers());
}

#[tokio::test]
async fn the_master_gets_three_distinct_worker_addresses_and_reaches_each() {
    let name = unique("d3");
    let scope = Scope::for_task(&name).await;
    let script = r#"
        set -e
        echo "workers: $WORKER_CSV_VIPS"
        n=$(echo "$WORKER_CSV_VIPS" | tr ',' '\n' | sort -u | grep -c .)
        [ "$n" = 3 ] || { echo "expected 3 distinct addresses, got $n" >&2; exit 10; }
        for ip in $(echo "$WORKER_CSV_VIPS" | tr ',' ' '); do
            nc -w1 "$ip" 7000 </dev/null || { echo "cannot reach $ip:7000" >&2; exit 11; }
            echo "reached $ip"
        done
    "#;
    let task = Task::builder(&name).workers(listening_worker(3)).master(master(script)).build().unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let workers: BTreeSet<IpAddr> = deployment.workers().iter().copied().collect();
    assert_eq!(workers.len(), 3, "{:?}", deployment.workers());
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.succeeded(), "{outcome:#?}");
    for ip in &workers {
        assert!(outcome.logs.contains(&format!("reached {ip}")), "{}", outcome.logs);
    }
    deployment.teardown().await.unwrap();
    director.settled().await;
    assert_nothing_left(&scope).await;
}

#[tokio::test]
async fn a_non_zero_master_exit_code_is_the_outcome() {
    let name = unique("d7");
    let scope = Scope::for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(1))
        .master(master("echo done; echo bad news >&2; exit 7"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let outcome = director.run(&task).await.unwrap();
    assert_eq!((outcome.exit_code, outcome.state), (7, ReplicaState::Failed), "{outcome:#?}");
    assert!(!outcome.succeeded());
    assert!(outcome.logs.contains("done") && outcome.logs.contains("bad news"), "{}", outcome.logs);
    director.settled().await;
    assert_nothing_left(&scope).await;
}

#[tokio::test]
async fn a_missing_worker_image_fails_fast_naming_it_and_leaves_nothing() {
    let name = unique("dmiss");
    let scope = Scope::for_task(&name).await;
    let task = Task::builder(&name)
        .workers(Service::new("atq-test/no-such-worker:1").replicas(2))
        .master(master("exit 0"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let (result, took) = timed(director.deploy(&task)).await;
    let err = result.expect_err("the deploy must fail");
    assert!(err.to_string().contains("atq-test/no-such-worker:1"), "{err}");
    assert!(matches!(err, Error::ReplicaFailed { .. }), "{err:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    director.settled().await;
    assert_nothing_left(&scope).await;
}
