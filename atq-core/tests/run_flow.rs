//! The run flow (`Director::run_with`) and the one removal path, on FakeCluster: the stream of
//! events, keep-on-failure, the interrupt protocol, stale handles, retried teardowns, and cleanup
//! of dropped handles whatever runtime is left.

use std::time::Duration;

use atq_core::cluster::fake::{CallKind, Matcher, Script};
use atq_core::event::{RunEvent, RunEventKind};
use atq_core::labels::Role;
use atq_core::run::{FollowLogs, Interrupt, Keep, RunItem, RunOptions, RunReport};
use atq_core::{Director, Error, Event, FakeCluster, Service, Task, WaitCommand};
use futures_util::StreamExt;

fn task(name: &str, replicas: u32) -> Task {
    Task::builder(name)
        .workers(Service::new("lab/worker:1").replicas(replicas))
        .master(Service::new("lab/master:1"))
        .build()
        .unwrap()
}

/// Runs to the end, returning the events and how it ended.
async fn collect(mut run: atq_core::run::Run) -> (Vec<RunEvent>, atq_core::Result<RunReport>) {
    let mut events = Vec::new();
    while let Some(item) = run.next().await {
        match item {
            RunItem::Event(e) => events.push(e),
            RunItem::Done(result) => return (events, result.map(|r| *r)),
        }
    }
    panic!("the stream ended without Done");
}

fn progress(events: &[RunEvent]) -> Vec<&Event> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Progress(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_run_streams_timestamped_progress_and_the_masters_log_lines_then_its_report() {
    let fake = FakeCluster::new();
    fake.master_exits(0, ["one", "two"]);
    let director = Director::new(fake.clone());
    let before = std::time::SystemTime::now();
    let (events, report) = collect(director.run_with(&task("flow", 2), RunOptions::new(), Interrupt::new())).await;
    let report = report.unwrap();
    assert_eq!((report.exit_code(), report.outcome.logs.as_str()), (0, "one\ntwo\n"));
    assert!(!report.kept);
    let logs: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Log(l) => Some((l.role, l.replica, l.text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(logs, [(Role::Master, Some(1), "one".to_owned()), (Role::Master, Some(1), "two".to_owned())]);
    let kinds: Vec<&str> = progress(&events)
        .iter()
        .map(|e| match e {
            Event::NetworkCreated { .. } => "network",
            Event::WorkersReady { .. } => "workers",
            Event::MasterRunning { .. } => "master",
            Event::MasterExited { .. } => "exited",
            Event::TeardownStarted { .. } => "teardown",
            Event::TornDown { .. } => "torn_down",
            _ => "",
        })
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(kinds, ["network", "workers", "master", "exited", "teardown", "torn_down"]);
    // Every event has a time, in order, and its JSON form says the schema and the time.
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time) && events[0].time >= before);
    let json = events[0].to_json();
    assert_eq!(json["schema"], 1);
    assert!(json["time"].as_str().unwrap().ends_with('Z'), "{json}");
    let end = report.to_json();
    assert_eq!((end["event"].as_str(), end["exit_code"].as_u64()), (Some("outcome"), Some(0)));
    assert!(fake.is_empty());
}

#[tokio::test]
async fn keep_on_failure_leaves_a_failed_run_up_and_tears_a_passing_one_down() {
    let fake = FakeCluster::new();
    fake.master_exits(3, ["boom"]);
    let director = Director::new(fake.clone());
    let options = RunOptions::new().keep(Keep::OnFailure);
    let (events, report) = collect(director.run_with(&task("kept", 1), options.clone(), Interrupt::new())).await;
    let report = report.unwrap();
    assert!(report.kept);
    assert_eq!(report.exit_code(), 3);
    assert!(progress(&events)
        .iter()
        .any(|e| matches!(e, Event::Kept { reason, .. } if reason.contains("atq down kept"))));
    assert!(fake.services().contains(&"kept_master".to_owned()), "left up for debugging");
    // Detached: prune does not remove it for its owner's exit.
    let info = director.inspect("kept").await.unwrap();
    assert!(info.detached);
    director.teardown("kept").await.unwrap();

    fake.master_exits(0, Vec::<String>::new());
    let report = director.run_with(&task("passes", 1), options, Interrupt::new()).finish().await.unwrap();
    assert!(!report.kept);
    assert!(fake.is_empty());
}

#[tokio::test]
async fn keep_on_failure_also_keeps_a_deploy_that_failed() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Probe), Script::exits(1).stdout(["not yet"]));
    let director = Director::new(fake.clone());
    let t = task("probefail", 2)
        .to_builder()
        .wait_command(WaitCommand::new("false").timeout(Duration::from_millis(600)))
        .build()
        .unwrap();
    let (events, result) =
        collect(director.run_with(&t, RunOptions::new().keep(Keep::OnFailure), Interrupt::new())).await;
    assert!(matches!(result, Err(Error::ProbeTimeout { .. })), "{result:?}");
    assert!(progress(&events).iter().any(|e| matches!(e, Event::Kept { .. })));
    assert!(fake.services().contains(&"probefail_worker".to_owned()), "the workers stay to be looked at");
    director.teardown("probefail").await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_task_exists_error_claims_no_teardown_of_the_other_task() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let first = director.deploy(&task("taken", 1)).await.unwrap();
    let (events, result) = collect(director.run_with(&task("taken", 1), RunOptions::new(), Interrupt::new())).await;
    assert!(matches!(result, Err(Error::TaskExists { .. })), "{result:?}");
    assert!(
        !progress(&events).iter().any(|e| matches!(e, Event::TornDown { .. } | Event::RollingBack { .. })),
        "{events:?}"
    );
    assert!(fake.services().contains(&"taken_worker".to_owned()), "the other task is untouched");
    first.teardown().await.unwrap();
}

