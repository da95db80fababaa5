//! The `atq` binary on the real Docker engine (swarm manager, no registry), on both backends:
//! each test runs once with `--engine swarm` and once with `--engine docker` (`name::swarm`,
//! `name::docker`).
//!
//! Needs the image `atq-test/busybox:latest`, built by `tests/images/build.sh`. These tests
//! fail (they do not skip) when the engine is unreachable or the image is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use common::leftovers;
use serde_json::Value;

const IMAGE: &str = "atq-test/busybox:latest";

/// Workers that stop at once on SIGTERM (PID 1 ignores it unless it traps it).
const WORKER: &str = "  image: atq-test/busybox:latest\n  replicas: 2\n  command: [/bin/sh, -c]\n  args: [\"trap 'exit 0' TERM; sleep 600 & wait\"]\n";

fn require_engine() {
    let info = std::process::Command::new("docker").args(["info", "--format", "{{.Swarm.ControlAvailable}}"]).output();
    let ok = info.as_ref().is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true");
    assert!(ok, "these tests need a Docker engine that is a swarm manager (`docker swarm init`): {info:?}");
    let image = std::process::Command::new("docker").args(["image", "inspect", IMAGE]).output().unwrap();
    assert!(image.status.success(), "image {IMAGE} missing: build it with tests/images/build.sh");
}

fn task_file(name: &str, master_args: &str, extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: {name}\n{extra}worker:\n{WORKER}master:\n  image: {IMAGE}\n  command: [/bin/sh, -c]\n  args: [{master_args:?}]\n"
    );
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

/// A unique task name per test and process.
fn name(test: &str) -> String {
    format!("cli-{test}-{}", std::process::id())
}

/// Stamps `$name::swarm` and `$name::docker` from `fn $name(engine: &str)`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn swarm() {
                super::$name("swarm")
            }
            #[test]
            fn docker() {
                super::$name("docker")
            }
        }
    };
}

/// Services, configs, containers and volumes must be gone; networks may linger a little (an
/// overlay's removal is asynchronous).
fn assert_nothing_left(task: &str) {
    for kind in ["service", "config", "container", "volume"] {
        assert_eq!(leftovers(kind, task), Vec::<String>::new(), "{kind}s left");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leftovers("network", task).is_empty() {
        assert!(Instant::now() < deadline, "network of {task} still there after 30 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

// The caller waits for the child; on a panic here the test fails and the child is left to exit.
#[allow(clippy::zombie_processes)]
fn spawn_until(engine: &str, args: &[&str], until: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("atq"))
        .args(["--engine", engine])
        .args(args)
        .env_remove("ATQ_FAKE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait();
            panic!("atq ended before {until}: {status:?}");
        }
        let value: Value = serde_json::from_str(&line).unwrap();
        if value["event"] == until {
            return (child, reader);
        }
    }
}

fn interrupt_and_wait(mut child: Child, reader: BufReader<ChildStdout>) -> (Option<i32>, Duration) {
    let started = Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let rest: Vec<String> = reader.lines().map(Result::unwrap).collect();
    let code = child.wait().unwrap().code();
    assert!(rest.iter().any(|l| l.contains("\"interrupted\"")), "{rest:?}");
    (code, started.elapsed())
}

fn run_exits_with_the_masters_code_and_leaves_nothing(engine: &str) {
    require_engine();
    let task = name(&format!("run-{engine}"));
    let (_dir, path) = task_file(&task, "echo from-master; echo \"$WORKER_CSV_VIPS\"; exit 7", "");
    let out = assert_cmd::Command::cargo_bin("atq")
        .unwrap()
        .args(["--engine", engine, "run", &path])
        .env_remove("ATQ_FAKE")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("from-master"), "{stdout}");
    assert_eq!(stdout.lines().nth(1).unwrap().split(',').count(), 2, "two worker addresses: {stdout}");
    assert_nothing_left(&task);
}

fn ctrl_c_during_deploy_tears_down_and_exits_130(engine: &str) {
    require_engine();
    let task = name(&format!("intdeploy-{engine}"));
    // A probe that never passes keeps the deploy going until interrupted.
    let probe =
        "waitCommand: {command: 'echo no', expectedResult: never, timeout: 120, image: 'atq-test/busybox:latest'}\n";
    let (_dir, path) = task_file(&task, "exit 0", probe);
    let (child, reader) = spawn_until(engine, &["run", "--json", &path], "workers_created");
    let (code, took) = interrupt_and_wait(child, reader);
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(90), "cleanup took {took:?}");
    assert_nothing_left(&task);
}

fn ctrl_c_while_the_master_runs_tears_down_and_exits_130(engine: &str) {
    require_engine();
    let task = name(&format!("intmaster-{engine}"));
    let (_dir, path) = task_file(&task, "trap 'exit 0' TERM; sleep 600 & wait", "");
    let (child, reader) = spawn_until(engine, &["run", "--json", &path], "master_running");
    let (code, _) = interrupt_and_wait(child, reader);
    assert_eq!(code, Some(130));
    assert_nothing_left(&task);
}

fn info_names_the_backend_in_use_and_why(engine: &str) {
    require_engine();
    let atq = || {
        let mut cmd = assert_cmd::Command::cargo_bin("atq").unwrap();
        cmd.env_remove("ATQ_FAKE").env_remove("ATQ_ENGINE").timeout(Duration::from_secs(30));
        cmd
    };
    let out = atq().args(["--engine", engine, "info", "--json"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((value["backend"].as_str(), value["engine"]["backend"].as_str()), (Some(engine), Some(engine)));
    assert_eq!(value["reason"], format!("--engine {engine}"));
    // The environment variable picks the same, and says so.
    let out = atq().env("ATQ_ENGINE", engine).args(["info"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("backend:     {engine} (ATQ_ENGINE={engine})")), "{text}");
}

/// Unset, the engine decides: this one is a swarm manager.
#[test]
fn without_a_choice_a_swarm_manager_gets_the_swarm_backend() {
    require_engine();
    let out = assert_cmd::Command::cargo_bin("atq")
        .unwrap()
        .env_remove("ATQ_FAKE")
        .env_remove("ATQ_ENGINE")
        .args(["info", "--json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["backend"], "swarm", "{value}");
    assert!(value["reason"].as_str().unwrap().contains("swarm manager"), "{value}");
}

#[test]
fn an_unknown_engine_name_is_refused_naming_the_setting() {
    let out = assert_cmd::Command::cargo_bin("atq")
        .unwrap()
        .env_remove("ATQ_FAKE")
        .env("ATQ_ENGINE", "kubernetes")
        .args(["ls"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("ATQ_ENGINE=\"kubernetes\" is not valid") && stderr.contains("`docker`"), "{stderr}");
}

on_both!(run_exits_with_the_masters_code_and_leaves_nothing);
on_both!(ctrl_c_during_deploy_tears_down_and_exits_130);
on_both!(ctrl_c_while_the_master_runs_tears_down_and_exits_130);
on_both!(info_names_the_backend_in_use_and_why);
