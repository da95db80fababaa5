//! Nodes lost (issue 14), on a FakeCluster of three nodes: a replica on a node that is down is
//! lost (counted as running by no wait), a run names the workers lost and their node and exits 98,
//! a lost master ends the wait at once, a deploy that loses a node fails at once naming it and
//! rolls back, and teardowns do not wait for containers on a node that cannot answer — they say
//! they left them to the engine, which removes them once the node is back.

use std::collections::BTreeSet;
use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::cluster::{Cluster, Replica, ReplicaState};
use atq_core::event::{RunEvent, RunEventKind};
use atq_core::labels::Role;
use atq_core::run::{Interrupt, RunItem, RunOptions, RunReport};
use atq_core::{Director, Error, Event, FakeCluster, Service, Task};
use futures_util::StreamExt;
use tokio::time::Instant;

/// `replicas` workers kept off the manager (so on node2 and node3), the master on the manager.
fn task(name: &str, replicas: u32) -> Task {
    Task::builder(name)
        .workers(Service::new("lab/worker:1").replicas(replicas).constraint("node.role==worker"))
        .master(Service::new("lab/master:1").constraint("node.role==manager"))
        .build()
        .unwrap()
}

async fn workers_of(fake: &FakeCluster, task: &str) -> Vec<Replica> {
    fake.replicas(&format!("{task}_worker"), &format!("{task}_net")).await.unwrap()
}

fn slots_on(replicas: &[Replica], node: &str) -> BTreeSet<u32> {
    replicas.iter().filter(|r| r.node.as_deref() == Some(node)).map(|r| r.slot).collect()
}

async fn collect(mut run: atq_core::run::Run) -> (Vec<Event>, atq_core::Result<RunReport>) {
    let mut events = Vec::new();
    while let Some(item) = run.next().await {
        match item {
            RunItem::Event(RunEvent { kind: RunEventKind::Progress(e), .. }) => events.push(e),
            RunItem::Event(_) => {}
            RunItem::Done(result) => return (events, result.map(|r| *r)),
        }
    }
    panic!("the stream ended without Done");
}

#[tokio::test(start_paused = true)]
async fn a_replica_on_a_down_node_is_lost_naming_the_node_and_no_count_has_it_running() {
    let fake = FakeCluster::new().with_nodes(3);
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let deployment = director.deploy(&task("down", 4)).await.unwrap();
    let before = workers_of(&fake, "down").await;
    let on_node3 = slots_on(&before, "node3");
    assert_eq!((slots_on(&before, "node2").len(), on_node3.len()), (2, 2), "{before:#?}");
    assert!(slots_on(&before, "node1").is_empty(), "kept off the manager");

    fake.node_down("node3").unwrap();
    let after = workers_of(&fake, "down").await;
    for r in &after {
        if on_node3.contains(&r.slot) {
            assert_eq!((r.state, r.exit_code), (ReplicaState::Lost, None), "{r:#?}");
            assert_eq!(r.node_id.as_deref(), Some("fake-node-3"));
            let error = r.error.as_deref().unwrap();
            assert!(error.contains("its node node3") && error.contains("down"), "{error}");
            assert!(error.contains("it was running there"), "{error}");
        } else {
            assert_eq!(r.state, ReplicaState::Running, "{r:#?}");
        }
    }
    let info = director.inspect("down").await.unwrap();
    assert_eq!(info.workers_running, 2, "{info:#?}");
    let engine = fake.info().await.unwrap();
    assert_eq!((engine.nodes_ready, engine.nodes_total), (2, 3));
    deployment.teardown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_node_lost_mid_run_names_its_workers_and_node_exits_98_and_leaves_their_containers_to_the_engine() {
    let fake = FakeCluster::new().with_nodes(3);
    fake.script(Matcher::role(Role::Master), Script::exits_after(0, Duration::from_secs(10)));
    let director = Director::new(fake.clone());
    let killer = tokio::spawn({
        let fake = fake.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            fake.node_down("node3").unwrap();
        }
    });
    let (events, report) = collect(director.run_with(&task("midrun", 6), RunOptions::new(), Interrupt::new())).await;
    killer.await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.outcome.exit_code, 0, "the master finished");
    assert!(!report.outcome.succeeded());
    assert_eq!(report.exit_code(), atq_core::run::EXIT_WORKERS_LOST);
    let lost = &report.outcome.failed_workers;
    assert_eq!(lost.len(), 3, "{lost:#?}");
    assert!(lost.iter().all(|r| r.state == ReplicaState::Lost && r.node.as_deref() == Some("node3")), "{lost:#?}");

    let left = events.iter().position(|e| matches!(e, Event::LeftOnLostNodes { .. })).expect("says what it left");
    match &events[left] {
        Event::LeftOnLostNodes { replicas, nodes, .. } => {
            assert_eq!(nodes, &["node3"]);
            let names: Vec<&str> = lost.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(replicas, &names);
        }
        _ => unreachable!(),
    }
    assert!(matches!(events.last(), Some(Event::TornDown { .. })), "{events:?}");
    assert!(fake.is_empty(), "the engine deleted every object at once");
    assert_eq!(fake.stranded_containers("node3").len(), 3, "node3 keeps their containers while it is down");
    fake.node_up("node3").unwrap();
    assert!(fake.stranded_containers("node3").is_empty(), "and removes them once it is back");
}

