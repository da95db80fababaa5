//! A large task on the real engine: 300 workers, more than the /24 an engine gives a network by
//! default holds. Each backend sizes the task network to the task, every worker runs with an
//! address of its own, the master is given all of them, and teardown leaves nothing.
//!
//! Prints how long deploy and teardown took (`-- --nocapture`); BENCHMARKS.md has the figures.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use atq_core::{Service, Task};
use atq_tests::*;

/// More workers than a /24 holds (253 for replicas once the engine's own are counted).
const WORKERS: u32 = 300;

/// The master checks it was given `WORKERS` distinct addresses, in the environment and in the file.
const MASTER: &str = r#"
    n_env=$(echo "$WORKER_CSV_VIPS" | tr ',' '\n' | grep . | sort -u | wc -l)
    n_file=$(grep . "$ATQ_WORKERS_FILE" | sort -u | wc -l)
    echo "env=$n_env file=$n_file"
    [ "$n_env" = "$EXPECTED" ] && [ "$n_file" = "$EXPECTED" ]
"#;

async fn three_hundred_workers_run_with_distinct_addresses_and_leave_nothing(backend: Backend) {
    let name = unique("large");
    let scope = Scope::for_task(backend, &name).await;
    let workers =
        Service::new(BUSYBOX).replicas(WORKERS).command(["sh", "-c"]).args(["trap 'exit 0' TERM; sleep 3600 & wait"]);
    let master = Service::new(BUSYBOX).command(["sh", "-c"]).args([MASTER]).env("EXPECTED", WORKERS.to_string());
    let task =
        Task::builder(&name).workers(workers).master(master).start_timeout(Duration::from_secs(600)).build().unwrap();
    let director = scope.director();
    let (deployment, deploy_took) = timed(director.deploy(&task)).await;
    let deployment = deployment.unwrap();

    let addresses: BTreeSet<IpAddr> = deployment.workers().iter().copied().collect();
    assert_eq!(addresses.len(), WORKERS as usize, "distinct worker addresses");
    let subnet = subnet(&task.network_name());
    assert!(subnet.1 < 24, "{backend:?}: the task network {subnet:?} is not larger than a /24");
    assert!(addresses.iter().all(|a| in_subnet(*a, subnet)), "addresses outside {subnet:?}");
    assert_eq!(scope.leftover_containers().len(), WORKERS as usize + 1, "workers and master containers");

    let outcome = deployment.wait(Some(Duration::from_secs(120))).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", outcome.logs);
    assert!(outcome.logs.contains(&format!("env={WORKERS} file={WORKERS}")), "{}", outcome.logs);

    let (torn_down, teardown_took) = timed(deployment.teardown()).await;
    torn_down.unwrap();
    eprintln!(
        "{backend:?}: {WORKERS} workers deployed in {:.1} s (until the master runs), torn down in {:.1} s",
        deploy_took.as_secs_f64(),
        teardown_took.as_secs_f64()
    );
    scope.assert_nothing_left().await;
}

on_both!(three_hundred_workers_run_with_distinct_addresses_and_leave_nothing, multi_thread);
