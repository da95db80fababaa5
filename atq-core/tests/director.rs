//! The Director on FakeCluster: the deploy plan, rollback at every step, the queue, prune.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atq_core::cluster::fake::{CallKind, Matcher, Script};
use atq_core::cluster::{
    Cluster, ConfigSpec, EngineInfo, LabelSelector, LogStream, NetworkSpec, Replica, ReplicaState, Resource,
    ResourceKind, ServiceSpec,
};
use atq_core::labels::{self, Role};
use atq_core::{Director, Error, Event, FakeCluster, Owner, Service, Task, TaskState, WaitCommand};

fn task(name: &str, replicas: u32) -> Task {
    Task::builder(name)
        .workers(Service::new("lab/worker:1").replicas(replicas).env("MODE", "worker"))
        .master(Service::new("lab/master:1").env("MODE", "master"))
        .build()
        .unwrap()
}

fn env_of(spec: &ServiceSpec, key: &str) -> Option<String> {
    spec.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

#[tokio::test]
async fn deploy_follows_the_plan_and_tells_the_master_where_every_worker_is() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let t = task("plan", 3);
    let d = director.deploy(&t).await.unwrap();

    let workers = d.workers().to_vec();
    assert_eq!(workers.len(), 3);
    assert_eq!(workers.iter().collect::<HashSet<_>>().len(), 3, "distinct addresses");
    let subnet = fake.network_subnet("plan_net").unwrap();
    assert!(workers.iter().all(|a| subnet.contains(*a)), "addresses come from the task network");

    let master = fake.service_spec("plan_master").unwrap();
    let csv = workers.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(env_of(&master, "WORKER_CSV_VIPS").as_deref(), Some(csv.as_str()));
    assert_eq!(env_of(&master, "REMOTES").as_deref(), Some(csv.as_str()));
    assert_eq!(env_of(&master, "MODE").as_deref(), Some("master"));
    assert_eq!(env_of(&master, "ATQ_ROLE").as_deref(), Some("master"));
    assert_eq!(env_of(&master, "ATQ_WORKERS_FILE").as_deref(), Some("/atq/workers"));
    assert_eq!(master.replicas, 1);
    let list = fake.config_data("plan_workers").unwrap();
    assert_eq!(String::from_utf8(list).unwrap(), workers.iter().map(|a| format!("{a}\n")).collect::<String>());
    assert_eq!(master.configs[0].target, "/atq/workers");

    let worker = fake.service_spec("plan_worker").unwrap();
    assert_eq!(worker.replicas, 3);
    assert_eq!(worker.endpoint_mode, atq_core::cluster::EndpointMode::Dnsrr);
    assert_eq!(env_of(&worker, "MASTER_HOST").as_deref(), Some("plan_master"));
    assert_eq!(env_of(&worker, "ATQ_TASK").as_deref(), Some("plan"));
    assert_eq!(env_of(&worker, "ATQ_ROLE").as_deref(), Some("worker"));
    assert_eq!(worker.networks, vec!["plan_net".to_owned()]);

    let outcome = d.wait(None).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert!(outcome.succeeded());
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn every_object_carries_the_task_labels() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let _d = director.deploy(&task("labelled", 2).to_builder().label("team", "perf").build().unwrap()).await.unwrap();
    let me = Owner::current().to_string();
    let mut roles = BTreeSet::new();
    for kind in [ResourceKind::Network, ResourceKind::Service, ResourceKind::Config] {
        for r in fake.list_resources(kind, &LabelSelector::new()).await.unwrap() {
            let l = &r.labels;
            assert_eq!(l.get(labels::MANAGED).map(String::as_str), Some("true"), "{r:?}");
            assert_eq!(l.get(labels::TASK).map(String::as_str), Some("labelled"), "{r:?}");
            assert_eq!(l.get(labels::OWNER), Some(&me), "{r:?}");
            assert_eq!(l.get("team").map(String::as_str), Some("perf"), "{r:?}");
            let expires: i64 = l[labels::EXPIRES].parse().unwrap();
            assert!(expires > 0);
            roles.insert(l[labels::ROLE].clone());
        }
    }
    assert_eq!(roles, ["master", "network", "worker"].map(String::from).into());
    let worker = fake.service_spec("labelled_worker").unwrap();
    assert_eq!(worker.container_labels.get(labels::TASK).map(String::as_str), Some("labelled"));
}

