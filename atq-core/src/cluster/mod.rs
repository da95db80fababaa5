//! The port to a container engine.
//!
//! [`Cluster`] is the narrow interface the [`Director`](crate::Director) drives: networks,
//! services and their replicas, logs, configs, label queries and engine facts. It knows
//! nothing of tasks. Three implementations ship with atq: [`SwarmCluster`] (a Docker engine in
//! swarm mode, through bollard: many nodes), [`DockerCluster`] (a plain Docker engine: one
//! machine, no `swarm init`) and [`FakeCluster`] (in memory, for tests); [`select::connect`]
//! picks the real one that fits the engine (or the one `ATQ_ENGINE` names).
//!
//! ## Layout
//! - [`swarm`]: [`SwarmCluster`]; [`docker`]: [`DockerCluster`]; [`fake`]: [`FakeCluster`].
//! - [`select`]: which backend, from the engine and `ATQ_ENGINE`.
//! - [`endpoint`]: where the engine is (`DOCKER_HOST`) and the first exchange with it.
//! - `containers`: services as labelled containers on one engine (the plain backend's
//!   services, and the swarm backend's one-offs).
//! - [`subnet`]: task network subnets, sized to their capacity from a configurable pool.
//! - `names`: the engine's name rules, enforced alike by every backend.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;

use crate::error::Result;
use crate::service::{HealthCheck, Resources};

pub(crate) mod containers;
pub mod docker;
pub mod endpoint;
pub(crate) mod engine_http;
pub mod fake;
pub(crate) mod names;
pub mod select;
pub mod subnet;
pub mod swarm;

pub use docker::DockerCluster;
pub use fake::FakeCluster;
pub use swarm::SwarmCluster;

/// Largest artifacts archive atq reads from [`Cluster::copy_from_replica`]: 256 MiB.
///
/// It is spooled to a temporary file, never held in memory; a load test's results fit many times
/// over. A master that writes more should compress its results, or ship them elsewhere itself.
pub const MAX_ARCHIVE_BYTES: u64 = 256 * 1024 * 1024;

/// Bytes in chunks, as [`Cluster::copy_from_replica`] returns an archive.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// A stream of log lines, as returned by [`Cluster::logs`].
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogLine>> + Send>>;

