//! atq on a real multi-node swarm: the one `tests/multinode/up.sh` builds on this machine
//! (node1 the manager atq talks to, node2 and node3 workers, each with its own engine).
//!
//! Skipped, with a message, unless `ATQ_MULTINODE_HOST` names the swarm's manager; with
//! `ATQ_REQUIRE_MULTINODE=1` (CI) they fail instead. Run them with:
//!
//! ```sh
//! eval "$(tests/multinode/up.sh)"      # exports ATQ_MULTINODE_HOST
//! cargo test -p atq-tests --test multinode
//! tests/multinode/down.sh
//! ```
//!
//! The node-loss tests (issue 14) kill a node (`node.sh kill`: its engine, containerd and
//! containers SIGKILLed, its address gone) and check what atq does about it: the replicas there
//! are lost, the run names them and their node, waits and teardowns stay prompt, and once the
//! node is back the engine leaves nothing of the task on it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use atq_core::cluster::{Cluster, NetworkSpec, Replica, ReplicaState, ResourceKind, ServiceSpec};
use atq_core::data::{remove_bundle, DataBundle};
use atq_core::labels::Role;
use atq_core::{Director, Event, HealthCheck, Owner, Service, Task, WaitCommand};
use atq_tests::multinode::{swarm, swarm_exclusive, KilledNode, Swarm};
use atq_tests::*;
use futures_util::StreamExt;

/// A worker that accepts connections on TCP 7000 until stopped.
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

/// A master script: prints `reached <ip>` for every worker it reaches on 7000, exits 11 if
/// one cannot be reached, 10 if it was not given `want` distinct addresses.
fn reach_every_worker(want: usize) -> String {
    format!(
        r#"
        n=$(echo "$WORKER_CSV_VIPS" | tr ',' '\n' | sort -u | grep -c .)
        [ "$n" = {want} ] || {{ echo "expected {want} distinct addresses, got $n" >&2; exit 10; }}
        for ip in $(echo "$WORKER_CSV_VIPS" | tr ',' ' '); do
            nc -w2 "$ip" 7000 </dev/null || {{ echo "cannot reach $ip:7000" >&2; exit 11; }}
            echo "reached $ip"
        done
        "#
    )
}

/// [`reach_every_worker`], trying each worker up to 10 times a second apart: with 300 workers
/// on this loaded machine a worker can be running before its listener (or the overlay's path
/// to its node) answers — once, 1 of 300 did not within 2 s.
fn reach_every_worker_patiently(want: usize) -> String {
    let script = reach_every_worker(want).replace(
        r#"nc -w2 "$ip" 7000 </dev/null || {"#,
        r#"t=0; until nc -w2 "$ip" 7000 </dev/null; do t=$((t+1)); [ $t -lt 10 ] || break; sleep 1; done; [ $t -lt 10 ] || {"#,
    );
    assert!(script.contains("until nc"), "{script}");
    script
}

/// The replicas of a role of a deployed task, as the manager reports them.
async fn replicas_of(cluster: &impl Cluster, task: &Task, role: Role) -> Vec<Replica> {
    let service = match role {
        Role::Master => task.master_service_name(),
        _ => task.worker_service_name(),
    };
    cluster.replicas(&service, &task.network_name()).await.expect("list replicas")
}

/// Hostname of each replica's node.
fn hostnames(swarm: &Swarm, replicas: &[Replica]) -> Vec<String> {
    let nodes: BTreeMap<String, String> = swarm.nodes().into_iter().map(|n| (n.id, n.hostname)).collect();
    replicas
        .iter()
        .map(|r| r.node_id.as_ref().and_then(|id| nodes.get(id)).cloned().unwrap_or_else(|| format!("{r:?}")))
        .collect()
}

