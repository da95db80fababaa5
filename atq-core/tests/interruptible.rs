//! The interrupt protocol on a deployed task's calls (`Deployment::wait_interruptible`,
//! `teardown_interruptible`, `Director::teardown_interruptible`) and removal by deploy id
//! (`Director::teardown_deploy`), on FakeCluster.

use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::labels::Role;
use atq_core::run::Interrupt;
use atq_core::{Director, Error, Event, FakeCluster, Service, Task};
use tokio::sync::broadcast;

fn task(name: &str) -> Task {
    Task::builder(name)
        .workers(Service::new("lab/worker:1").replicas(2))
        .master(Service::new("lab/master:1"))
        .build()
        .unwrap()
}

/// Makes every engine call of `fake` (its shared state) take `delay`.
fn slow(fake: &FakeCluster, delay: Duration) {
    let _ = fake.clone().with_call_delay(delay);
}

fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test]
async fn a_wait_finishes_untouched_when_nothing_interrupts_it() {
    let fake = FakeCluster::new();
    fake.master_exits(4, ["done"]);
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("plain")).await.unwrap();
    let outcome = d.wait_interruptible(None, &Interrupt::new()).await.unwrap();
    assert_eq!((outcome.exit_code, outcome.logs.as_str()), (4, "done\n"));
    d.teardown().await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_first_interrupt_of_a_wait_tears_the_task_down_and_says_so() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("waiting")).await.unwrap();
    let mut events = director.subscribe();
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.trigger();
    });
    let result = d.wait_interruptible(None, &interrupt).await;
    assert!(matches!(result, Err(Error::Interrupted { abandoned: false })), "{result:?}");
    let seen = drain(&mut events);
    let kinds: Vec<_> = seen.iter().map(|e| e.to_json()["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["interrupted", "teardown_started", "torn_down"]);
    assert!(fake.is_empty());
    // The handle knows it is gone: a later teardown (a context manager's exit) does nothing.
    d.teardown().await.unwrap();
    assert!(drain(&mut events).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_second_interrupt_of_a_wait_abandons_and_dropping_the_handle_finishes_the_removal() {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::runs_until_removed());
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("twice")).await.unwrap();
    // Engine calls now take 5 s each: the teardown is still running when the second trigger comes.
    slow(&fake, Duration::from_secs(5));
    let mut events = director.subscribe();
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    let mut watch = director.subscribe();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.trigger();
        while let Ok(event) = watch.recv().await {
            if matches!(event, Event::TeardownStarted { .. }) {
                trigger.trigger();
            }
        }
    });
    let result = d.wait_interruptible(None, &interrupt).await;
    assert!(matches!(result, Err(Error::Interrupted { abandoned: true })), "{result:?}");
    let seen = drain(&mut events);
    assert!(matches!(seen.last(), Some(Event::CleanupAbandoned { .. })), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, Event::TornDown { .. })), "{seen:?}");
    assert!(!fake.is_empty(), "nothing claimed the task was removed, and it was not yet");
    // The cleanup thread runs on its own runtime, on the real clock: engine calls are quick again.
    slow(&fake, Duration::ZERO);
    drop(d);
    director.settled().await;
    assert!(fake.is_empty(), "the dropped handle's cleanup removed the rest");
}

#[tokio::test(start_paused = true)]
async fn a_first_interrupt_of_a_teardown_keeps_waiting_for_it() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let d = director.deploy(&task("down")).await.unwrap();
    slow(&fake, Duration::from_secs(5));
    let mut events = director.subscribe();
    let interrupt = Interrupt::new();
    interrupt.trigger();
    let result = d.teardown_interruptible(&interrupt).await;
    assert!(matches!(result, Err(Error::Interrupted { abandoned: false })), "{result:?}");
    let seen = drain(&mut events);
    assert!(seen.iter().any(|e| matches!(e, Event::Interrupted { .. })), "{seen:?}");
    assert!(matches!(seen.last(), Some(Event::TornDown { .. })), "{seen:?}");
    assert!(fake.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_second_interrupt_of_a_teardown_by_name_stops_waiting() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    director.deploy(&task("byname")).await.unwrap().keep();
    slow(&fake, Duration::from_secs(5));
    let interrupt = Interrupt::new();
    interrupt.trigger();
    interrupt.trigger();
    let result = director.teardown_interruptible("byname", &interrupt).await;
    assert!(matches!(result, Err(Error::Interrupted { abandoned: true })), "{result:?}");
    assert!(!fake.is_empty());
    director.teardown("byname").await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_teardown_by_name_without_interrupt_is_a_plain_teardown() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    director.deploy(&task("quiet")).await.unwrap().keep();
    director.teardown_interruptible("quiet", &Interrupt::new()).await.unwrap();
    assert!(fake.is_empty());
    let missing = director.teardown_interruptible("quiet", &Interrupt::new()).await;
    assert!(matches!(missing, Err(Error::TaskNotFound { .. })), "{missing:?}");
}

/// What a fixture does at the end of its test: remove its own deploy by id. A newer task of the
/// same name (deployed after an `atq down` of the old one) is never touched.
#[tokio::test]
async fn teardown_deploy_removes_only_that_deploy() {
    let fake = FakeCluster::new();
    let director = Director::new(fake.clone());
    let mut events = director.subscribe();
    let a = director.deploy(&task("mine")).await.unwrap();
    let a_id = a.deploy_id().to_owned();
    let announced = drain(&mut events).into_iter().find_map(|e| match e {
        Event::NetworkCreated { deploy_id, .. } => Some(deploy_id),
        _ => None,
    });
    assert_eq!(announced.as_deref(), Some(a_id.as_str()), "the first event names the deploy id");
    a.keep();
    director.teardown("mine").await.unwrap();
    let b = director.deploy(&task("mine")).await.unwrap();
    assert_ne!(b.deploy_id(), a_id);
    assert!(!director.teardown_deploy("mine", &a_id).await.unwrap(), "nothing of A is left");
    assert!(fake.services().contains(&"mine_worker".to_owned()), "B's services stay");
    assert!(director.teardown_deploy("mine", b.deploy_id()).await.unwrap());
    assert!(fake.is_empty());
    // B's handle finds its objects gone and succeeds.
    b.teardown().await.unwrap();
}