/// The first interrupt stops the run and tears it down, reporting it; the run ends Interrupted.
#[tokio::test(start_paused = true)]
async fn a_first_interrupt_tears_down_and_says_so() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let interrupt = Interrupt::new();
    let mut run = director.run_with(&task("int", 2), RunOptions::new(), interrupt.clone());
    let mut seen = Vec::new();
    let result = loop {
        match run.next().await.unwrap() {
            RunItem::Event(e) => {
                if let RunEventKind::Progress(Event::MasterRunning { .. }) = &e.kind {
                    interrupt.trigger();
                }
                seen.push(e);
            }
            RunItem::Done(result) => break result,
        }
    };
    assert!(matches!(result, Err(Error::Interrupted { abandoned: false })), "{result:?}");
    let p = progress(&seen);
    assert!(p.iter().any(|e| matches!(e, Event::Interrupted { .. })));
    assert!(matches!(p.last(), Some(Event::TornDown { .. })), "{p:?}");
    assert!(fake.is_empty());
}

/// An interrupt during the deploy rolls it back; a second one gives up waiting, and says so
/// without claiming the task was removed.
#[tokio::test(start_paused = true)]
async fn a_second_interrupt_abandons_the_cleanup_and_never_claims_it_finished() {
    // Every call takes a while: the rollback (on atq's cleanup thread, in real time) is still
    // going when the second interrupt comes.
    let fake = FakeCluster::new().with_latency(Duration::from_secs(5)).with_call_delay(Duration::from_millis(300));
    let director = Director::new(fake.clone());
    let interrupt = Interrupt::new();
    let mut run = director.run_with(&task("twice", 2), RunOptions::new(), interrupt.clone());
    let mut seen = Vec::new();
    let result = loop {
        match run.next().await.unwrap() {
            RunItem::Event(e) => {
                match &e.kind {
                    RunEventKind::Progress(Event::WorkersCreated { .. }) => interrupt.trigger(),
                    RunEventKind::Progress(Event::TeardownStarted { .. }) => interrupt.trigger(),
                    _ => {}
                }
                seen.push(e);
            }
            RunItem::Done(result) => break result,
        }
    };
    assert!(matches!(result, Err(Error::Interrupted { abandoned: true })), "{result:?}");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("abandoned") && !message.contains("has been removed"), "{message}");
    let p = progress(&seen);
    assert!(matches!(p.last(), Some(Event::CleanupAbandoned { .. })), "{p:?}");
    assert!(!p.iter().any(|e| matches!(e, Event::TornDown { .. })), "{p:?}");
    // The cleanup goes on in the background and finishes.
    director.settled().await;
    assert!(fake.is_empty());
}

