//! The Director on the real engine: whole tasks, on both backends.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use atq_core::cluster::ReplicaState;
use atq_core::{Error, Event, Service, Task, TaskState, WaitCommand};
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
    scope.assert_nothing_left().await;
}

async fn the_master_gets_three_distinct_worker_addresses_and_reaches_each(backend: Backend) {
    let name = unique("d3");
    let scope = Scope::for_task(backend, &name).await;
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
    let director = scope.director();
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

async fn a_non_zero_master_exit_code_is_the_outcome(backend: Backend) {
    let name = unique("d7");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(1))
        .master(master("echo done; echo bad news >&2; exit 7"))
        .build()
        .unwrap();
    let director = scope.director();
    let outcome = director.run(&task).await.unwrap();
    assert_eq!((outcome.exit_code, outcome.state), (7, ReplicaState::Failed), "{outcome:#?}");
    assert!(!outcome.succeeded());
    assert!(outcome.logs.contains("done") && outcome.logs.contains("bad news"), "{}", outcome.logs);
    director.settled().await;
    assert_nothing_left(&scope).await;
}

async fn a_missing_worker_image_fails_fast_naming_it_and_leaves_nothing(backend: Backend) {
    let name = unique("dmiss");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(Service::new("atq-test/no-such-worker:1").replicas(2))
        .master(master("exit 0"))
        .build()
        .unwrap();
    let director = scope.director();
    let (result, took) = timed(director.deploy(&task)).await;
    let err = result.expect_err("the deploy must fail");
    assert!(err.to_string().contains("atq-test/no-such-worker:1"), "{err}");
    assert!(matches!(err, Error::ReplicaFailed { .. }), "{err:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    director.settled().await;
    assert_nothing_left(&scope).await;
}

/// The probe of the gating test: passes once every worker accepts connections on 8080.
const ALL_WORKERS_LISTEN: &str =
    "for ip in $(echo $WORKER_CSV_VIPS | tr , ' '); do nc -w1 $ip 8080 </dev/null || exit 1; done; echo ready";

async fn a_wait_command_gates_the_master_until_slow_workers_listen(backend: Backend) {
    let name = unique("dprobe");
    let scope = Scope::for_task(backend, &name).await;
    // Workers run at once but listen only after 3 s: "running" is not "ready".
    let slow_worker = Service::new(BUSYBOX)
        .replicas(2)
        .command(["sh", "-c"])
        .args(["trap 'exit 0' TERM; sleep 3 & wait; nc -ll -p 8080 -e /bin/true & wait"]);
    // The master fails unless every worker already listens when it starts.
    let script = r#"
        for ip in $(echo "$WORKER_CSV_VIPS" | tr ',' ' '); do
            nc -w1 "$ip" 8080 </dev/null || { echo "worker $ip not listening" >&2; exit 12; }
        done
        echo "all workers listen"
    "#;
    let task = Task::builder(&name)
        .workers(slow_worker)
        .master(master(script))
        .wait_command(WaitCommand::new(ALL_WORKERS_LISTEN).expect("ready").timeout(Duration::from_secs(30)))
        .build()
        .unwrap();
    let director = scope.director();
    let log = EventLog::record(&director);
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.logs.contains("all workers listen"), "{}", outcome.logs);
    let events: Vec<Event> = log.of(&name).into_iter().map(|(_, e)| e).collect();
    let failed_tries = events.iter().filter(|e| matches!(e, Event::ProbeAttempt { .. })).count();
    assert!(failed_tries >= 1, "the probe passed at once, so it gated nothing: {events:#?}");
    let passed = events.iter().find_map(|e| match e {
        Event::ProbePassed { attempts, .. } => Some(*attempts),
        _ => None,
    });
    assert_eq!(passed, Some(u32::try_from(failed_tries).unwrap() + 1), "{events:#?}");
    let order: Vec<usize> = [
        events.iter().position(|e| matches!(e, Event::ProbePassed { .. })),
        events.iter().position(|e| matches!(e, Event::MasterCreated { .. })),
    ]
    .into_iter()
    .map(Option::unwrap)
    .collect();
    assert!(order[0] < order[1], "the master was created before the probe passed: {events:#?}");
    deployment.teardown().await.unwrap();
    assert_nothing_left(&scope).await;
}

async fn the_delay_passes_between_workers_ready_and_the_master_created(backend: Backend) {
    let name = unique("ddelay");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(1))
        .master(master("exit 0"))
        .delay(Duration::from_secs(2))
        .build()
        .unwrap();
    let director = scope.director();
    let log = EventLog::record(&director);
    let deployment = director.deploy(&task).await.unwrap();
    let ready = log.when(&name, |e| matches!(e, Event::WorkersReady { .. }));
    let master_created = log.when(&name, |e| matches!(e, Event::MasterCreated { .. }));
    let gap = master_created.duration_since(ready);
    assert!(gap >= Duration::from_secs(2), "the master was created {gap:?} after the workers were ready");
    // Only a gross error (a delay in the wrong unit, applied per worker): the time itself is
    // the engine's and the machine's, measured in benches, not asserted.
    assert!(gap < Duration::from_secs(60), "the delay took {gap:?}");
    deployment.teardown().await.unwrap();
    assert_nothing_left(&scope).await;
}