/// The operations of a container engine that atq needs.
///
/// Services created through this trait never restart (restart policy "none"): a replica
/// that exits stays exited, so its exit code can be read back. Every method is
/// cancel-safe in the sense that dropping its future leaves the engine in a state that
/// a later `list_resources` + `remove_*` can clean up.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Facts about the engine: version, swarm role, nodes.
    async fn info(&self) -> Result<EngineInfo>;

    /// Creates the network (an overlay on a swarm, a bridge on a plain engine) with a subnet
    /// that holds [`NetworkSpec::capacity`] addresses. Fails with
    /// [`Error::Conflict`](crate::Error::Conflict) when a network of that name exists: the name
    /// is a lock, also between processes racing for it.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String>;

    /// Removes a network by name or id. Fails with [`Error::NotFound`](crate::Error::NotFound)
    /// when there is none, and with an engine error while services still use it.
    async fn remove_network(&self, name: &str) -> Result<()>;

    /// Creates a replicated service. Fails with [`Error::Conflict`](crate::Error::Conflict)
    /// when a service of that name exists. A backend that learns while creating that a replica
    /// cannot run (a plain engine has no such image, or cannot start the command) fails with
    /// [`Error::ReplicaFailed`](crate::Error::ReplicaFailed) naming the engine's message, having
    /// removed what it made; a swarm reports the same through [`replicas`](Self::replicas).
    async fn create_service(&self, spec: &ServiceSpec) -> Result<String>;

    /// Removes a service (and so its containers) by name or id.
    async fn remove_service(&self, name: &str) -> Result<()>;

    /// The service's current replicas: only those the engine wants running (its desired
    /// state is running, or it was running and has since exited); superseded ones are left out.
    /// Addresses are the ones on `network` (a network name).
    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>>;

    /// The service's logs, stdout and stderr of every replica interleaved in time order, each line
    /// naming its replica. With [`LogOptions::follow`] the stream yields new lines as they come and
    /// ends once every replica has exited and its output is read, or the service is removed.
    async fn logs(&self, service: &str, options: &LogOptions) -> Result<LogStream>;

    /// Stores a config (a small file the engine delivers to every node that needs it).
    async fn create_config(&self, spec: &ConfigSpec) -> Result<String>;

    /// Removes a config by name or id.
    async fn remove_config(&self, name: &str) -> Result<()>;

    /// The content of an ordinary config (by name or id), as [`create_config`](Self::create_config)
    /// stored it. The [`Director`](crate::Director) reads a bundle's file back to split it across
    /// the workers. A per-replica config is stored in the backend's own form (a template on
    /// swarm) and is refused with an [`Error::Engine`](crate::Error::Engine).
    ///
    /// The default fails: an engine that cannot read its configs back cannot shard data.
    async fn read_config(&self, name: &str) -> Result<Vec<u8>> {
        Err(crate::Error::engine("read config", name, "this engine cannot read configs back, so it cannot shard data"))
    }

    /// Every object of `kind` whose labels match all of `selector`.
    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>>;

    /// A tar archive of `path` (a file or directory) in the container `container_id` (a
    /// [`Replica::container_id`]), running or exited, as `docker cp` reads it, in chunks as the
    /// engine sends them: entries are named from `path`'s last component (`results/…` for
    /// `/atq/results`). The caller bounds what it reads (see [`MAX_ARCHIVE_BYTES`]).
    ///
    /// Only the engine that runs the container can read it: on a multi-node swarm, the replica
    /// must run on the node this cluster talks to ([`Placement::local_node`]). Fails with
    /// [`Error::NotFound`](crate::Error::NotFound) of kind "path" (named by `path`) when `path`
    /// does not exist, of kind "container" when the container does not.
    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<ChunkStream>;
}

/// A shared cluster is a cluster: `Director::new(arc.clone())` and test wrappers take either.
#[async_trait]
impl<C: Cluster + ?Sized> Cluster for std::sync::Arc<C> {
    async fn info(&self) -> Result<EngineInfo> {
        (**self).info().await
    }
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        (**self).create_network(spec).await
    }
    async fn remove_network(&self, name: &str) -> Result<()> {
        (**self).remove_network(name).await
    }
    async fn create_service(&self, spec: &ServiceSpec) -> Result<String> {
        (**self).create_service(spec).await
    }
    async fn remove_service(&self, name: &str) -> Result<()> {
        (**self).remove_service(name).await
    }
    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        (**self).replicas(service, network).await
    }
    async fn logs(&self, service: &str, options: &LogOptions) -> Result<LogStream> {
        (**self).logs(service, options).await
    }
    async fn create_config(&self, spec: &ConfigSpec) -> Result<String> {
        (**self).create_config(spec).await
    }
    async fn remove_config(&self, name: &str) -> Result<()> {
        (**self).remove_config(name).await
    }
    async fn read_config(&self, name: &str) -> Result<Vec<u8>> {
        (**self).read_config(name).await
    }
    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>> {
        (**self).list_resources(kind, selector).await
    }
    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<ChunkStream> {
        (**self).copy_from_replica(container_id, path).await
    }
}

/// Which kind of engine a [`Cluster`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A Docker engine in swarm mode (a manager): overlay networks, services, configs; many nodes.
    Swarm,
    /// A plain Docker engine (one machine, no `swarm init`): a bridge network, containers, files copied in.
    Docker,
    /// The in-memory [`FakeCluster`].
    #[default]
    Fake,
}

