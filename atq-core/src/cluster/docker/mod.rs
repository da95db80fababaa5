//! [`DockerCluster`]: a Docker engine in swarm mode, through bollard.
//!
//! - Connecting honours `DOCKER_HOST` (`unix://…` or `tcp://…`), else the default socket,
//!   fails fast ([`Error::EngineUnreachable`] within [`CONNECT_TIMEOUT`]) when nothing
//!   answers, negotiates the API version, and refuses an engine that is not a swarm manager
//!   ([`Error::NotSwarmManager`], naming `docker swarm init`).
//! - Engine errors become [`Error`]s in one place (`engine_error`): 404 is `NotFound`;
//!   409 — or a 400/500 whose message says "already exists" / "name conflicts with an existing
//!   object", as swarmkit's gRPC `AlreadyExists` can surface — is `Conflict`; a 500 "… not
//!   found" (the daemon resolving a name it still has locally but the swarm no longer has) is
//!   `NotFound`; anything else is `Engine` with the operation and the object.
//! - Replica addresses come from the manager's `GET /tasks` JSON; see the `tasks` module for why and how.
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
//!   [`DockerCluster::with_removal_timeout`].
//! - A removed service's tasks stay (desired state "remove") until their containers have
//!   stopped — about 2 s for a container that exits on SIGTERM, the stop grace period (10 s)
//!   for one that ignores it — then `GET /tasks/{id}` is a 404; the stopped container itself is
//!   removed a moment *after* that. [`Cluster::remove_service`] waits for both (the second only
//!   on the node it talks to), so that removal leaves no container behind.
//! - Configs of up to 1,023,999 bytes are accepted ("config data must be larger than 0 and less
//!   than 1024000 bytes"): swarmkit's `MaxConfigSize` is 1000 KiB for configs (secrets: 500 KiB).

mod convert;
mod logs;
mod tasks;
mod template;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bollard::errors::Error as BollardError;
use bollard::models::{ConfigSpec as BollardConfigSpec, Driver, LocalNodeState, NetworkCreateRequest, NodeState};
use bollard::query_parameters::{
    DownloadFromContainerOptions, ListConfigsOptions, ListContainersOptions, ListNetworksOptions, ListNodesOptions,
    ListServicesOptions, LogsOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use self::tasks::RawClient;
use super::{
    Cluster, ConfigSpec, EngineInfo, LabelSelector, LogStream, NetworkSpec, Replica, Resource, ResourceKind,
    ServiceSpec, MAX_ARCHIVE_BYTES,
};
use crate::error::{Error, Result};

/// The default engine address when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long [`DockerCluster::connect`] waits for the engine's first answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Default bound for [`Cluster::remove_network`]'s wait (see [`DockerCluster::with_removal_timeout`]).
pub const DEFAULT_REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest config (bytes) swarmkit accepts: "less than 1024000 bytes" (1000 KiB).
const MAX_CONFIG_BYTES: usize = 1000 * 1024 - 1;

/// A [`Cluster`] over a Docker engine that is a swarm manager.
///
/// ```no_run
/// use atq_core::cluster::{Cluster, DockerCluster};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atq_core::Error> {
/// let cluster = DockerCluster::connect().await?; // DOCKER_HOST, or the local socket
/// let info = cluster.info().await?;
/// println!("Docker {} at {}: {}/{} nodes ready", info.version, cluster.host(), info.nodes_ready, info.nodes_total);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DockerCluster {
    /// The bollard client, for every typed call.
    docker: Docker,
    /// The same endpoint, for the `GET /tasks` that bollard cannot decode in full.
    raw: RawClient,
    /// The engine address we connected to, for messages.
    host: String,
    /// The negotiated API version ("1.41").
    api_version: String,
    /// How long `remove_network` waits for the engine to let go of a network.
    removal_timeout: Duration,
}

impl std::fmt::Debug for DockerCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerCluster")
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("removal_timeout", &self.removal_timeout)
            .finish_non_exhaustive()
    }
}