#[tokio::test]
async fn the_masters_exit_code_and_logs_come_back() {
    let fake = FakeCluster::new();
    fake.master_exits(3, ["summary = 10 in 1s", "errors: 2"]);
    let outcome = Director::new(fake.clone()).run(&task("exit3", 1)).await.unwrap();
    assert_eq!(outcome.exit_code, 3);
    assert_eq!(outcome.state, ReplicaState::Failed);
    assert!(outcome.logs.contains("summary = 10 in 1s\nerrors: 2"), "{:?}", outcome.logs);
    assert!(fake.is_empty(), "run tears down");
}

/// The calls a successful deploy makes, as (kind, nth occurrence of that kind).
async fn calls_of_a_deploy(t: &Task) -> Vec<(CallKind, u64)> {
    let fake = FakeCluster::new();
    fake.probe_output(0, "ready");
    let d = Director::new(fake.clone()).deploy(t).await.unwrap();
    let mut seen = std::collections::HashMap::new();
    let calls = fake
        .call_log()
        .into_iter()
        .map(|c| {
            let n = seen.entry(c.kind).or_insert(0u64);
            *n += 1;
            (c.kind, *n)
        })
        .collect();
    d.keep();
    calls
}

fn probed(name: &str) -> Task {
    task(name, 2).to_builder().wait_command(WaitCommand::new("check").expect("ready")).build().unwrap()
}

#[tokio::test]
async fn failing_any_engine_call_of_a_deploy_rolls_everything_back() {
    let t = probed("faulty");
    let calls = calls_of_a_deploy(&t).await;
    assert!(calls.len() >= 8, "network, workers, polls, probe, config, master: {calls:?}");
    for (kind, nth) in calls {
        for lost_answer in [false, true] {
            let fake = FakeCluster::new();
            fake.probe_output(0, "ready");
            if lost_answer {
                fake.fail_call_after(kind, nth);
            } else {
                fake.fail_call(kind, nth);
            }
            let director = Director::new(fake.clone());
            let err = director.deploy(&t).await.expect_err("the injected fault fails the deploy");
            assert!(err.to_string().contains("injected fault"), "{kind:?} #{nth}: {err}");
            director.settled().await;
            assert!(fake.is_empty(), "{kind:?} #{nth} (lost answer: {lost_answer}) left {:?}", fake.services());
        }
    }
}

/// An object whose creation's answer was lost is not in the deploy's record, but a service among
/// them still holds the task network. The rollback finds such objects before removing anything,
/// so every network and config goes on the first try: a real engine refuses to remove a network
/// in use, and atq would retry it for its whole removal timeout.
#[tokio::test]
async fn a_rollback_removes_unrecorded_services_before_the_network_they_hold() {
    let t = probed("lostfirst");
    for (kind, nth) in calls_of_a_deploy(&t).await {
        if !matches!(kind, CallKind::CreateService | CallKind::CreateConfig | CallKind::CreateNetwork) {
            continue;
        }
        let fake = FakeCluster::new();
        fake.probe_output(0, "ready");
        fake.fail_call_after(kind, nth);
        let director = Director::new(fake.clone());
        director.deploy(&t).await.expect_err("the injected fault fails the deploy");
        assert!(fake.is_empty(), "{kind:?} #{nth} left {:?}", fake.services());
        let removals: Vec<_> = fake
            .call_log()
            .into_iter()
            .filter(|c| matches!(c.kind, CallKind::RemoveNetwork | CallKind::RemoveConfig))
            .collect();
        let distinct: HashSet<_> = removals.iter().map(|c| (c.kind, c.target.clone())).collect();
        assert_eq!(removals.len(), distinct.len(), "{kind:?} #{nth}: removed some object twice: {removals:?}");
    }
}

