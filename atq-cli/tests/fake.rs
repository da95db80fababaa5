//! The `atq` binary on the in-memory fake engine (`ATQ_FAKE=1`): exit codes, logs, JSON lines,
//! interrupts. No Docker needed.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

const TASK: &str = "name: fake\nworker:\n  image: busybox\n  replicas: 3\nmaster:\n  image: busybox\n";

fn task_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, TASK).unwrap();
    (dir, path)
}

fn atq() -> Command {
    let mut cmd = Command::cargo_bin("atq").unwrap();
    cmd.env("ATQ_FAKE", "1").env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect()
}

#[test]
fn run_exits_with_the_masters_exit_code() {
    let (_dir, path) = task_file();
    for code in [0, 3, 42, 255] {
        atq().arg("run").arg(&path).env("ATQ_FAKE_MASTER_EXIT", code.to_string()).assert().code(code);
    }
}

#[test]
fn a_master_exit_code_no_process_can_have_is_an_atq_error() {
    let (_dir, path) = task_file();
    let out = atq().arg("run").arg(&path).env("ATQ_FAKE_MASTER_EXIT", "300").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("300"));
}

#[test]
fn run_prints_the_masters_logs_on_stdout_and_a_summary_on_stderr() {
    let (_dir, path) = task_file();
    let out = atq()
        .arg("run")
        .arg(&path)
        .env("ATQ_FAKE_MASTER_EXIT", "2")
        .env("ATQ_FAKE_MASTER_LOGS", "summary = 100\nerrors = 0")
        .env("ATQ_FAKE_MASTER_RUN_MS", "200")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "summary = 100\nerrors = 0\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let summary = stderr.lines().last().unwrap();
    assert!(summary.contains("fake") && summary.contains("3 workers") && summary.contains("exit code 2"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "escape codes off a terminal: {stderr:?}");
}

#[test]
fn run_json_prints_one_object_per_line_ending_with_the_outcome() {
    let (_dir, path) = task_file();
    let out = atq()
        .args(["run", "--json"])
        .arg(&path)
        .env("ATQ_FAKE_MASTER_EXIT", "5")
        .env("ATQ_FAKE_MASTER_LOGS", "one\ntwo")
        .env("ATQ_FAKE_MASTER_RUN_MS", "200")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let lines = json_lines(&out.stdout);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    for e in ["network_created", "workers_ready", "master_running", "log", "master_exited", "torn_down"] {
        assert!(events.contains(&e), "no {e} in {events:?}");
    }
    let logs: Vec<&str> = lines.iter().filter(|l| l["event"] == "log").map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(logs, ["one", "two"]);
    let outcome = lines.last().unwrap();
    assert_eq!(outcome["event"], "outcome");
    assert_eq!(outcome["exit_code"], 5, "atq's exit code");
    assert_eq!(outcome["outcome"]["exit_code"], 5, "the master's");
    assert_eq!(outcome["task"], "fake");
    assert_eq!(outcome["kept"], false);
    // Every line says the schema and its time; log lines name their replica and stream.
    assert!(
        lines.iter().all(|l| l["schema"] == 1 && l["time"].as_str().is_some_and(|t| t.ends_with('Z'))),
        "{lines:?}"
    );
    let log = lines.iter().find(|l| l["event"] == "log").unwrap();
    assert_eq!(
        (log["role"].as_str(), log["replica"].as_u64(), log["stream"].as_str()),
        (Some("master"), Some(1), Some("stdout"))
    );
}

#[test]
fn run_name_overrides_the_files_name() {
    let (_dir, path) = task_file();
    let out = atq().args(["run", "--json", "--name", "other"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out.stdout).last().unwrap()["task"], "other");
}

#[test]
fn run_timeout_stops_waiting_and_is_an_atq_error() {
    let (_dir, path) = task_file();
    let started = Instant::now();
    let out = atq()
        .args(["run", "--timeout", "1"])
        .arg(&path)
        .env("ATQ_FAKE_MASTER_RUN_MS", "60000")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn up_prints_the_task_name_then_one_worker_address_per_line() {
    let (_dir, path) = task_file();
    let out = atq().arg("up").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "fake");
    assert!(lines[1..].iter().all(|l| l.parse::<std::net::IpAddr>().is_ok()), "{stdout}");
}

#[test]
fn info_shows_the_swarm_and_no_join_token() {
    let out = atq().arg("info").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("backend:     fake") && stdout.contains("1/1 ready"), "{stdout}");
    assert!(!stdout.to_lowercase().contains("token"), "{stdout}");
    let json = atq().args(["info", "--json"]).output().unwrap().stdout;
    let value: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["engine"]["backend"], "fake");
}