#[tokio::test]
async fn workers_that_stop_while_the_master_runs_make_the_run_exit_98() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::exits_after(0, Duration::from_millis(300)));
    let director = Director::new(fake.clone());
    let mut run =
        director.run_with(&task("lost", 2), RunOptions::new().follow_logs(FollowLogs::None), Interrupt::new());
    let report = loop {
        match run.next().await.unwrap() {
            RunItem::Event(e) => {
                if let RunEventKind::Progress(Event::MasterRunning { .. }) = e.kind {
                    fake.kill_replica("lost_worker", 2, 137).unwrap();
                }
            }
            RunItem::Done(r) => break r.unwrap(),
        }
    };
    assert_eq!(report.outcome.exit_code, 0);
    assert_eq!(report.outcome.failed_workers.len(), 1);
    assert_eq!(report.exit_code(), atq_core::run::EXIT_WORKERS_LOST);
}

/// A handle of a task that was removed (`atq down`) and deployed again under the same name by
/// someone else must not tear the newer one down.
#[tokio::test]
async fn a_stale_handle_never_touches_a_newer_task_of_the_same_name() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let a = director.deploy(&task("shared", 2)).await.unwrap();
    director.teardown("shared").await.unwrap(); // atq down shared
    let b = director.deploy(&task("shared", 2)).await.unwrap();
    a.teardown().await.unwrap();
    assert!(fake.services().contains(&"shared_worker".to_owned()), "B's services stay");
    assert!(fake.networks().contains(&"shared_net".to_owned()));
    b.teardown().await.unwrap();
    assert!(fake.is_empty());
}

/// A teardown that fails half-way says what is left, and the next call removes the rest.
#[tokio::test]
async fn a_half_failed_teardown_is_retried_and_removes_the_rest() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("halfway", 2)).await.unwrap();
    fake.fail_call(CallKind::RemoveService, 2);
    let err = d.teardown().await.unwrap_err();
    match &err {
        Error::TeardownIncomplete { task, left, .. } => {
            assert_eq!(task, "halfway");
            assert!(left.iter().any(|l| l.starts_with("service ")), "{left:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!fake.is_empty());
    d.teardown().await.unwrap();
    assert!(fake.is_empty(), "the retry removed the rest");
}

/// What `#[tokio::test]` builds is a current-thread runtime, dropped when the test panics: the
/// dropped deployment is still removed, by atq's cleanup thread.
#[test]
fn a_deployment_dropped_by_a_panic_under_a_current_thread_runtime_is_still_removed() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let probe = fake.clone();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let _d = director.deploy(&task("panics", 3)).await.unwrap();
            assert!(!probe.is_empty());
            panic!("the test fails after deploying");
        });
    }));
    assert!(panicked.is_err());
    // The runtime is gone; the cleanup thread finishes the job.
    assert!(atq_core::cleanup::wait_idle(Duration::from_secs(10)));
    assert!(fake.is_empty(), "{:?} {:?}", fake.services(), fake.networks());
}

/// A runtime shut down in the middle of a deploy drops the deploy future: what it created so far
/// is removed all the same.
#[test]
fn a_runtime_shut_down_mid_deploy_leaves_nothing_behind() {
    let fake = FakeCluster::new().with_latency(Duration::from_secs(3600));
    let director = Director::new(fake.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let deploying = {
        let director = director.clone();
        runtime.spawn(async move { director.deploy(&task("shutdown", 2)).await })
    };
    // Wait until the workers exist (they never start: the latency is an hour).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fake.services().contains(&"shutdown_worker".to_owned()) {
        assert!(std::time::Instant::now() < deadline, "the deploy did not get to its workers");
        std::thread::sleep(Duration::from_millis(5));
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(deploying);
    assert!(atq_core::cleanup::wait_idle(Duration::from_secs(10)));
    assert!(fake.is_empty(), "{:?} {:?}", fake.services(), fake.networks());
}

#[tokio::test]
async fn artifacts_are_saved_by_the_run_and_reported() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::exits(0).artifact("/atq/results/r.txt", "42"));
    let director = Director::new(fake.clone());
    let t = task("arts", 1).to_builder().artifacts("/atq/results").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (events, report) =
        collect(director.run_with(&t, RunOptions::new().artifacts_dir(dir.path()), Interrupt::new())).await;
    let report = report.unwrap();
    assert_eq!(report.artifacts, [dir.path().join("r.txt")]);
    assert_eq!(std::fs::read_to_string(dir.path().join("r.txt")).unwrap(), "42");
    assert!(progress(&events).iter().any(|e| matches!(e, Event::ArtifactsSaved { files: 1, .. })));
    assert!(fake.is_empty());
}