/// A cluster that never answers its `stall_at`-th call, and says when it got there.
struct Stall {
    inner: FakeCluster,
    calls: AtomicUsize,
    stall_at: usize,
    reached: tokio::sync::Notify,
}

impl Stall {
    async fn step(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.stall_at {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Cluster for Stall {
    async fn info(&self) -> atq_core::Result<EngineInfo> {
        self.step().await;
        self.inner.info().await
    }
    async fn create_network(&self, spec: &NetworkSpec) -> atq_core::Result<String> {
        self.step().await;
        self.inner.create_network(spec).await
    }
    async fn remove_network(&self, name: &str) -> atq_core::Result<()> {
        self.inner.remove_network(name).await
    }
    async fn create_service(&self, spec: &ServiceSpec) -> atq_core::Result<String> {
        self.step().await;
        self.inner.create_service(spec).await
    }
    async fn remove_service(&self, name: &str) -> atq_core::Result<()> {
        self.inner.remove_service(name).await
    }
    async fn replicas(&self, service: &str, network: &str) -> atq_core::Result<Vec<Replica>> {
        self.step().await;
        self.inner.replicas(service, network).await
    }
    async fn logs(&self, service: &str, follow: &atq_core::cluster::LogOptions) -> atq_core::Result<LogStream> {
        self.step().await;
        self.inner.logs(service, follow).await
    }
    async fn create_config(&self, spec: &ConfigSpec) -> atq_core::Result<String> {
        self.step().await;
        self.inner.create_config(spec).await
    }
    async fn remove_config(&self, name: &str) -> atq_core::Result<()> {
        self.inner.remove_config(name).await
    }
    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> atq_core::Result<Vec<Resource>> {
        self.inner.list_resources(kind, selector).await
    }
    async fn copy_from_replica(
        &self,
        container_id: &str,
        path: &str,
    ) -> atq_core::Result<atq_core::cluster::ChunkStream> {
        self.inner.copy_from_replica(container_id, path).await
    }
}

#[tokio::test]
async fn dropping_the_deploy_at_any_await_point_removes_what_it_created() {
    let t = probed("dropped");
    let steps = calls_of_a_deploy(&t)
        .await
        .into_iter()
        .filter(|(k, _)| {
            // Stall pauses the calls a deploy waits on; removals and listings pass through.
            !matches!(
                k,
                CallKind::ListResources | CallKind::RemoveService | CallKind::RemoveNetwork | CallKind::RemoveConfig
            )
        })
        .count();
    for stall_at in 1..=steps {
        let fake = FakeCluster::new();
        fake.probe_output(0, "ready");
        let stall =
            Arc::new(Stall { inner: fake.clone(), calls: AtomicUsize::new(0), stall_at, reached: Default::default() });
        let director = Director::from_arc(stall.clone());
        tokio::select! {
            result = director.deploy(&t) => panic!("deploy finished past stall point {stall_at}: {:?}", result.map(|d| d.keep())),
            () = stall.reached.notified() => {}
        }
        director.settled().await;
        assert!(fake.is_empty(), "dropped at call {stall_at} left {:?} {:?}", fake.services(), fake.networks());
    }
}

#[tokio::test]
async fn a_missing_worker_image_fails_at_once_naming_the_image() {
    let fake = FakeCluster::new().with_latency(Duration::from_millis(5));
    fake.missing_image("lab/worker:1");
    let director = Director::new(fake.clone());
    let started = std::time::Instant::now();
    let err = director.deploy(&task("noimage", 3)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast, not at the timeout");
    match &err {
        Error::ReplicaFailed { service, message, .. } => {
            assert_eq!(service, "noimage_worker");
            assert!(message.contains("No such image: lab/worker:1"), "{message}");
        }
        other => panic!("expected ReplicaFailed, got {other:?}"),
    }
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn workers_that_never_start_time_out_listing_what_is_missing() {
    let fake = FakeCluster::new();
    fake.never_starts(Matcher::role(Role::Worker).slot(2));
    let t = task("slow", 3).to_builder().start_timeout(Duration::from_secs(30)).build().unwrap();
    let err = Director::new(fake.clone()).deploy(&t).await.unwrap_err();
    match &err {
        Error::Timeout { missing, waited, .. } => {
            assert_eq!(*waited, Duration::from_secs(30));
            assert!(missing.contains("2/3 running") && missing.contains("slow_worker.2"), "{missing}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_probe_gates_the_master_until_its_output_matches() {
    let fake = FakeCluster::new();
    // The first two tries print "waiting", then "ready".
    fake.script(Matcher::role(Role::Probe), Script::exits(1).stdout(["waiting"]));
    let director = Director::new(fake.clone());
    let mut events = director.subscribe();
    let t = probed("gated");
    let deploy = tokio::spawn({
        let director = director.clone();
        async move { director.deploy(&t).await }
    });
    let mut attempts = 0;
    while let Ok(event) = events.recv().await {
        if let Event::ProbeAttempt { result, .. } = &event {
            attempts += 1;
            assert!(fake.service_spec("gated_master").is_none(), "master waits for the probe");
            assert!(result.contains("exit code 1") && result.contains("waiting"), "{result}");
            if attempts == 2 {
                fake.probe_output(0, "ready\n");
            }
        }
        if matches!(event, Event::ProbePassed { attempts: 3, .. }) {
            break;
        }
    }
    let d = deploy.await.unwrap().unwrap();
    let probe =
        fake.call_log().iter().filter(|c| c.kind == CallKind::CreateService && c.target == "gated_probe").count();
    assert_eq!(probe, 3);
    // Failed tries are removed before the next; the passing one is not waited for: it goes
    // with the rest of the task.
    let removed = fake.calls(CallKind::RemoveService);
    assert_eq!(removed, 2, "the two failed tries");
    assert!(fake.services().contains(&"gated_probe".to_owned()), "the passing try stays until the teardown");
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_passes_times_out_with_its_last_output() {
    let fake = FakeCluster::new();
    fake.probe_output(0, "not yet");
    let t = task("neverready", 1)
        .to_builder()
        .wait_command(WaitCommand::new("check").expect("ready").timeout(Duration::from_secs(10)))
        .build()
        .unwrap();
    let err = Director::new(fake.clone()).deploy(&t).await.unwrap_err();
    match &err {
        Error::ProbeTimeout { attempts, last, .. } => {
            assert!(*attempts > 1);
            assert!(last.contains("not yet"), "{last}");
        }
        other => panic!("expected ProbeTimeout, got {other:?}"),
    }
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_delay_passes_before_the_master_starts() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let mut events = director.subscribe();
    let t = task("delayed", 1).to_builder().delay(Duration::from_secs(7)).build().unwrap();
    let started = tokio::time::Instant::now();
    let d = director.deploy(&t).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(7));
    let mut saw_delay_before_master = false;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Delay { duration, .. } => saw_delay_before_master = duration == Duration::from_secs(7),
            Event::MasterCreated { .. } => break,
            _ => {}
        }
    }
    assert!(saw_delay_before_master);
    d.teardown().await.unwrap();
}

#[tokio::test]
async fn of_two_racing_deploys_of_one_name_exactly_one_wins() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let t = task("race", 2);
    let (a, b) = tokio::join!(director.deploy(&t), director.deploy(&t));
    let (winner, loser) = match (a, b) {
        (Ok(d), Err(e)) | (Err(e), Ok(d)) => (d, e),
        (a, b) => panic!("expected one winner: {:?} / {:?}", a.map(|d| d.keep()), b.map(|d| d.keep())),
    };
    assert!(matches!(loser, Error::TaskExists { ref name } if name == "race"), "{loser}");
    director.settled().await;
    assert_eq!(
        fake.services(),
        vec!["race_master".to_owned(), "race_worker".to_owned()],
        "the loser removed only its own"
    );
    winner.teardown().await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_name_in_use_is_task_exists() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("taken", 1)).await.unwrap();
    let err = director.deploy(&task("taken", 1)).await.unwrap_err();
    assert!(err.to_string().contains("atq down taken"), "{err}");
    d.teardown().await.unwrap();
}

#[tokio::test]
async fn the_queue_runs_at_most_k_tasks_in_submission_order() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone()).with_concurrency(2);
    let mut events = director.subscribe();
    let first = director.deploy(&task("q1", 1)).await.unwrap();
    let second = director.deploy(&task("q2", 1)).await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiting = Vec::new();
    for name in ["q3", "q4", "q5"] {
        let director = director.clone();
        let order = order.clone();
        waiting.push(tokio::spawn(async move {
            let d = director.deploy(&task(name, 1)).await.unwrap();
            order.lock().unwrap().push(name);
            d
        }));
        // Submission order: each waits in the queue before the next is submitted.
        loop {
            if let Event::Queued { task } = events.recv().await.unwrap() {
                assert_eq!(task, name);
                break;
            }
        }
    }
    assert_eq!(fake.networks().len(), 2, "only two tasks run");
    first.teardown().await.unwrap();
    let third = waiting.remove(0).await.unwrap();
    second.teardown().await.unwrap();
    let fourth = waiting.remove(0).await.unwrap();
    third.teardown().await.unwrap();
    fourth.teardown().await.unwrap();
    waiting.remove(0).await.unwrap().teardown().await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec!["q3", "q4", "q5"]);
    assert!(fake.is_empty());
}

#[tokio::test]
async fn teardown_is_idempotent_and_down_names_a_missing_task() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("twice", 2)).await.unwrap();
    d.teardown().await.unwrap();
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
    assert!(matches!(director.teardown("twice").await, Err(Error::TaskNotFound { .. })));
}

