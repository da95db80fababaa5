//! Tests of the director that are about the exact engine calls and the polling pace.

use std::net::IpAddr;
use std::time::Duration;

use mockall::Sequence;
use tokio::time::Instant;

use super::*;
use crate::cluster::{MockCluster, Replica, ReplicaState};
use crate::service::Service;

fn running(service: &str, address: &str) -> Vec<Replica> {
    vec![Replica {
        id: format!("{service}-1"),
        name: format!("{service}.1"),
        slot: 1,
        state: ReplicaState::Running,
        address: Some(address.parse().unwrap()),
        exit_code: None,
        error: None,
        node_id: None,
        node: None,
        container_id: None,
    }]
}

/// The plan's order matters: the network before anything on it, every worker running
/// before the master exists, the worker list stored before the master that mounts it.
#[tokio::test]
async fn deploy_calls_the_engine_in_the_plans_order() {
    let mut engine = MockCluster::new();
    let mut seq = Sequence::new();
    engine
        .expect_create_network()
        .withf(|spec| spec.name == "seq_net" && spec.attachable)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok("net-id".into()));
    engine
        .expect_create_service()
        .withf(|spec| spec.name == "seq_worker" && spec.replicas == 1)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok("worker-id".into()));
    engine
        .expect_replicas()
        .withf(|service, network| service == "seq_worker" && network == "seq_net")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|s, _| Ok(running(s, "10.0.0.2")));
    engine
        .expect_create_config()
        .withf(|spec| spec.name == "seq_workers" && spec.data == b"10.0.0.2\n")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok("config-id".into()));
    engine
        .expect_create_service()
        .withf(|spec| {
            spec.name == "seq_master"
                && spec.env.contains(&("WORKER_CSV_VIPS".into(), "10.0.0.2".into()))
                && spec.configs.iter().any(|c| c.config_id == "config-id")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok("master-id".into()));
    engine
        .expect_replicas()
        .withf(|service, _| service == "seq_master")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|s, _| Ok(running(s, "10.0.0.3")));
    let director = Director::new(engine);
    let task = Task::builder("seq").workers(Service::new("i")).master(Service::new("i")).build().unwrap();
    let deployment = director.deploy(&task).await.unwrap();
    assert_eq!(deployment.workers(), ["10.0.0.2".parse::<IpAddr>().unwrap()]);
    deployment.keep();
}

fn slow_task() -> Task {
    Task::builder("slow").workers(Service::new("i").replicas(3)).master(Service::new("i")).build().unwrap()
}

/// A replica that starts is seen within the poll ceiling (50 ms by default): the deploy
/// of workers and master that each take 2 s to start ends within 4 s plus two ceilings.
#[tokio::test(start_paused = true)]
async fn a_started_replica_is_seen_within_the_poll_ceiling() {
    let fake = crate::FakeCluster::new().with_latency(Duration::from_secs(2));
    let director = Director::new(fake);
    let started = Instant::now();
    director.deploy(&slow_task()).await.unwrap().keep();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4));
    assert!(took <= Duration::from_secs(4) + 2 * PollInterval::default().max, "{took:?}");
}

/// A poll that takes long (a task list of thousands of replicas) spaces the next one by
/// POLL_COST_FACTOR times its own cost, not by the poll ceiling.
#[tokio::test(start_paused = true)]
async fn expensive_polls_are_spaced_by_their_cost() {
    let fake =
        crate::FakeCluster::new().with_latency(Duration::from_secs(2)).with_call_delay(Duration::from_millis(100));
    let director = Director::new(fake.clone());
    director.deploy(&slow_task()).await.unwrap().keep();
    // Each wait lasts about 2 s; a poll costs 100 ms and is followed by a pause of at least
    // 400 ms: about 5 polls per wait, 10 in all (paced by the 50 ms ceiling it would be ~28).
    let polls = fake.calls(crate::cluster::fake::CallKind::Replicas);
    assert!(polls <= 12, "{polls} polls");
}
