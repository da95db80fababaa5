//! Runs the hello task (`examples/hello/hello.yaml`) on the local Docker engine from Rust:
//! 3 workers serving HTTP, a master that checks it reaches every one of them. The backend is the
//! one that fits the engine (swarm on a swarm manager, plain Docker otherwise) or `ATQ_ENGINE`'s.
//!
//! ```sh
//! examples/hello/build-images.sh
//! cargo run -p atq-examples --example hello
//! ```

use atq_core::cluster::select::{connect, EngineChoice};
use atq_core::{Director, Task};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = atq_examples::examples_dir().join("hello/hello.yaml");
    let task = Task::from_yaml_str(&std::fs::read_to_string(&file)?)?;
    let connected = connect(EngineChoice::from_env()?, None).await?;
    println!("{} backend: {}", connected.backend, connected.reason);
    let director = Director::from_arc(connected.cluster);

    let mut events = director.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            println!("event: {}", event.to_json());
        }
    });

    let deployment = director.deploy(&task).await?;
    println!("workers: {:?}", deployment.workers());
    let outcome = deployment.wait(None).await;
    deployment.teardown().await?;
    let outcome = outcome?;
    print!("{}", outcome.logs);
    println!("master exited with {}", outcome.exit_code);
    std::process::exit(i32::try_from(outcome.exit_code).unwrap_or(1));
}