#[tokio::test]
async fn down_removes_a_task_deployed_by_another_director() {
    let fake = FakeCluster::new();
    Director::new(fake.clone()).deploy(&task("other", 2)).await.unwrap().keep();
    Director::new(fake.clone()).teardown("other").await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn dropping_a_deployment_tears_it_down() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    drop(director.deploy(&task("dropped-deployment", 2)).await.unwrap());
    director.settled().await;
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_worker_that_dies_after_deploy_shows_in_the_outcome() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::exits_after(0, Duration::from_millis(50)));
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("dying", 3)).await.unwrap();
    fake.kill_replica("dying_worker", 2, 137).unwrap();
    let outcome = d.wait(None).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert!(!outcome.succeeded());
    assert_eq!(outcome.failed_workers.len(), 1);
    assert_eq!(outcome.failed_workers[0].slot, 2);
    assert_eq!(outcome.failed_workers[0].exit_code, Some(137));
    d.teardown().await.unwrap();
}

#[tokio::test]
async fn list_and_inspect_read_the_state_from_the_engine() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("listed", 2)).await.unwrap();
    // Another director (another process) sees the same.
    let other = Director::new(fake.clone());
    let info = other.inspect("listed").await.unwrap();
    assert_eq!(info.state, TaskState::Running);
    assert_eq!((info.workers_running, info.workers_total), (2, 2));
    assert_eq!(info.workers, d.workers());
    assert_eq!(other.list().await.unwrap().len(), 1);
    fake.kill_replica("listed_master", 1, 4).unwrap();
    assert_eq!(other.inspect("listed").await.unwrap().state, TaskState::Finished { exit_code: 4 });
    d.teardown().await.unwrap();
    assert!(other.list().await.unwrap().is_empty());
    assert!(matches!(other.inspect("listed").await, Err(Error::TaskNotFound { .. })));
}

