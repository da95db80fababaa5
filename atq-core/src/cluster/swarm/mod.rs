//! [`SwarmCluster`]: a Docker engine in swarm mode, through bollard.
//!
//! - Connecting honours `DOCKER_HOST` and the docker CLI's TLS variables, as the
//!   [`endpoint`] module decides (a socket, plain HTTP on this machine, or TLS;
//!   bollard and the raw `GET /tasks` share one client, so one transport), else the default
//!   socket; fails fast ([`Error::EngineUnreachable`] within the endpoint's
//!   [`connect_timeout`](super::endpoint::Endpoint::connect_timeout)) when nothing answers,
//!   negotiates the API version, and refuses an engine that is not a swarm manager
//!   ([`Error::EngineUnsuitable`], naming `docker swarm init`).
//! - A task network is an attachable overlay with a subnet sized to its capacity (plus one
//!   load-balancer address per node) from the pool ([`subnet`]), not the /24
//!   the swarm would pick.
//! - A one-off ([`ServiceSpec::one_off`], the wait command's probe) is not a swarm service but a
//!   plain container on the task's attachable overlay network, on this node (see
//!   the `containers` module): a swarm service costs seconds of scheduling, and
//!   seconds more to remove. `replicas`, `logs`, `remove_service` and `list_resources(Service)`
//!   find it as they find a service (by the same labels).
//! - Removing a service stops its replicas that run on this node directly through the engine
//!   (with the service's stop grace period) and removes those containers, then deletes the
//!   service; replicas on other nodes go the swarm way (their tasks are awaited). The swarm's
//!   agent alone takes ~3.5 s to stop a removed service's containers and ~6 s to remove them,
//!   whatever the grace period. (Deleting the service first, or at the same time, set the agent
//!   stopping the same containers as atq: 100 local replicas took 11.9–12.4 s to go that way,
//!   10.9–11.6 s this way.)
//! - Engine errors become [`Error`]s in one place (`engine_error`): 404 is `NotFound`;
//!   409 — or a 400/500 whose message says "already exists" / "name conflicts with an existing
//!   object", as swarmkit's gRPC `AlreadyExists` can surface — is `Conflict`; a 500 "… not
//!   found" (the daemon resolving a name it still has locally but the swarm no longer has) is
//!   `NotFound`; anything else is `Engine` with the operation and the object.
//! - Replica addresses come from the manager's `GET /tasks` JSON; see the `tasks` module for why and how.
//! - Nodes that go away: the manager keeps a task of a node that is down at its last report
//!   ("running") with desired state shutdown for 24 hours. `replicas` lists the nodes after the
//!   tasks and reports such a replica [`Lost`](super::ReplicaState::Lost), naming the node
//!   ([`super::on_node`]); `remove_service` does not wait for the tasks of a node that is down (its
//!   agent cannot answer; the engine deletes them, and the node removes their containers, once it
//!   is back), asking the nodes again at every round of its wait. Its wait is bounded by the
//!   removal bound or 0.3 s per task, whichever is longer.
//!
//! Engine facts this module relies on (measured on Docker 20.10.24, API 1.41):
//! - Swarm network names are unique cluster-wide: a second create of the same name is a 409
//!   ("network with name … already exists"), also while a removed one still lingers locally.
//!   Service and config names too (409, "rpc error: code = AlreadyExists …").
//! - A task that exits under restart policy "none" gets desired state "shutdown" (as do
//!   superseded tasks): see `tasks::current_replicas` for how the current one is chosen.
//! - Removing a network still referenced by a service is a 400 ("is in use by service"). Once
//!   the service is removed, `DELETE /networks/{id}` succeeds at once, but the network lingers
//!   on the node (and blocks its name) until the service's containers have stopped — up to
//!   their stop grace period (10 s by default). [`Cluster::remove_network`] therefore retries
//!   while it is in use and then waits until the engine no longer knows the network, within
//!   [`SwarmCluster::with_removal_timeout`].
//! - A removed service's tasks stay (desired state "remove") until their containers have
//!   stopped — about 2 s for a container that exits on SIGTERM, the stop grace period (10 s)
//!   for one that ignores it — then `GET /tasks/{id}` is a 404; the stopped container itself is
//!   removed a moment *after* that. [`Cluster::remove_service`] therefore stops and removes the
//!   containers on this node itself, and waits for the tasks of other nodes, so that removal
//!   leaves no container behind.
//! - Configs of up to 1,023,999 bytes are accepted ("config data must be larger than 0 and less
//!   than 1024000 bytes"): swarmkit's `MaxConfigSize` is 1000 KiB for configs (secrets: 500 KiB).

