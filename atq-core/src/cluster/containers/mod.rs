//! Services as labelled containers on one engine: what the plain Docker backend is made of, and
//! how the swarm backend runs a one-off (the wait command's probe) without the control plane.
//!
//! A plain engine has no services, so a service here is *virtual*: its replicas are containers
//! named `<service>.<slot>` that carry the service in their labels ([`labels`]), and every
//! question about the service (its replicas, logs, labels, whether it exists) is answered from
//! the containers that carry its id. Nothing else is stored, so a crashed process leaves only
//! labelled containers, which listing finds and removal removes.
//!
//! - **Create**: slot 1's container is created first: the engine's unique container names make it
//!   the service's lock (a second service of the name is a [`Conflict`](Error::Conflict)). Then
//!   every other replica is created, and all of them get their files
//!   (`PUT /containers/{id}/archive` while created, with each file's mode) and are started,
//!   **concurrently** ([`CONCURRENCY`] at a time). Restart policy "no". Each replica joins its
//!   networks with the aliases `<service>` and `tasks.<service>`, so the service's name resolves
//!   to every replica through the engine's embedded DNS, as a swarm dnsrr service's does. A
//!   missing image or a command that cannot start fails the creation at once with
//!   [`Error::ReplicaFailed`] naming the engine's message, after removing what was made.
//! - **Replicas**: one container listing per call; only exited containers are inspected.
//! - **Logs**: each container's log (stdout and stderr, with the engine's timestamps), every
//!   line naming its slot; a finished read is merged in time order, a followed one interleaves
//!   the replicas as lines come and ends when every container has stopped (a container's
//!   followed log, unlike a swarm service's, ends by itself).
//! - **Remove**: every container is stopped (with its stop grace period, the service's
//!   `stop_grace_period`, as `StopTimeout`) and removed, concurrently ([`REMOVAL_CONCURRENCY`]
//!   at a time); it returns once none is left.

mod files;
mod spec;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerState, ContainerSummary, EndpointSettings, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StartContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::{stream, Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

pub(crate) use files::File;

use super::swarm::logs::{since_param, Lines};
use super::ChunkStream;
use super::{LabelSelector, LogLine, LogOptions, LogStream, Replica, Resource, ResourceKind, ServiceSpec};
use crate::error::{Error, Result};

/// The labels this module puts on every container, from which the services are derived again.
/// Reserved, as every `io.atq.` key is.
pub(crate) mod labels {
    /// Which backend made the container (`docker`, or `swarm` for a swarm one-off), so that each
    /// backend lists only its own.
    pub const BACKEND: &str = "io.atq.engine.backend";
    /// The service's name.
    pub const SERVICE: &str = "io.atq.engine.service";
    /// The service's id, shared by its containers.
    pub const SERVICE_ID: &str = "io.atq.engine.service-id";
    /// The container's slot, from 1.
    pub const SLOT: &str = "io.atq.engine.slot";
    /// How many replicas the service has.
    pub const REPLICAS: &str = "io.atq.engine.replicas";
    /// The service's own labels, as JSON (a container carries the spec's container labels).
    pub const SERVICE_LABELS: &str = "io.atq.engine.service-labels";
    /// The first network the service joined.
    pub const NETWORK: &str = "io.atq.engine.network";
    /// Prefix of one label per config the container was given (`io.atq.engine.config.<name>`).
    pub const USES_CONFIG: &str = "io.atq.engine.config.";
}

/// How many containers are created, prepared or started at once.
pub const CONCURRENCY: usize = 32;

/// How many containers are stopped and removed at once. Fewer than [`CONCURRENCY`]: with 32
/// concurrent stop-and-remove calls, a bridge network of 300 containers kept a phantom endpoint
/// count in 2 runs of 2 (Docker 20.10: "has active endpoints" with no container left, until the
/// daemon restarts), never with 8 or 16 (3 runs) nor sequentially; and 8 is as fast (300
/// containers in ~22 s: the daemon removes one at a time anyway).
pub const REMOVAL_CONCURRENCY: usize = 8;

/// A log line with its time key `(unix seconds, nanoseconds)`, for merging replicas in order.
type TimedLine = (Option<(i64, u32)>, LogLine);

/// A container's log lines, each with its time key.
type TimedLines = std::pin::Pin<Box<dyn Stream<Item = Result<TimedLine>> + Send + 'static>>;

/// How long a removal waits for a container whose removal someone else started.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);

/// The backend's one mapping of bollard errors onto [`Error`]: `(host, error, operation, kind, name)`.
pub(crate) type MapError = fn(&str, BollardError, &'static str, &'static str, &str) -> Error;

/// Services as containers on one engine (see the module docs).
#[derive(Clone)]
pub(crate) struct Containers {
    /// The client.
    docker: Docker,
    /// The engine address, for messages.
    host: String,
    /// The value of [`labels::BACKEND`] on what this creates and lists.
    backend: &'static str,
    /// The node id replicas report (the engine's id, or the swarm node's).
    node: String,
    /// The backend's error mapping.
    map: MapError,
}

impl Containers {
    /// Containers on the engine behind `docker`, labelled as `backend`'s.
    pub(crate) fn new(docker: Docker, host: String, backend: &'static str, node: String, map: MapError) -> Self {
        Containers { docker, host, backend, node, map }
    }

