//! The `atq` binary without an engine: validate, help, completions, usage errors, and a clear,
//! fast error when the engine cannot be reached.

use std::time::{Duration, Instant};

use assert_cmd::Command;

fn atq() -> Command {
    let mut cmd = Command::cargo_bin("atq").unwrap();
    cmd.env_remove("ATQ_FAKE").env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const VALID: &str = "name: hello\nworker:\n  image: busybox\n  replicas: 3\nmaster:\n  image: busybox\n";

#[test]
fn validate_accepts_a_valid_file_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = atq().arg("validate").arg(file(&dir, "ok.yaml", VALID)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("valid") && stdout.contains("hello") && stdout.contains('3'), "{stdout}");
}

#[test]
fn validate_accepts_atq_director_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"name":"checkout","worker":{"image":"lab/jmeter","replicas":2},"master":{"image":"lab/jmeter"}}"#;
    atq().arg("validate").arg(file(&dir, "task.json", json)).assert().code(0);
}

#[test]
fn validate_names_every_broken_field_with_its_line_and_exits_125() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name: \"bad name!\"\nworker:\n  image: busybox\n  replicas: 0\nmaster:\n  image: \"\"\n";
    let path = file(&dir, "bad.yaml", text);
    let out = atq().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("atq: error: "), "{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
    for (line, field) in [(1, "name"), (4, "worker.replicas"), (6, "master.image")] {
        assert!(stderr.contains(&format!("bad.yaml:{line}: {field}: ")), "{field} at line {line}: {stderr}");
    }
}

#[test]
fn validate_names_an_unknown_field_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "typo.yaml", "name: a\nworker: {image: i}\nmaster: {image: i}\nreplica: 3\n");
    let out = atq().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("typo.yaml:4: replica: unknown field"), "{stderr}");
}

#[test]
fn validate_reads_stdin() {
    atq().args(["validate", "-"]).write_stdin(VALID).assert().code(0);
}

#[test]
fn a_missing_task_file_is_an_atq_error() {
    let out = atq().args(["validate", "/nonexistent/task.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("/nonexistent/task.yaml"));
}

#[test]
fn run_refuses_an_invalid_file_before_touching_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "bad.yaml", "name: a\nworker: {image: i, replicas: 0}\nmaster: {image: i}\n");
    let out = atq().arg("run").arg(&path).env("DOCKER_HOST", "unix:///nonexistent.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("worker.replicas"), "{stderr}");
    assert!(!stderr.contains("nonexistent.sock"), "the engine was contacted: {stderr}");
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = atq().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("Exit codes"), "{args:?}: {stdout}");
        for code in ["125", "130", "master"] {
            assert!(stdout.contains(code), "{args:?} does not mention {code}: {stdout}");
        }
    }
}

#[test]
fn help_documents_the_fake_engine_for_testing() {
    let stdout = atq().arg("--help").output().unwrap().stdout;
    assert!(String::from_utf8(stdout).unwrap().contains("ATQ_FAKE"));
}

#[test]
fn bad_usage_exits_125_not_a_code_a_master_could_use() {
    atq().arg("no-such-command").assert().code(125);
    atq().args(["run"]).assert().code(125);
    atq().args(["run", "x.yaml", "--timeout", "soon"]).assert().code(125);
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = atq().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("atq") && script.contains("validate"), "{shell}: {script}");
    }
}

#[test]
fn an_unreachable_engine_fails_fast_naming_the_host_tried() {
    let started = Instant::now();
    let out = atq().arg("ls").env("DOCKER_HOST", "unix:///nonexistent.sock").timeout(Duration::from_secs(10)).output();
    let out = out.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("atq: error: "), "{stderr}");
    assert!(stderr.contains("/nonexistent.sock"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

/// Sends `signal` to the process `pid` with kill(1).
fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_signal_while_the_task_file_is_read_exits_promptly_with_130() {
    let bin = assert_cmd::cargo::cargo_bin("atq");
    for (signal, command) in [("INT", "validate"), ("TERM", "run"), ("INT", "up")] {
        // stdin stays open and silent: a task file that never finishes arriving.
        let mut child = std::process::Command::new(&bin)
            .args([command, "-"])
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let sent = Instant::now();
        kill(signal, child.id());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if sent.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                panic!("atq {command} ignored SIG{signal} while reading its task file");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(130), "atq {command} after SIG{signal}");
    }
}

#[test]
fn validate_refuses_a_task_file_over_the_size_cap_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(64 * 1024 * 1024 * 1024).unwrap(); // 64 GiB, sparse
    let started = Instant::now();
    let out = atq().arg("validate").arg(&path).timeout(Duration::from_secs(20)).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("larger than the limit of 1048576 bytes"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn validate_lists_every_problem_sorted_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name: t\nworker:\n  image: i\n  replicas: -2\n  imgae: x\nmaster:\n  alias: boss\nrunTimeout: -5\n";
    let out = atq().arg("validate").arg(file(&dir, "t.yaml", text)).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (got, want) in lines.iter().zip([
        "t.yaml:4: worker.replicas: must be a whole number from 1 to 10000",
        "t.yaml:5: worker.imgae: unknown field",
        "t.yaml:7: master.image: missing",
        "t.yaml:8: runTimeout: must be a number of seconds",
    ]) {
        assert!(got.contains(&format!("/{want}")), "{got:?} is not {want:?}: {stderr}");
    }
}

const SHARDED: &str = "name: users\nworker:\n  image: busybox\n  replicas: 4\n  shards:\n    - file: users.csv\n    - file: ids.csv\n      split: blocks\n      header: false\nmaster:\n  image: busybox\n";

#[test]
fn validate_reports_how_sharded_files_split_across_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let task = file(&dir, "task.yaml", SHARDED);
    let out = atq().arg("validate").arg(&task).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("worker.shards[0]: users.csv split round-robin across 4 workers (rows are counted at deploy"),
        "{stdout}"
    );

    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("users.csv"), "user\nu1\nu2\nu3\nu4\nu5\nu6\n").unwrap();
    std::fs::write(data.path().join("ids.csv"), "1\n2\n3\n4\n5\n").unwrap();
    let out = atq().arg("validate").arg(&task).arg("--data").arg(data.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "worker.shards[0]: users.csv split round-robin across 4 workers: 6 rows, 2, 2, 1, 1 rows per worker"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("worker.shards[1]: ids.csv split blocks across 4 workers: 5 rows, 2, 1, 1, 1 rows per worker"),
        "{stdout}"
    );

    std::fs::remove_file(data.path().join("ids.csv")).unwrap();
    let out = atq().arg("validate").arg(&task).arg("--data").arg(data.path()).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("cannot shard 'ids.csv'") && stderr.contains("users.csv"), "{stderr}");
}

#[test]
fn validate_with_split_marks_a_file_of_the_data_like_data_push_does() {
    let dir = tempfile::tempdir().unwrap();
    let task =
        file(&dir, "task.yaml", "name: m\nworker:\n  image: busybox\n  replicas: 2\nmaster:\n  image: busybox\n");
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("ids.csv"), "id\n1\n2\n3\n").unwrap();
    let out = atq()
        .arg("validate")
        .arg(&task)
        .arg("--data")
        .arg(data.path())
        .arg("--split")
        .arg("ids.csv=blocks")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("worker.shards[0]: ids.csv split blocks across 2 workers: 3 rows, 2, 1 rows per worker"),
        "{stdout}"
    );
    let out = atq().arg("validate").arg(&task).arg("--split").arg("ids.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(125), "--split needs --data: {out:?}");
}