pub(in crate::cluster) mod convert;
pub(in crate::cluster) mod logs;
#[cfg(test)]
mod properties;
mod tasks;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bollard::errors::Error as BollardError;
use bollard::models::{ConfigSpec as BollardConfigSpec, Driver, NetworkCreateRequest, NodeState};
use bollard::query_parameters::{
    ListConfigsOptions, ListContainersOptions, ListNetworksOptions, ListNodesOptions, ListServicesOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::containers::{self, Containers, File};
use super::endpoint::{self, Connection};
use super::engine_http::{ByteStream, EngineHttp};
use super::subnet::{self, SubnetPool};
use super::{
    Backend, ChunkStream, Cluster, ConfigSpec, EngineInfo, LabelSelector, LogOptions, LogStream, NetworkSpec,
    NodeStatus, Replica, Resource, ResourceKind, ServiceSpec,
};
use crate::error::{Error, Result};

pub use super::endpoint::DEFAULT_HOST;

/// How long [`SwarmCluster::connect`] waits for the first answer of an engine on this machine
/// (a remote one gets [`Endpoint::connect_timeout`](super::endpoint::Endpoint::connect_timeout)).
pub const CONNECT_TIMEOUT: Duration = super::endpoint::LOCAL_CONNECT_TIMEOUT;

/// Default bound for [`Cluster::remove_network`]'s wait (see [`SwarmCluster::with_removal_timeout`]).
pub const DEFAULT_REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a service's removal may wait per task, when that is more than the removal bound
/// ([`SwarmCluster::with_removal_timeout`], 60 s by default): 300 replicas get 90 s.
const REMOVAL_PER_TASK: Duration = Duration::from_millis(300);

/// First pause of a removal's wait (a network in use, tasks or containers still there), growing
/// by half each time up to [`REMOVAL_POLL_MAX`]: a removal usually completes within a few hundred
/// milliseconds, and a doubling pause from 50 ms saw it up to 200 ms late.
const REMOVAL_POLL_MIN: Duration = Duration::from_millis(10);

/// Longest pause of a removal's wait.
const REMOVAL_POLL_MAX: Duration = Duration::from_millis(200);

/// How often a followed log checks whether every replica is done (the engine never ends it).
const LOG_FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Largest config (bytes) swarmkit accepts: "less than 1024000 bytes" (1000 KiB).
const MAX_CONFIG_BYTES: usize = 1000 * 1024 - 1;

/// A [`Cluster`] over a Docker engine that is a swarm manager.
///
/// ```no_run
/// use atq_core::cluster::{Cluster, SwarmCluster};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atq_core::Error> {
/// let cluster = SwarmCluster::connect().await?; // DOCKER_HOST, or the local socket
/// let info = cluster.info().await?;
/// println!("Docker {} at {}: {}/{} nodes ready", info.version, cluster.host(), info.nodes_ready, info.nodes_total);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SwarmCluster {
    /// The bollard client, for every typed call.
    docker: Docker,
    /// The client bollard sends through, for the `GET /tasks` that bollard cannot decode in full.
    raw: EngineHttp,
    /// The engine address we connected to, for messages.
    host: String,
    /// The negotiated API version ("1.41").
    api_version: String,
    /// This engine's node id in the swarm (where [`Placement::local_node`](crate::cluster::Placement) pins).
    node_id: String,
    /// How long `remove_network` waits for the engine to let go of a network.
    removal_timeout: Duration,
    /// One-offs as plain containers on this node.
    containers: Containers,
    /// Names of the one-offs this cluster created (asked for as containers first).
    one_offs: Arc<Mutex<HashSet<String>>>,
    /// Where network subnets come from.
    pool: SubnetPool,
    /// Nodes in the swarm when connected: each takes a load-balancer address on a network.
    nodes: u32,
}

impl std::fmt::Debug for SwarmCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmCluster")
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("removal_timeout", &self.removal_timeout)
            .finish_non_exhaustive()
    }
}

impl SwarmCluster {
    /// Connects to the engine named by `DOCKER_HOST` (with the docker CLI's TLS variables, see
    /// [`endpoint`]), or else the default local socket ([`DEFAULT_HOST`]), and
    /// checks that it is a swarm manager.
    ///
    /// # Errors
    /// [`Error::EngineAddress`] for an address atq will not use (plain HTTP to another machine,
    /// say) or missing TLS files; [`Error::EngineUnreachable`] when nothing answers in time;
    /// [`Error::EngineUnsuitable`] when the engine is not a swarm manager; [`Error::Setting`]
    /// when `ATQ_SUBNET_POOL` is not a list of CIDR blocks.
    pub async fn connect() -> Result<SwarmCluster> {
        Self::from_connection(endpoint::connect_from_env().await?)
    }