    fn error(&self, err: BollardError, operation: &'static str, kind: &'static str, name: &str) -> Error {
        (self.map)(&self.host, err, operation, kind, name)
    }

    /// Creates the service's replicas with `files` in each, and starts them; returns its id.
    pub(crate) async fn create(&self, spec: &ServiceSpec, files: &[File], configs: Vec<String>) -> Result<String> {
        super::names::check_object("create service", &spec.name)?;
        if spec.replicas == 0 {
            return Err(Error::engine("create service", &spec.name, "a service needs at least one replica here"));
        }
        let replicas = spec::Replicas {
            name: spec.name.clone(),
            id: new_id(&spec.name),
            backend: self.backend,
            networks: spec.networks.clone(),
            configs,
        };
        // Files the same for every replica go in one archive; a per-replica config (a sharded
        // file) makes one archive per replica, each with its own slice.
        let per_replica = files::per_replica(files);
        let archive = if files.is_empty() || per_replica { None } else { Some(files::archive(&spec.name, files)?) };
        // Slot 1 is the lock: a conflict there means the service exists, and nothing was made.
        let first = self.create_container(spec, &replicas, 1).await?;
        let (shared, archive) = (&replicas, archive.as_deref());
        let rest = stream::iter(2..=spec.replicas)
            .map(move |slot| async move { self.create_container(spec, shared, slot).await.map(|id| (slot, id)) })
            .buffer_unordered(CONCURRENCY);
        let result = stream::once(futures_util::future::ready(Ok((1, first))))
            .chain(rest)
            .map(move |created| async move {
                let (slot, id) = created?;
                if per_replica {
                    let own = files::archive_for(&spec.name, files, Some(slot))?;
                    self.prepare_and_start(shared, slot, &id, Some(&own)).await
                } else {
                    self.prepare_and_start(shared, slot, &id, archive).await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await;
        match result {
            Ok(_) => Ok(replicas.id),
            Err(e) => {
                if let Err(undo) = self.remove_all(&self.list_by(labels::SERVICE_ID, &replicas.id).await?).await {
                    tracing::warn!(service = %spec.name, error = %undo, "could not remove the replicas of a failed create; `atq prune` will");
                }
                Err(e)
            }
        }
    }

    /// Creates the container of `slot`; a missing image is the replica's failure.
    async fn create_container(&self, spec: &ServiceSpec, replicas: &spec::Replicas, slot: u32) -> Result<String> {
        let name = replicas.container_name(slot);
        let options = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        match self.docker.create_container(Some(options), spec::container(spec, replicas, slot)).await {
            Ok(created) => Ok(created.id),
            Err(BollardError::DockerResponseServerError { status_code: 404, message })
                if message.to_ascii_lowercase().contains("no such image") =>
            {
                Err(Error::ReplicaFailed {
                    service: spec.name.clone(),
                    replica: name,
                    state: "rejected".into(),
                    message,
                })
            }
            Err(e) => Err(match self.error(e, "create service", "service", &spec.name) {
                Error::Conflict { .. } if slot == 1 => Error::Conflict { kind: "service", name: spec.name.clone() },
                Error::Conflict { .. } => Error::Conflict { kind: "container", name },
                other => other,
            }),
        }
    }

    /// Joins the container to the service's other networks, puts its files in, and starts it.
    async fn prepare_and_start(
        &self,
        replicas: &spec::Replicas,
        slot: u32,
        id: &str,
        archive: Option<&[u8]>,
    ) -> Result<()> {
        let name = replicas.container_name(slot);
        for network in replicas.networks.iter().skip(1) {
            let request = NetworkConnectRequest {
                container: id.to_owned(),
                endpoint_config: Some(EndpointSettings { aliases: Some(replicas.aliases()), ..Default::default() }),
            };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(|e| self.error(e, "connect to network", "network", network))?;
        }
        if let Some(archive) = archive {
            let options = UploadToContainerOptions { path: "/".into(), ..Default::default() };
            self.docker
                .upload_to_container(id, Some(options), bollard::body_full(archive.to_vec().into()))
                .await
                .map_err(|e| self.error(e, "copy files into", "container", &name))?;
        }
        match self.docker.start_container(id, None::<StartContainerOptions>).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError { status_code, message }) if status_code != 404 => {
                Err(Error::ReplicaFailed {
                    service: replicas.name.clone(),
                    replica: name,
                    state: "failed".into(),
                    message,
                })
            }
            Err(e) => Err(self.error(e, "start", "container", &name)),
        }
    }

    /// Containers (any state) whose label `key` is `value`, made by this backend.
    async fn list_by(&self, key: &str, value: &str) -> Result<Vec<ContainerSummary>> {
        self.list_filtered(vec![format!("{key}={value}")]).await
    }

    /// Containers (any state) of this backend matching every label filter in `filters`.
    async fn list_filtered(&self, mut filters: Vec<String>) -> Result<Vec<ContainerSummary>> {
        filters.push(format!("{}={}", labels::BACKEND, self.backend));
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), filters)])),
            ..Default::default()
        };
        self.docker.list_containers(Some(options)).await.map_err(|e| self.error(e, "list", "containers", self.backend))
    }

    /// The containers of the service named (or identified) by `key`, by slot; None when there is none.
    pub(crate) async fn find(&self, key: &str) -> Result<Option<Vec<ContainerSummary>>> {
        let mut found = self.list_by(labels::SERVICE, key).await?;
        if found.is_empty() {
            found = self.list_by(labels::SERVICE_ID, key).await?;
        }
        if found.is_empty() {
            return Ok(None);
        }
        found.sort_by_key(state::slot);
        Ok(Some(found))
    }

    /// The service's name, from its containers' labels (`key` when they do not say).
    fn service_name(containers: &[ContainerSummary], key: &str) -> String {
        containers
            .first()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::SERVICE))
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// The service's replicas (see [`Cluster::replicas`](super::Cluster::replicas)); None when
    /// there is no such service.
    pub(crate) async fn replicas(&self, key: &str, network: &str) -> Result<Option<Vec<Replica>>> {
        let Some(containers) = self.find(key).await? else { return Ok(None) };
        let service = Self::service_name(&containers, key);
        let exited: Vec<Option<String>> =
            containers.iter().map(|c| if state::has_exited(c) { c.id.clone() } else { None }).collect();
        let inspected: Vec<Option<ContainerState>> = stream::iter(exited)
            .map(move |id| async move {
                let Some(id) = id else { return Ok(None) };
                match self.docker.inspect_container(&id, None::<InspectContainerOptions>).await {
                    Ok(inspect) => Ok(inspect.state),
                    Err(e) => match self.error(e, "inspect", "container", &id) {
                        Error::NotFound { .. } => Ok(None),
                        other => Err(other),
                    },
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Some(
            containers
                .iter()
                .zip(&inspected)
                .map(|(c, s)| state::replica(&service, c, s.as_ref(), network, &self.node))
                .collect(),
        ))
    }

    /// The service's logs (see the module docs); None when there is no such service.
    pub(crate) async fn logs(&self, key: &str, options: &LogOptions) -> Result<Option<LogStream>> {
        let Some(containers) = self.find(key).await? else { return Ok(None) };
        let service = Self::service_name(&containers, key);
        let streams: Vec<_> = containers
            .iter()
            .map(|c| {
                let id = c.id.clone().unwrap_or_default();
                let slot = state::slot(c);
                let options = LogsOptions {
                    follow: options.follow,
                    stdout: true,
                    stderr: true,
                    timestamps: true,
                    since: since_param(options.since),
                    tail: options.tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
                    ..Default::default()
                };
                self.lines(&service, &id, slot, options)
            })
            .collect();
        if options.follow {
            return Ok(Some(Box::pin(stream::select_all(streams).map(|line| line.map(|(_, line)| line)))));
        }
        // Read every replica's log concurrently, then merge them in time order (stable).
        let mut all: Vec<TimedLine> = Vec::new();
        let mut reads = Vec::with_capacity(streams.len());
        for lines in streams {
            reads.push(lines.try_collect::<Vec<_>>());
        }
        let read: Vec<Vec<TimedLine>> = stream::iter(reads).buffered(CONCURRENCY).try_collect().await?;
        for lines in read {
            all.extend(lines);
        }
        all.sort_by_key(|(key, _)| *key);
        Ok(Some(Box::pin(stream::iter(all.into_iter().map(|(_, line)| Ok(line))))))
    }

    /// One container's log as lines naming `slot`, each with its time key. A container removed
    /// meanwhile ends its log.
    fn lines(&self, service: &str, id: &str, slot: u32, options: LogsOptions) -> TimedLines {
        struct State {
            frames: std::pin::Pin<
                Box<dyn Stream<Item = std::result::Result<bollard::container::LogOutput, BollardError>> + Send>,
            >,
            lines: Lines,
            ready: std::collections::VecDeque<TimedLine>,
            done: bool,
            slot: u32,
            map: MapError,
            host: String,
            service: String,
        }
        let state = State {
            frames: Box::pin(self.docker.logs(id, Some(options))),
            lines: Lines::default(),
            ready: std::collections::VecDeque::new(),
            done: false,
            slot,
            map: self.map,
            host: self.host.clone(),
            service: service.to_owned(),
        };
        Box::pin(stream::unfold(state, |mut st| async move {
            loop {
                if let Some(item) = st.ready.pop_front() {
                    return Some((Ok(item), st));
                }
                if st.done {
                    return None;
                }
                match st.frames.next().await {
                    Some(Ok(frame)) => {
                        for parsed in st.lines.push(frame) {
                            st.ready.push_back((parsed.key, LogLine { replica: Some(st.slot), ..parsed.line }));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        match (st.map)(&st.host, e, "read logs of", "service", &st.service) {
                            Error::NotFound { .. } => {}
                            other => return Some((Err(other), st)),
                        }
                    }
                    None => {
                        st.done = true;
                        for parsed in st.lines.finish() {
                            st.ready.push_back((parsed.key, LogLine { replica: Some(st.slot), ..parsed.line }));
                        }
                    }
                }
            }
        }))
    }

    /// Stops and removes every container of the service named (or identified) by `key`; false
    /// when there was none.
    pub(crate) async fn remove(&self, key: &str) -> Result<bool> {
        let Some(containers) = self.find(key).await? else { return Ok(false) };
        let id = containers
            .first()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::SERVICE_ID))
            .cloned()
            .unwrap_or_default();
        self.remove_all(&containers).await?;
        // A replica created while this ran (a create racing its own removal) goes too.
        let late = self.list_by(labels::SERVICE_ID, &id).await?;
        if !late.is_empty() {
            self.remove_all(&late).await?;
        }
        Ok(true)
    }

    /// Stops (within each one's stop grace period) and removes `containers`, concurrently.
    pub(crate) async fn remove_all(&self, containers: &[ContainerSummary]) -> Result<()> {
        let ids: Vec<String> = containers.iter().filter_map(|c| c.id.clone()).collect();
        let results: Vec<Result<()>> = stream::iter(ids)
            .map(move |id| async move { self.stop_and_remove(&id, None).await })
            .buffer_unordered(REMOVAL_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace`, or its own stop timeout when
    /// None) and removes it; a container already gone counts as removed.
    pub(crate) async fn stop_and_remove(&self, id: &str, grace: Option<Duration>) -> Result<()> {
        let options = grace.map(|g| StopContainerOptions {
            t: Some(i32::try_from(spec::stop_timeout(g)).unwrap_or(i32::MAX)),
            signal: None,
        });
        match self.docker.stop_container(id, options).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => match self.error(e, "stop", "container", id) {
                Error::NotFound { .. } => return Ok(()),
                // Being removed by someone else: wait for that below.
                Error::Conflict { .. } | Error::InUse { .. } => {}
                other => return Err(other),
            },
        }
        let options = RemoveContainerOptions { force: true, v: false, link: false };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match self.error(e, "remove", "container", id) {
                Error::NotFound { .. } => Ok(()),
                Error::Conflict { .. } | Error::InUse { .. } => self.wait_gone(id).await,
                other => Err(other),
            },
        }
    }

    /// Waits (at most [`REMOVAL_WAIT`]) until the engine no longer knows the container.
    async fn wait_gone(&self, id: &str) -> Result<()> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match self.docker.inspect_container(id, None::<InspectContainerOptions>).await {
                Err(e) => match self.error(e, "inspect", "container", id) {
                    Error::NotFound { .. } => return Ok(()),
                    other => return Err(other),
                },
                Ok(_) if start.elapsed() >= REMOVAL_WAIT => {
                    return Err(Error::engine(
                        "remove",
                        id,
                        format!("the container still exists after {REMOVAL_WAIT:?}"),
                    ));
                }
                Ok(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The services (derived from the containers) whose labels match `selector`, by name.
    pub(crate) async fn list(&self, selector: &LabelSelector) -> Result<Vec<Resource>> {
        let containers = self.list_filtered(vec![labels::SERVICE_ID.to_owned()]).await?;
        let mut services: BTreeMap<String, Resource> = BTreeMap::new();
        for c in containers {
            let Some(l) = c.labels.as_ref() else { continue };
            let (Some(id), Some(name)) = (l.get(labels::SERVICE_ID), l.get(labels::SERVICE)) else { continue };
            let created = c.created;
            let entry = services.entry(id.clone()).or_insert_with(|| Resource {
                kind: ResourceKind::Service,
                id: id.clone(),
                name: name.clone(),
                labels: l
                    .get(labels::SERVICE_LABELS)
                    .and_then(|json| serde_json::from_str(json).ok())
                    .unwrap_or_default(),
                created_unix: created,
            });
            entry.created_unix = match (entry.created_unix, created) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut found: Vec<Resource> = services.into_values().filter(|r| selector.matches(&r.labels)).collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// The services whose containers were given the config `name`.
    pub(crate) async fn users_of_config(&self, name: &str) -> Result<Vec<String>> {
        let containers = self.list_filtered(vec![format!("{}{name}", labels::USES_CONFIG)]).await?;
        let mut users: Vec<String> =
            containers.iter().filter_map(|c| c.labels.as_ref()?.get(labels::SERVICE).cloned()).collect();
        users.sort();
        users.dedup();
        Ok(users)
    }
}

/// A service id no other service has: 25 hex digits (as long as a swarm's ids) of a digest of
/// its name, this process and the time.
fn new_id(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut digest = Sha256::new();
    digest.update(name.as_bytes());
    digest.update(std::process::id().to_le_bytes());
    digest.update(nanos.to_le_bytes());
    digest.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()[..25].to_owned()
}

/// `docker cp`'s read: a tar of `path` in the container, at most [`MAX_ARCHIVE_BYTES`] (see
/// [`Cluster::copy_from_replica`](super::Cluster::copy_from_replica)).
pub(crate) async fn copy_from_container(
    docker: &Docker,
    host: &str,
    map: MapError,
    container_id: &str,
    path: &str,
) -> Result<ChunkStream> {
    let options = DownloadFromContainerOptions { path: path.to_string() };
    let mut stream = docker.download_from_container(container_id, Some(options));
    let (host, container, path) = (host.to_string(), container_id.to_string(), path.to_string());
    let map = move |e: BollardError| match e {
        BollardError::DockerResponseServerError { status_code: 404, message }
            if message.to_ascii_lowercase().contains("no such container") =>
        {
            Error::NotFound { kind: "container", name: container.clone() }
        }
        BollardError::DockerResponseServerError { status_code: 404, .. } => {
            Error::NotFound { kind: "path", name: path.clone() }
        }
        other => map(&host, other, "copy files from", "container", &container),
    };
    // The first chunk tells whether the path exists: fail the call, not the stream, then. The
    // caller bounds what it reads (artifacts::save: MAX_ARCHIVE_BYTES, an idle timeout).
    let first = match stream.next().await {
        None => None,
        Some(Ok(chunk)) => Some(chunk.to_vec()),
        Some(Err(e)) => return Err(map(e)),
    };
    let rest = stream.map(move |chunk| chunk.map(|c| c.to_vec()).map_err(&map));
    Ok(Box::pin(futures_util::stream::iter(first.map(Ok)).chain(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_are_distinct_and_engine_sized() {
        let (a, b) = (new_id("s"), new_id("s"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 25);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