async fn teardown_of_a_running_task_returns_only_when_its_containers_are_gone(backend: Backend) {
    let name = unique("dtear");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name).workers(listening_worker(2)).master(master(RUN_UNTIL_STOPPED)).build().unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();
    // Worker and master containers run; no settling, no sleep: teardown itself must wait.
    assert_eq!(scope.leftover_containers().len(), 3, "{:?}", scope.leftover_containers());
    deployment.teardown().await.unwrap();
    assert_nothing_left(&scope).await;
}

async fn a_worker_killed_while_the_master_runs_is_named_in_the_outcome(backend: Backend) {
    let name = unique("dkill");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(2))
        .master(master("trap 'exit 0' TERM; sleep 3 & wait; echo master done"))
        .build()
        .unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();
    // Kill worker 2's container behind the engine's back (it runs on this node).
    let service = task.worker_service_name();
    let replicas = scope.cluster.replicas(&service, &task.network_name()).await.unwrap();
    let victim = replicas.iter().find(|r| r.slot == 2).and_then(|r| r.container_id.clone());
    docker(&["kill", &victim.unwrap_or_else(|| panic!("no container for slot 2: {replicas:#?}"))]);
    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(!outcome.succeeded(), "a worker died: {outcome:#?}");
    let failed: Vec<(u32, Option<i64>)> = outcome.failed_workers.iter().map(|r| (r.slot, r.exit_code)).collect();
    assert_eq!(failed, [(2, Some(137))], "{outcome:#?}");
    assert!(outcome.failed_workers[0].name.starts_with(&format!("{service}.2")), "{outcome:#?}");
    deployment.teardown().await.unwrap();
    assert_nothing_left(&scope).await;
}

async fn list_and_inspect_show_a_running_task_with_its_workers_then_its_exit_code(backend: Backend) {
    let name = unique("dlist");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(2))
        .master(master("trap 'exit 0' TERM; sleep 2 & wait; exit 3"))
        .build()
        .unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();

    let info = director.inspect(&name).await.unwrap();
    assert_eq!(info.state, TaskState::Running, "{info:#?}");
    assert_eq!(info.workers, deployment.workers(), "{info:#?}");
    assert_eq!((info.workers_running, info.workers_total), (2, 2), "{info:#?}");
    let listed = director.list().await.unwrap();
    let mine = listed.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} not listed: {listed:#?}"));
    assert_eq!((&mine.state, &mine.workers), (&TaskState::Running, &info.workers), "{mine:#?}");

    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 3, "{outcome:#?}");
    let info = director.inspect(&name).await.unwrap();
    assert_eq!(info.state, TaskState::Finished { exit_code: 3 }, "{info:#?}");
    let listed = director.list().await.unwrap();
    let mine = listed.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} not listed: {listed:#?}"));
    assert_eq!(mine.state, TaskState::Finished { exit_code: 3 }, "{mine:#?}");

    deployment.teardown().await.unwrap();
    assert!(matches!(director.inspect(&name).await, Err(Error::TaskNotFound { .. })));
    assert_nothing_left(&scope).await;
}

async fn the_masters_artifacts_are_copied_out_before_teardown(backend: Backend) {
    let name = unique("dart");
    let scope = Scope::for_task(backend, &name).await;
    let script = r#"
        set -e
        mkdir -p "$ATQ_RESULTS_DIR/sub"
        echo "requests: 100" > "$ATQ_RESULTS_DIR/summary.txt"
        printf 'a,b\n1,2\n' > "$ATQ_RESULTS_DIR/sub/data.csv"
    "#;
    let task = Task::builder(&name)
        .workers(listening_worker(1))
        .master(master(script))
        .artifacts("/atq/results")
        .build()
        .unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    let out = tempfile::tempdir().unwrap();
    let mut written = deployment.save_artifacts(out.path()).await.unwrap();
    written.sort();
    assert_eq!(written, [out.path().join("sub/data.csv"), out.path().join("summary.txt")]);
    assert_eq!(std::fs::read_to_string(out.path().join("summary.txt")).unwrap(), "requests: 100\n");
    assert_eq!(std::fs::read_to_string(out.path().join("sub/data.csv")).unwrap(), "a,b\n1,2\n");
    deployment.teardown().await.unwrap();
    director.settled().await;
    assert_nothing_left(&scope).await;
}