#[tokio::test]
async fn prune_removes_tasks_of_dead_owners_and_expired_ones_only() {
    let fake = FakeCluster::new();
    let me = Owner::current();
    let dead = Owner { pid: u32::MAX - 1, ..me.clone() };
    Director::new(fake.clone()).with_owner(dead).deploy(&task("orphan", 1)).await.unwrap().keep();
    let alive = Director::new(fake.clone()).deploy(&task("alive", 1)).await.unwrap();
    // A leftover whose expiry has passed, from a process on another host.
    let expired = [
        (labels::MANAGED, "true"),
        (labels::TASK, "expired"),
        (labels::ROLE, "network"),
        (labels::OWNER, "elsewhere:1:1"),
        (labels::EXPIRES, "1000"),
    ];
    let spec = NetworkSpec {
        name: "expired_net".into(),
        labels: expired.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        attachable: true,
        capacity: 1,
    };
    fake.create_network(&spec).await.unwrap();

    let report = Director::new(fake.clone()).prune().await.unwrap();
    assert_eq!(report.removed(), ["expired", "orphan"]);
    assert_eq!(fake.networks(), vec!["alive_net".to_owned()]);
    alive.keep();
    let all = Director::new(fake.clone()).prune_all().await.unwrap();
    assert_eq!(all.removed(), ["alive"]);
    assert!(fake.is_empty());
}

