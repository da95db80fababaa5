//! `atq serve` for real: the binary on a loopback port, against the real engine (the backend
//! the engine calls for, or `ATQ_ENGINE`), driven over HTTP.
//!
//! Needs the image `atq-test/busybox:latest` (`tests/images/build.sh`). These tests fail (they do
//! not skip) when the engine is unreachable or the image is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::leftovers;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const IMAGE: &str = "atq-test/busybox:latest";

fn require_engine() {
    let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    assert!(info.as_ref().is_ok_and(|o| o.status.success()), "these tests need a Docker engine: {info:?}");
    let image = Command::new("docker").args(["image", "inspect", IMAGE]).output().unwrap();
    assert!(image.status.success(), "image {IMAGE} missing: build it with tests/images/build.sh");
}

/// A unique task name per test and process (ATQ-Director's names are short; atq's may be longer).
fn name(test: &str) -> String {
    format!("srv-{test}-{}", std::process::id())
}

/// Nothing of `task` is left (an overlay network may take a few seconds to go).
fn assert_nothing_left(task: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<_> = ["service", "config", "container", "volume", "network"]
            .into_iter()
            .flat_map(|kind| leftovers(kind, task).into_iter().map(move |id| format!("{kind} {id}")))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left of {task} after 30 s: {left:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A running `atq serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a token with `scopes` in `dir/tokens.json` through `atq token add`; returns it.
fn add_token(dir: &Path, name: &str, scopes: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_atq"))
        .args(["token", "add", name, "--scopes", scopes, "--tokens"])
        .arg(dir.join("tokens.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let file = std::fs::read_to_string(dir.join("tokens.json")).unwrap();
    assert!(!file.contains(&token), "the tokens file holds only hashes");
    token
}

/// Starts `atq serve` on a free loopback port with the tokens and state under `dir`.
fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--concurrency", "2", "--tokens"])
        .arg(dir.join("tokens.json"))
        .arg("--state")
        .arg(dir.join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "atq serve exited before listening");
        if let Some(rest) = line.trim().strip_prefix("atq: serving on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        eprint!("serve: {line}");
    };
    // Keep draining its messages (the log must never block it).
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
        }
    });
    Server { child, base }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(server: &Server, method: &str, path: &str, token: &str, body: &str) -> Answer {
    call_at(&server.base, method, path, token, body).await
}

async fn call_at(base: &str, method: &str, path: &str, token: &str, body: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, body }
}

/// Polls run `id` (v2) until `done` holds for its view; returns the view.
async fn wait_for(server: &Server, token: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = call(server, "GET", &format!("/v2/runs/{id}"), token, "").await.json();
        if done(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "run {id}: still not {what}: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_over(view: &Value) -> bool {
    matches!(view["state"].as_str(), Some("succeeded" | "failed" | "aborted"))
}

/// A v2 task whose master runs `master` (a shell line) and whose workers stop on SIGTERM.
fn task_json(name: &str, master: &str) -> String {
    serde_json::json!({
        "name": name,
        "worker": {"image": IMAGE, "replicas": 2, "command": ["/bin/sh", "-c"], "args": ["trap 'exit 0' TERM; sleep 600 & wait"]},
        "master": {"image": IMAGE, "command": ["/bin/sh", "-c"], "args": [master]},
    })
    .to_string()
}

#[tokio::test]
async fn v1_put_task_in_atq_directors_payload_runs_to_completion() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let server = start(dir.path());
    let task = name("v1");
    // ATQ-Director's TaskPayload, as its clients send it (swagger/swagger.yaml).
    let payload = serde_json::json!({
        "name": task,
        "delay": 0,
        "waitCommand": {"command": "echo ready", "expectedResult": "ready", "timeout": 30},
        "worker": {"image": IMAGE, "alias": "worker", "replicas": 2, "args": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"], "tty": false},
        "master": {"image": IMAGE, "alias": "master", "replicas": 1, "args": ["sh", "-c", "echo workers $WORKER_CSV_VIPS"], "tty": false},
    });
    let answer = call(&server, "PUT", "/task", &token, &payload.to_string()).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["status"], "initializing");
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = call(&server, "GET", &format!("/task/{id}"), &token, "").await.json();
        if status["status"] == "finished" {
            break;
        }
        assert_ne!(
            status["status"],
            "errored",
            "{}",
            call(&server, "GET", &format!("/v2/runs/{id}"), &token, "").await.json()
        );
        assert!(Instant::now() < deadline, "task {id} not finished: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let view = call(&server, "GET", &format!("/v2/runs/{id}"), &token, "").await.json();
    assert_eq!(view["exitCode"], 0);
    assert_eq!(view["workers"].as_array().unwrap().len(), 2);
    let logs = call(&server, "GET", &format!("/v2/runs/{id}/logs?role=master"), &token, "").await;
    assert!(
        String::from_utf8_lossy(&logs.body).contains("master.1 | workers 10."),
        "{}",
        String::from_utf8_lossy(&logs.body)
    );
    assert_nothing_left(&task);
}

#[tokio::test]
async fn a_v2_run_streams_its_events_over_sse_to_the_end() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let server = start(dir.path());
    let task = name("sse");
    let answer = call(&server, "POST", "/v2/runs", &token, &task_json(&task, "echo one; sleep 1; echo two")).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let url = answer.json()["url"].as_str().unwrap().to_owned();
    // The stream is read while the run goes on; it ends by itself with the outcome.
    let stream = call(&server, "GET", &format!("{url}/events"), &token, "").await;
    assert_eq!(stream.status, 200);
    let text = String::from_utf8(stream.body).unwrap();
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    for expected in ["queued", "network_created", "workers_ready", "master_running", "master_exited", "torn_down"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let lines: Vec<&str> = events
        .iter()
        .filter(|(n, d)| *n == "log" && d["role"] == "master")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["one", "two"]);
    assert_eq!(names.last(), Some(&"outcome"));
    assert_eq!(events.last().unwrap().1["exit_code"], 0);
    assert_nothing_left(&task);
}

#[tokio::test]
async fn an_abort_mid_deploy_leaves_nothing() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let server = start(dir.path());
    let task = name("abort");
    // Workers that never turn healthy: the deploy waits for them until aborted.
    let body = serde_json::json!({
        "name": task,
        "startTimeout": 300,
        "worker": {"image": IMAGE, "replicas": 2, "command": ["/bin/sh", "-c"], "args": ["trap 'exit 0' TERM; sleep 600 & wait"],
                   "healthCheck": {"test": "exit 1", "interval": 1, "retries": 1000}},
        "master": {"image": IMAGE},
    });
    let answer = call(&server, "POST", "/v2/runs", &token, &body.to_string()).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    wait_for(&server, &token, &id, "deploying its workers", |v| {
        v["phases"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "workers_created"))
    })
    .await;
    let answer = call(&server, "DELETE", &format!("/v2/runs/{id}"), &token, "").await;
    assert_eq!(answer.status, 202);
    let view = wait_for(&server, &token, &id, "over", is_over).await;
    assert_eq!(view["state"], "aborted");
    let again = call(&server, "DELETE", &format!("/v2/runs/{id}"), &token, "").await;
    assert_eq!(again.status, 200, "a second DELETE changes nothing");
    assert_nothing_left(&task);
}

/// Starts a run, kills the service with SIGKILL once `ready` holds for the run, starts a new
/// service on the same state; returns the new service and the run's id.
async fn kill_9_then_restart(dir: &Path, token: &str, body: &str, ready: impl Fn(&Value) -> bool) -> (Server, String) {
    let mut server = start(dir);
    let answer = call(&server, "POST", "/v2/runs", token, body).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    wait_for(&server, token, &id, "ready to be killed under", ready).await;
    // kill -9: no cleanup of any kind.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    (start(dir), id)
}

#[tokio::test]
async fn a_restart_after_kill_9_mid_run_adopts_the_run_and_follows_it_to_its_end() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let task = name("adopt");
    let body = task_json(&task, "echo started; sleep 6; echo done");
    let (server, id) = kill_9_then_restart(dir.path(), &token, &body, |v| v["state"] == "running").await;
    let view = call(&server, "GET", &format!("/v2/runs/{id}"), &token, "").await.json();
    assert!(view["note"].as_str().unwrap().starts_with("adopted after a restart"), "{view}");
    let view = wait_for(&server, &token, &id, "over", is_over).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["exitCode"], 0);
    let logs = call(&server, "GET", &format!("/v2/runs/{id}/logs?role=master"), &token, "").await;
    let logs = String::from_utf8_lossy(&logs.body);
    assert!(logs.contains("| started") && logs.contains("| done"), "{logs}");
    assert_nothing_left(&task);
}

#[tokio::test]
async fn a_restart_after_kill_9_mid_deploy_tears_the_run_down_and_says_why() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let task = name("redeploy");
    // Workers that never turn healthy: the deploy is still waiting for them when killed.
    let body = serde_json::json!({
        "name": task,
        "startTimeout": 300,
        "worker": {"image": IMAGE, "replicas": 2, "command": ["/bin/sh", "-c"], "args": ["trap 'exit 0' TERM; sleep 600 & wait"],
                   "healthCheck": {"test": "exit 1", "interval": 1, "retries": 1000}},
        "master": {"image": IMAGE},
    })
    .to_string();
    let (server, id) = kill_9_then_restart(dir.path(), &token, &body, |v| {
        v["phases"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "workers_created"))
    })
    .await;
    let view = call(&server, "GET", &format!("/v2/runs/{id}"), &token, "").await.json();
    assert_eq!(view["state"], "aborted", "{view}");
    let note = view["note"].as_str().unwrap();
    assert!(note.contains("torn down after a restart") && note.contains("was deploying"), "{note}");
    assert_nothing_left(&task);
}

#[test]
fn no_auth_is_refused_off_loopback_and_a_service_needs_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atq"))
        .args(["serve", "--listen", "0.0.0.0:0", "--insecure-no-auth", "--state"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only allowed on a loopback address"));
    let out = Command::new(env!("CARGO_BIN_EXE_atq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(dir.path().join("none.json"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("atq token add"));
}

#[tokio::test]
async fn a_stopped_service_tears_its_runs_down_and_ends_their_streams() {
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    let token = add_token(dir.path(), "ci", "runs:read,runs:write");
    let task = name("stop");
    let mut server = start(dir.path());
    let answer =
        call(&server, "POST", "/v2/runs", &token, &task_json(&task, "trap 'exit 0' TERM; sleep 600 & wait")).await;
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    wait_for(&server, &token, &id, "running", |v| v["state"] == "running").await;
    // A reader follows the run while the service is stopped: its stream must end.
    let reader = {
        let (base, token, id) = (server.base.clone(), token.clone(), id.clone());
        tokio::spawn(async move {
            let events = call_at(&base, "GET", &format!("/v2/runs/{id}/events"), &token, "").await;
            String::from_utf8(events.body).unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "atq serve did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = tokio::time::timeout(Duration::from_secs(10), reader).await.unwrap().unwrap();
    assert!(events.contains("event: error"), "the stream ends with the run's end: {events}");
    assert_nothing_left(&task);
    let server = start(dir.path());
    let view = call(&server, "GET", &format!("/v2/runs/{id}"), &token, "").await.json();
    assert_eq!(view["state"], "aborted", "{view}");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    require_engine();
    let dir = tempfile::tempdir().unwrap();
    add_token(dir.path(), "ci", "runs:read");
    let server = start(dir.path());
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /v2/health HTTP/1.1\r\nHost: atq\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    assert!(read.is_ok(), "the service closed the connection: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(25), "cut off after the header timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}