async fn a_master_that_wrote_no_artifacts_is_artifacts_not_found(backend: Backend) {
    let name = unique("dnoart");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name)
        .workers(listening_worker(1))
        .master(master("exit 0"))
        .artifacts("/atq/results")
        .build()
        .unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();
    deployment.wait(Some(Duration::from_secs(60))).await.unwrap();
    let err = deployment.save_artifacts(&std::env::temp_dir().join(&name)).await.unwrap_err();
    assert!(matches!(err, Error::ArtifactsNotFound { .. }), "{err}");
    deployment.teardown().await.unwrap();
    director.settled().await;
    assert_nothing_left(&scope).await;
}

/// Three clients deploying at once, each with its own connection (as three pytest-xdist
/// workers do), each choosing a subnet from what it sees: all three deploy. On swarm two of them
/// used to get the same free block; the engine accepts the overlap and never allocates the later
/// network, whose workers stayed pending until the start timeout.
async fn concurrent_deploys_from_separate_clients_each_get_a_network_of_their_own(backend: Backend) {
    let names: Vec<String> = (0..3).map(|_| unique("dconc")).collect();
    let mut scopes = Vec::new();
    for name in &names {
        scopes.push(Scope::for_task(backend, name).await);
    }
    let deploys = names.iter().map(|name| async move {
        let task = Task::builder(name)
            .workers(listening_worker(1))
            .master(master(RUN_UNTIL_STOPPED))
            .start_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // A director of its own on a connection of its own: no state shared with the others.
        let director = atq_core::Director::from_arc(cluster(backend).await);
        let deployment = director.deploy(&task).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let subnet = subnet(&format!("{name}_net"));
        deployment.teardown().await.unwrap();
        director.settled().await;
        subnet
    });
    let subnets = futures_util::future::join_all(deploys).await;
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            assert!(!in_subnet(a.0, *b) && !in_subnet(b.0, *a), "overlapping task networks: {subnets:?}");
        }
    }
    for scope in &scopes {
        assert_nothing_left(scope).await;
    }
}

on_both!(the_master_gets_three_distinct_worker_addresses_and_reaches_each);
on_both!(concurrent_deploys_from_separate_clients_each_get_a_network_of_their_own, multi_thread);
on_both!(a_non_zero_master_exit_code_is_the_outcome);
on_both!(a_missing_worker_image_fails_fast_naming_it_and_leaves_nothing);
on_both!(a_wait_command_gates_the_master_until_slow_workers_listen, multi_thread);
on_both!(the_delay_passes_between_workers_ready_and_the_master_created, multi_thread);
on_both!(teardown_of_a_running_task_returns_only_when_its_containers_are_gone);
on_both!(a_worker_killed_while_the_master_runs_is_named_in_the_outcome);
on_both!(list_and_inspect_show_a_running_task_with_its_workers_then_its_exit_code);
on_both!(the_masters_artifacts_are_copied_out_before_teardown);
on_both!(a_master_that_wrote_no_artifacts_is_artifacts_not_found);

/// A worker that ignores SIGTERM (a bare `sleep` as PID 1 does) is killed after its role's stop
/// grace period, not the engine's 10 s: teardown takes about the grace period, concurrently for
/// every replica.
async fn teardown_gives_a_replica_that_ignores_sigterm_its_stop_grace_period(backend: Backend) {
    let name = unique("dgrace");
    let scope = Scope::for_task(backend, &name).await;
    let stubborn = Service::new(BUSYBOX)
        .replicas(3)
        .command(["sh", "-c"])
        .args(["trap '' TERM; while :; do sleep 0.2; done"])
        .stop_grace_period(Duration::from_secs(2));
    let task = Task::builder(&name).workers(stubborn).master(master(RUN_UNTIL_STOPPED)).build().unwrap();
    let director = scope.director();
    let deployment = director.deploy(&task).await.unwrap();
    // The engine holds the 2 s (not its default 10 s) for each worker: on swarm in the service's
    // spec, on a plain engine in each container's config. How long teardown takes is measured
    // in benches (`engine-latency`), not asserted here: a loaded machine stretches it.
    let worker = format!("{name}_worker");
    match backend {
        Backend::Swarm => {
            let grace =
                docker(&["service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}", &worker]);
            assert_eq!(grace.trim(), "2s", "the worker service's stop grace period");
        }
        _ => {
            let workers = containers_labelled("io.atq.engine.service", &worker);
            assert_eq!(workers.len(), 3, "{workers:?}");
            for container in &workers {
                let timeout = docker(&["container", "inspect", "-f", "{{.Config.StopTimeout}}", container]);
                assert_eq!(timeout.trim(), "2", "{container}'s stop timeout in s");
            }
        }
    }
    let (torn_down, took) = timed(deployment.teardown()).await;
    torn_down.unwrap();
    assert!(took >= Duration::from_secs(2), "the workers were killed before their grace period: {took:?}");
    assert_nothing_left(&scope).await;
}

on_both!(teardown_gives_a_replica_that_ignores_sigterm_its_stop_grace_period);
