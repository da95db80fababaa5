//! Data bundles on the real engine: pushed as configs (swarm configs, or a plain engine's labelled volumes), mounted under `/atq/data` in the
//! master and the workers, and kept while a task uses them.

use std::time::Duration;

use atq_core::data::{list_bundles, remove_bundle, DataBundle, DataError};
use atq_core::labels::Role;
use atq_core::{Director, Error, Service, Task};
use atq_tests::*;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const NESTED: &str = "plans/nested/plan.jmx";

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_bundle_reaches_master_and_workers_at_its_relative_paths_and_is_kept_while_in_use(backend: Backend) {
    // Content unique to this run, so its content-derived id is too.
    let plan = format!("<jmeterTestPlan run=\"{}\">\n  <hashTree/>\n</jmeterTestPlan>\n", unique("plan"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plans/nested")).unwrap();
    std::fs::write(dir.path().join(NESTED), &plan).unwrap();
    std::fs::write(dir.path().join("users.csv"), "alice\nbob\n").unwrap();
    let bundle = DataBundle::from_dir(dir.path()).unwrap();
    let want = sha256_hex(plan.as_bytes());

    let cluster = cluster(backend).await;
    let id = bundle.push(&*cluster).await.unwrap();
    // Declared before the task's scope, so dropped after it: services go before their configs.
    let bundle_scope = Scope::for_bundle(backend, &id).await;
    let name = unique("data");
    let scope = Scope::for_task(backend, &name).await;

    let worker = Service::new(BUSYBOX)
        .replicas(2)
        .data(&id)
        .command(["sh", "-c"])
        .args([format!("sha256sum /atq/data/{NESTED}; {RUN_UNTIL_STOPPED}")]);
    let master = Service::new(BUSYBOX)
        .data(&id)
        .command(["sh", "-c"])
        .args([format!("sha256sum /atq/data/{NESTED}; cat /atq/data/users.csv")]);
    let task = Task::builder(&name).workers(worker).master(master).build().unwrap();
    let director = Director::from_arc(cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();

    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:#?}");
    assert!(outcome.logs.contains(&format!("{want}  /atq/data/{NESTED}")), "want {want}: {}", outcome.logs);
    assert!(outcome.logs.contains("alice\nbob"), "{}", outcome.logs);

    // Both workers read the same file (their logs can lag behind their start by a moment).
    let line = format!("{want}  /atq/data/{NESTED}");
    let worker_logs = || async {
        let stream = director.logs(&name, Role::Worker, &atq_core::cluster::LogOptions::all()).await.unwrap();
        let lines: Vec<String> = stream.map(|l| l.unwrap().text).collect().await;
        (lines.iter().filter(|l| **l == line).count() == 2).then_some(())
    };
    eventually(&format!("both workers print {line}"), Duration::from_secs(15), worker_logs).await;

    // In use: refused, naming the services, and nothing removed.
    match remove_bundle(&*cluster, &id).await {
        Err(Error::Data(DataError::InUse { services, .. })) => {
            assert_eq!(services, [task.master_service_name(), task.worker_service_name()]);
        }
        other => panic!("removing a bundle in use: {other:?}"),
    }
    let stored = list_bundles(&*cluster).await.unwrap();
    let info = stored.iter().find(|b| b.id == id).unwrap_or_else(|| panic!("{id} not listed: {stored:#?}"));
    assert_eq!((info.files, info.is_complete()), (2, true), "{info:#?}");

    deployment.teardown().await.unwrap();
    scope.assert_nothing_left().await;
    remove_bundle(&*cluster, &id).await.unwrap();
    assert!(list_bundles(&*cluster).await.unwrap().iter().all(|b| b.id != id));
    bundle_scope.assert_nothing_left().await;
}

on_both!(a_bundle_reaches_master_and_workers_at_its_relative_paths_and_is_kept_while_in_use);

/// A pushed `run.sh` that is executable in its directory runs in the containers (mode 0555);
/// the data file beside it stays 0444.
async fn an_executable_script_in_a_bundle_runs_in_the_master(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script =
        format!("#!/bin/sh\n# {}\necho \"script ran: $(cat /atq/data/users.csv)\"\nexit 3\n", unique("hardening"));
    std::fs::write(dir.path().join("run.sh"), script).unwrap();
    std::fs::set_permissions(dir.path().join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("users.csv"), "alice").unwrap();
    let bundle = DataBundle::from_dir(dir.path()).unwrap();
    assert!(bundle.is_executable("run.sh"));

    let cluster = cluster(backend).await;
    let id = bundle.push(&*cluster).await.unwrap();
    let bundle_scope = Scope::for_bundle(backend, &id).await;
    let name = unique("hardening-exec");
    let scope = Scope::for_task(backend, &name).await;
    let master = Service::new(BUSYBOX)
        .data(&id)
        .command(["sh", "-c"])
        .args(["ls -l /atq/data/run.sh /atq/data/users.csv; /atq/data/run.sh"]);
    let worker = Service::new(BUSYBOX).command(["sh", "-c"]).args([RUN_UNTIL_STOPPED]);
    let task = Task::builder(&name).workers(worker).master(master).build().unwrap();
    let director = Director::new(cluster.clone());
    let deployment = director.deploy(&task).await.unwrap();
    let outcome = deployment.wait(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(outcome.exit_code, 3, "{outcome:#?}");
    assert!(outcome.logs.contains("script ran: alice"), "{}", outcome.logs);
    assert!(
        outcome.logs.lines().any(|l| l.starts_with("-r-xr-xr-x") && l.ends_with("/atq/data/run.sh")),
        "{}",
        outcome.logs
    );
    assert!(
        outcome.logs.lines().any(|l| l.starts_with("-r--r--r--") && l.ends_with("/atq/data/users.csv")),
        "{}",
        outcome.logs
    );
    deployment.teardown().await.unwrap();
    scope.assert_nothing_left().await;
    remove_bundle(&*cluster, &id).await.unwrap();
    bundle_scope.assert_nothing_left().await;
}

on_both!(an_executable_script_in_a_bundle_runs_in_the_master);
