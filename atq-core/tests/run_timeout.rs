//! A run whose master outlives the timeout ends at the timeout: its followed log (which never
//! ends while the master runs) is not drained first.

use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::error::Phase;
use atq_core::labels::Role;
use atq_core::run::{FollowLogs, Interrupt, RunOptions};
use atq_core::{Director, Error, FakeCluster, Service, Task};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_run_timeout_ends_the_run_without_waiting_for_the_masters_log() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let task = Task::builder("slow").workers(Service::new("w")).master(Service::new("m")).build().unwrap();
    let options = RunOptions::new().timeout(Duration::from_secs(1)).follow_logs(FollowLogs::All);
    let started = Instant::now();
    let result = director.run_with(&task, options, Interrupt::new()).finish().await;
    assert!(matches!(result, Err(Error::Timeout { phase: Phase::Run, .. })), "{result:?}");
    // (Virtual time: the log drain's own limit is 5 s.)
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(fake.is_empty());
}
