//! `atq report`: results files summarised offline, thresholds judged, outputs written, and the
//! exit-code rule (0, 99 on a failed threshold, 125 on atq's own error). No engine needed.

use assert_cmd::Command;
use serde_json::Value;

fn atq() -> Command {
    let mut cmd = Command::cargo_bin("atq").unwrap();
    cmd.env_remove("ATQ_FAKE").env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// A JMeter 2.13 JTL (no header, Hostname saved) of `n` samples on `host`: latency 1..=n ms,
/// every tenth on label `login`, none failed unless `fail_every` says so.
fn jtl(dir: &tempfile::TempDir, name: &str, host: &str, n: u64, fail_every: Option<u64>) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 1..=n {
        let label = if i % 10 == 0 { "login" } else { "home" };
        let ok = fail_every.is_none_or(|k| i % k != 0);
        text += &format!("{},{i},{label},200,OK,users 1-1,text,{ok},100,1,1,1,{host}\n", 1_700_000_000_000 + i * 10);
    }
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_report_prints_the_table_and_exits_0_when_thresholds_hold() {
    let dir = tempfile::tempdir().unwrap();
    let file = jtl(&dir, "r.jtl", "w1", 100, None);
    let out = atq()
        .arg("report")
        .arg(&file)
        .args(["-t", "p95 < 96ms", "-t", "error_rate < 1%", "-t", "label=login: p99 < 1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("LABEL"), "{stdout}");
    assert!(stdout.contains("home") && stdout.contains("login") && stdout.contains("TOTAL"), "{stdout}");
    assert!(stdout.contains("thresholds: 3 passed, 0 failed"), "{stdout}");
}

#[test]
fn a_failed_threshold_exits_99_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let file = jtl(&dir, "r.jtl", "w1", 100, Some(10));
    let out = atq()
        .arg("report")
        .arg(&file)
        .args(["--threshold", "error_rate < 1%", "--threshold", "p95 < 1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(99), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("FAIL  error_rate < 1%  (error_rate = 10%, not < 1%)"), "{stdout}");
    assert!(stdout.contains("PASS  p95 < 1s"), "{stdout}");
    assert!(String::from_utf8(out.stderr).unwrap().contains("1 threshold(s) failed: exit 99"));
}

#[test]
fn several_workers_files_merge_into_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let a = jtl(&dir, "a.jtl", "w1", 90, None);
    let b = jtl(&dir, "b.jtl", "w2", 10, None);
    let out = atq().arg("report").arg(&a).arg(&b).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "atq.summary/1");
    assert_eq!(v["total"]["count"], 100);
    let workers: Vec<&str> = v["workers"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(workers, ["w1", "w2"]);
    // Merged from the samples: the p50 of 1..=90 and 1..=10 together is 40 (rank 50 of 100).
    assert_eq!(v["total"]["p50_ms"], 40.0);
}

#[test]
fn outputs_are_written_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = jtl(&dir, "r.jtl", "w1", 20, None);
    let html = dir.path().join("sub/report.html");
    let junit = dir.path().join("junit.xml");
    let out_dir = dir.path().join("out");
    atq()
        .arg("report")
        .arg(&file)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["-t", "p99 < 1s"])
        .assert()
        .code(0);
    assert!(std::fs::read_to_string(&html).unwrap().starts_with("<!doctype html>"));
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<testcase classname=\"atq.thresholds\" name=\"p99 &lt; 1s\""));
    for name in ["summary.json", "junit.xml", "report.html"] {
        assert!(out_dir.join(name).is_file(), "{name}");
    }
}

#[test]
fn a_bad_threshold_is_a_usage_error_showing_an_accepted_form() {
    let dir = tempfile::tempdir().unwrap();
    let file = jtl(&dir, "r.jtl", "w1", 5, None);
    let out = atq().arg("report").arg(&file).args(["-t", "p95 < 500"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--threshold #1") && stderr.contains("\"p95 < 500ms\""), "{stderr}");
}

#[test]
fn an_xml_jtl_or_a_missing_file_is_atq_s_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("x.jtl");
    std::fs::write(&xml, "<?xml version=\"1.0\"?>\n<testResults/>\n").unwrap();
    let out = atq().arg("report").arg(&xml).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("output_format=csv"));
    let out = atq().arg("report").arg(dir.path().join("nope.jtl")).args(["-t", "p95 < 1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8(out.stderr).unwrap().contains("not found"));
}

#[test]
fn strict_mode_stops_at_a_malformed_row_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.jtl");
    std::fs::write(&file, "timeStamp,elapsed,label,success\n1700000000000,5,a,true\n1700000000001,x,a,true\n").unwrap();
    atq().arg("report").arg(&file).assert().code(0);
    let out = atq().arg("report").arg(&file).arg("--strict").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("m.jtl:3: elapsed"), "{stderr}");
}

#[test]
fn help_documents_the_grammar_and_the_exit_codes() {
    let out = atq().args(["report", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["label=login: p99 < 1s", "error_rate", "99    a threshold failed", "125"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let top = String::from_utf8(atq().arg("--help").output().unwrap().stdout).unwrap();
    assert!(top.contains("99    a threshold failed"), "{top}");
}
