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
//! // `DockerCluster::connect().await?` for a real engine.
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
//! ## Layout
//! - [`task`] and [`service`]: what to run ([`Task`], [`Service`], [`WaitCommand`]), validated
//!   once at `build()` or when read from a task file.
//! - [`cluster`]: the [`Cluster`] port to a container engine, with [`DockerCluster`] (bollard)
//!   and [`FakeCluster`] (in memory). It knows engines, not tasks.
//! - [`director`]: all orchestration — deploy, wait, rollback, teardown, list, prune, the queue.
//! - [`deployment`]: the handle of a deployed task ([`Deployment`], [`Outcome`]).
//! - [`event`]: the progress stream ([`Event`]).
//! - [`discovery`]: worker addresses by DNS (`tasks.<service>`) from inside the task network.
//! - [`data`]: data bundles ([`DataBundle`]) shipped to every replica under `/atq/data`.
//! - [`labels`]: the `io.atq.*` labels on every object atq creates.
//! - [`results`]: JTL/Locust/k6 readers, HDR-merged summaries per label and worker, thresholds
//!   (exit code 99), `summary.json`, `junit.xml` and `report.html`.
//! - [`error`]: the one [`Error`] type.

pub mod cluster;
pub mod data;
pub mod deployment;
pub mod director;
pub mod discovery;
pub mod error;
pub mod event;
pub mod labels;
mod owner;
pub mod results;
mod serde_util;
pub mod service;
pub mod task;

pub use cluster::{Cluster, DockerCluster, FakeCluster};
pub use data::DataBundle;
pub use deployment::{Deployment, Outcome};
pub use director::{Director, PollInterval, PruneReport, TaskInfo, TaskState};
pub use error::{Error, Problem, Result, ValidationError};
pub use event::Event;
pub use owner::Owner;
pub use serde_util::ByteSize;
pub use service::{HealthCheck, Resources, Service};
pub use task::{Task, TaskBuilder, WaitCommand};