#[test]
fn ls_json_is_an_array() {
    let out = atq().args(["ls", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(serde_json::from_slice::<Value>(&out.stdout).unwrap().is_array());
}

#[test]
fn down_of_an_unknown_task_says_how_to_list_tasks() {
    let out = atq().args(["down", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("atq ls"));
}

/// Spawns `atq run --json` and reads its stdout until an event named `until` appears; returns
/// the process and the rest of its stdout.
// The caller waits for the child; on a panic here the test fails and the child is left to exit.
#[allow(clippy::zombie_processes)]
fn spawn_until(args: &[&str], env: &[(&str, &str)], until: &str) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("atq"));
    cmd.args(args).env("ATQ_FAKE", "1").env_remove("RUST_LOG").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait();
            panic!("atq ended before {until}: {status:?}, after {seen:?}");
        }
        let value: Value = serde_json::from_str(&line).unwrap();
        let done = value["event"] == until;
        seen.push(value);
        if done {
            break;
        }
    }
    (child, reader)
}

/// The JSON lines left in `reader`, until atq closes its stdout.
fn rest(reader: BufReader<ChildStdout>) -> Vec<Value> {
    reader.lines().map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect()
}

fn events(lines: &[Value]) -> Vec<&str> {
    lines.iter().filter_map(|l| l["event"].as_str()).collect()
}

fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_during_deploy_exits_130() {
    let (_dir, path) = task_file();
    let path = path.to_str().unwrap();
    let (mut child, reader) =
        spawn_until(&["run", "--json", path], &[("ATQ_FAKE_LATENCY_MS", "60000")], "workers_created");
    let started = Instant::now();
    interrupt(&child);
    let lines = rest(reader);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(events(&lines).ends_with(&["interrupted", "teardown_started", "torn_down", "error"]), "{lines:?}");
    assert_eq!(lines.last().unwrap()["exit_code"], 130);
}

#[test]
fn sigterm_while_the_master_runs_tears_down_and_exits_130() {
    let (_dir, path) = task_file();
    let path = path.to_str().unwrap();
    let (mut child, reader) =
        spawn_until(&["run", "--json", path], &[("ATQ_FAKE_MASTER_RUN_MS", "60000")], "master_running");
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let lines = rest(reader);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(events(&lines).ends_with(&["interrupted", "teardown_started", "torn_down", "error"]), "{lines:?}");
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plans/nested")).unwrap();
    std::fs::write(dir.path().join("plans/nested/plan.jmx"), "<jmeterTestPlan/>").unwrap();
    dir
}

#[test]
fn data_push_prints_the_bare_id_on_stdout_and_messages_on_stderr() {
    let dir = data_dir();
    let expected = atq_core::DataBundle::from_dir(dir.path()).unwrap();
    let out = atq().args(["data", "push"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", expected.id()), "ID=$(atq data push DIR)");
    assert!(String::from_utf8(out.stderr).unwrap().contains("bundle of 1 file(s)"));
    let out = atq().args(["data", "push", "--quiet"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", expected.id()));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn data_push_refuses_a_path_that_is_neither_a_zip_nor_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.txt");
    std::fs::write(&file, "not a zip").unwrap();
    let out = atq().args(["data", "push"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("plan.txt"), "names the file: {stderr}");
}

#[test]
fn run_with_data_pushes_the_bundle_and_mounts_it() {
    let (_task_dir, path) = task_file();
    let dir = data_dir();
    let out = atq().arg("run").arg(&path).arg("--data").arg(dir.path()).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let outcome = json_lines(&out.stdout).into_iter().last().unwrap();
    assert_eq!(outcome["event"], "outcome");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bundle of 1 file(s)"), "pushed before the deploy: {stderr}");
}

const TASK_WITH_ARTIFACTS: &str =
    "name: arts\nworker:\n  image: busybox\nmaster:\n  image: busybox\nartifacts: /atq/results\n";

const FAKE_ARTIFACTS: &str = "/atq/results/summary.txt=requests: 100\n/atq/results/sub/data.csv=a,b";

#[test]
fn run_saves_the_masters_artifacts_into_the_given_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, TASK_WITH_ARTIFACTS).unwrap();
    let target = dir.path().join("out");
    let out = atq()
        .arg("run")
        .arg(&path)
        .arg("--artifacts")
        .arg(&target)
        .env("ATQ_FAKE_MASTER_ARTIFACTS", FAKE_ARTIFACTS)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(target.join("summary.txt")).unwrap(), "requests: 100");
    assert_eq!(std::fs::read_to_string(target.join("sub/data.csv")).unwrap(), "a,b");
    assert!(stderr.contains(&format!("atq: artifacts: 2 file(s) in {}", target.display())), "{stderr}");
}

#[test]
fn without_the_flag_artifacts_go_to_atq_artifacts_slash_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, TASK_WITH_ARTIFACTS).unwrap();
    let out = atq()
        .current_dir(dir.path())
        .arg("run")
        .arg(&path)
        .args(["--name", "renamed"])
        .env("ATQ_FAKE_MASTER_ARTIFACTS", FAKE_ARTIFACTS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = dir.path().join("atq-artifacts/renamed/summary.txt");
    assert_eq!(std::fs::read_to_string(saved).unwrap(), "requests: 100");
}