#[tokio::test(start_paused = true)]
async fn a_master_lost_with_its_node_ends_the_wait_at_once_naming_the_node() {
    let fake = FakeCluster::new().with_nodes(3);
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let t = Task::builder("lostmaster")
        .workers(Service::new("lab/worker:1").replicas(2).constraint("node.hostname==node2"))
        .master(Service::new("lab/master:1").constraint("node.hostname==node3"))
        .build()
        .unwrap();
    let director = Director::new(fake.clone());
    let deployment = director.deploy(&t).await.unwrap();
    fake.node_down("node3").unwrap();
    let down = Instant::now();
    let err = deployment.wait(Some(Duration::from_secs(600))).await.unwrap_err();
    assert!(down.elapsed() < Duration::from_secs(1), "{:?}", down.elapsed());
    match &err {
        Error::ReplicaFailed { state, message, .. } => {
            assert_eq!(state, "lost");
            assert!(message.contains("node3"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    deployment.teardown().await.unwrap();
    assert!(fake.is_empty());
    assert_eq!(fake.stranded_containers("node3").len(), 1, "the master's container, until node3 is back");
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_master_is_lost_ends_with_an_error_naming_the_node_and_tears_down() {
    let fake = FakeCluster::new().with_nodes(3);
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let t = Task::builder("runlost")
        .workers(Service::new("lab/worker:1").replicas(2).constraint("node.hostname==node2"))
        .master(Service::new("lab/master:1").constraint("node.hostname==node3"))
        .build()
        .unwrap();
    let director = Director::new(fake.clone());
    tokio::spawn({
        let fake = fake.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            fake.node_down("node3").unwrap();
        }
    });
    let (events, result) = collect(director.run_with(&t, RunOptions::new(), Interrupt::new())).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("node3"), "{err}");
    assert!(events.iter().any(|e| matches!(e, Event::LeftOnLostNodes { .. })), "{events:?}");
    assert!(matches!(events.last(), Some(Event::TornDown { .. })), "{events:?}");
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_node_lost_during_deploy_fails_it_at_once_naming_the_node_and_rolls_back() {
    // The workers take 20 s to start: the deploy is waiting for them when node3 goes.
    let fake = FakeCluster::new().with_nodes(3).with_latency(Duration::from_secs(20));
    let director = Director::new(fake.clone());
    let mut events = director.subscribe();
    let t = task("deploylost", 4);
    let deploy = tokio::spawn({
        let director = director.clone();
        async move { director.deploy(&t).await.map(|_| ()) }
    });
    loop {
        if let Event::WorkersCreated { .. } = events.recv().await.unwrap() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    fake.node_down("node3").unwrap();
    let down = Instant::now();
    let err = deploy.await.unwrap().unwrap_err();
    assert!(down.elapsed() < Duration::from_secs(1), "failed {:?} after the node went", down.elapsed());
    match &err {
        Error::ReplicaFailed { state, message, .. } => {
            assert_eq!(state, "lost");
            assert!(message.contains("its node node3"), "{message}");
            assert!(message.contains("it was pending there"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.is_empty(), "rolled back: {:?}", fake.services());
    assert!(fake.stranded_containers("node3").is_empty(), "no container had started there");
}

#[tokio::test(start_paused = true)]
async fn new_replicas_go_to_ready_nodes_and_a_lost_one_is_failed_255_once_its_node_is_back() {
    let fake = FakeCluster::new().with_nodes(3);
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let first = director.deploy(&task("first", 2)).await.unwrap();
    fake.node_down("node3").unwrap();
    let second = director.deploy(&task("second", 4)).await.unwrap();
    let placed = workers_of(&fake, "second").await;
    assert_eq!(slots_on(&placed, "node2").len(), 4, "the scheduler does not use a node that is down: {placed:#?}");

    fake.node_up("node3").unwrap();
    let back = workers_of(&fake, "first").await;
    let on_node3: Vec<&Replica> = back.iter().filter(|r| r.node.as_deref() == Some("node3")).collect();
    assert_eq!(on_node3.len(), 1, "{back:#?}");
    assert_eq!((on_node3[0].state, on_node3[0].exit_code), (ReplicaState::Failed, Some(255)));
    assert_eq!(on_node3[0].error.as_deref(), Some("task: non-zero exit (255)"));
    first.teardown().await.unwrap();
    second.teardown().await.unwrap();
    assert!(fake.is_empty());
}