impl Backend {
    /// The name `ATQ_ENGINE` uses for it (`swarm`, `docker`, `fake`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Swarm => "swarm",
            Backend::Docker => "docker",
            Backend::Fake => "fake",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about an engine, from [`Cluster::info`]: what the Director and the fronts need, in
/// words that fit every backend. Backend-only facts (a swarm's state, its join address) are in
/// [`details`](Self::details), for display.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct EngineInfo {
    /// Which kind of engine this is.
    pub backend: Backend,
    /// The engine's version ("20.10.24").
    pub version: String,
    /// The API version in use ("1.41").
    pub api_version: String,
    /// The node this client talks to (a swarm node id; the engine's id on plain Docker), if known.
    /// [`Placement::local_node`] pins a service there.
    pub local_node: Option<String>,
    /// Nodes that can run replicas now.
    pub nodes_ready: u32,
    /// All nodes the engine knows.
    pub nodes_total: u32,
    /// Largest config (a file delivered to replicas) the engine accepts, in bytes.
    pub max_config_bytes: usize,
    /// Backend-specific facts, as `(name, value)` pairs for display (`("swarm", "active, manager")`).
    pub details: Vec<(String, String)>,
}

/// Where a service's replicas may run.
///
/// The Director says what it needs in these terms; each backend translates them into its own
/// syntax (swarm placement constraints, or a check against the one node of a plain engine).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Run on the node this client talks to ([`EngineInfo::local_node`]): only that engine can
    /// read a container's files back ([`Cluster::copy_from_replica`]).
    pub local_node: bool,
    /// The user's constraints, `attribute==value` or `attribute!=value` (`node.role==worker`,
    /// `node.labels.zone==a`), as the task file wrote them.
    pub constraints: Vec<String>,
}

/// An overlay network to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    /// Unique name.
    pub name: String,
    /// Labels on the network.
    pub labels: BTreeMap<String, String>,
    /// Whether standalone containers may attach (atq sets it, so DNS discovery works from a container).
    pub attachable: bool,
    /// How many addresses the network must hold (every replica that joins it); a backend sizes
    /// the network's subnet to fit, or fails naming the limit.
    pub capacity: u32,
}

pub use crate::service::EndpointMode;

/// A replicated service to create.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceSpec {
    /// Unique name; also the DNS name of the service on its networks.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Number of replicas.
    pub replicas: u32,
    /// Environment, in order. Values are literal: a backend that templates values (swarm)
    /// escapes them.
    pub env: Vec<(String, String)>,
    /// Variables each replica gets set to its own slot number, `1..=replicas`, stable for the
    /// replica's life (after `env`). Swarm expands `{{.Task.Slot}}` per task; a backend without
    /// templating sets the number per container.
    pub slot_env: Vec<String>,
    /// Arguments, replacing the image's CMD (empty: keep the image's).
    pub args: Vec<String>,
    /// Entrypoint override (None: keep the image's).
    pub command: Option<Vec<String>>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Networks (by name) the replicas join.
    pub networks: Vec<String>,
    /// How the service name resolves.
    pub endpoint_mode: EndpointMode,
    /// Labels on the service.
    pub labels: BTreeMap<String, String>,
    /// Labels on each replica's container.
    pub container_labels: BTreeMap<String, String>,
    /// In-container health check, run by the engine.
    pub health_check: Option<HealthCheck>,
    /// CPU and memory limits.
    pub resources: Option<Resources>,
    /// Where the replicas may run.
    pub placement: Placement,
    /// A one-off run (the wait command's probe): one replica that runs its command once on the
    /// node this client talks to. A backend may run it as a plain container on the service's
    /// (attachable) network instead of a service; [`Cluster::replicas`], [`Cluster::logs`] and
    /// [`Cluster::remove_service`] treat it like any other service. Without a stop grace period
    /// of its own, a one-off is killed at once when removed (it has nothing to finish).
    pub one_off: bool,
    /// How long a replica has to stop after SIGTERM before it is killed; None: the backend's
    /// default.
    pub stop_grace_period: Option<std::time::Duration>,
    /// Bind and volume mounts.
    pub mounts: Vec<Mount>,
    /// Configs made visible as files.
    pub configs: Vec<ConfigMount>,
}

/// A bind or volume mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Bind (a host path) or volume (a named volume).
    pub kind: MountKind,
    /// Host path or volume name.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// What a [`Mount`]'s source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A path on the host running the replica.
    Bind,
    /// A named volume.
    Volume,
}

