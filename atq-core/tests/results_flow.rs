//! The results layer in the run flow, on FakeCluster: a master writes a JTL among its artifacts,
//! atq saves them, `results::analyze_task` judges the task's thresholds, and the exit code
//! follows the rule (the master's non-zero code wins, else 99 on a failed threshold). This is the
//! sequence `Director::run_with` / `atq run` will call.

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::labels::Role;
use atq_core::results::{self, Format, ResultsSpec, JUNIT_XML, REPORT_HTML, SUMMARY_JSON};
use atq_core::{Director, FakeCluster, Service, Task};

const JTL: &str = "timeStamp,elapsed,label,responseCode,success,bytes,Hostname\n\
                   1700000000000,120,login,200,true,100,w1\n\
                   1700000000100,180,login,200,true,100,w2\n\
                   1700000000200,900,search,500,false,0,w1\n";

fn task(thresholds: &[&str]) -> Task {
    Task::builder("judged")
        .workers(Service::new("lab/jmeter:1").replicas(2))
        .master(Service::new("lab/jmeter:1"))
        .artifacts("/atq/results")
        .results(ResultsSpec::new("results.jtl").format(Format::Jtl))
        .thresholds(thresholds.iter().copied())
        .build()
        .unwrap()
}

/// Runs the task on a fake whose master exits `code` after writing `files`; returns the report
/// and the artifacts directory.
async fn run(task: &Task, code: i64, files: &[(&str, &str)]) -> (Option<results::Report>, i64, tempfile::TempDir) {
    let fake = FakeCluster::new();
    let mut script = Script::exits(code);
    for (path, text) in files {
        script = script.artifact(format!("/atq/results/{path}"), *text);
    }
    fake.script(Matcher::role(Role::Master), script);
    let director = Director::new(fake);
    let d = director.deploy(task).await.unwrap();
    let outcome = d.wait(None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _ = d.save_artifacts(dir.path()).await;
    d.teardown().await.unwrap();
    let report = results::analyze_task(dir.path(), task);
    (report, outcome.exit_code, dir)
}

#[tokio::test]
async fn thresholds_that_hold_keep_the_masters_zero() {
    let task = task(&["label=login: p95 < 500ms", "count >= 3"]);
    let (report, master, dir) = run(&task, 0, &[("results.jtl", JTL)]).await;
    let report = report.expect("a task with thresholds has a report");
    assert!(report.passed(), "{}", report.summary_table());
    assert_eq!(report.exit_code(master), 0);
    let written = report.write_outputs(dir.path()).unwrap();
    assert_eq!(written.len(), 3);
    for name in [SUMMARY_JSON, JUNIT_XML, REPORT_HTML] {
        assert!(dir.path().join(name).is_file());
    }
    assert_eq!(report.results().unwrap().workers.len(), 2);
}

#[tokio::test]
async fn a_failed_threshold_turns_the_masters_zero_into_99() {
    let task = task(&["error_rate < 1%"]);
    let (report, master, _dir) = run(&task, 0, &[("results.jtl", JTL)]).await;
    let report = report.unwrap();
    assert_eq!(master, 0);
    assert_eq!(report.exit_code(master), 99);
    assert!(report.summary_table().contains("FAIL  error_rate < 1%"));
}

#[tokio::test]
async fn the_masters_own_failure_wins_over_thresholds() {
    let task = task(&["error_rate < 1%"]);
    let (report, master, _dir) = run(&task, 4, &[("results.jtl", JTL)]).await;
    assert_eq!(report.unwrap().exit_code(master), 4);
}

#[tokio::test]
async fn results_the_master_never_wrote_fail_the_thresholds_with_the_reason() {
    let task = task(&["p95 < 1s"]);
    let (report, master, _dir) = run(&task, 0, &[("jmeter.log", "started\n")]).await;
    let report = report.unwrap();
    assert!(report.results().is_none());
    assert!(report.problem().unwrap().contains("results.jtl"), "{:?}", report.problem());
    assert_eq!(report.exit_code(master), 99);
}

#[tokio::test]
async fn a_task_without_results_or_thresholds_has_no_report() {
    let task = Task::builder("plain")
        .workers(Service::new("i"))
        .master(Service::new("i"))
        .artifacts("/atq/results")
        .build()
        .unwrap();
    let (report, _, _dir) = run(&task, 0, &[("results.jtl", JTL)]).await;
    assert!(report.is_none());
}
