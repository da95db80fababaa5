//! Artifacts on FakeCluster: the task field, the master's pinning, saving files safely.

use std::path::Path;

use atq_core::cluster::fake::{CallKind, Matcher, Script};
use atq_core::cluster::ServiceSpec;
use atq_core::labels::Role;
use atq_core::{Director, Error, FakeCluster, Service, Task};

fn task(name: &str, artifacts: Option<&str>) -> Task {
    let mut builder = Task::builder(name).workers(Service::new("lab/worker:1")).master(Service::new("lab/master:1"));
    if let Some(dir) = artifacts {
        builder = builder.artifacts(dir);
    }
    builder.build().unwrap()
}

fn env_of(spec: &ServiceSpec, key: &str) -> Option<String> {
    spec.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Every file under `dir`, relative and sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_masters_artifacts_are_saved_with_their_content() {
    let fake = FakeCluster::new();
    fake.script(
        Matcher::role(Role::Master),
        Script::exits(0)
            .artifact("/atq/results/summary.txt", "requests: 100\n")
            .artifact("/atq/results/sub/data.csv", "a,b\n1,2\n")
            .artifact("/elsewhere/ignored.txt", "no"),
    );
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("arts", Some("/atq/results"))).await.unwrap();
    assert_eq!(d.wait(None).await.unwrap().exit_code, 0);

    let out = tempfile::tempdir().unwrap();
    let mut written = d.save_artifacts(out.path()).await.unwrap();
    written.sort();
    assert_eq!(written, [out.path().join("sub/data.csv"), out.path().join("summary.txt")]);
    assert_eq!(std::fs::read_to_string(out.path().join("summary.txt")).unwrap(), "requests: 100\n");
    assert_eq!(std::fs::read_to_string(out.path().join("sub/data.csv")).unwrap(), "a,b\n1,2\n");
    assert_eq!(files_under(out.path()), ["sub/data.csv", "summary.txt"]);
    assert_eq!(fake.calls(CallKind::CopyFromReplica), 1);
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_task_with_artifacts_pins_its_master_to_the_local_node_and_tells_it_the_directory() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("pinned", Some("/atq/results"))).await.unwrap();
    let master = fake.service_spec("pinned_master").unwrap();
    assert!(master.placement.local_node && master.placement.constraints.is_empty());
    assert_eq!(env_of(&master, "ATQ_RESULTS_DIR").as_deref(), Some("/atq/results"));
    let worker = fake.service_spec("pinned_worker").unwrap();
    assert!(!worker.placement.local_node, "workers may run anywhere");
    assert_eq!(env_of(&worker, "ATQ_RESULTS_DIR"), None);
    d.teardown().await.unwrap();
}

#[tokio::test]
async fn a_task_without_artifacts_has_none_and_is_not_pinned() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("plain", None)).await.unwrap();
    d.wait(None).await.unwrap();
    let master = fake.service_spec("plain_master").unwrap();
    assert!(!master.placement.local_node);
    assert_eq!(env_of(&master, "ATQ_RESULTS_DIR"), None);
    assert_eq!(fake.calls(CallKind::Info), 0, "no engine info asked for");
    let out = tempfile::tempdir().unwrap();
    assert!(d.save_artifacts(&out.path().join("x")).await.unwrap().is_empty());
    assert!(!out.path().join("x").exists(), "nothing created");
    assert_eq!(fake.calls(CallKind::CopyFromReplica), 0);
    d.teardown().await.unwrap();
}

#[tokio::test]
async fn a_master_that_wrote_nothing_there_is_artifacts_not_found() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("empty", Some("/atq/results"))).await.unwrap();
    d.wait(None).await.unwrap();
    let err = d.save_artifacts(tempfile::tempdir().unwrap().path()).await.unwrap_err();
    assert!(matches!(&err, Error::ArtifactsNotFound { path } if path == "/atq/results"), "{err}");
    assert!(err.to_string().contains("wrote no artifacts"), "{err}");
    d.teardown().await.unwrap();
}

#[test]
fn the_artifacts_directory_must_be_a_plain_absolute_path() {
    for bad in ["atq/results", "/", "//", "/atq/../etc", "/atq/./x", "/atq/\nx"] {
        let err =
            Task::builder("t").workers(Service::new("w")).master(Service::new("m")).artifacts(bad).build().unwrap_err();
        assert_eq!(err.problems[0].field, "artifacts", "{bad:?}: {err}");
    }
    let ok = task("t", Some("/atq/results/"));
    assert_eq!(ok.artifacts(), Some("/atq/results/"));
    let yaml = "name: t\nworker: {image: w}\nmaster: {image: m}\nartifacts: /atq/results\n";
    let from_file = Task::from_yaml_str(yaml).unwrap();
    assert_eq!(from_file.artifacts(), Some("/atq/results"));
    assert!(from_file.to_yaml().contains("artifacts: /atq/results"));
    let err = Task::from_yaml_str("name: t\nworker: {image: w}\nmaster: {image: m}\nartifacts: results\n").unwrap_err();
    assert_eq!((err.problems[0].field.as_str(), err.problems[0].line), ("artifacts", Some(4)));
}

#[test]
fn atq_results_dir_is_reserved() {
    let err = Task::builder("t")
        .workers(Service::new("w"))
        .master(Service::new("m").env("ATQ_RESULTS_DIR", "/x"))
        .build()
        .unwrap_err();
    assert_eq!(err.problems[0].field, "master.environment.ATQ_RESULTS_DIR");
}

/// A tar with one entry whose raw name is `name` (written into the header, bypassing the
/// `tar` crate's own checks) of type `kind`.
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_size(0);
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        if !(kind.is_symlink() || kind.is_hard_link()) {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

async fn save_hostile(name: &str, archive: Vec<u8>) -> (Error, tempfile::TempDir) {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::exits(0).artifact_archive(archive));
    let director = Director::new(fake.clone());
    let d = director.deploy(&task(name, Some("/atq/results"))).await.unwrap();
    d.wait(None).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let err = d.save_artifacts(&root.path().join("out")).await.unwrap_err();
    d.teardown().await.unwrap();
    (err, root)
}

#[tokio::test]
async fn an_entry_climbing_out_of_the_directory_is_refused_and_nothing_is_written() {
    let archive = raw_tar(&[
        ("results/ok.txt", tar::EntryType::Regular, b"fine"),
        ("results/../../x", tar::EntryType::Regular, b"evil"),
    ]);
    let (err, root) = save_hostile("climb", archive).await;
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(files_under(root.path()).is_empty(), "{:?}", files_under(root.path()));
    let (err, root) = save_hostile("abs", raw_tar(&[("/etc/x", tar::EntryType::Regular, b"evil")])).await;
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(files_under(root.path()).is_empty());
}

#[tokio::test]
async fn link_entries_are_refused_and_nothing_is_written() {
    for kind in [tar::EntryType::Symlink, tar::EntryType::Link] {
        let archive = raw_tar(&[("results/ok.txt", tar::EntryType::Regular, b"fine"), ("results/passwd", kind, b"")]);
        let (err, root) = save_hostile("link", archive).await;
        assert!(err.to_string().contains("is a link"), "{err}");
        assert!(files_under(root.path()).is_empty());
    }
}