#[tokio::test]
async fn events_trace_the_deploy_in_order() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let mut rx = director.subscribe();
    director.run(&task("traced", 2)).await.unwrap();
    let mut names = Vec::new();
    while let Ok(e) = rx.try_recv() {
        names.push(e.to_json()["event"].as_str().unwrap().to_owned());
    }
    let expected = [
        "network_created",
        "workers_created",
        "workers_running",
        "workers_ready",
        "master_created",
        "master_running",
        "master_exited",
        "torn_down",
    ];
    let mut it = names.iter();
    for want in expected {
        assert!(it.any(|n| n == want), "{want} missing or out of order in {names:?}");
    }
}

#[tokio::test]
async fn ten_thousand_workers_deploy_on_the_fake() {
    let fake = FakeCluster::new();
    let t = task("wide", atq_core::task::MAX_WORKERS);
    let d = Director::new(fake.clone()).deploy(&t).await.unwrap();
    assert_eq!(d.workers().iter().collect::<HashSet<_>>().len(), 10_000);
    let master = fake.service_spec("wide_master").unwrap();
    // 10,000 addresses of 10.208.x.y do not fit in one environment string (120 KiB): the
    // master reads them from the file instead.
    assert_eq!(env_of(&master, "WORKER_CSV_VIPS"), None);
    assert_eq!(env_of(&master, "ATQ_WORKERS_FILE").as_deref(), Some("/atq/workers"));
    assert_eq!(fake.config_data("wide_workers").unwrap().iter().filter(|b| **b == b'\n').count(), 10_000);
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
}

fn bundle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plans/nested")).unwrap();
    std::fs::write(dir.path().join("plans/nested/plan.jmx"), "<jmeterTestPlan/>").unwrap();
    std::fs::write(dir.path().join("users.csv"), "alice\nbob\n").unwrap();
    dir
}