    /// Connects to the engine at `host` (`unix:///path/docker.sock`, `tcp://host:port`,
    /// `https://host:port`; TLS settings from the environment) and checks that it is a swarm
    /// manager.
    ///
    /// # Errors
    /// As [`SwarmCluster::connect`].
    pub async fn connect_with(host: &str) -> Result<SwarmCluster> {
        Self::from_connection(endpoint::connect_to_host(host).await?)
    }

    /// Connects to `endpoint` and checks that it is a swarm manager.
    ///
    /// # Errors
    /// As [`SwarmCluster::connect`].
    pub async fn connect_to(endpoint: &super::endpoint::Endpoint) -> Result<SwarmCluster> {
        Self::from_connection(endpoint::connect(endpoint).await?)
    }

    /// The cluster over an engine already connected to, once it is known to be a swarm manager.
    pub(crate) fn from_connection(connection: Connection) -> Result<SwarmCluster> {
        let Connection { docker, raw, host, api_version, info } = connection;
        if !endpoint::is_swarm_manager(&info) {
            let state = endpoint::swarm_state(&info);
            return Err(Error::EngineUnsuitable {
                host,
                backend: "swarm",
                reason: format!("it is not a swarm manager (swarm state: {state})"),
                fix: "Run `docker swarm init` (on one machine: `docker swarm init --advertise-addr 127.0.0.1`), \
                      or use the plain Docker backend (ATQ_ENGINE=docker)"
                    .to_string(),
            });
        }
        let swarm = info.swarm.unwrap_or_default();
        let node_id = swarm.node_id.unwrap_or_default();
        let nodes = swarm.nodes.and_then(|n| u32::try_from(n).ok()).unwrap_or(1).max(1);
        let containers = Containers::new(docker.clone(), host.clone(), "swarm", node_id.clone(), engine_error);
        Ok(SwarmCluster {
            raw,
            host,
            api_version,
            removal_timeout: DEFAULT_REMOVAL_TIMEOUT,
            node_id,
            docker,
            containers,
            one_offs: Arc::default(),
            pool: SubnetPool::from_env(subnet::DEFAULT_POOL)?,
            nodes,
        })
    }

    /// Carves task networks from `pool` instead of `ATQ_SUBNET_POOL` or the default.
    #[must_use]
    pub fn with_subnet_pool(mut self, pool: SubnetPool) -> Self {
        self.pool = pool;
        self
    }

    /// The engine address this cluster talks to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The API version negotiated with the engine ("1.41").
    #[must_use]
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Bounds how long [`Cluster::remove_network`] retries and waits while the engine still
    /// holds the network (its services' containers are stopping). Default 60 s.
    #[must_use]
    pub fn with_removal_timeout(mut self, timeout: Duration) -> Self {
        self.removal_timeout = timeout;
        self
    }

    /// Whether `name` is a one-off this cluster created (and has not removed).
    fn is_one_off(&self, name: &str) -> bool {
        self.one_offs.lock().unwrap_or_else(PoisonError::into_inner).contains(name)
    }

    fn forget_one_off(&self, name: &str) {
        self.one_offs.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    /// A one-off as a plain container on this node, on the spec's (attachable) overlay networks,
    /// with its configs' content copied in.
    async fn create_one_off(&self, spec: &ServiceSpec) -> Result<String> {
        if !spec.placement.constraints.is_empty() {
            return Err(Error::engine(
                "create service",
                &spec.name,
                "a one-off runs on the node atq talks to: it takes no placement constraints",
            ));
        }
        let mut files = Vec::with_capacity(spec.configs.len());
        let mut configs = Vec::with_capacity(spec.configs.len());
        for mount in &spec.configs {
            let config = self
                .docker
                .inspect_config(&mount.config_id)
                .await
                .map_err(|e| self.error(e, "read config", "config", &mount.config_name))?;
            let data = config.spec.and_then(|s| s.data).unwrap_or_default();
            let data = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| Error::engine("read config", &mount.config_name, e))?;
            files.push(File { target: mount.target.clone(), data, mode: mount.mode, per_replica: Vec::new() });
            configs.push(mount.config_name.clone());
        }
        self.one_offs.lock().unwrap_or_else(PoisonError::into_inner).insert(spec.name.clone());
        let created = self.containers.create(spec, &files, configs).await;
        if created.is_err() {
            self.forget_one_off(&spec.name);
        }
        created
    }