#[tokio::test]
async fn the_swarm_has_one_manager_and_worker_nodes_with_their_own_engines_and_addresses() {
    let Some(swarm) = swarm("the_swarm_has_one_manager…").await else { return };
    let nodes = swarm.nodes();
    assert!(nodes.len() >= 3, "{nodes:#?}");
    let managers: Vec<&str> = nodes.iter().filter(|n| n.role == "manager").map(|n| n.hostname.as_str()).collect();
    assert_eq!(managers, ["node1"], "{nodes:#?}");
    let addresses: BTreeSet<&str> = nodes.iter().map(|n| n.address.as_str()).collect();
    assert_eq!(addresses.len(), nodes.len(), "{nodes:#?}");
    // atq talks to the manager; every node's engine answers on its own socket, as itself.
    let info = swarm.cluster().await.info().await.unwrap();
    assert_eq!(info.local_node.as_deref(), Some(swarm.node("node1").id.as_str()), "{info:?}");
    assert_eq!(info.nodes_ready as usize, nodes.len(), "{info:?}");
    for node in &nodes {
        let name = swarm.docker_on(&node.hostname, &["info", "--format", "{{.Name}} {{.Swarm.NodeID}}"]).unwrap();
        assert_eq!(name.trim(), format!("{} {}", node.hostname, node.id));
    }
}

#[tokio::test]
async fn workers_kept_off_the_manager_run_on_every_other_node_and_the_master_reaches_each() {
    let Some(swarm) = swarm("workers_kept_off_the_manager…").await else { return };
    let name = unique("mnspread");
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(6).constraint("node.role==worker"))
        .master(master(&reach_every_worker(6)))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();

    let workers = replicas_of(&scope.cluster, &task, Role::Worker).await;
    let on: BTreeSet<String> = hostnames(&swarm, &workers).into_iter().collect();
    let worker_nodes: BTreeSet<String> = swarm.worker_hostnames().into_iter().collect();
    assert_eq!(on, worker_nodes, "6 workers, constrained to node.role==worker: {workers:#?}");
    let addresses: BTreeSet<IpAddr> = workers.iter().filter_map(|r| r.address).collect();
    assert_eq!(addresses, deployment.workers().iter().copied().collect(), "{workers:#?}");

    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    for ip in &addresses {
        assert!(outcome.logs.contains(&format!("reached {ip}\n")), "{}", outcome.logs);
    }
    deployment.teardown().await.unwrap();
    let lag = swarm.assert_nothing_left(&scope).await;
    eprintln!("the worker nodes removed their containers {lag:?} after teardown returned");
}