/// A config exposed as a file in a service's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMount {
    /// The config's id, as returned by [`Cluster::create_config`].
    pub config_id: String,
    /// The config's name.
    pub config_name: String,
    /// Absolute path of the file inside the container.
    pub target: String,
    /// The file's permission bits in the container: [`ConfigMount::READ_ONLY`] (`0o444`), or
    /// [`ConfigMount::EXECUTABLE`] (`0o555`) for a program or script the replica runs.
    pub mode: u32,
}

impl ConfigMount {
    /// Mode of a data file: readable by everyone, writable by no one.
    pub const READ_ONLY: u32 = 0o444;
    /// Mode of an executable file (a script a replica runs): also executable by everyone.
    pub const EXECUTABLE: u32 = 0o555;
}

/// A config to store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigSpec {
    /// Unique name (letters, digits, `-`, `_`, `.`; at most 64 characters).
    pub name: String,
    /// Content; for a per-replica config, what every replica sees first.
    pub data: Vec<u8>,
    /// Labels on the config.
    pub labels: BTreeMap<String, String>,
    /// Content that differs per replica (empty: the same config for all). The replica in slot
    /// `s` of a service mounting this config sees `data` followed by `per_replica[s - 1]` (just
    /// `data` beyond the list). Swarm stores one templated config that each task expands with
    /// its own slot, on whichever node runs it; a backend without templating writes each
    /// replica's content into its container.
    pub per_replica: Vec<Vec<u8>>,
}

impl ConfigSpec {
    /// What the replica in `slot` (from 1) sees of this config.
    #[must_use]
    pub fn content_for(&self, slot: u32) -> Vec<u8> {
        let mut out = self.data.clone();
        if let Some(own) = slot.checked_sub(1).and_then(|i| self.per_replica.get(i as usize)) {
            out.extend_from_slice(own);
        }
        out
    }
}

/// The lifecycle state of a replica, simplified from the engine's task states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaState {
    /// Accepted but not started yet (new, pending, assigned, preparing, starting — including
    /// a container whose health check has not passed yet).
    Pending,
    /// The container runs (and is healthy, when it has a health check).
    Running,
    /// The container exited with code 0.
    Complete,
    /// The container exited with a non-zero code, or failed to start.
    Failed,
    /// The engine refused to start it (for example, the image does not exist).
    Rejected,
    /// The engine stopped it (service removed or scaled down).
    Shutdown,
    /// Its node is gone.
    Orphaned,
    /// Its node is down (or unknown, or no longer in the swarm): nothing atq can reach runs it.
    /// The engine itself still reports the task's last state (often "running", with desired
    /// state shutdown) until the node is back or 24 hours passed; atq does not count it as
    /// running, and does not wait for its container to go (see [`on_node`]).
    Lost,
}

impl ReplicaState {
    /// Whether the replica will not run again.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        !matches!(self, ReplicaState::Pending | ReplicaState::Running)
    }

    /// Lower-case name, as the engine spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Pending => "pending",
            ReplicaState::Running => "running",
            ReplicaState::Complete => "complete",
            ReplicaState::Failed => "failed",
            ReplicaState::Rejected => "rejected",
            ReplicaState::Shutdown => "shutdown",
            ReplicaState::Orphaned => "orphaned",
            ReplicaState::Lost => "lost",
        }
    }
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One replica of a service (an engine "task").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replica {
    /// The engine's id for it.
    pub id: String,
    /// `service.slot`, as the engine names its containers.
    pub name: String,
    /// Slot number, from 1.
    pub slot: u32,
    /// Current state.
    pub state: ReplicaState,
    /// Address on the requested network, once it has one.
    pub address: Option<IpAddr>,
    /// Exit code, once it exited.
    pub exit_code: Option<i64>,
    /// The engine's error message, if it failed ("No such image: …").
    pub error: Option<String>,
    /// The node it was scheduled on.
    pub node_id: Option<String>,
    /// That node's hostname, when the engine knows the node (for messages: `node3`).
    pub node: Option<String>,
    /// Its container's id, once the engine created one (for [`Cluster::copy_from_replica`]).
    pub container_id: Option<String>,
}

