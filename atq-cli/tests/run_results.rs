//! `atq run` judges the task's results on the fake engine (`ATQ_FAKE=1`, no Docker): the exit
//! code's precedence (the master's non-zero code, else 99 when a threshold failed, else 0) and
//! the three outputs written beside the saved artifacts.

use assert_cmd::Command;

/// A task whose master leaves `results.jtl` in its artifacts, with the given thresholds.
fn task(dir: &tempfile::TempDir, thresholds: &[&str]) -> std::path::PathBuf {
    let mut text = String::from(
        "name: judged\nworker:\n  image: busybox\nmaster:\n  image: busybox\nartifacts: /atq/results\n\
         results:\n  format: jtl\n  path: results.jtl\nthresholds:\n",
    );
    for t in thresholds {
        text.push_str(&format!("  - {t:?}\n"));
    }
    let path = dir.path().join("task.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One JMeter 2.13 sample (the headerless default columns), failed: error rate 100%.
const ONE_FAILED_SAMPLE: &str =
    "/atq/results/results.jtl=1700000000000,120,login,500,Internal Server Error,users 1-1,text,false,10,1,1,5";

/// `atq run` of `task` whose master exits `code` and writes `artifacts`; (exit code, stderr, dir).
fn run(task: &std::path::Path, code: i64, artifacts: &str) -> (Option<i32>, String, std::path::PathBuf) {
    let out_dir = task.parent().unwrap().join("out");
    let out = Command::cargo_bin("atq")
        .unwrap()
        .env("ATQ_FAKE", "1")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env("ATQ_FAKE_MASTER_EXIT", code.to_string())
        .env("ATQ_FAKE_MASTER_ARTIFACTS", artifacts)
        .arg("run")
        .arg(task)
        .arg("--artifacts")
        .arg(&out_dir)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap(), out_dir)
}

#[test]
fn a_failed_threshold_after_a_master_exit_of_0_exits_99_and_writes_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = task(&dir, &["error_rate < 1%", "count >= 1"]);
    let (code, stderr, out) = run(&path, 0, ONE_FAILED_SAMPLE);
    assert_eq!(code, Some(99), "{stderr}");
    assert!(stderr.contains("FAIL  error_rate < 1%"), "the verdict is shown: {stderr}");
    assert!(stderr.contains("PASS  count >= 1"), "{stderr}");
    for name in ["results.jtl", "summary.json", "junit.xml", "report.html"] {
        assert!(out.join(name).is_file(), "{name} beside the artifacts: {stderr}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["passed"], false);
    assert_eq!(summary["total"]["count"], 1);
    assert_eq!(summary["total"]["errors"], 1);
}

#[test]
fn the_masters_own_failure_wins_over_a_failed_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let path = task(&dir, &["error_rate < 1%"]);
    let (code, stderr, out) = run(&path, 3, ONE_FAILED_SAMPLE);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(out.join("summary.json").is_file(), "judged all the same: {stderr}");
}

#[test]
fn thresholds_that_hold_keep_the_masters_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = task(&dir, &["error_rate <= 100%", "count >= 1", "label=login: p99 < 1s"]);
    let (code, stderr, _) = run(&path, 0, ONE_FAILED_SAMPLE);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("thresholds: 3 passed, 0 failed"), "{stderr}");
}

#[test]
fn declared_thresholds_without_the_results_file_fail_the_run_with_99() {
    let dir = tempfile::tempdir().unwrap();
    let path = task(&dir, &["error_rate < 1%"]);
    let (code, stderr, out) = run(&path, 0, "/atq/results/other.txt=not the results");
    assert_eq!(code, Some(99), "missing results cannot pass a threshold: {stderr}");
    assert!(stderr.contains("results.jtl"), "the missing file is named: {stderr}");
    assert!(out.join("summary.json").is_file(), "{stderr}");
}
