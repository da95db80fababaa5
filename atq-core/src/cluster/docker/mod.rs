//! [`DockerCluster`]: a plain Docker engine (one machine, no `swarm init`), through bollard.
//!
//! Each [`Cluster`] object becomes what a plain engine has:
//! - a **network** is a user-defined bridge network, labelled, with a subnet sized to its
//!   capacity from the pool ([`subnet`]); its name is made a lock by a volume
//!   (see the `store` module: a plain engine lets two networks share a name);
//! - a **service** is N labelled containers `<service>.<slot>` (see
//!   the `containers` module): created and started concurrently, restart policy "no",
//!   the service's name an alias of every replica on its networks (so `<task>_worker` resolves
//!   to every worker, as a swarm dnsrr service does), configs copied in before start;
//! - a **config** is two labelled volumes, the config and its content (the `store` module).
//!
//! Engine errors become [`Error`]s in one place (`engine_error`): 404 is `NotFound`; 409 is
//! `Conflict` (a container name in use), unless the message says the object is in use ("has
//! active endpoints", "volume is in use"): `InUse`; anything else is `Engine` with the
//! operation and the object.
//!
//! Engine facts this module relies on (measured on Docker 20.10.24, API 1.41):
//! - Two concurrent `POST /networks/create` of one name both succeed (6 of 6 tries), even with
//!   `CheckDuplicate`; of two concurrent `POST /volumes/create` of one name, both get the one
//!   volume that was stored, with the labels of the create that won.
//! - A volume's labels hold 1.3 MB (a 1000 KiB config in base64) and come back intact.
//! - The embedded DNS (127.0.0.11) of a user-defined network answers a shared alias with the
//!   address of every container that has it.
//! - `PUT /containers/{id}/archive` works on a created container (before start), and keeps each
//!   entry's mode.
//! - Removing a network that a container still uses is refused ("has active endpoints").
//! - The daemon's endpoint count of a bridge network can go wrong when many of its containers
//!   are removed at once: after 300 containers stopped and removed 32 at a time, the network
//!   was refused as "has active endpoints" with no container left (2 runs of 2), for good (only
//!   a daemon restart clears it). Removal therefore goes 8 at a time (no such leak in 3 runs, and
//!   as fast: the daemon removes containers one after the other).

mod store;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptions;
use bollard::Docker;

use super::containers::{self, Containers, File};
use super::endpoint::{self, Connection};
use super::names::{check_config, check_object};
use super::subnet::{self, SubnetPool};
use super::swarm::convert;
use super::{
    Backend, Cluster, ConfigSpec, EngineInfo, LabelSelector, LogOptions, LogStream, NetworkSpec, Replica, Resource,
    ResourceKind, ServiceSpec,
};
use crate::error::{Error, Result};

/// Largest config (bytes) this backend stores: as swarm's, so a bundle fits on either backend.
const MAX_CONFIG_BYTES: usize = 1000 * 1024 - 1;

/// The label on the networks of this backend that names their lock's nonce.
const NETWORK_NONCE: &str = store::NONCE;

/// A [`Cluster`] over a plain Docker engine.
///
/// Works on any engine, a swarm manager included when chosen explicitly (`ATQ_ENGINE=docker`);
/// [`select::connect`](super::select::connect) picks it by itself on an engine that is not a
/// swarm manager.
///
/// ```no_run
/// use atq_core::cluster::{Cluster, DockerCluster};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atq_core::Error> {
/// let cluster = DockerCluster::connect().await?; // DOCKER_HOST, or the local socket
/// let info = cluster.info().await?;
/// println!("Docker {} at {} ({})", info.version, cluster.host(), info.backend);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DockerCluster {
    /// The bollard client.
    docker: Docker,
    /// The engine address, for messages.
    host: String,
    /// The negotiated API version ("1.41").
    api_version: String,
    /// The engine's id (what [`EngineInfo::local_node`] and every replica's node say).
    engine_id: String,
    /// Services as containers.
    containers: Containers,
    /// Where network subnets come from.
    pool: SubnetPool,
}

