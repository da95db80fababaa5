//! `atq-deploy-and-hang TASK`: deploys the task TASK (one busybox worker, a wait command that
//! never passes, a probe timeout of ten minutes) and so blocks mid-deploy until killed.
//!
//! The prune integration test kills it with SIGKILL once its objects exist, then checks that
//! `Director::prune` removes everything it left (its owner process is gone). The backend is the
//! one `ATQ_ENGINE` names (or the engine's own).

use std::time::Duration;

use atq_core::cluster::select::{connect, EngineChoice};
use atq_core::{Director, Service, Task, WaitCommand};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = std::env::args().nth(1).expect("usage: atq-deploy-and-hang TASK");
    let choice = EngineChoice::from_env().expect("ATQ_ENGINE");
    let cluster = connect(choice, None).await.expect("connect to the engine").cluster;
    let busybox = atq_tests::BUSYBOX;
    let task = Task::builder(&name)
        .workers(Service::new(busybox).command(["sh", "-c"]).args([atq_tests::RUN_UNTIL_STOPPED]))
        .master(Service::new(busybox).command(["sh", "-c"]).args(["exit 0"]))
        .wait_command(WaitCommand::new("echo not yet; exit 1").timeout(Duration::from_secs(600)))
        .start_timeout(Duration::from_secs(600))
        .build()
        .expect("valid task");
    let result = Director::from_arc(cluster).deploy(&task).await;
    // Only reached if nobody killed it in ten minutes.
    eprintln!("atq-deploy-and-hang: deploy returned {:?}", result.map(|d| d.workers().to_vec()));
    std::process::exit(2);
}
