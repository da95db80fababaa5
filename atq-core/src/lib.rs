//! # atq-core
//!
//! A disposable, distributed load-test cluster on Docker Swarm in one call: atq deploys N
//! workers and one master on a private overlay network, tells the master where every worker is
//! (`WORKER_CSV_VIPS`), waits for it to finish, returns its exit code and logs, and removes
//! everything it created.
//!
//! ```
//! use atq_core::{Director, FakeCluster, Service, Task};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atq_core::Error> {
//! let task = Task::builder("hello")
//!     .workers(Service::new("busybox").replicas(3))
//!     .master(Service::new("busybox"))
//!     .build()?;
//! // `atq_core::cluster::select::connect(EngineChoice::from_env()?, None).await?` for a real engine.
//! let director = Director::new(FakeCluster::new());
//! let deployment = director.deploy(&task).await?;
//! assert_eq!(deployment.workers().len(), 3);
//! let outcome = deployment.wait(None).await?;
//! assert_eq!(outcome.exit_code, 0);
//! deployment.teardown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Worker index
//! Every worker gets `ATQ_WORKER_INDEX`, from **1** to `ATQ_WORKER_COUNT`, stable for the life
//! of the task, and the master gets `ATQ_WORKER_INDEXES` (each worker's index, in the order of
//! `WORKER_CSV_VIPS`). It is 1-based on every backend because it is the engine's replica slot:
//! swarm expands `{{.Task.Slot}}` per task and its templates have no arithmetic. Files a task
//! shards ([`data::Shard`]) are cut with the same numbering: worker `i` reads slice `i`.
//!
//! ## Layout
//! - [`task`] and [`service`]: what to run ([`Task`], [`Service`], [`WaitCommand`]), validated
//!   once at `build()` or when read from a task file ([`Task::from_str_with`]: untrusted text
//!   within a [`task::ParseBudget`], every problem at once with its line; the private
//!   `document` module turns the text into a tree of values that remember their line).
//! - [`cluster`]: the [`Cluster`] port to a container engine, with [`SwarmCluster`] (Docker
//!   Swarm), [`DockerCluster`] (a plain Docker engine), [`cluster::select`] (which of them fits
//!   the engine, or `ATQ_ENGINE`) and [`FakeCluster`] (in memory). It knows engines, not tasks.
//! - [`director`]: the facade of all orchestration ([`Director`]): the deploy plan,
//!   the probe (wait command), the [`director::inventory`] (list, inspect, prune)
//!   and the queue.
//! - [`run`]: the run flow — deploy, follow logs, wait, artifacts, keep or tear down — as one
//!   stream every front renders ([`Director::run_with`]), with the interrupt protocol.
//! - [`wait`]: waiting as a concept: one condition-driven wait with deadlines and one backoff.
//! - [`cleanup`]: the one removal path (rollback, teardown, drop, prune) and atq's cleanup thread.
//! - [`deployment`]: the handle of a deployed task ([`Deployment`], [`Outcome`]); [`artifacts`]:
//!   its master's files, copied out safely.
//! - [`event`]: the progress stream ([`Event`]) and the timestamped run events ([`event::RunEvent`]).
//! - [`discovery`]: worker addresses by DNS (`tasks.<service>`) from inside the task network.
//! - [`data`]: data bundles ([`DataBundle`]) shipped to every replica under `/atq/data`, and
//!   [`data::shard`]: CSV files split across the workers, one slice each.
//! - [`labels`]: the `io.atq.*` labels on every object atq creates.
//! - [`owner`] and [`prune`]: which process deployed a task, whether it still runs, and the one
//!   decision ([`prune::decide`]) of whether `prune` may remove a task.
//! - [`results`]: JTL/Locust/k6 readers, HDR-merged summaries per label and worker, thresholds
//!   (exit code 99), `summary.json`, `junit.xml` and `report.html`.
//! - [`runs`]: the runs of a shared service (`atq serve`): [`runs::RunManager`] puts every
//!   client's runs through one [`queue::RunQueue`] (at most K at once, in submission order),
//!   checks them against the client's [`policy::Policy`], records them in [`records::Records`]
//!   (SQLite, surviving restarts) and runs them on the run flow; [`runs::RunManager::reconcile`]
//!   settles what a stopped service left.
//! - [`error`]: the one [`Error`] type.

pub mod artifacts;
pub mod cleanup;
pub mod cluster;
mod context;
pub mod data;
pub mod deployment;
pub mod director;
pub mod discovery;
mod document;
pub mod error;
pub mod event;
pub mod labels;
pub mod owner;
pub mod policy;
mod problem;
pub mod prune;
pub mod queue;
pub mod records;
pub mod results;
pub mod run;
pub mod runs;
mod serde_util;
pub mod service;
pub mod task;
pub mod wait;

pub use cluster::{Cluster, DockerCluster, FakeCluster, SwarmCluster};
pub use data::DataBundle;
pub use deployment::{Deployment, Outcome};
pub use director::{DeployOptions, Director, PruneReport, TaskInfo, TaskState};
pub use error::{Error, Problem, Result, ValidationError};
pub use event::Event;
pub use owner::{Liveness, Owner};
pub use prune::{PruneDecision, PruneReason};
pub use run::{FollowLogs, Interrupt, Keep, RunItem, RunOptions, RunReport};
pub use serde_util::ByteSize;
pub use service::{HealthCheck, Resources, Service};
pub use task::{Task, TaskBuilder, WaitCommand};
pub use wait::PollInterval;