impl DockerCluster {
    /// Connects to the engine named by `DOCKER_HOST`, or else the default local socket
    /// ([`DEFAULT_HOST`]), and checks that it is a swarm manager.
    ///
    /// # Errors
    /// [`Error::EngineUnreachable`] when nothing answers within [`CONNECT_TIMEOUT`];
    /// [`Error::NotSwarmManager`] when the engine is not a swarm manager.
    pub async fn connect() -> Result<DockerCluster> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        Self::connect_with(host.as_deref().unwrap_or(DEFAULT_HOST)).await
    }

    /// Connects to the engine at `host` (`unix:///path/docker.sock` or `tcp://host:port`) and
    /// checks that it is a swarm manager.
    ///
    /// # Errors
    /// As [`DockerCluster::connect`].
    pub async fn connect_with(host: &str) -> Result<DockerCluster> {
        let unreachable = |message: String| Error::EngineUnreachable { host: host.to_string(), message };
        let docker = Docker::connect_with_host(host).map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, docker.ping()).await {
            Err(_) => return Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok(_)) => {}
        }
        let docker = tokio::time::timeout(CONNECT_TIMEOUT * 4, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer to GET /version".to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let raw =
            RawClient::new(host).ok_or_else(|| unreachable("only unix:// and tcp:// are supported".to_string()))?;
        let version = docker.client_version();
        let cluster = DockerCluster {
            raw,
            host: host.to_string(),
            api_version: format!("{}.{}", version.major_version, version.minor_version),
            removal_timeout: DEFAULT_REMOVAL_TIMEOUT,
            docker,
        };
        let info = cluster.docker.info().await.map_err(|e| cluster.error(e, "read info of", "engine", host))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::INACTIVE);
        if state != LocalNodeState::ACTIVE || swarm.control_available != Some(true) {
            let state = if state == LocalNodeState::ACTIVE { "active, worker".to_string() } else { state.to_string() };
            return Err(Error::NotSwarmManager { host: host.to_string(), state });
        }
        Ok(cluster)
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

    /// Waits, within the removal bound from `start`, until the engine has deleted every task
    /// in `tasks` (ids) of the removed `service`.
    async fn wait_tasks_gone(&self, service: &str, mut tasks: Vec<String>, start: Instant) -> Result<()> {
        let mut pause = Duration::from_millis(50);
        loop {
            let mut left = Vec::with_capacity(tasks.len());
            for id in tasks {
                let path = format!("/v{}/tasks/{id}", self.api_version);
                match self.raw.get_json::<serde_json::Value>(&path).await {
                    Ok(_) => left.push(id),
                    Err(e) => match self.error(e, "inspect task of", "task", &id) {
                        Error::NotFound { .. } => {}
                        other => return Err(other),
                    },
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= self.removal_timeout {
                return Err(Error::engine(
                    "remove service",
                    service,
                    format!(
                        "removed, but {} of its containers still exist after {:?}; `atq prune` retries",
                        left.len(),
                        self.removal_timeout
                    ),
                ));
            }
            tasks = left;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Waits, within the removal bound from `start`, until this node has no container left of
    /// the service with id `service_id`.
    async fn wait_local_containers_gone(&self, service: &str, service_id: &str, start: Instant) -> Result<()> {
        let filters: std::collections::HashMap<String, Vec<String>> =
            [("label".to_string(), vec![format!("com.docker.swarm.service.id={service_id}")])].into();
        let mut pause = Duration::from_millis(50);
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
            if start.elapsed() >= self.removal_timeout {
                return Err(Error::engine(
                    "remove service",
                    service,
                    format!(
                        "removed, but {} stopped container(s) still exist after {:?}",
                        left.len(),
                        self.removal_timeout
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
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
        let mut pause = Duration::from_millis(50);
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
            pause = (pause * 2).min(Duration::from_millis(500));
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
            match status_code {
                404 => Error::NotFound { kind, name: name.to_string() },
                409 => Error::Conflict { kind, name: name.to_string() },
                400 | 500 if conflict => Error::Conflict { kind, name: name.to_string() },
                500 if lower.ends_with("not found") => Error::NotFound { kind, name: name.to_string() },
                _ => Error::Engine { operation, resource: name.to_string(), message },
            }
        }
        BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError => {
            Error::EngineUnreachable { host: host.to_string(), message: format!("{operation} {kind} '{name}': {err}") }
        }
        other => Error::Engine { operation, resource: name.to_string(), message: other.to_string() },
    }
}

#[async_trait]
impl Cluster for DockerCluster {
    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<Vec<u8>> {
        let options = DownloadFromContainerOptions { path: path.to_string() };
        let mut stream = self.docker.download_from_container(container_id, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| match e {
                BollardError::DockerResponseServerError { status_code: 404, message }
                    if message.to_ascii_lowercase().contains("no such container") =>
                {
                    Error::NotFound { kind: "container", name: container_id.to_string() }
                }
                BollardError::DockerResponseServerError { status_code: 404, .. } => {
                    Error::NotFound { kind: "path", name: format!("{path} (the master wrote nothing there)") }
                }
                other => engine_error(&self.host, other, "copy files from", "container", container_id),
            })?;
            if archive.len() + chunk.len() > MAX_ARCHIVE_BYTES {
                return Err(Error::engine(
                    "copy files from",
                    container_id,
                    format!(
                        "{path} is larger than {} MiB, the most atq copies: have the master compress it",
                        MAX_ARCHIVE_BYTES >> 20
                    ),
                ));
            }
            archive.extend_from_slice(&chunk);
        }
        Ok(archive)
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
        Ok(EngineInfo {
            version: version.version.unwrap_or_default(),
            api_version: self.api_version.clone(),
            swarm_state: swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default(),
            is_manager,
            node_id: swarm.node_id.unwrap_or_default(),
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
        let created = self
            .docker
            .create_network(request)
            .await
            .map_err(|e| self.error(e, "create network", "network", &spec.name))?;
        Ok(created.id)
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.docker.remove_network(name).await.map_err(|e| self.error(e, "remove network", "network", name)) {
                Ok(()) => return self.wait_network_gone(name, start).await,
                Err(Error::NotFound { kind, name: n }) => {
                    // Already removed from the swarm; it may still linger on this node.
                    self.wait_network_gone(name, start).await?;
                    return Err(Error::NotFound { kind, name: n });
                }
                // 400 "in use by service", or "has active endpoints" while containers stop.
                Err(Error::Engine { message, .. })
                    if (message.contains("in use") || message.contains("active endpoints"))
                        && start.elapsed() < self.removal_timeout =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String> {
        let created = self
            .docker
            .create_service(convert::service_spec(spec), None)
            .await
            .map_err(|e| self.error(e, "create service", "service", &spec.name))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Removes the service, then waits (within the removal bound) until its containers are
    /// gone: the manager deletes a removed service's tasks once their containers have stopped,
    /// on whichever node; the node then removes the stopped container a moment later, which
    /// is awaited for the node this engine runs (the only one whose containers it can list).
    async fn remove_service(&self, name: &str) -> Result<()> {
        let start = Instant::now();
        let tasks = self.raw_tasks(name).await?;
        let service_id = tasks.first().map(|t| t.service_id.clone()).filter(|id| !id.is_empty());
        let tasks: Vec<String> = tasks.into_iter().map(|t| t.id).collect();
        self.docker.delete_service(name).await.map_err(|e| self.error(e, "remove service", "service", name))?;
        self.wait_tasks_gone(name, tasks, start).await?;
        match service_id {
            Some(id) => self.wait_local_containers_gone(name, &id, start).await,
            None => Ok(()),
        }
    }

    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        let tasks = self.raw_tasks(service).await?;
        Ok(tasks::current_replicas(service, network, tasks))
    }

    async fn logs(&self, service: &str, follow: bool) -> Result<LogStream> {
        let options = LogsOptions { follow, stdout: true, stderr: true, timestamps: true, ..Default::default() };
        let stream = self.docker.service_logs(service, Some(options));
        let host = self.host.clone();
        let name = service.to_string();
        let map = move |e| engine_error(&host, e, "read logs of", "service", &name);
        if follow {
            Ok(logs::follow(stream, map))
        } else {
            logs::collect(stream, map).await
        }
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
                networks
                    .into_iter()
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
        match map(server(400, "rpc error: code = FailedPrecondition desc = network n is in use by service s")) {
            Error::Engine { operation: "create network", resource, message } => {
                assert_eq!(resource, "n");
                assert!(message.contains("in use"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(map(BollardError::RequestTimeoutError), Error::EngineUnreachable { .. }));
    }
}