#[tokio::test]
async fn both_roles_see_a_bundle_under_atq_data_and_it_cannot_be_removed_while_in_use() {
    let fake = FakeCluster::new();
    let dir = bundle_dir();
    let bundle = atq_core::DataBundle::from_dir(dir.path()).unwrap();
    let id = bundle.push(&fake).await.unwrap();
    let t = Task::builder("withdata")
        .workers(Service::new("i").replicas(2).data(&id))
        .master(Service::new("i").data(&id))
        .build()
        .unwrap();
    let d = Director::new(fake.clone()).deploy(&t).await.unwrap();
    for service in ["withdata_worker", "withdata_master"] {
        let spec = fake.service_spec(service).unwrap();
        let targets: BTreeSet<&str> = spec.configs.iter().map(|c| c.target.as_str()).collect();
        assert!(targets.contains("/atq/data/plans/nested/plan.jmx"), "{service}: {targets:?}");
        assert!(targets.contains("/atq/data/users.csv"), "{service}: {targets:?}");
    }
    let err = atq_core::data::remove_bundle(&fake, &id).await.unwrap_err();
    assert!(err.to_string().contains("withdata_"), "names the services using it: {err}");
    d.teardown().await.unwrap();
    atq_core::data::remove_bundle(&fake, &id).await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_deploy_naming_a_missing_bundle_fails_before_creating_anything() {
    let fake = FakeCluster::new();
    let t = Task::builder("nodata")
        .workers(Service::new("i").data("0123456789abcdef"))
        .master(Service::new("i"))
        .build()
        .unwrap();
    let err = Director::new(fake.clone()).deploy(&t).await.unwrap_err();
    assert!(matches!(err, Error::Data(atq_core::data::DataError::NotFound { .. })), "{err}");
    assert!(err.to_string().contains("atq data push"), "{err}");
    assert!(fake.call_log().iter().all(|c| c.kind == CallKind::ListResources), "nothing created");
}

#[tokio::test]
async fn a_failed_deploy_reports_its_rollback_and_when_it_is_done() {
    let fake = FakeCluster::new();
    fake.missing_image("lab/master:1");
    let director = Director::new(fake.clone());
    let mut events = director.subscribe();
    director.deploy(&task("rolled", 1)).await.unwrap_err();
    let mut names = Vec::new();
    while let Ok(e) = events.try_recv() {
        names.push(e.to_json()["event"].as_str().unwrap().to_owned());
    }
    let tail: Vec<&str> = names.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["rolling_back", "torn_down"], "{names:?}");
    assert!(fake.is_empty());
}

#[tokio::test]
async fn each_role_is_created_with_its_stop_grace_period() {
    let fake = FakeCluster::new();
    let t = Task::builder("grace")
        .workers(Service::new("i").replicas(2).stop_grace_period(Duration::from_secs(7)))
        .master(Service::new("i"))
        .build()
        .unwrap();
    let d = Director::new(fake.clone()).deploy(&t).await.unwrap();
    let workers = fake.service_spec("grace_worker").unwrap();
    let master = fake.service_spec("grace_master").unwrap();
    assert_eq!(workers.stop_grace_period, Some(Duration::from_secs(7)));
    assert_eq!(master.stop_grace_period, Some(atq_core::service::DEFAULT_STOP_GRACE_PERIOD));
    d.teardown().await.unwrap();
}

/// On a plain engine a missing image fails the worker service's creation itself: the deploy
/// fails at once naming the image, and rolls back the network it made.
#[tokio::test]
async fn on_a_plain_engine_a_missing_image_fails_the_deploy_at_creation_and_leaves_nothing() {
    let fake = FakeCluster::plain();
    fake.missing_image("lab/nope:1");
    let t = Task::builder("plainmiss")
        .workers(Service::new("lab/nope:1").replicas(3))
        .master(Service::new("i"))
        .build()
        .unwrap();
    let err = Director::new(fake.clone()).deploy(&t).await.unwrap_err();
    match &err {
        Error::ReplicaFailed { state, message, .. } => {
            assert_eq!(state, "rejected");
            assert!(message.contains("lab/nope:1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.is_empty(), "{fake:?}");
    assert_eq!(fake.calls(CallKind::Replicas), 0, "nothing to wait for: it failed at creation");
}

#[tokio::test]
async fn on_a_plain_engine_placement_constraints_are_refused_with_what_to_do() {
    let fake = FakeCluster::plain();
    let t = Task::builder("plaincons")
        .workers(Service::new("i").constraint("node.role==worker"))
        .master(Service::new("i"))
        .build()
        .unwrap();
    let err = Director::new(fake.clone()).deploy(&t).await.unwrap_err();
    assert!(matches!(err, Error::EngineUnsuitable { backend: "docker", .. }), "{err:?}");
    assert!(err.to_string().contains("ATQ_ENGINE=swarm"), "{err}");
    assert!(fake.is_empty());
}