#[test]
fn run_json_reports_the_artifacts_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, TASK_WITH_ARTIFACTS).unwrap();
    let target = dir.path().join("out");
    let out = atq()
        .args(["run", "--json", "--artifacts"])
        .arg(&target)
        .arg(&path)
        .env("ATQ_FAKE_MASTER_ARTIFACTS", FAKE_ARTIFACTS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    let saved = lines.iter().find(|l| l["event"] == "artifacts_saved").expect("an artifacts_saved event");
    assert_eq!(saved["files"], 2);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "outcome", "{lines:?}");
    assert_eq!(last["artifacts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_master_that_wrote_no_artifacts_is_an_atq_error_after_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, TASK_WITH_ARTIFACTS).unwrap();
    let out = atq().current_dir(dir.path()).arg("run").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("wrote no artifacts"), "{stderr}");
}

#[test]
fn the_artifacts_flag_on_a_task_without_artifacts_is_refused_before_deploying() {
    let (dir, path) = task_file();
    let out = atq().arg("run").arg(&path).arg("--artifacts").arg(dir.path().join("out")).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("artifacts: /atq/results"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn sighup_while_the_master_runs_tears_down_like_sigint() {
    let (_dir, path) = task_file();
    let path = path.to_str().unwrap();
    let (mut child, reader) =
        spawn_until(&["run", "--json", path], &[("ATQ_FAKE_MASTER_RUN_MS", "60000")], "master_running");
    let status = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let lines = rest(reader);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(events(&lines).ends_with(&["interrupted", "teardown_started", "torn_down", "error"]), "{lines:?}");
}

/// A second interrupt gives up waiting for the cleanup and says so once, never that the task
/// was torn down.
#[test]
fn a_second_interrupt_abandons_the_cleanup_with_one_consistent_message() {
    let (_dir, path) = task_file();
    let path = path.to_str().unwrap();
    let env = [("ATQ_FAKE_MASTER_RUN_MS", "60000"), ("ATQ_FAKE_CALL_DELAY_MS", "400")];
    let (child, reader) = spawn_until(&["run", "--json", path], &env, "master_running");
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let lines = rest(reader);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let names = events(&lines);
    assert!(names.ends_with(&["cleanup_abandoned", "error"]), "{names:?}");
    assert!(!names.contains(&"torn_down"), "{names:?}");
    let message = lines.last().unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("abandoned") && message.contains("atq prune"), "{message}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("torn down") && !stderr.contains("nothing of the task is left"), "{stderr}");
}

#[test]
fn keep_on_failure_keeps_a_failed_run_and_tears_a_passing_one_down() {
    let (_dir, path) = task_file();
    let out = atq()
        .args(["run", "--json", "--keep-on-failure"])
        .arg(&path)
        .env("ATQ_FAKE_MASTER_EXIT", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.last().unwrap()["kept"], true);
    assert!(events(&lines).contains(&"kept"), "{lines:?}");
    assert!(!events(&lines).contains(&"torn_down"));
    let out = atq().args(["run", "--json", "--keep-on-failure"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.last().unwrap()["kept"], false);
    assert!(events(&lines).contains(&"torn_down"));
}

#[test]
fn every_phase_has_a_plain_progress_line_teardown_included() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, format!("{TASK}waitCommand:\n  command: \"true\"\n")).unwrap();
    let out = atq().arg("run").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for phase in
        ["wait command: probing", "wait command passed", "master running", "tearing down task fake", "torn down"]
    {
        assert!(stderr.contains(phase), "no {phase:?} in {stderr}");
    }
}
