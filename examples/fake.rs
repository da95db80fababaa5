//! Testing your own code on `FakeCluster`: no engine needed. The fake schedules replicas,
//! hands out addresses, and lets the master exit with the code you script.
//!
//! ```sh
//! cargo run -p atq-examples --example fake
//! ```

use atq_core::{Director, FakeCluster, Service, Task};

#[tokio::main]
async fn main() -> Result<(), atq_core::Error> {
    let fake = FakeCluster::new();
    fake.master_exits(0, ["summary = 1000 in 10s = 100.0/s Err: 0"]);
    let director = Director::new(fake.clone());
    let task = Task::builder("fake-demo")
        .workers(Service::new("lab/jmeter:2.13").replicas(5).args(["jmeter-server"]))
        .master(Service::new("lab/jmeter:2.13"))
        .build()?;

    let deployment = director.deploy(&task).await?;
    println!("workers: {:?}", deployment.workers());
    let outcome = deployment.wait(None).await?;
    deployment.teardown().await?;
    println!("{}master exited with {}", outcome.logs, outcome.exit_code);
    assert!(fake.is_empty(), "nothing left behind");
    Ok(())
}
