//! The `atq` binary on the real Docker engine (swarm manager, no registry).
//!
//! Needs the image `atq-test/busybox:latest`, built by `tests/images/build.sh`. These tests
//! fail (they do not skip) when the engine is unreachable or the image is missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

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

/// Engine objects still labelled with the task, of one kind (`service`, `config`, `network`).
fn leftovers(kind: &str, task: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([kind, "ls", "-q", "--filter", &format!("label=io.atq.task={task}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// Services and configs must be gone; networks may linger a little (their removal is asynchronous).
fn assert_nothing_left(task: &str) {
    assert_eq!(leftovers("service", task), Vec::<String>::new(), "services left");
    assert_eq!(leftovers("config", task), Vec::<String>::new(), "configs left");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leftovers("network", task).is_empty() {
        assert!(Instant::now() < deadline, "network of {task} still there after 30 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

// The caller waits for the child; on a panic here the test fails and the child is left to exit.
#[allow(clippy::zombie_processes)]
fn spawn_until(args: &[&str], until: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("atq"))
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

#[test]
fn run_exits_with_the_masters_code_and_leaves_nothing() {
    require_engine();
    let task = name("run");
    let (_dir, path) = task_file(&task, "echo from-master; echo \"$WORKER_CSV_VIPS\"; exit 7", "");
    let out = assert_cmd::Command::cargo_bin("atq")
        .unwrap()
        .args(["run", &path])
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

#[test]
fn ctrl_c_during_deploy_tears_down_and_exits_130() {
    require_engine();
    let task = name("intdeploy");
    // A probe that never passes keeps the deploy going until interrupted.
    let probe =
        "waitCommand: {command: 'echo no', expectedResult: never, timeout: 120, image: 'atq-test/busybox:latest'}\n";
    let (_dir, path) = task_file(&task, "exit 0", probe);
    let (child, reader) = spawn_until(&["run", "--json", &path], "workers_created");
    let (code, took) = interrupt_and_wait(child, reader);
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(90), "cleanup took {took:?}");
    assert_nothing_left(&task);
}

#[test]
fn ctrl_c_while_the_master_runs_tears_down_and_exits_130() {
    require_engine();
    let task = name("intmaster");
    let (_dir, path) = task_file(&task, "trap 'exit 0' TERM; sleep 600 & wait", "");
    let (child, reader) = spawn_until(&["run", "--json", &path], "master_running");
    let (code, _) = interrupt_and_wait(child, reader);
    assert_eq!(code, Some(130));
    assert_nothing_left(&task);
}