#[tokio::test]
async fn missing_artifacts_make_the_run_an_atq_error_after_teardown() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let t = task("noarts", 1).to_builder().artifacts("/atq/results").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report =
        director.run_with(&t, RunOptions::new().artifacts_dir(dir.path()), Interrupt::new()).finish().await.unwrap();
    assert!(matches!(report.artifacts_error, Some(Error::ArtifactsNotFound { .. })));
    assert_eq!(report.exit_code(), atq_core::run::EXIT_ATQ_ERROR);
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_master_that_never_starts_its_program_is_reported_with_the_engines_reason() {
    let fake = FakeCluster::new();
    fake.script(
        Matcher::role(Role::Master),
        Script::cannot_start(126, "starting container failed: exec: \"/atq/data/run.sh\": permission denied"),
    );
    let director = Director::new(fake.clone());
    let report = director.run_with(&task("noexec", 1), RunOptions::new(), Interrupt::new()).finish().await.unwrap();
    assert!(report.outcome.failed_to_start);
    assert!(report.outcome.error.as_deref().unwrap().contains("permission denied"));
    assert_eq!(report.exit_code(), 126);
    let info_state = director.list().await.unwrap();
    assert!(info_state.is_empty(), "torn down");
}

/// The results the master wrote are judged by the run: thresholds decide the exit code once the
/// master exited 0 (99, k6's convention), the master's own code wins, missing results fail the
/// thresholds, and the three reports land beside the artifacts.
#[tokio::test]
async fn the_run_judges_the_masters_results_and_thresholds_decide_the_exit_code() {
    const JTL: &str = "timeStamp,elapsed,label,success\n1700000000000,50,a,true\n1700000000500,70,a,true\n";
    let run = |code: i64, thresholds: &[&str], jtl: Option<&str>| {
        let fake = FakeCluster::new();
        let mut script = Script::exits(code);
        if let Some(jtl) = jtl {
            script = script.artifact("/atq/results/results.jtl", jtl);
        }
        fake.script(Matcher::role(Role::Master), script);
        let t = task("judged", 1)
            .to_builder()
            .artifacts("/atq/results")
            .thresholds(thresholds.iter().copied())
            .build()
            .unwrap();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let report = Director::new(fake.clone())
                .run_with(&t, RunOptions::new().artifacts_dir(dir.path()), Interrupt::new())
                .finish()
                .await
                .unwrap();
            assert!(fake.is_empty());
            (report, dir)
        }
    };
    let (passed, dir) = run(0, &["p95 < 1s"], Some(JTL)).await;
    assert_eq!(passed.exit_code(), 0);
    for name in ["summary.json", "junit.xml", "report.html"] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
    assert_eq!(passed.to_json()["results"]["total"]["count"], 2, "{}", passed.to_json()["results"]);
    let (failed, _) = run(0, &["p95 < 10ms"], Some(JTL)).await;
    assert_eq!(failed.exit_code(), 99);
    let (master_wins, _) = run(3, &["p95 < 10ms"], Some(JTL)).await;
    assert_eq!(master_wins.exit_code(), 3);
    let (missing, _) = run(0, &["p95 < 1s"], None).await;
    assert_eq!(missing.exit_code(), 99, "no results while thresholds are declared");
    assert!(missing.results.as_ref().unwrap().problem().is_some());
}