impl std::fmt::Debug for DockerCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerCluster")
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl DockerCluster {
    /// Connects to the engine named by `DOCKER_HOST`, or else the default local socket.
    ///
    /// # Errors
    /// [`Error::EngineUnreachable`] when nothing answers in time; [`Error::Setting`] when
    /// `ATQ_SUBNET_POOL` is not a list of CIDR blocks.
    pub async fn connect() -> Result<DockerCluster> {
        Self::from_connection(endpoint::connect_from_env().await?)
    }

    /// Connects to the engine at `host` (`unix:///path/docker.sock` or `tcp://host:port`).
    ///
    /// # Errors
    /// As [`DockerCluster::connect`].
    pub async fn connect_with(host: &str) -> Result<DockerCluster> {
        Self::from_connection(endpoint::connect_to_host(host).await?)
    }

    /// The cluster over an engine already connected to.
    pub(crate) fn from_connection(connection: Connection) -> Result<DockerCluster> {
        let Connection { docker, raw: _, host, api_version, info } = connection;
        let engine_id = info.id.unwrap_or_default();
        let containers = Containers::new(docker.clone(), host.clone(), "docker", engine_id.clone(), engine_error);
        Ok(DockerCluster {
            docker,
            host,
            api_version,
            engine_id,
            containers,
            pool: SubnetPool::from_env(subnet::DEFAULT_DOCKER_POOL)?,
        })
    }

    /// The engine address this cluster talks to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Carves task networks from `pool` instead of `ATQ_SUBNET_POOL` or the default.
    #[must_use]
    pub fn with_subnet_pool(mut self, pool: SubnetPool) -> Self {
        self.pool = pool;
        self
    }

    fn error(&self, err: BollardError, operation: &'static str, kind: &'static str, name: &str) -> Error {
        engine_error(&self.host, err, operation, kind, name)
    }

    /// The bridge network called or identified by `key`, as (id, name, labels); None if there is none.
    async fn network(&self, key: &str) -> Result<Option<(String, String, HashMap<String, String>)>> {
        match self.docker.inspect_network(key, None).await {
            Ok(n) => Ok(Some((n.id.unwrap_or_default(), n.name.unwrap_or_default(), n.labels.unwrap_or_default()))),
            Err(e) => match self.error(e, "inspect network", "network", key) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Removes the bridge network `id`. A refusal as in use although no container is attached
    /// (twice, 100 ms apart) is the engine's endpoint count gone wrong (see the module docs):
    /// said so, since waiting does not help.
    async fn remove_bridge(&self, id: &str, name: &str) -> Result<()> {
        for attempt in 0..2 {
            let err = match self.docker.remove_network(id).await {
                Ok(()) => return Ok(()),
                Err(e) => self.error(e, "remove network", "network", name),
            };
            if !err.is_in_use() {
                return Err(err);
            }
            let attached = match self.docker.inspect_network(id, None).await {
                Ok(n) => n.containers.map_or(0, |c| c.len()),
                Err(_) => return Err(err),
            };
            if attached > 0 {
                return Err(err);
            }
            if attempt == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Err(Error::engine(
            "remove network",
            name,
            "the engine refuses it as having active endpoints, but no container is attached: its endpoint \
             count went wrong (Docker 20.10 does this when many containers are removed at once); only \
             restarting the Docker daemon clears it, then `atq prune` removes the network",
        ))
    }

    /// The content of the config called or identified by `key`, as (name, data).
    async fn config_data(&self, key: &str) -> Result<(String, Vec<u8>, Vec<Vec<u8>>)> {
        let name = store::config_of_volume(key).unwrap_or(key).to_owned();
        let err = |e| self.error(e, "read config", "config", &name);
        let config = store::get(&self.docker, &store::config_name(&name))
            .await
            .map_err(err)?
            .filter(|v| v.labels.get(store::KIND).map(String::as_str) == Some(store::KIND_CONFIG))
            .ok_or_else(|| Error::NotFound { kind: "config", name: name.clone() })?;
        let content = store::get(&self.docker, &store::content_name(&name)).await.map_err(err)?;
        match content {
            Some(content) if content.labels.get(store::NONCE) == config.labels.get(store::NONCE) => {
                Ok((name.clone(), store::data_of(&content, &name)?, store::per_replica_of(&content, &name)?))
            }
            _ => Err(Error::engine(
                "read config",
                &name,
                "its content is missing (its creation was interrupted): remove it and create it again \
                 (`atq data rm`, then `atq data push`; `atq prune` for a task's worker list)",
            )),
        }
    }
}

/// A label map the caller gave, without this backend's own keys.
fn user_labels(labels: HashMap<String, String>) -> BTreeMap<String, String> {
    labels.into_iter().filter(|(k, _)| !store::is_internal(k)).collect()
}

/// Maps a bollard error onto [`Error`] (see the module docs for the rules).
fn engine_error(host: &str, err: BollardError, operation: &'static str, kind: &'static str, name: &str) -> Error {
    match err {
        BollardError::DockerResponseServerError { status_code, message } => {
            let lower = message.to_ascii_lowercase();
            let in_use = lower.contains("in use") || lower.contains("active endpoints");
            match status_code {
                404 => Error::NotFound { kind, name: name.to_string() },
                400 | 403 | 409 | 500 if in_use && !lower.contains("is already in use by container") => {
                    Error::InUse { kind, name: name.to_string(), users: Vec::new() }
                }
                409 => Error::Conflict { kind, name: name.to_string() },
                _ => Error::Engine { operation, resource: name.to_string(), message, source: None },
            }
        }
        BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError => {
            Error::EngineUnreachable { host: host.to_string(), message: format!("{operation} {kind} '{name}': {err}") }
        }
        other => Error::engine_caused(operation, name, other),
    }
}

#[async_trait]
impl Cluster for DockerCluster {
    async fn info(&self) -> Result<EngineInfo> {
        let err = |e| self.error(e, "read info of", "engine", &self.host);
        let version = self.docker.version().await.map_err(err)?;
        let info = self.docker.info().await.map_err(err)?;
        let swarm = endpoint::swarm_state(&info);
        let mut details = vec![("engine".to_owned(), format!("plain Docker, {} CPUs", info.ncpu.unwrap_or(0)))];
        if swarm != "inactive" {
            details.push(("swarm".to_owned(), format!("{swarm} (not used: containers on this engine only)")));
        }
        Ok(EngineInfo {
            backend: Backend::Docker,
            version: version.version.unwrap_or_default(),
            api_version: self.api_version.clone(),
            local_node: Some(self.engine_id.clone()).filter(|n| !n.is_empty()),
            nodes_ready: 1,
            nodes_total: 1,
            max_config_bytes: MAX_CONFIG_BYTES,
            details,
        })
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        check_object("create network", &spec.name)?;
        let nonce = store::nonce();
        let mut labels = convert::labels(&spec.labels);
        labels.insert(store::KIND.into(), store::KIND_LOCK.into());
        labels.insert(store::NONCE.into(), nonce.clone());
        labels.insert(store::NAME.into(), spec.name.clone());
        let lock = store::lock_name(&spec.name);
        let held = store::claim(&self.docker, &lock, labels)
            .await
            .map_err(|e| self.error(e, "create network", "network", &spec.name))?;
        if !held {
            return Err(Error::Conflict { kind: "network", name: spec.name.clone() });
        }
        let mut labels = convert::labels(&spec.labels);
        labels.insert(NETWORK_NONCE.into(), nonce);
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        let prefix = SubnetPool::prefix_for(spec.capacity, 0);
        let created = subnet::create_in_pool(
            &self.docker,
            &self.pool,
            prefix,
            false,
            request,
            subnet::Overlaps::RefusedByEngine,
            |e| self.error(e, "create network", "network", &spec.name),
        )
        .await;
        if created.is_err() {
            if let Err(e) = store::release(&self.docker, &lock).await {
                tracing::warn!(network = %spec.name, error = %e, "could not release a network's lock; `atq prune` will");
            }
        }
        created
    }

    async fn remove_network(&self, key: &str) -> Result<()> {
        let key = store::network_of_lock(key).unwrap_or(key);
        let network = self.network(key).await?;
        let name = match &network {
            Some((id, name, _)) => {
                self.remove_bridge(id, name).await?;
                name.clone()
            }
            None => key.to_owned(),
        };
        let released = store::release(&self.docker, &store::lock_name(&name))
            .await
            .map_err(|e| self.error(e, "remove network", "network", &name))?;
        if network.is_none() && !released {
            return Err(Error::NotFound { kind: "network", name });
        }
        Ok(())
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String> {
        if !spec.placement.constraints.is_empty() {
            return Err(Error::EngineUnsuitable {
                host: self.host.clone(),
                backend: "docker",
                reason: format!(
                    "service {} has placement constraints ({}), and a plain engine is a single node",
                    spec.name,
                    spec.placement.constraints.join(", ")
                ),
                fix: "Remove the constraints, or run on a swarm (ATQ_ENGINE=swarm)".to_owned(),
            });
        }
        let mut networks = Vec::with_capacity(spec.networks.len());
        for key in &spec.networks {
            let (_, name, _) =
                self.network(key).await?.ok_or_else(|| Error::NotFound { kind: "network", name: key.clone() })?;
            networks.push(name);
        }
        let mut files = Vec::with_capacity(spec.configs.len());
        let mut configs = Vec::with_capacity(spec.configs.len());
        for mount in &spec.configs {
            let (name, data, per_replica) = match self.config_data(&mount.config_name).await {
                Err(Error::NotFound { .. }) => self.config_data(&mount.config_id).await?,
                other => other?,
            };
            files.push(File { target: mount.target.clone(), data, mode: mount.mode, per_replica });
            configs.push(name);
        }
        let spec = ServiceSpec { networks, ..spec.clone() };
        self.containers.create(&spec, &files, configs).await
    }

    async fn remove_service(&self, name: &str) -> Result<()> {
        if self.containers.remove(name).await? {
            Ok(())
        } else {
            Err(Error::NotFound { kind: "service", name: name.to_owned() })
        }
    }

    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        self.containers
            .replicas(service, network)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "service", name: service.to_owned() })
    }

    async fn logs(&self, service: &str, options: &LogOptions) -> Result<LogStream> {
        self.containers
            .logs(service, options)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "service", name: service.to_owned() })
    }

    async fn create_config(&self, spec: &ConfigSpec) -> Result<String> {
        check_config("create config", &spec.name)?;
        // As on swarm, where a per-replica config is one templated config holding every
        // replica's content: its shared part may be empty, the whole may not.
        let size = spec.data.len() + spec.per_replica.iter().map(Vec::len).sum::<usize>();
        if size == 0 || size > MAX_CONFIG_BYTES {
            return Err(Error::engine(
                "create config",
                &spec.name,
                format!("config data must be larger than 0 and at most {MAX_CONFIG_BYTES} bytes (it is {size})"),
            ));
        }
        let err = |e| self.error(e, "create config", "config", &spec.name);
        let nonce = store::nonce();
        let mut labels = convert::labels(&spec.labels);
        labels.insert(store::KIND.into(), store::KIND_CONFIG.into());
        labels.insert(store::NONCE.into(), nonce.clone());
        labels.insert(store::NAME.into(), spec.name.clone());
        let volume = store::config_name(&spec.name);
        if !store::claim(&self.docker, &volume, labels).await.map_err(err)? {
            return Err(Error::Conflict { kind: "config", name: spec.name.clone() });
        }
        // The name is ours: a content volume of it is stale (a removal interrupted between the two).
        let content = store::content_name(&spec.name);
        store::release(&self.docker, &content).await.map_err(err)?;
        // The config's own labels too, so that what finds the config's objects by label (a test's
        // leftover check, `docker volume ls --filter label=…`) sees its content; listing configs
        // selects by kind and never returns it.
        let mut labels = convert::labels(&spec.labels);
        labels.insert(store::KIND.into(), store::KIND_CONTENT.into());
        labels.insert(store::NONCE.into(), nonce);
        labels.insert(store::NAME.into(), spec.name.clone());
        labels.insert(store::DATA.into(), store::encode(&spec.data));
        if !spec.per_replica.is_empty() {
            labels.insert(store::PER_REPLICA.into(), store::encode_per_replica(&spec.per_replica));
        }
        let stored = store::claim(&self.docker, &content, labels).await.map_err(err);
        if !matches!(stored, Ok(true)) {
            let _ = store::release(&self.docker, &volume).await;
            stored?;
            return Err(Error::engine(
                "create config",
                &spec.name,
                "its content was written by another create at once; retry",
            ));
        }
        Ok(volume)
    }

    async fn read_config(&self, name: &str) -> Result<Vec<u8>> {
        let (name, data, per_replica) = self.config_data(name).await?;
        if !per_replica.is_empty() {
            return Err(Error::engine("read config", name, "a per-replica config has no one content to read back"));
        }
        Ok(data)
    }

    async fn remove_config(&self, key: &str) -> Result<()> {
        let name = store::config_of_volume(key).unwrap_or(key);
        let users = self.containers.users_of_config(name).await?;
        if !users.is_empty() {
            return Err(Error::InUse { kind: "config", name: name.to_owned(), users });
        }
        let err = |e| self.error(e, "remove config", "config", name);
        // The content first: it never outlives its config.
        store::release(&self.docker, &store::content_name(name)).await.map_err(err)?;
        let removed = store::release(&self.docker, &store::config_name(name)).await.map_err(err)?;
        if removed {
            Ok(())
        } else {
            Err(Error::NotFound { kind: "config", name: name.to_owned() })
        }
    }

    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>> {
        let err = |e| self.error(e, "list", "resources", kind.as_str());
        let filters = convert::label_filters(selector).remove("label").unwrap_or_default();
        let mut resources: Vec<Resource> = match kind {
            ResourceKind::Service => self.containers.list(selector).await?,
            ResourceKind::Network => {
                let mut labels = filters.clone();
                labels.push(NETWORK_NONCE.to_owned());
                let options = ListNetworksOptions { filters: Some(HashMap::from([("label".to_owned(), labels)])) };
                let networks = self.docker.list_networks(Some(options)).await.map_err(err)?;
                // Bridge networks only, selected here: the engine's `driver` filter left out a
                // network just created while others were (seen on a swarm manager).
                let mut found: Vec<Resource> = networks
                    .into_iter()
                    .filter(|n| n.driver.as_deref() == Some("bridge"))
                    .map(|n| Resource {
                        kind,
                        id: n.id.unwrap_or_default(),
                        name: n.name.unwrap_or_default(),
                        created_unix: n.created.as_deref().and_then(convert::unix_seconds),
                        labels: user_labels(n.labels.unwrap_or_default()),
                    })
                    .collect();
                // A lock whose network does not exist (a create interrupted between the two):
                // listed as the network, so that teardown and prune remove it.
                for lock in store::list(&self.docker, store::KIND_LOCK, filters).await.map_err(err)? {
                    let Some(name) = store::network_of_lock(&lock.name) else { continue };
                    if !found.iter().any(|n| n.name == name) {
                        found.push(Resource {
                            kind,
                            id: lock.name.clone(),
                            name: name.to_owned(),
                            created_unix: lock.created_at.as_deref().and_then(convert::unix_seconds),
                            labels: user_labels(lock.labels),
                        });
                    }
                }
                found
            }
            ResourceKind::Config => store::list(&self.docker, store::KIND_CONFIG, filters)
                .await
                .map_err(err)?
                .into_iter()
                .filter_map(|v| {
                    let name = store::config_of_volume(&v.name)?.to_owned();
                    Some(Resource {
                        kind,
                        id: v.name.clone(),
                        name,
                        created_unix: v.created_at.as_deref().and_then(convert::unix_seconds),
                        labels: user_labels(v.labels),
                    })
                })
                .collect(),
        };
        resources.retain(|r| selector.matches(&r.labels));
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(resources)
    }

    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<super::ChunkStream> {
        containers::copy_from_container(&self.docker, &self.host, engine_error, container_id, path).await
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
        let map = |e| engine_error("h", e, "remove network", "network", "n");
        assert!(matches!(map(server(404, "network n not found")), Error::NotFound { kind: "network", .. }));
        assert!(map(server(403, "error while removing network: network n id x has active endpoints")).is_in_use());
        assert!(map(server(409, "remove v: volume is in use - [abc]")).is_in_use());
        let conflict = r#"Conflict. The container name "/s.1" is already in use by container "abc". You have to remove (or rename) that container to be able to reuse that name."#;
        assert!(matches!(map(server(409, conflict)), Error::Conflict { .. }));
        assert!(matches!(map(server(500, "something broke")), Error::Engine { operation: "remove network", .. }));
        assert!(matches!(map(BollardError::RequestTimeoutError), Error::EngineUnreachable { .. }));
    }
}