    /// Maps a bollard error onto [`Error`]: the one place engine errors get their meaning.
    fn error(&self, err: BollardError, operation: &'static str, kind: &'static str, name: &str) -> Error {
        engine_error(&self.host, err, operation, kind, name)
    }

    /// The service's tasks, from `GET /tasks` (see [`tasks`]).
    async fn raw_tasks(&self, service: &str) -> Result<Vec<tasks::RawTask>> {
        self.raw
            .get_json(&tasks::tasks_path(&self.api_version, service))
            .await
            .map_err(|e| self.error(e, "list tasks of", "service", service))
    }

    /// The swarm's nodes as the manager sees them, by id.
    async fn nodes(&self) -> Result<BTreeMap<String, NodeStatus>> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| self.error(e, "list nodes of", "swarm", &self.host))?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| {
                let id = n.id.filter(|id| !id.is_empty())?;
                let hostname = n.description.and_then(|d| d.hostname).unwrap_or_else(|| id.clone());
                let status = n.status.unwrap_or_default();
                let state = status.state.unwrap_or(NodeState::UNKNOWN);
                let why = match status.message.filter(|m| !m.is_empty()) {
                    Some(message) => format!("{state}: {message}"),
                    None => state.to_string(),
                };
                Some((id, NodeStatus { hostname, ready: state == NodeState::READY, why }))
            })
            .collect())
    }

    /// The service's current replicas, judged by their nodes: one on a node that is down is
    /// [`Lost`](super::ReplicaState::Lost) (see [`super::on_node`]). The nodes are listed after
    /// the tasks, so a node that joined meanwhile is known.
    async fn current_replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        let replicas = tasks::current_replicas(service, network, self.raw_tasks(service).await?);
        if replicas.iter().all(|r| r.node_id.is_none()) {
            return Ok(replicas);
        }
        Ok(tasks::on_nodes(replicas, &self.nodes().await?))
    }

    /// Waits, within the removal bound from `start`, until the engine has deleted every task
    /// in `tasks` (id, node id) of the removed `service` — except those on a node that is down
    /// (or gone), whose agent cannot answer: the engine deletes them, and the node removes their
    /// containers, once it is back. Nodes are asked again at every round, so a node that goes
    /// down meanwhile stops the wait for its tasks.
    async fn wait_tasks_gone(
        &self,
        service: &str,
        mut tasks: Vec<(String, Option<String>)>,
        start: Instant,
        bound: Duration,
    ) -> Result<()> {
        let mut pause = REMOVAL_POLL_MIN;
        loop {
            if tasks.is_empty() {
                return Ok(());
            }
            let nodes = self.nodes().await?;
            let (live, lost): (Vec<_>, Vec<_>) =
                tasks.into_iter().partition(|(_, node)| tasks::on_live_node(node.as_deref(), &nodes));
            if !lost.is_empty() {
                let on: BTreeSet<&str> = lost
                    .iter()
                    .filter_map(|(_, n)| n.as_deref())
                    .map(|n| nodes.get(n).map_or(n, |s| s.hostname.as_str()))
                    .collect();
                tracing::warn!(
                    service,
                    tasks = lost.len(),
                    nodes = ?on,
                    "not waiting for the containers of tasks on nodes that are down: the engine removes them once the nodes are back"
                );
            }
            let mut left = Vec::with_capacity(live.len());
            for (id, node) in live {
                let path = format!("/v{}/tasks/{id}", self.api_version);
                match self.raw.get_json::<serde_json::Value>(&path).await {
                    Ok(_) => left.push((id, node)),
                    Err(e) => match self.error(e, "inspect task of", "task", &id) {
                        Error::NotFound { .. } => {}
                        other => return Err(other),
                    },
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= bound {
                return Err(Error::engine(
                    "remove service",
                    service,
                    format!(
                        "removed, but {} of its containers still exist after {:?}; `atq prune` retries",
                        left.len(),
                        bound
                    ),
                ));
            }
            tasks = left;
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(REMOVAL_POLL_MAX);
        }
    }

    /// Waits, within the removal bound from `start`, until this node has no container left of
    /// the service with id `service_id`.
    async fn wait_local_containers_gone(
        &self,
        service: &str,
        service_id: &str,
        start: Instant,
        bound: Duration,
    ) -> Result<()> {
        let filters: std::collections::HashMap<String, Vec<String>> =
            [("label".to_string(), vec![format!("com.docker.swarm.service.id={service_id}")])].into();
        let mut pause = REMOVAL_POLL_MIN;
        loop {
            let options = ListContainersOptions { all: true, filters: Some(filters.clone()), ..Default::default() };
            let left = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(|e| self.error(e, "list containers of", "service", service))?;
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= bound {
                return Err(Error::engine(
                    "remove service",
                    service,
                    format!("removed, but {} stopped container(s) still exist after {:?}", left.len(), bound),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(REMOVAL_POLL_MAX);
        }
    }

    /// Whether the engine still knows the network (by name or id).
    async fn network_exists(&self, name: &str) -> Result<bool> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => Ok(true),
            Err(e) => match self.error(e, "inspect network", "network", name) {
                Error::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Waits, within the removal bound from `start`, until the engine no longer knows the network.
    async fn wait_network_gone(&self, name: &str, start: Instant) -> Result<()> {
        let mut pause = REMOVAL_POLL_MIN;
        while self.network_exists(name).await? {
            if start.elapsed() >= self.removal_timeout {
                return Err(Error::engine(
                    "remove network",
                    name,
                    format!(
                        "removed, but still present after {:?}: containers on it are still stopping; \
                         `docker network ls` shows it, and `atq prune` retries",
                        self.removal_timeout
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(REMOVAL_POLL_MAX);
        }
        Ok(())
    }
}

/// Maps a bollard error onto [`Error`] (see the module docs for the rules).
fn engine_error(host: &str, err: BollardError, operation: &'static str, kind: &'static str, name: &str) -> Error {
    match err {
        BollardError::DockerResponseServerError { status_code, message } => {
            let lower = message.to_ascii_lowercase();
            let conflict = lower.contains("already exists") || lower.contains("name conflicts with an existing object");
            let in_use = lower.contains("in use") || lower.contains("active endpoints");
            match status_code {
                404 => Error::NotFound { kind, name: name.to_string() },
                400 | 403 | 409 | 500 if in_use => Error::InUse { kind, name: name.to_string(), users: Vec::new() },
                409 => Error::Conflict { kind, name: name.to_string() },
                400 | 500 if conflict => Error::Conflict { kind, name: name.to_string() },
                500 if lower.ends_with("not found") => Error::NotFound { kind, name: name.to_string() },
                _ => Error::Engine { operation, resource: name.to_string(), message, source: None },
            }
        }
        BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError => Error::EngineUnreachable {
            host: host.to_string(),
            message: format!("{operation} {kind} '{name}': {}", endpoint::with_causes(&err)),
        },
        other => Error::engine_caused(operation, name, other),
    }
}

#[async_trait]
impl Cluster for SwarmCluster {
    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<ChunkStream> {
        containers::copy_from_container(&self.docker, &self.host, engine_error, container_id, path).await
    }

    async fn info(&self) -> Result<EngineInfo> {
        let err = |e| self.error(e, "read info of", "engine", &self.host);
        let version = self.docker.version().await.map_err(err)?;
        let info = self.docker.info().await.map_err(err)?;
        let swarm = info.swarm.unwrap_or_default();
        let is_manager = swarm.control_available == Some(true);
        let (nodes_ready, nodes_total) = if is_manager {
            let nodes = self.docker.list_nodes(None::<ListNodesOptions>).await.map_err(err)?;
            let ready =
                nodes.iter().filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)).count();
            (u32::try_from(ready).unwrap_or(u32::MAX), u32::try_from(nodes.len()).unwrap_or(u32::MAX))
        } else {
            (0, 0)
        };
        let swarm_state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default();
        let role = if is_manager { "manager" } else { "not a manager" };
        let node_id = swarm.node_id.unwrap_or_default();
        Ok(EngineInfo {
            backend: Backend::Swarm,
            version: version.version.unwrap_or_default(),
            api_version: self.api_version.clone(),
            details: vec![("swarm".into(), format!("{swarm_state}, {role}, node {node_id}"))],
            local_node: Some(node_id).filter(|n| !n.is_empty()),
            nodes_ready,
            nodes_total,
            max_config_bytes: MAX_CONFIG_BYTES,
        })
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("overlay".to_string()),
            attachable: Some(spec.attachable),
            labels: Some(convert::labels(&spec.labels)),
            ..Default::default()
        };
        let prefix = SubnetPool::prefix_for(spec.capacity, self.nodes);
        subnet::create_in_pool(
            &self.docker,
            &self.pool,
            prefix,
            true,
            request,
            subnet::Overlaps::CheckedAfterCreate,
            |e| self.error(e, "create network", "network", &spec.name),
        )
        .await
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        let start = Instant::now();
        let mut pause = REMOVAL_POLL_MIN;
        loop {
            match self.docker.remove_network(name).await.map_err(|e| self.error(e, "remove network", "network", name)) {
                Ok(()) => {
                    let gone = self.wait_network_gone(name, start).await;
                    tracing::debug!(network = name, after_ms = start.elapsed().as_millis(), "network removed");
                    return gone;
                }
                Err(Error::NotFound { kind, name: n }) => {
                    // Already removed from the swarm; it may still linger on this node.
                    self.wait_network_gone(name, start).await?;
                    return Err(Error::NotFound { kind, name: n });
                }
                // 400 "in use by service", or "has active endpoints" while containers stop.
                Err(Error::InUse { .. }) if start.elapsed() < self.removal_timeout => {
                    tracing::debug!(
                        network = name,
                        after_ms = start.elapsed().as_millis(),
                        "network still in use; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 3 / 2).min(REMOVAL_POLL_MAX);
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String> {
        if spec.one_off {
            return self.create_one_off(spec).await;
        }
        let created = self
            .docker
            .create_service(convert::service_spec(spec, &self.node_id), None)
            .await
            .map_err(|e| self.error(e, "create service", "service", &spec.name))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Removes the service: stops and removes its containers on this node directly (with the
    /// service's stop grace period), deletes the service, then waits (within the removal bound)
    /// until the tasks on other nodes are gone too. A one-off is removed as the container
    /// it is.
    async fn remove_service(&self, name: &str) -> Result<()> {
        if self.is_one_off(name) && self.containers.remove(name).await? {
            self.forget_one_off(name);
            return Ok(());
        }
        let tasks = match self.raw_tasks(name).await {
            Ok(tasks) => tasks,
            Err(Error::NotFound { .. }) => {
                self.forget_one_off(name);
                return if self.containers.remove(name).await? {
                    Ok(())
                } else {
                    Err(Error::NotFound { kind: "service", name: name.to_owned() })
                };
            }
            Err(e) => return Err(e),
        };
        let start = Instant::now();
        // A large service takes longer to go on a loaded swarm (300 workers over 3 nodes: 48–52 s).
        let bound = self.removal_timeout.max(REMOVAL_PER_TASK * u32::try_from(tasks.len()).unwrap_or(u32::MAX));
        let service_id = tasks.first().map(|t| t.service_id.clone()).filter(|id| !id.is_empty());
        let (local, remote): (Vec<_>, Vec<_>) =
            tasks.into_iter().partition(|t| t.node_id.as_deref() == Some(self.node_id.as_str()));
        let local: Vec<(String, Option<Duration>)> = local
            .iter()
            .filter_map(|t| {
                let container = t.status.container_status.as_ref()?.container_id.clone().filter(|c| !c.is_empty())?;
                Some((container, t.stop_grace_period()))
            })
            .collect();
        let stop_local = futures_util::stream::iter(local)
            .map(move |(container, grace)| async move { self.containers.stop_and_remove(&container, grace).await })
            .buffer_unordered(containers::REMOVAL_CONCURRENCY)
            .collect::<Vec<Result<()>>>();
        let delete = async {
            self.docker.delete_service(name).await.map_err(|e| self.error(e, "remove service", "service", name))
        };
        // Stopped first, then deleted: the agent then finds nothing left to stop (see the module docs).
        let stopped = stop_local.await;
        let deleted = delete.await;
        deleted?;
        let local = stopped.len();
        stopped.into_iter().collect::<Result<Vec<()>>>()?;
        tracing::debug!(
            service = name,
            local,
            after_ms = start.elapsed().as_millis(),
            "service deleted, its local containers removed"
        );
        self.wait_tasks_gone(name, remote.into_iter().map(|t| (t.id, t.node_id)).collect(), start, bound).await?;
        let gone = match service_id {
            Some(id) => self.wait_local_containers_gone(name, &id, start, bound).await,
            None => Ok(()),
        };
        tracing::debug!(service = name, after_ms = start.elapsed().as_millis(), "service removed");
        gone
    }

    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        if self.is_one_off(service) {
            if let Some(replicas) = self.containers.replicas(service, network).await? {
                return Ok(replicas);
            }
        }
        match self.current_replicas(service, network).await {
            Ok(replicas) => Ok(replicas),
            Err(Error::NotFound { kind, name }) => {
                self.containers.replicas(service, network).await?.ok_or(Error::NotFound { kind, name })
            }
            Err(e) => Err(e),
        }
    }

    async fn logs(&self, service: &str, options: &LogOptions) -> Result<LogStream> {
        if self.is_one_off(service) {
            if let Some(logs) = self.containers.logs(service, options).await? {
                return Ok(logs);
            }
        }
        let tasks = match self.raw_tasks(service).await {
            Ok(tasks) => tasks,
            Err(Error::NotFound { kind, name }) => {
                return self.containers.logs(service, options).await?.ok_or(Error::NotFound { kind, name });
            }
            Err(e) => return Err(e),
        };
        let slots: logs::Slots =
            Arc::new(Mutex::new(tasks.iter().filter_map(|t| Some((t.id.clone(), t.slot?))).collect()));
        // bollard's LogsOptions has no `details` (the task of each line): ask over the raw client.
        let path = |follow: bool| {
            let mut path = format!(
                "/v{}/services/{}/logs?stdout=1&stderr=1&timestamps=1&details=1&follow={}&since={}",
                self.api_version,
                tasks::percent_encode(service),
                u8::from(follow),
                logs::since_param(options.since)
            );
            if let Some(n) = options.tail {
                path.push_str(&format!("&tail={n}"));
            }
            path
        };
        let open = |raw: EngineHttp, path: String| -> logs::Frames {
            logs::demux(Box::pin(futures_util::stream::once(async move { raw.get_stream(&path).await }).flat_map(
                |opened| -> ByteStream {
                    match opened {
                        Ok(body) => body,
                        Err(e) => Box::pin(futures_util::stream::iter([Err(e)])),
                    }
                },
            )))
        };
        let frames = open(self.raw.clone(), path(options.follow));
        let host = self.host.clone();
        let name = service.to_string();
        let map = move |e| engine_error(&host, e, "read logs of", "service", &name);
        if !options.follow {
            return logs::collect(frames, map, slots).await;
        }
        // The engine never ends a followed service log: end it once every replica is done.
        let this = self.clone();
        let (name, watched) = (service.to_string(), slots.clone());
        let finished = Box::pin(async move {
            loop {
                let Ok(tasks) = this.raw_tasks(&name).await else { return };
                {
                    let mut slots = watched.lock().unwrap_or_else(PoisonError::into_inner);
                    slots.extend(tasks.iter().filter_map(|t| Some((t.id.clone(), t.slot?))));
                }
                let mut replicas = tasks::current_replicas(&name, "", tasks);
                if replicas.iter().any(|r| !r.state.is_terminal()) {
                    // A replica on a node that is down will print nothing more.
                    let Ok(nodes) = this.nodes().await else { return };
                    replicas = tasks::on_nodes(replicas, &nodes);
                }
                if !replicas.is_empty() && replicas.iter().all(|r| r.state.is_terminal()) {
                    return;
                }
                tokio::time::sleep(LOG_FOLLOW_POLL).await;
            }
        });
        let (raw, again) = (self.raw.clone(), path(false));
        let reread = Box::new(move || open(raw, again));
        Ok(logs::follow(frames, map, slots, logs::Ending { finished, reread }))
    }

    async fn create_config(&self, spec: &ConfigSpec) -> Result<String> {
        let (data, templating) = if spec.per_replica.is_empty() {
            (std::borrow::Cow::Borrowed(&spec.data), None)
        } else {
            let data = template::per_replica_template(spec);
            if data.len() > MAX_CONFIG_BYTES {
                return Err(Error::engine(
                    "create config",
                    &spec.name,
                    format!(
                        "its per-replica content for {} replicas takes {} bytes as a templated config, and the engine stores at most {MAX_CONFIG_BYTES}: use fewer workers, or a smaller file",
                        spec.per_replica.len(),
                        data.len()
                    ),
                ));
            }
            (std::borrow::Cow::Owned(data), Some(Driver { name: "golang".to_string(), options: None }))
        };
        let request = BollardConfigSpec {
            name: Some(spec.name.clone()),
            labels: Some(convert::labels(&spec.labels)),
            data: Some(base64::engine::general_purpose::STANDARD.encode(&*data)),
            templating,
        };
        let created = self
            .docker
            .create_config(request)
            .await
            .map_err(|e| self.error(e, "create config", "config", &spec.name))?;
        Ok(created.id)
    }

    async fn remove_config(&self, name: &str) -> Result<()> {
        self.docker.delete_config(name).await.map_err(|e| self.error(e, "remove config", "config", name))
    }

    async fn read_config(&self, name: &str) -> Result<Vec<u8>> {
        let config =
            self.docker.inspect_config(name).await.map_err(|e| self.error(e, "read config", "config", name))?;
        let spec = config.spec.unwrap_or_default();
        if spec.templating.is_some() {
            return Err(Error::engine(
                "read config",
                name,
                "it is a per-replica (templated) config: only ordinary configs can be read back",
            ));
        }
        let encoded = spec.data.unwrap_or_default();
        // An engine answer is untrusted: no config of a sane engine encodes to more than this.
        if encoded.len() > MAX_CONFIG_BYTES.div_ceil(3) * 4 + 4 {
            return Err(Error::engine(
                "read config",
                name,
                format!("the engine returned {} bytes of base64, more than any config holds", encoded.len()),
            ));
        }
        base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|e| {
            Error::engine("read config", name, format!("the engine returned data that is not base64: {e}"))
        })
    }

    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>> {
        let filters = convert::label_filters(selector);
        let err = |e| self.error(e, "list", "resources", kind.as_str());
        let mut resources: Vec<Resource> = match kind {
            ResourceKind::Network => {
                let options = ListNetworksOptions { filters: Some(filters) };
                let networks = self.docker.list_networks(Some(options)).await.map_err(err)?;
                // Overlay networks only: a plain backend's bridge networks on this engine are not
                // this backend's. Kept here rather than with the engine's `driver` filter, which
                // left out a network just created while others were created at once.
                networks
                    .into_iter()
                    .filter(|n| n.driver.as_deref().is_none_or(|d| d.is_empty() || d == "overlay"))
                    .map(|n| Resource {
                        kind,
                        id: n.id.unwrap_or_default(),
                        name: n.name.unwrap_or_default(),
                        created_unix: n.created.as_deref().and_then(convert::unix_seconds),
                        labels: convert::labels_back(n.labels),
                    })
                    .collect()
            }
            ResourceKind::Service => {
                let options = ListServicesOptions { filters: Some(filters), ..Default::default() };
                let services = self.docker.list_services(Some(options)).await.map_err(err)?;
                // One-offs are containers, found by the same labels.
                let one_offs = self.containers.list(selector).await?;
                services
                    .into_iter()
                    .map(|s| {
                        let spec = s.spec.unwrap_or_default();
                        Resource {
                            kind,
                            id: s.id.unwrap_or_default(),
                            name: spec.name.unwrap_or_default(),
                            created_unix: s.created_at.as_deref().and_then(convert::unix_seconds),
                            labels: convert::labels_back(spec.labels),
                        }
                    })
                    .chain(one_offs)
                    .collect()
            }
            ResourceKind::Config => {
                let options = ListConfigsOptions { filters: Some(filters) };
                let configs = self.docker.list_configs(Some(options)).await.map_err(err)?;
                configs
                    .into_iter()
                    .map(|c| {
                        let spec = c.spec.unwrap_or_default();
                        Resource {
                            kind,
                            id: c.id.unwrap_or_default(),
                            name: spec.name.unwrap_or_default(),
                            created_unix: c.created_at.as_deref().and_then(convert::unix_seconds),
                            labels: convert::labels_back(spec.labels),
                        }
                    })
                    .collect()
            }
        };
        // The engine already filtered; this keeps the contract exact should it match loosely.
        resources.retain(|r| selector.matches(&r.labels));
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError { status_code, message: message.to_string() }
    }

    #[test]
    fn engine_errors_are_mapped_to_meaning() {
        let map = |e| engine_error("h", e, "create network", "network", "n");
        assert!(matches!(map(server(404, "network n not found")), Error::NotFound { kind: "network", .. }));
        assert!(matches!(map(server(409, "network with name n already exists")), Error::Conflict { .. }));
        let grpc = "rpc error: code = AlreadyExists desc = name conflicts with an existing object";
        assert!(matches!(map(server(500, grpc)), Error::Conflict { .. }));
        assert!(matches!(map(server(500, "network 07hxz not found")), Error::NotFound { .. }));
        let in_use = map(server(400, "rpc error: code = FailedPrecondition desc = network n is in use by service s"));
        assert!(matches!(&in_use, Error::InUse { kind: "network", name, .. } if name == "n"), "{in_use:?}");
        assert!(map(server(403, "error while removing network: network n has active endpoints")).is_in_use());
        match map(server(500, "something broke")) {
            Error::Engine { operation: "create network", resource, message, .. } => {
                assert_eq!(resource, "n");
                assert_eq!(message, "something broke");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(map(BollardError::RequestTimeoutError), Error::EngineUnreachable { .. }));
    }
}
