//! The Director on the real engine when things go wrong: racing deploys, an engine failure
//! mid-deploy, a deploying process killed.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::Duration;

use async_trait::async_trait;
use atq_core::cluster::{
    Cluster, ConfigSpec, EngineInfo, LabelSelector, LogStream, NetworkSpec, Replica, Resource, ResourceKind,
    ServiceSpec,
};
use atq_core::labels::{self, Role};
use atq_core::{Director, Error, Event, Service, Task};
use atq_tests::*;

/// A worker that runs until stopped.
fn idle_worker(replicas: u32) -> Service {
    Service::new(BUSYBOX).replicas(replicas).command(["sh", "-c"]).args([RUN_UNTIL_STOPPED])
}

/// A master running `script` with `sh -c`.
fn master(script: &str) -> Service {
    Service::new(BUSYBOX).command(["sh", "-c"]).args([script])
}

/// Whether an injected failure happens before the engine is asked, or after the engine did the
/// work (the answer was lost on the way back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Before,
    After,
}

/// Which call fails.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `create_service` of a service whose name ends with this.
    CreateService(&'static str, When),
    /// Every `create_config`.
    CreateConfig(When),
}

/// The real engine, with one kind of call failing.
struct Faulty {
    engine: std::sync::Arc<dyn Cluster>,
    fault: Fault,
}

fn injected(operation: &'static str, resource: &str) -> Error {
    Error::engine(operation, resource, "injected fault")
}

#[async_trait]
impl Cluster for Faulty {
    async fn info(&self) -> atq_core::Result<EngineInfo> {
        self.engine.info().await
    }
    async fn create_network(&self, spec: &NetworkSpec) -> atq_core::Result<String> {
        self.engine.create_network(spec).await
    }
    async fn remove_network(&self, name: &str) -> atq_core::Result<()> {
        self.engine.remove_network(name).await
    }
    async fn create_service(&self, spec: &ServiceSpec) -> atq_core::Result<String> {
        match self.fault {
            Fault::CreateService(suffix, When::Before) if spec.name.ends_with(suffix) => {
                Err(injected("create service", &spec.name))
            }
            Fault::CreateService(suffix, When::After) if spec.name.ends_with(suffix) => {
                self.engine.create_service(spec).await?;
                Err(injected("create service", &spec.name))
            }
            _ => self.engine.create_service(spec).await,
        }
    }
    async fn remove_service(&self, name: &str) -> atq_core::Result<()> {
        self.engine.remove_service(name).await
    }
    async fn replicas(&self, service: &str, network: &str) -> atq_core::Result<Vec<Replica>> {
        self.engine.replicas(service, network).await
    }
    async fn logs(&self, service: &str, options: &atq_core::cluster::LogOptions) -> atq_core::Result<LogStream> {
        self.engine.logs(service, options).await
    }
    async fn create_config(&self, spec: &ConfigSpec) -> atq_core::Result<String> {
        match self.fault {
            Fault::CreateConfig(When::Before) => Err(injected("create config", &spec.name)),
            Fault::CreateConfig(When::After) => {
                self.engine.create_config(spec).await?;
                Err(injected("create config", &spec.name))
            }
            Fault::CreateService(..) => self.engine.create_config(spec).await,
        }
    }
    async fn remove_config(&self, name: &str) -> atq_core::Result<()> {
        self.engine.remove_config(name).await
    }
    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> atq_core::Result<Vec<Resource>> {
        self.engine.list_resources(kind, selector).await
    }
    async fn copy_from_replica(
        &self,
        container_id: &str,
        path: &str,
    ) -> atq_core::Result<atq_core::cluster::ChunkStream> {
        self.engine.copy_from_replica(container_id, path).await
    }
}

/// Deploys a task of two workers on an engine with `fault`, expects the injected failure, and
/// checks the engine holds nothing of the task afterwards.
async fn deploy_fails_and_leaves_nothing(backend: Backend, what: &str, fault: Fault) {
    let name = unique(what);
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name).workers(idle_worker(2)).master(master("exit 0")).build().unwrap();
    let director = Director::new(Faulty { engine: scope.cluster.clone(), fault });
    let log = EventLog::record(&director);
    let (result, took) = timed(director.deploy(&task)).await;
    let err = result.expect_err("the deploy must fail");
    assert!(err.to_string().contains("injected fault"), "{err}");
    // Well under the engine's removal timeout (60 s), which a rollback that removed the
    // network while an unrecorded service still held it used to spend in full.
    assert!(took < Duration::from_secs(20), "deploy and rollback took {took:?}");
    let events: Vec<Event> = log.of(&name).into_iter().map(|(_, e)| e).collect();
    assert!(events.iter().any(|e| matches!(e, Event::WorkersReady { .. })), "failed too early: {events:#?}");
    assert!(events.iter().any(|e| matches!(e, Event::RollingBack { .. })), "{events:#?}");
    // `deploy` returns only once the rollback is done: no settling, no waiting.
    scope.assert_nothing_left().await;
}