/// A node as the engine's manager sees it, for judging the replicas scheduled on it ([`on_node`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its hostname (`node3`).
    pub hostname: String,
    /// Whether the manager hears from it (swarm state "ready"); false for "down", "unknown",
    /// "disconnected".
    pub ready: bool,
    /// The engine's state name and message, for messages ("down: heartbeat failure").
    pub why: String,
}

/// A replica as atq reports it, given what the engine reported last (`replica`) and the node it
/// is on (`node`: None when the engine no longer knows the node).
///
/// The engine keeps a task on a lost node at its last reported state — "running", or
/// "assigned" when the node went before it started — with desired state shutdown, and orphans
/// it only after 24 hours. A replica that had not stopped by itself when its node went is
/// therefore [`Lost`](ReplicaState::Lost), with an error naming the node; one that had already
/// exited keeps its state and exit code. Every backend with many nodes, and the fake, apply this
/// one rule, so no wait counts a lost replica as running.
#[must_use]
pub fn on_node(mut replica: Replica, node: Option<&NodeStatus>) -> Replica {
    if let Some(node) = node {
        replica.node = Some(node.hostname.clone());
    }
    let Some(node_id) = replica.node_id.as_deref() else { return replica };
    if replica.state.is_terminal() || node.is_some_and(|n| n.ready) {
        return replica;
    }
    let named = match node {
        Some(n) => format!("its node {} ({}) is {}", n.hostname, short_id(node_id), n.why),
        None => format!("its node {} is no longer in the swarm", short_id(node_id)),
    };
    replica.error = Some(format!(
        "{named}; it was {} there. Its container is left to the engine, which removes it once the node is back (or `atq prune` then)",
        replica.state
    ));
    replica.state = ReplicaState::Lost;
    replica.exit_code = None;
    replica
}

/// The first 12 characters of an engine id, as the docker CLI shows it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a service's logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// stdout or stderr.
    pub source: LogSource,
    /// The line, without its trailing newline.
    pub text: String,
    /// The replica's slot (from 1) that printed it, when the engine says.
    pub replica: Option<u32>,
    /// When the engine received it, when the engine says.
    #[serde(skip)]
    pub time: Option<std::time::SystemTime>,
}

impl LogLine {
    /// A line of `source` with no replica or time (what a test or a fake writes).
    #[must_use]
    pub fn new(source: LogSource, text: impl Into<String>) -> Self {
        LogLine { source, text: text.into(), replica: None, time: None }
    }
}

/// What [`Cluster::logs`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Keep the stream open for new lines until every replica has exited.
    pub follow: bool,
    /// Only the last this many lines (of each replica) already written.
    pub tail: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
}

impl LogOptions {
    /// Everything written so far, then the stream ends.
    #[must_use]
    pub fn all() -> Self {
        LogOptions::default()
    }

    /// Everything written so far, then new lines until every replica exited.
    #[must_use]
    pub fn follow() -> Self {
        LogOptions { follow: true, ..LogOptions::default() }
    }
}

/// Kinds of engine objects atq creates and can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// An overlay network.
    Network,
    /// A service.
    Service,
    /// A config.
    Config,
}

impl ResourceKind {
    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Network => "network",
            ResourceKind::Service => "service",
            ResourceKind::Config => "config",
        }
    }
}

/// An engine object, as listed by [`Cluster::list_resources`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resource {
    /// What it is.
    pub kind: ResourceKind,
    /// The engine's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// When it was created, in unix seconds (if the engine says).
    pub created_unix: Option<i64>,
}

/// A conjunction of label conditions: `key` present, or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// The conditions, all of which must hold.
    pub conditions: Vec<(String, Option<String>)>,
}

impl LabelSelector {
    /// Matches everything.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a condition: the label `key` is present.
    #[must_use]
    pub fn has(mut self, key: impl Into<String>) -> Self {
        self.conditions.push((key.into(), None));
        self
    }

    /// Adds a condition: the label `key` equals `value`.
    #[must_use]
    pub fn eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push((key.into(), Some(value.into())));
        self
    }

    /// Whether `labels` satisfy every condition.
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.conditions.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        })
    }
}