#[tokio::test]
async fn a_master_on_a_worker_node_hands_back_its_exit_code_and_logs() {
    let Some(swarm) = swarm("a_master_on_a_worker_node…").await else { return };
    let name = unique("mnexit");
    let scope = swarm.scope_for_task(&name).await;
    // Environment values are literal (atq escapes swarm's templates), so the node is known from
    // the manager's task list, not from `{{.Node.Hostname}}`.
    let script = format!("{}\necho \"master done\"; echo oops >&2; exit 3", reach_every_worker(2));
    let task = Task::builder(&name)
        .workers(listening_worker(2).constraint("node.hostname==node2"))
        .master(master(&script).constraint("node.hostname==node3"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let on = hostnames(&swarm, &replicas_of(&scope.cluster, &task, Role::Master).await);
    assert_eq!(on, ["node3"]);
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 3, "{outcome:#?}");
    assert!(outcome.logs.contains("master done") && outcome.logs.contains("oops"), "{}", outcome.logs);
    assert_eq!(outcome.logs.matches("reached ").count(), 2, "{}", outcome.logs);
    deployment.teardown().await.unwrap();
    swarm.assert_nothing_left(&scope).await;
}

#[tokio::test]
async fn a_data_bundle_is_read_on_every_node() {
    let Some(swarm) = swarm("a_data_bundle_is_read_on_every_node").await else { return };
    let plan = format!("plan {}\n", unique("mnplan"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.txt"), &plan).unwrap();
    let cluster = swarm.cluster().await;
    let id = DataBundle::from_dir(dir.path()).unwrap().push(&cluster).await.unwrap();
    // Declared before the task's scope, so dropped after it: services go before their configs.
    let bundle_scope = swarm.scope_for_bundle(&id).await;
    let name = unique("mndata");
    let scope = swarm.scope_for_task(&name).await;
    // Environment values are literal (atq escapes swarm's templates): each line is tied to its
    // node through its replica's slot and the manager's task list.
    let read = "echo \"read $(cat /atq/data/plan.txt)\"";
    let worker = Service::new(BUSYBOX)
        .replicas(4)
        .data(&id)
        .constraint("node.role==worker")
        .command(["sh", "-c"])
        .args([format!("{read}; {RUN_UNTIL_STOPPED}")]);
    let reader = master(read).data(&id).constraint("node.role==manager");
    let task = Task::builder(&name).workers(worker).master(reader).build().unwrap();
    let director = Director::new(cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.logs.contains(&format!("read {}", plan.trim())), "{}", outcome.logs);
    assert_eq!(hostnames(&swarm, &replicas_of(&cluster, &task, Role::Master).await), ["node1"]);
    let workers = replicas_of(&cluster, &task, Role::Worker).await;
    let node_of: BTreeMap<u32, String> = workers.iter().map(|r| r.slot).zip(hostnames(&swarm, &workers)).collect();

    // Every worker node read the same file (worker logs can lag behind their start).
    let want: BTreeSet<String> = swarm.worker_hostnames().iter().map(|n| format!("{n} read {}", plan.trim())).collect();
    let worker_logs = || async {
        let stream = director.logs(&name, Role::Worker, &atq_core::cluster::LogOptions::all()).await.unwrap();
        let lines: BTreeSet<String> = stream
            .map(|l| l.unwrap())
            .map(|l| format!("{} {}", l.replica.and_then(|s| node_of.get(&s)).map_or("?", String::as_str), l.text))
            .collect()
            .await;
        (lines == want).then_some(())
    };
    eventually(&format!("the workers print {want:?}"), Duration::from_secs(15), worker_logs).await;

    deployment.teardown().await.unwrap();
    swarm.assert_nothing_left(&scope).await;
    remove_bundle(&cluster, &id).await.unwrap();
    bundle_scope.assert_nothing_left().await;
}

#[tokio::test]
async fn artifacts_come_back_from_the_master_while_the_workers_run_on_other_nodes() {
    let Some(swarm) = swarm("artifacts_come_back…").await else { return };
    let name = unique("mnart");
    let scope = swarm.scope_for_task(&name).await;
    let script = format!(
        "{}\nmkdir -p \"$ATQ_RESULTS_DIR\"; echo \"$WORKER_CSV_VIPS\" > \"$ATQ_RESULTS_DIR/workers.txt\"",
        reach_every_worker(4)
    );
    let task = Task::builder(&name)
        .workers(listening_worker(4).constraint("node.role==worker"))
        .master(master(&script))
        .artifacts("/atq/results")
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    // Only the engine that runs a container can copy from it: atq pins the master to its node.
    assert_eq!(hostnames(&swarm, &replicas_of(&scope.cluster, &task, Role::Master).await), ["node1"]);
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    let out = tempfile::tempdir().unwrap();
    let written = deployment.save_artifacts(out.path()).await.unwrap();
    assert_eq!(written, [out.path().join("workers.txt")]);
    let listed: BTreeSet<IpAddr> = std::fs::read_to_string(out.path().join("workers.txt"))
        .unwrap()
        .trim()
        .split(',')
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(listed, deployment.workers().iter().copied().collect());
    deployment.teardown().await.unwrap();
    swarm.assert_nothing_left(&scope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_waits_for_workers_on_other_nodes_to_listen() {
    let Some(swarm) = swarm("the_probe_waits…").await else { return };
    let name = unique("mnprobe");
    let scope = swarm.scope_for_task(&name).await;
    // Running at once, listening only after 3 s.
    let slow = Service::new(BUSYBOX)
        .replicas(4)
        .constraint("node.role==worker")
        .command(["sh", "-c"])
        .args(["trap 'exit 0' TERM; sleep 3 & wait; nc -ll -p 7000 -e /bin/true & wait"]);
    let probe =
        "for ip in $(echo $WORKER_CSV_VIPS | tr , ' '); do nc -w1 $ip 7000 </dev/null || exit 1; done; echo ready";
    let task = Task::builder(&name)
        .workers(slow)
        // Fails unless every worker already listens when it starts.
        .master(master(&reach_every_worker(4)))
        .wait_command(WaitCommand::new(probe).expect("ready").timeout(Duration::from_secs(60)))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let log = EventLog::record(&director);
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    let events: Vec<Event> = log.of(&name).into_iter().map(|(_, e)| e).collect();
    assert!(events.iter().any(|e| matches!(e, Event::ProbeAttempt { .. })), "nothing to gate: {events:#?}");
    assert!(events.iter().any(|e| matches!(e, Event::ProbePassed { .. })), "{events:#?}");
    deployment.teardown().await.unwrap();
    swarm.assert_nothing_left(&scope).await;
}

#[tokio::test]
async fn an_image_missing_on_one_node_fails_the_deploy_naming_it_and_leaves_nothing() {
    let Some(swarm) = swarm("an_image_missing_on_one_node…").await else { return };
    let name = unique("mnimage");
    // An image only node2 has (no registry to pull it from).
    let image = format!("atq-test/{name}:1");
    swarm.docker_on("node2", &["tag", BUSYBOX, &image]).unwrap();
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(Service::new(&image).replicas(4).constraint("node.role==worker").command(["sleep", "60"]))
        .master(master("exit 0"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let (result, took) = timed(director.deploy(&task)).await;
    let _ = swarm.docker_on("node2", &["rmi", &image]);
    let err = result.expect_err("node3 cannot run its replicas");
    assert!(err.to_string().contains(&format!("No such image: {image}")), "{err}");
    assert!(took < Duration::from_secs(45), "failed after {took:?}");
    director.settled().await;
    swarm.assert_nothing_left(&scope).await;
}

/// The JMeter example's image, on every node when `up.sh` found it on the machine's engine.
const JMETER: &str = "atq-example/jmeter:2.13";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jmeter_example_runs_distributed_over_the_three_nodes() {
    let Some(swarm) = swarm("the_jmeter_example_runs…").await else { return };
    let missing: Vec<String> = swarm
        .nodes()
        .into_iter()
        .filter(|n| swarm.docker_on(&n.hostname, &["image", "inspect", "-f", "{{.Id}}", JMETER]).is_err())
        .map(|n| n.hostname)
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{JMETER} is missing on {missing:?}: build it (examples/jmeter/build-image.sh), then run \
             tests/multinode/up.sh again"
        );
        assert!(std::env::var(atq_tests::multinode::REQUIRE_VAR).map_or(true, |v| v != "1"), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let example = include_str!("../../examples/jmeter/jmeter.yaml");
    let example = Task::from_yaml_str(example).unwrap();
    let name = unique("mnjmeter");
    let scope = swarm.scope_for_task(&name).await;
    let task =
        example.to_builder().workers(example.workers().clone().replicas(3)).build().unwrap().renamed(&name).unwrap();
    let director = Director::new(scope.cluster.clone());
    let (deployment, took) = timed(director.deploy(&task)).await;
    let deployment = deployment.unwrap();
    eprintln!("3 JMeter workers deployed over the nodes in {took:?}");
    let on: BTreeSet<String> =
        hostnames(&swarm, &replicas_of(&scope.cluster, &task, Role::Worker).await).into_iter().collect();
    assert_eq!(on.len(), 3, "one worker per node: {on:?}");
    let outcome = deployment.wait(Some(Duration::from_secs(300))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", outcome.logs);
    // The master's results (CSV with a header; `Hostname` names the remote engine of each
    // sample): every sample passed, and every worker, one per node, produced some.
    let out = tempfile::tempdir().unwrap();
    deployment.save_artifacts(out.path()).await.unwrap();
    let jtl = std::fs::read_to_string(out.path().join("results.jtl")).unwrap();
    let mut lines = jtl.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no {name}: {header:?}"));
    let (success, host) = (column("success"), column("Hostname"));
    let mut samples = BTreeMap::<String, usize>::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.get(success), Some(&"true"), "a failed sample: {line}");
        *samples.entry(fields[host].to_string()).or_default() += 1;
    }
    assert_eq!(samples.len(), 3, "samples per remote engine: {samples:?}");
    eprintln!("samples per remote engine: {samples:?}");
    deployment.teardown().await.unwrap();
    swarm.assert_nothing_left(&scope).await;
}

/// `docker -H manager inspect TASK`: `desired current` states of a task, or `None` once the
/// manager has deleted it.
fn task_states(swarm: &Swarm, task_id: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["-H", &swarm.manager, "inspect", "--type", "task", "--format", "{{.DesiredState}} {{.Status.State}}"])
        .arg(task_id)
        .output()
        .expect("run docker");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The engine facts the node-lost design rests on (issue 14), checked on the engine itself:
/// a killed node is Down within seconds (heartbeat 1 s); its tasks keep their last report,
/// "running", with desired state shutdown; removing their service and network returns at
/// once, but the tasks stay until the node is back, which then removes them and their
/// containers by itself.
#[tokio::test]
async fn a_killed_node_is_down_in_seconds_and_the_engine_cleans_it_once_back() {
    let Some(swarm) = swarm_exclusive("a_killed_node_is_down_in_seconds…").await else { return };
    let cluster = swarm.cluster().await;
    let id = unique("mnfacts");
    let scope = Scope {
        cluster: std::sync::Arc::new(cluster.clone()),
        backend: atq_core::cluster::Backend::Swarm,
        id: id.clone(),
        key: TEST_LABEL,
    };
    let network = NetworkSpec { name: id.clone(), labels: scope.labels(), attachable: true, capacity: 8 };
    cluster.create_network(&network).await.unwrap();
    let spec = ServiceSpec {
        name: id.clone(),
        image: BUSYBOX.into(),
        replicas: 2,
        command: Some(vec!["sh".into(), "-c".into()]),
        args: vec![RUN_UNTIL_STOPPED.into()],
        networks: vec![id.clone()],
        labels: scope.labels(),
        container_labels: scope.labels(),
        placement: atq_core::cluster::Placement { local_node: false, constraints: vec!["node.hostname==node3".into()] },
        ..Default::default()
    };
    cluster.create_service(&spec).await.unwrap();
    let replicas = wait_replicas(&cluster, &id, &id, Duration::from_secs(30), all_running(2)).await;
    let tasks: Vec<String> = replicas.iter().map(|r| r.id.clone()).collect();

    let killed = swarm.kill("node3");
    let down = swarm.wait_node_state("node3", "down", Duration::from_secs(15)).await;
    eprintln!("node3 marked down {down:?} after it was killed");
    assert!(down < Duration::from_secs(8), "with a 1 s heartbeat: {down:?}");
    for task in &tasks {
        assert_eq!(task_states(&swarm, task).as_deref(), Some("shutdown running"), "task {task}");
    }
    let (_, took) = timed(async {
        swarm.docker(&["service", "rm", &id]);
        swarm.docker(&["network", "rm", &id]);
    })
    .await;
    assert!(took < Duration::from_secs(5), "removing the service and network took {took:?}");
    assert!(scope.leftovers(ResourceKind::Service).await.is_empty());
    assert!(scope.leftovers(ResourceKind::Network).await.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for task in &tasks {
        assert_eq!(task_states(&swarm, task).as_deref(), Some("remove running"), "task {task} while node3 is down");
    }

    let booted = killed.start().await;
    eprintln!("node3 ready again {booted:?} after it was started");
    let start = Instant::now();
    eventually("the manager deletes the tasks of node3", Duration::from_secs(15), || async {
        tasks.iter().all(|t| task_states(&swarm, t).is_none()).then_some(())
    })
    .await;
    eprintln!("tasks deleted {:?} after node3 was ready", start.elapsed());
    let lag = swarm.assert_nothing_left(&scope).await;
    eprintln!("node3's containers gone {:?} after it was ready", start.elapsed().max(lag));
}

/// Boots the killed node and asserts that, once it is back, no node holds anything of the scope.
async fn back_and_clean(swarm: &Swarm, killed: KilledNode, scope: &Scope) {
    killed.start().await;
    swarm.assert_nothing_left(scope).await;
}

/// How long `teardown` may take once the node is known Down (issue 14: a few seconds).
const LOST_NODE_TEARDOWN_BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_mid_run_is_named_with_its_workers_and_teardown_stays_prompt() {
    let Some(swarm) = swarm_exclusive("a_node_lost_mid_run…").await else { return };
    let name = unique("mnlost");
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(6).constraint("node.role==worker"))
        .master(master("trap 'exit 0' TERM; sleep 12 & wait; echo master done").constraint("node.role==manager"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let mut events = director.subscribe();
    let deployment = director.deploy(&task).await.unwrap();
    let workers = replicas_of(&scope.cluster, &task, Role::Worker).await;
    let node3 = swarm.node("node3");
    let lost: BTreeSet<u32> =
        workers.iter().filter(|r| r.node_id.as_ref() == Some(&node3.id)).map(|r| r.slot).collect();
    assert!(!lost.is_empty() && lost.len() < 6, "{workers:#?}");

    let killed = swarm.kill_until_down("node3").await;
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(!outcome.succeeded(), "workers were lost: {outcome:#?}");
    let named: BTreeSet<u32> = outcome.failed_workers.iter().map(|r| r.slot).collect();
    assert_eq!(named, lost, "the workers of node3: {outcome:#?}");
    for r in &outcome.failed_workers {
        assert_eq!(
            (r.state, r.node_id.as_ref(), r.node.as_deref()),
            (ReplicaState::Lost, Some(&node3.id), Some("node3"))
        );
        assert!(r.error.as_deref().is_some_and(|e| e.contains("node3")), "{r:#?}");
    }

    let (removed, took) = timed(deployment.teardown()).await;
    removed.unwrap();
    eprintln!("teardown with node3 down: {took:?}");
    assert!(took < LOST_NODE_TEARDOWN_BOUND, "teardown took {took:?} with node3 down");
    let mut left = None;
    while let Ok(event) = events.try_recv() {
        if let Event::LeftOnLostNodes { replicas, nodes, .. } = event {
            left = Some((replicas.len(), nodes));
        }
    }
    assert_eq!(left, Some((lost.len(), vec!["node3".to_string()])), "the teardown says what it left to the engine");
    swarm.assert_manager_holds_nothing(&scope).await;
    back_and_clean(&swarm, killed, &scope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_during_deploy_fails_it_fast_naming_the_node_and_rolls_back() {
    let Some(swarm) = swarm_exclusive("a_node_lost_during_deploy…").await else { return };
    let name = unique("mndeploy");
    let scope = swarm.scope_for_task(&name).await;
    // Healthy only after 20 s: the deploy is still waiting for the workers when node3 goes.
    let worker = listening_worker(4)
        .constraint("node.role==worker")
        .health_check(
            HealthCheck::new("test -f /tmp/ready")
                .interval(Duration::from_secs(1))
                .start_period(Duration::from_secs(60)),
        )
        .args(["trap 'exit 0' TERM; (sleep 20; touch /tmp/ready) & nc -ll -p 7000 -e /bin/true & wait"]);
    let task = Task::builder(&name)
        .workers(worker)
        .master(master("exit 0"))
        .start_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let mut events = director.subscribe();
    let deploy = tokio::spawn({
        let director = director.clone();
        let task = task.clone();
        async move { director.deploy(&task).await.map(|_| ()) }
    });
    loop {
        if let Event::WorkersCreated { task: t, .. } = events.recv().await.unwrap() {
            if t == name {
                break;
            }
        }
    }
    let killed = swarm.kill("node3");
    let killed_at = Instant::now();
    let result = deploy.await.unwrap();
    let took = killed_at.elapsed();
    let err = result.expect_err("a deploy that lost a node must fail");
    eprintln!("deploy failed and rolled back {took:?} after node3 was killed: {err}");
    assert!(took < Duration::from_secs(15), "failed {took:?} after node3 was killed: {err}");
    assert!(err.to_string().contains("node3"), "the error names the node: {err}");
    director.settled().await;
    swarm.assert_manager_holds_nothing(&scope).await;
    back_and_clean(&swarm, killed, &scope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_lost_with_its_node_ends_the_wait_naming_the_node() {
    let Some(swarm) = swarm_exclusive("a_master_lost_with_its_node…").await else { return };
    let name = unique("mnmaster");
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(2).constraint("node.hostname==node2"))
        .master(master(RUN_UNTIL_STOPPED).constraint("node.hostname==node3"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let killed = swarm.kill_until_down("node3").await;
    let down_at = Instant::now();
    let result = deployment.wait(Some(Duration::from_secs(60))).await;
    let took = down_at.elapsed();
    eprintln!("wait() ended {took:?} after node3 was down: {result:?}");
    assert!(took < Duration::from_secs(5), "wait() returned {took:?} after node3 was down: {result:?}");
    let node3 = swarm.node("node3");
    let said = format!("{result:?}");
    assert!(said.contains("node3") || said.contains(&node3.id), "names the node: {said}");
    let (removed, took) = timed(deployment.teardown()).await;
    removed.unwrap();
    assert!(took < LOST_NODE_TEARDOWN_BOUND, "teardown took {took:?} with node3 down");
    back_and_clean(&swarm, killed, &scope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_a_task_of_a_dead_owner_on_a_lost_node_promptly() {
    let Some(swarm) = swarm_exclusive("prune_removes_a_task…").await else { return };
    let name = unique("mnprune");
    let scope = swarm.scope_for_task(&name).await;
    // A process that has exited: the task it "owns" is a leftover for prune.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let dead = Owner { pid, start: 1, ..Owner::current() };
    let task = Task::builder(&name)
        .workers(listening_worker(4).constraint("node.role==worker"))
        .master(master(RUN_UNTIL_STOPPED))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone()).with_owner(dead);
    director.deploy(&task).await.unwrap().keep();
    let killed = swarm.kill_until_down("node3").await;
    let (report, took) = timed(Director::new(scope.cluster.clone()).prune()).await;
    let report = report.unwrap();
    eprintln!("prune with node3 down: {took:?}");
    assert!(took < LOST_NODE_TEARDOWN_BOUND, "prune took {took:?} with node3 down: {report:?}");
    assert!(report.removed().contains(&name.as_str()), "{report:?}");
    swarm.assert_manager_holds_nothing(&scope).await;
    back_and_clean(&swarm, killed, &scope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_on_a_down_node_is_not_reported_running() {
    let Some(swarm) = swarm_exclusive("a_replica_on_a_down_node…").await else { return };
    let name = unique("mnrunning");
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(4).constraint("node.role==worker"))
        .master(master(RUN_UNTIL_STOPPED).constraint("node.role==manager"))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let killed = swarm.kill_until_down("node3").await;
    let node3 = swarm.node("node3");
    let workers = replicas_of(&scope.cluster, &task, Role::Worker).await;
    let on_node3: Vec<&Replica> = workers.iter().filter(|r| r.node_id.as_ref() == Some(&node3.id)).collect();
    assert!(!on_node3.is_empty(), "{workers:#?}");
    for r in on_node3 {
        assert_eq!((r.state, r.node.as_deref()), (ReplicaState::Lost, Some("node3")), "{r:#?}");
    }
    let info = director.inspect(&name).await.unwrap();
    assert!(info.workers_running < 4, "{info:#?}");
    deployment.teardown().await.unwrap();
    back_and_clean(&swarm, killed, &scope).await;
}

/// 300 workers, 100 per node, in a /23 (the network sizing). Exclusive, with a 5 s heartbeat:
/// on this machine 300 starting containers stall the engines long enough for a 1 s heartbeat to
/// mark every node down (see [`Swarm::with_heartbeat`]). Measured (BENCHMARKS.md): 2–2.7 min.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_workers_spread_over_the_nodes_are_reached_and_torn_down() {
    let Some(swarm) = swarm_exclusive("three_hundred_workers…").await else { return };
    let _heartbeat = swarm.with_heartbeat("5s");
    let name = unique("mn300");
    let scope = swarm.scope_for_task(&name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(300))
        .master(master(&reach_every_worker_patiently(300)))
        .start_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let director = Director::new(scope.cluster.clone());
    let (deployment, deployed) = timed(director.deploy(&task)).await;
    let deployment = deployment.unwrap();
    let on = hostnames(&swarm, &replicas_of(&scope.cluster, &task, Role::Worker).await);
    let per_node = on.iter().fold(BTreeMap::<&str, usize>::new(), |mut m, h| {
        *m.entry(h.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_node.len(), swarm.nodes().len(), "{per_node:?}");
    let outcome = deployment.wait(Some(Duration::from_secs(300))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", outcome.logs);
    assert_eq!(outcome.logs.matches("reached ").count(), 300);
    let (removed, torn) = timed(deployment.teardown()).await;
    removed.unwrap();
    eprintln!("300 workers over {per_node:?}: deployed in {deployed:?}, torn down in {torn:?}");
    swarm.assert_nothing_left(&scope).await;
}

/// The `atq` binary of this workspace (built by `cargo build -p atq-cli`, as `scripts/test.sh`
/// does before this stage), or `ATQ_BIN`.
fn atq_bin() -> std::path::PathBuf {
    let path = std::env::var_os("ATQ_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/atq"));
    assert!(path.exists(), "{} is missing: `cargo build -p atq-cli` first (or set ATQ_BIN)", path.display());
    path
}

/// Issue 14's report, as a user sees it: `atq run` on the swarm, a worker node killed mid-run.
/// The master finishes (exit 0), the lost workers are named with their node, the teardown does
/// not wait for them, and `atq run` exits 98 (workers lost) — not 125 after a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atq_run_with_a_node_lost_mid_run_exits_98_naming_the_workers_and_their_node() {
    use std::io::BufRead;
    let Some(swarm) = swarm_exclusive("atq_run_with_a_node_lost_mid_run…").await else { return };
    let name = unique("mncli");
    let scope = swarm.scope_for_task(&name).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("task.yaml");
    std::fs::write(
        &file,
        format!(
            "name: {name}\nworker:\n  image: {BUSYBOX}\n  replicas: 4\n  constraints: [\"node.role==worker\"]\n  command: [/bin/sh, -c]\n  args: [\"trap 'exit 0' TERM; sleep 600 & wait\"]\nmaster:\n  image: {BUSYBOX}\n  constraints: [\"node.role==manager\"]\n  command: [/bin/sh, -c]\n  args: [\"trap 'exit 0' TERM; sleep 10 & wait; echo master done\"]\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(atq_bin())
        .args(["run", "--json", "--engine", "swarm"])
        .arg(&file)
        .env("DOCKER_HOST", &swarm.manager)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let mut seen = Vec::new();
    while let Some(event) = rx.recv().await {
        let running = event["event"] == "master_running";
        seen.push(event);
        if running {
            break;
        }
    }
    assert_eq!(seen.last().map(|e| e["event"].clone()), Some("master_running".into()), "{seen:#?}");
    let killed = swarm.kill_until_down("node3").await;
    let down_at = Instant::now();
    while let Some(event) = rx.recv().await {
        seen.push(event);
    }
    let status = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let after_down = down_at.elapsed();
    let stderr = String::from_utf8_lossy(&status.stderr);
    eprintln!("atq run ended {after_down:?} after node3 was down, exit {:?}", status.status.code());
    assert_eq!(status.status.code(), Some(98), "workers lost: {stderr}\n{seen:#?}");
    // The master sleeps 10 s from its start; the teardown must add only seconds to that.
    assert!(after_down < Duration::from_secs(10) + LOST_NODE_TEARDOWN_BOUND, "{after_down:?}");
    let outcome = seen.iter().find(|e| e["event"] == "outcome").expect("an outcome");
    assert_eq!(outcome["exit_code"], 98);
    let lost = outcome["outcome"]["failed_workers"].as_array().unwrap();
    assert!(!lost.is_empty(), "{outcome:#}");
    assert!(lost.iter().all(|w| w["state"] == "lost" && w["node"] == "node3"), "{outcome:#}");
    let left = seen.iter().find(|e| e["event"] == "left_on_lost_nodes").expect("the teardown says what it left");
    assert_eq!(left["nodes"], serde_json::json!(["node3"]));
    assert_eq!(left["replicas"].as_array().map(Vec::len), Some(lost.len()));
    swarm.assert_manager_holds_nothing(&scope).await;
    back_and_clean(&swarm, killed, &scope).await;
}