async fn a_failure_creating_the_master_rolls_back_the_network_workers_and_worker_list(backend: Backend) {
    deploy_fails_and_leaves_nothing(backend, "fmaster", Fault::CreateService("_master", When::Before)).await;
}

async fn a_master_created_on_the_engine_whose_answer_was_lost_is_rolled_back_too(backend: Backend) {
    deploy_fails_and_leaves_nothing(backend, "fmlost", Fault::CreateService("_master", When::After)).await;
}

async fn a_worker_list_config_created_whose_answer_was_lost_is_rolled_back_too(backend: Backend) {
    deploy_fails_and_leaves_nothing(backend, "fclost", Fault::CreateConfig(When::After)).await;
}

async fn of_two_racing_deploys_of_one_name_exactly_one_wins_and_the_loser_leaves_the_winners_objects(backend: Backend) {
    let name = unique("frace");
    let scope = Scope::for_task(backend, &name).await;
    let task = Task::builder(&name).workers(idle_worker(2)).master(master("echo winner")).build().unwrap();
    let (a, b) = (scope.director(), scope.director());
    let (ra, rb) = tokio::join!(a.deploy(&task), b.deploy(&task));
    let (winner, loser) = match (ra, rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (Ok(_), Ok(_)) => panic!("both deploys of {name} succeeded"),
        (Err(x), Err(y)) => panic!("both deploys of {name} failed: {x}; {y}"),
    };
    assert!(matches!(loser, Error::TaskExists { .. }), "{loser:?}");

    // Only the winner's objects: one of each, all from one deploy.
    let mut kinds = Vec::new();
    let mut deploys = BTreeSet::new();
    for kind in [ResourceKind::Network, ResourceKind::Service, ResourceKind::Config] {
        let found = scope.cluster.list_resources(kind, &scope.selector()).await.unwrap();
        for r in &found {
            deploys.insert(r.labels.get(labels::DEPLOY).cloned().unwrap_or_default());
            kinds.push((kind, r.labels.get(labels::ROLE).cloned().unwrap_or_default()));
        }
    }
    kinds.sort_by_key(|(k, r)| (k.as_str(), r.clone()));
    let want = [
        (ResourceKind::Config, Role::Master.as_str().to_owned()),
        (ResourceKind::Network, Role::Network.as_str().to_owned()),
        (ResourceKind::Service, Role::Master.as_str().to_owned()),
        (ResourceKind::Service, Role::Worker.as_str().to_owned()),
    ];
    assert_eq!(kinds, want);
    assert_eq!(deploys.len(), 1, "objects of more than one deploy: {deploys:?}");
    assert_eq!(scope.leftover_containers().len(), 3, "{:?}", scope.leftover_containers());

    let outcome = winner.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.logs.contains("winner"), "{}", outcome.logs);
    winner.teardown().await.unwrap();
    scope.assert_nothing_left().await;
}

/// A child process killed (and reaped) when dropped, so a failing test leaves no process.
struct Killed(Child);

impl Killed {
    /// Sends SIGKILL and reaps it: a zombie's `/proc/<pid>` would still show its start time.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn prune_removes_what_a_process_killed_mid_deploy_left_and_spares_live_ones(backend: Backend) {
    let name = unique("fprune");
    let scope = Scope::for_task(backend, &name).await;
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_atq-deploy-and-hang"))
            .arg(&name)
            .env("ATQ_ENGINE", backend.as_str())
            .spawn()
            .expect("start atq-deploy-and-hang"),
    );
    // Mid-deploy: its network and workers exist, and its probe keeps failing.
    let roles = || async {
        let services = scope.cluster.list_resources(ResourceKind::Service, &scope.selector()).await.unwrap();
        let roles: BTreeSet<String> = services.iter().filter_map(|s| s.labels.get(labels::ROLE).cloned()).collect();
        let network = !scope.leftovers(ResourceKind::Network).await.is_empty();
        (network && roles.contains(Role::Worker.as_str()) && roles.contains(Role::Probe.as_str())).then_some(())
    };
    eventually(&format!("{name}: network, workers and a probe"), Duration::from_secs(30), roles).await;

    let director = scope.director();
    let report = director.prune().await.unwrap();
    assert!(!report.removed().contains(&name.as_str()), "pruned a task whose owner runs: {report:?}");
    assert!(!scope.leftovers(ResourceKind::Network).await.is_empty());

    child.kill();
    let report = director.prune().await.unwrap();
    assert!(report.removed().contains(&name.as_str()), "{report:?}");
    scope.assert_nothing_left().await;
}

on_both!(a_failure_creating_the_master_rolls_back_the_network_workers_and_worker_list);
on_both!(a_master_created_on_the_engine_whose_answer_was_lost_is_rolled_back_too);
on_both!(a_worker_list_config_created_whose_answer_was_lost_is_rolled_back_too);
on_both!(of_two_racing_deploys_of_one_name_exactly_one_wins_and_the_loser_leaves_the_winners_objects, multi_thread);
on_both!(prune_removes_what_a_process_killed_mid_deploy_left_and_spares_live_ones);
