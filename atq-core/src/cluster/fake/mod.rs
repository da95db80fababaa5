//! [`FakeCluster`]: an in-memory engine for tests.
//!
//! It is a real [`Cluster`] with rules, not a mock: names are unique, services need their
//! networks and configs, a network in use cannot be removed, replicas get addresses from
//! their network's subnet and go from pending to running after a start latency. What a
//! container would do (start, run, exit, print) is scripted with a [`Script`] chosen by a
//! [`Matcher`]. Faults are injected per call ([`FakeCluster::fail_call`]) or at run time
//! ([`FakeCluster::kill_replica`]).
//!
//! Time is [`tokio::time::Instant`], and every state is computed from timestamps when it is
//! asked for, so tests under `tokio::time::pause()` are deterministic and never wait.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::names::{check_config, check_object};
use super::subnet::SubnetPool;
use super::{
    on_node, Backend, ChunkStream, Cluster, ConfigSpec, EngineInfo, LabelSelector, LogLine, LogOptions, LogStream,
    NetworkSpec, NodeStatus, Replica, ReplicaState, Resource, ResourceKind, ServiceSpec,
};
use crate::error::{Error, Result};
use crate::labels::Role;

mod calls;
mod net;
mod script;
#[cfg(test)]
mod tests;

pub use super::subnet::Subnet;
pub use calls::{Call, CallKind};
pub use script::{Matcher, Run, Script, Start};

use calls::{Calls, FaultPoint};
use net::HostPool;
use script::{Behaviour, Rules};

/// The node this client talks to (the manager), and every replica's on a one-node fake.
const NODE_ID: &str = "fake-node-1";
/// The largest config the fake engine accepts, as older swarm engines do.
const MAX_CONFIG_BYTES: usize = 500 * 1024;
/// Addresses a network keeps besides its replicas' (as a one-node swarm keeps one for its load
/// balancer): part of the sizing rule every backend follows.
const ENGINE_ADDRESSES: u32 = 1;

/// An in-memory [`Cluster`]: deterministic, scriptable, with fault injection.
///
/// Clones share one engine, so a test keeps a clone to script and inspect the engine while
/// the code under test drives another (for instance inside a [`Director`](crate::Director)).
///
/// # Defaults
/// - Replicas start at once (see [`with_latency`](Self::with_latency)) and run until removed,
///   except services labelled `io.atq.role=master` or `io.atq.role=probe`, whose replicas exit
///   0 right after starting, without logs — so a task deployed on a fresh fake runs to completion.
/// - A health check, if the service has one, passes as soon as the replica runs (script
///   [`Start::Never`] for one that never passes).
/// - A network gets a subnet sized to its [`capacity`](NetworkSpec::capacity) by the rule every
///   backend follows ([`subnet`](crate::cluster::subnet): at least a /24, the first free block of
///   the pool, `10.208.0.0/13` unless [`with_subnet_pool`](Self::with_subnet_pool) says otherwise);
///   replicas get its addresses from `.2` on, one per network they join, and a service with more
///   replicas than its network has free addresses is refused; addresses are reused after removal.
/// - One node (`fake-node-1`, hostname `node1`), a swarm manager ([`with_nodes`](Self::with_nodes)
///   for more); configs up to 500 KiB; names follow the engine's rules (letters, digits, `-`,
///   `_`; `.` too for configs; at most 63/64 characters).
///
/// # Scripts and faults
/// [`script`](Self::script) (and its shorthands [`master_exits`](Self::master_exits),
/// [`probe_output`](Self::probe_output), [`never_starts`](Self::never_starts)) decides how the
/// replicas of services created afterwards start, run and print; [`missing_image`](Self::missing_image)
/// makes the engine reject an image; [`Script::artifact`] adds files a replica writes, which
/// [`copy_from_replica`](Cluster::copy_from_replica) returns as a tar. [`fail_call`](Self::fail_call),
/// [`fail_call_after`](Self::fail_call_after) and [`fail_any_call`](Self::fail_any_call) make
/// a later call fail; [`kill_replica`](Self::kill_replica) kills a running replica;
/// [`node_down`](Self::node_down) and [`node_up`](Self::node_up) take a node away and bring it
/// back, as the engine reports it (its replicas [lost](ReplicaState::Lost), then failed 255);
/// [`calls`](Self::calls) and [`call_log`](Self::call_log) tell what the engine was asked.
///
/// ```
/// use std::time::Duration;
/// use atq_core::cluster::fake::CallKind;
/// use atq_core::cluster::{Cluster, NetworkSpec, ReplicaState, ServiceSpec};
/// use atq_core::FakeCluster;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atq_core::Error> {
/// tokio::time::pause();
/// let fake = FakeCluster::new().with_latency(Duration::from_secs(2));
/// fake.create_network(&NetworkSpec { name: "net".into(), ..Default::default() }).await?;
/// let workers = ServiceSpec {
///     name: "workers".into(),
///     image: "lab/jmeter:2.13".into(),
///     replicas: 3,
///     networks: vec!["net".into()],
///     ..Default::default()
/// };
/// fake.create_service(&workers).await?;
///
/// let replicas = fake.replicas("workers", "net").await?;
/// assert!(replicas.iter().all(|r| r.state == ReplicaState::Pending));
/// tokio::time::advance(Duration::from_secs(2)).await;
/// let replicas = fake.replicas("workers", "net").await?;
/// assert!(replicas.iter().all(|r| r.state == ReplicaState::Running));
/// let subnet = fake.network_subnet("net").unwrap();
/// assert!(replicas.iter().all(|r| subnet.contains(r.address.unwrap())));
///
/// // The next remove_service call fails.
/// fake.fail_call(CallKind::RemoveService, 1);
/// assert!(fake.remove_service("workers").await.is_err());
/// fake.remove_service("workers").await?;
/// fake.remove_network("net").await?;
/// assert!(fake.is_empty());
/// assert_eq!(fake.calls(CallKind::RemoveService), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FakeCluster {
    /// The engine's state, shared by clones.
    shared: Arc<Shared>,
}

/// What clones of one [`FakeCluster`] share.
struct Shared {
    /// Everything the engine holds. Never locked across an await.
    state: Mutex<State>,
    /// Bumped when something happens that time alone does not explain (a replica killed, a
    /// service removed), to wake log followers.
    changed: watch::Sender<u64>,
}

/// The engine's objects and the test's settings.
#[derive(Debug)]
struct State {
    /// Default start latency of new replicas.
    latency: Duration,
    /// How long every trait call takes before it has any effect.
    call_delay: Duration,
    /// Scripts, by matcher.
    rules: Rules,
    /// Images that do not exist: their replicas are rejected.
    missing_images: BTreeSet<String>,
    /// Call counters, log and armed faults.
    calls: Calls,
    /// The last id handed out.
    last_id: u64,
    /// When the fake was created, on tokio's clock and on the wall clock (for `created_unix`).
    origin: (Instant, i64),
    /// Networks by name.
    networks: BTreeMap<String, Network>,
    /// Services by name.
    services: BTreeMap<String, Service>,
    /// Configs by name.
    configs: BTreeMap<String, Config>,
    /// Object ids, to their kind and name.
    ids: HashMap<String, (ResourceKind, String)>,
    /// Where network subnets come from.
    pool: SubnetPool,
    /// Whether it follows a plain engine's rules where they differ from a swarm's.
    plain: bool,
    /// The swarm's nodes; the first is the manager this client talks to.
    nodes: Vec<Node>,
    /// Containers of removed services left on nodes that were down (node index, container id):
    /// the node removes them once it is back.
    stranded: Vec<(usize, String)>,
}

/// A node of the fake swarm.
#[derive(Debug, Clone)]
struct Node {
    /// `fake-node-N`.
    id: String,
    /// `nodeN`.
    hostname: String,
    /// Whether the manager hears from it.
    ready: bool,
}

impl Node {
    fn new(n: usize) -> Self {
        Node { id: format!("fake-node-{n}"), hostname: format!("node{n}"), ready: true }
    }

    fn status(&self) -> NodeStatus {
        let why = if self.ready { "ready" } else { "down: heartbeat failure" };
        NodeStatus { hostname: self.hostname.clone(), ready: self.ready, why: why.into() }
    }

    /// Whether a `node.*` placement constraint allows this node (`index` 0 is the manager);
    /// constraints on other attributes are not modelled and allow every node.
    fn allows(&self, index: usize, constraint: &str) -> bool {
        let (key, want, equal) = match constraint.split_once("==") {
            Some((k, v)) => (k, v, true),
            None => match constraint.split_once("!=") {
                Some((k, v)) => (k, v, false),
                None => return true,
            },
        };
        let have = match key.trim() {
            "node.hostname" => self.hostname.as_str(),
            "node.id" => self.id.as_str(),
            "node.role" => {
                if index == 0 {
                    "manager"
                } else {
                    "worker"
                }
            }
            _ => return true,
        };
        (have == want.trim()) == equal
    }
}

/// A replica whose node went down while it had not stopped: the engine keeps its last report.
#[derive(Debug, Clone, Copy)]
struct LostAt {
    /// When its node went down: its state then is the engine's last report of it.
    since: Instant,
    /// When its node was back (its agent then reports it failed, exit code 255).
    back: Option<Instant>,
}

/// A network on the fake engine.
#[derive(Debug)]
struct Network {
    id: String,
    spec: NetworkSpec,
    subnet: Subnet,
    pool: HostPool,
    /// Services attached to it.
    users: BTreeSet<String>,
    created_unix: i64,
}

/// A config on the fake engine.
#[derive(Debug)]
struct Config {
    id: String,
    spec: ConfigSpec,
    /// Services that mount it.
    users: BTreeSet<String>,
    created_unix: i64,
}

/// A service on the fake engine.
#[derive(Debug)]
struct Service {
    id: String,
    spec: ServiceSpec,
    created: Instant,
    created_unix: i64,
    /// Behaviour of every replica, except the slots in `overrides`.
    behaviour: Behaviour,
    /// Slots scripted on their own.
    overrides: BTreeMap<u32, Behaviour>,
    /// Per network (by name): its subnet and the host number of each replica, by slot - 1.
    addresses: Vec<(String, Subnet, Vec<u32>)>,
    /// Configs (by name) it mounts.
    configs: Vec<String>,
    /// Replicas killed: slot -> (when, exit code).
    killed: HashMap<u32, (Instant, i64)>,
    /// The node (index) each slot was scheduled on, by slot - 1; None: no node fits.
    placed: Vec<Option<usize>>,
    /// Replicas whose node went down before they stopped, by slot.
    lost: BTreeMap<u32, LostAt>,
}

/// What a replica is doing at some instant.
struct View {
    state: ReplicaState,
    exit_code: Option<i64>,
    error: Option<String>,
    /// When its state changes next by itself, if it does.
    next_change: Option<Instant>,
}

impl Service {
    fn behaviour(&self, slot: u32) -> &Behaviour {
        self.overrides.get(&slot).unwrap_or(&self.behaviour)
    }

    fn start_at(&self, slot: u32) -> Instant {
        self.created + self.behaviour(slot).latency
    }

    /// The node (index) the replica in `slot` runs on, if it was scheduled.
    fn node_of(&self, slot: u32) -> Option<usize> {
        if self.behaviour(slot).start == Start::Never {
            return None;
        }
        self.placed.get(slot as usize - 1).copied().flatten()
    }

    /// The replica in `slot` as the engine reports it at `now`: its own [`view`](Self::view), or,
    /// once its node went down, its state at that instant (the last report) — marked lost by
    /// [`on_node`] — and, once the node is back, failed with exit code 255 as its agent reports.
    fn reported(&self, slot: u32, now: Instant) -> View {
        if self.behaviour(slot).start != Start::Never && self.node_of(slot).is_none() {
            return View { state: ReplicaState::Pending, exit_code: None, error: None, next_change: None };
        }
        match self.lost.get(&slot) {
            None => self.view(slot, now),
            Some(LostAt { back: Some(back), .. }) if now >= *back => View {
                state: ReplicaState::Failed,
                exit_code: Some(255),
                error: Some("task: non-zero exit (255)".into()),
                next_change: None,
            },
            Some(LostAt { since, .. }) => View { next_change: None, ..self.view(slot, *since) },
        }
    }

    /// Whether the replica in `slot` will print nothing more.
    fn done(&self, slot: u32, now: Instant) -> bool {
        self.lost.contains_key(&slot) || self.view(slot, now).state.is_terminal()
    }

    /// The replica in `slot` at `now`, computed from the timestamps.
    fn view(&self, slot: u32, now: Instant) -> View {
        let b = self.behaviour(slot);
        let start_at = self.created + b.latency;
        let pending = |next_change| View { state: ReplicaState::Pending, exit_code: None, error: None, next_change };
        match &b.start {
            Start::Never => pending(None),
            Start::Rejected(_) | Start::CannotStart { .. } | Start::AfterLatency if now < start_at => {
                pending(Some(start_at))
            }
            Start::CannotStart { code, message } => View {
                state: ReplicaState::Failed,
                exit_code: Some(*code),
                error: Some(message.clone()),
                next_change: None,
            },
            Start::Rejected(message) => {
                View { state: ReplicaState::Rejected, exit_code: None, error: Some(message.clone()), next_change: None }
            }
            Start::AfterLatency => {
                let natural = match b.run {
                    Run::UntilRemoved => None,
                    Run::Exits { code, after } => Some((start_at + after, code)),
                };
                let end = match (self.killed.get(&slot).copied(), natural) {
                    (Some(k), Some(n)) => Some(if k.0 <= n.0 { k } else { n }),
                    (k, n) => k.or(n),
                };
                match end {
                    Some((at, code)) if now >= at => View {
                        state: if code == 0 { ReplicaState::Complete } else { ReplicaState::Failed },
                        exit_code: Some(code),
                        error: (code != 0).then(|| format!("task: non-zero exit ({code})")),
                        next_change: None,
                    },
                    end => View {
                        state: ReplicaState::Running,
                        exit_code: None,
                        error: None,
                        next_change: end.map(|(at, _)| at),
                    },
                }
            }
        }
    }

    /// Slots that start by themselves, by start time then slot: the order their logs appear in.
    fn log_order(&self) -> Vec<(Instant, u32)> {
        let mut order: Vec<(Instant, u32)> = (1..=self.spec.replicas)
            .filter(|slot| self.behaviour(*slot).start == Start::AfterLatency)
            .map(|slot| (self.start_at(slot), slot))
            .collect();
        order.sort_unstable();
        order
    }
}

impl State {
    fn new() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        State {
            latency: Duration::ZERO,
            call_delay: Duration::ZERO,
            rules: Rules::default(),
            missing_images: BTreeSet::new(),
            calls: Calls::default(),
            last_id: 0,
            origin: (Instant::now(), i64::try_from(wall).unwrap_or(i64::MAX)),
            networks: BTreeMap::new(),
            services: BTreeMap::new(),
            configs: BTreeMap::new(),
            ids: HashMap::new(),
            pool: SubnetPool::default(),
            plain: false,
            nodes: vec![Node::new(1)],
            stranded: Vec::new(),
        }
    }

    /// Where each of `spec`'s replicas goes: spread over the ready nodes its placement allows,
    /// slot by slot (None for every slot when no ready node fits: they stay pending, as the
    /// engine's "no suitable node").
    fn place(&self, spec: &ServiceSpec) -> Vec<Option<usize>> {
        let fits: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| n.ready && (!spec.placement.local_node || *i == 0))
            .filter(|(i, n)| spec.placement.constraints.iter().all(|c| n.allows(*i, c)))
            .map(|(i, _)| i)
            .collect();
        (0..spec.replicas as usize).map(|s| (!fits.is_empty()).then(|| fits[s % fits.len()])).collect()
    }

    /// The node named by `key` (hostname or id), by index.
    fn node_index(&self, key: &str) -> Result<usize> {
        self.nodes.iter().position(|n| n.hostname == key || n.id == key).ok_or_else(|| not_found("node", key))
    }

    fn new_id(&mut self, kind: ResourceKind, name: &str) -> String {
        self.last_id += 1;
        let prefix = match kind {
            ResourceKind::Network => "net",
            ResourceKind::Service => "svc",
            ResourceKind::Config => "cfg",
        };
        let id = format!("fake{prefix}{:017}", self.last_id);
        self.ids.insert(id.clone(), (kind, name.to_owned()));
        id
    }

    /// Unix seconds now: the wall clock at creation plus tokio time since.
    fn now_unix(&self) -> i64 {
        let elapsed = Instant::now().saturating_duration_since(self.origin.0).as_secs();
        self.origin.1.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// The name of the object of `kind` called or identified by `key`.
    fn resolve(&self, kind: ResourceKind, key: &str) -> Option<String> {
        let by_name = match kind {
            ResourceKind::Network => self.networks.contains_key(key),
            ResourceKind::Service => self.services.contains_key(key),
            ResourceKind::Config => self.configs.contains_key(key),
        };
        if by_name {
            return Some(key.to_owned());
        }
        match self.ids.get(key) {
            Some((k, name)) if *k == kind => Some(name.clone()),
            _ => None,
        }
    }

    fn create_network(&mut self, spec: &NetworkSpec) -> Result<String> {
        check_object("create network", &spec.name)?;
        if self.networks.contains_key(&spec.name) {
            return Err(Error::Conflict { kind: "network", name: spec.name.clone() });
        }
        let used: Vec<Subnet> = self.networks.values().map(|n| n.subnet).collect();
        let prefix = SubnetPool::prefix_for(spec.capacity, ENGINE_ADDRESSES);
        let subnet = self.pool.choose(prefix, &used).ok_or_else(|| self.pool.exhausted(&spec.name, prefix))?;
        let id = self.new_id(ResourceKind::Network, &spec.name);
        let network = Network {
            id: id.clone(),
            spec: spec.clone(),
            subnet,
            pool: HostPool::of(subnet),
            users: BTreeSet::new(),
            created_unix: self.now_unix(),
        };
        self.networks.insert(spec.name.clone(), network);
        Ok(id)
    }

    fn remove_network(&mut self, key: &str) -> Result<()> {
        let name = self.resolve(ResourceKind::Network, key).ok_or_else(|| not_found("network", key))?;
        let network = &self.networks[&name];
        if let Some(user) = network.users.first() {
            return Err(Error::engine(
                "remove network",
                &name,
                format!("network {name} is in use by service {user}: remove the service first"),
            ));
        }
        let network = self.networks.remove(&name).expect("resolved above");
        self.ids.remove(&network.id);
        Ok(())
    }

    fn create_service(&mut self, spec: &ServiceSpec) -> Result<String> {
        check_object("create service", &spec.name)?;
        if self.services.contains_key(&spec.name) {
            return Err(Error::Conflict { kind: "service", name: spec.name.clone() });
        }
        let mut networks = Vec::with_capacity(spec.networks.len());
        for key in &spec.networks {
            let name = self.resolve(ResourceKind::Network, key).ok_or_else(|| not_found("network", key))?;
            if !networks.contains(&name) {
                networks.push(name);
            }
        }
        let mut configs = Vec::with_capacity(spec.configs.len());
        for mount in &spec.configs {
            let name = self
                .resolve(ResourceKind::Config, &mount.config_name)
                .or_else(|| self.resolve(ResourceKind::Config, &mount.config_id))
                .ok_or_else(|| not_found("config", &mount.config_name))?;
            configs.push(name);
        }
        let replicas = spec.replicas as usize;
        for name in &networks {
            let available = self.networks[name].pool.available();
            if available < replicas {
                return Err(Error::engine(
                    "create service",
                    &spec.name,
                    format!("network {name} has {available} free addresses, {replicas} needed"),
                ));
            }
        }

        if self.plain && !spec.placement.constraints.is_empty() {
            return Err(Error::EngineUnsuitable {
                host: "fake".into(),
                backend: "docker",
                reason: format!("service {} has placement constraints, and a plain engine is a single node", spec.name),
                fix: "Remove the constraints, or run on a swarm (ATQ_ENGINE=swarm)".into(),
            });
        }
        if self.plain && self.missing_images.contains(&spec.image) {
            // A plain engine refuses to create the first container: nothing is made.
            return Err(Error::ReplicaFailed {
                service: spec.name.clone(),
                replica: format!("{}.1", spec.name),
                state: "rejected".into(),
                message: format!("No such image: {}", spec.image),
            });
        }
        let (mut behaviour, mut overrides) = self.rules.resolve(spec, self.latency);
        if self.missing_images.contains(&spec.image) {
            let rejected = Start::Rejected(format!("No such image: {}", spec.image));
            behaviour.start = rejected.clone();
            for (_, b) in &mut overrides {
                b.start = rejected.clone();
            }
        }
        let addresses = networks
            .iter()
            .map(|name| {
                let network = self.networks.get_mut(name).expect("resolved above");
                network.users.insert(spec.name.clone());
                let hosts = network.pool.take(replicas).expect("checked above");
                (name.clone(), network.subnet, hosts)
            })
            .collect();
        for name in &configs {
            self.configs.get_mut(name).expect("resolved above").users.insert(spec.name.clone());
        }
        let placed = self.place(spec);
        let id = self.new_id(ResourceKind::Service, &spec.name);
        let service = Service {
            placed,
            lost: BTreeMap::new(),
            id: id.clone(),
            spec: spec.clone(),
            created: Instant::now(),
            created_unix: self.now_unix(),
            behaviour,
            overrides: overrides.into_iter().collect(),
            addresses,
            configs,
            killed: HashMap::new(),
        };
        self.services.insert(spec.name.clone(), service);
        Ok(id)
    }

    fn remove_service(&mut self, key: &str) -> Result<()> {
        let name = self.resolve(ResourceKind::Service, key).ok_or_else(|| not_found("service", key))?;
        let service = self.services.remove(&name).expect("resolved above");
        self.ids.remove(&service.id);
        // The engine deletes the service at once; a replica on a node that is down keeps its
        // container there until the node is back.
        for (slot, lost) in &service.lost {
            let (Some(node), None) = (service.node_of(*slot), lost.back) else { continue };
            if service.view(*slot, lost.since).state != ReplicaState::Pending {
                self.stranded.push((node, container_id(&service.id, *slot)));
            }
        }
        for (network, _, hosts) in &service.addresses {
            if let Some(network) = self.networks.get_mut(network) {
                network.users.remove(&name);
                network.pool.release(hosts);
            }
        }
        for config in &service.configs {
            if let Some(config) = self.configs.get_mut(config) {
                config.users.remove(&name);
            }
        }
        Ok(())
    }

    fn replicas(&self, key: &str, network: &str) -> Result<Vec<Replica>> {
        let name = self.resolve(ResourceKind::Service, key).ok_or_else(|| not_found("service", key))?;
        let service = &self.services[&name];
        let network = self.resolve(ResourceKind::Network, network).unwrap_or_else(|| network.to_owned());
        let addresses = service.addresses.iter().find(|(n, _, _)| *n == network);
        let now = Instant::now();
        let replicas = (1..=service.spec.replicas)
            .map(|slot| {
                let view = service.reported(slot, now);
                let address = addresses.map(|(_, subnet, hosts)| IpAddr::V4(subnet.host(hosts[slot as usize - 1])));
                let node = service.node_of(slot).map(|i| &self.nodes[i]);
                let replica = Replica {
                    id: format!("{}t{slot}", service.id),
                    name: format!("{name}.{slot}"),
                    slot,
                    state: view.state,
                    address,
                    exit_code: view.exit_code,
                    error: view.error,
                    node_id: node.map(|n| n.id.clone()),
                    node: None,
                    container_id: (view.state != ReplicaState::Pending && view.state != ReplicaState::Rejected)
                        .then(|| container_id(&service.id, slot)),
                };
                on_node(replica, node.map(Node::status).as_ref())
            })
            .collect();
        Ok(replicas)
    }

    /// A tar of `path` in the container `container_id`, as the engine's archive endpoint builds it.
    fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<Vec<u8>> {
        let found = self.services.values().find_map(|svc| {
            let slot: u32 = container_id.strip_prefix(svc.id.as_str())?.strip_prefix('c')?.parse().ok()?;
            (1..=svc.spec.replicas).contains(&slot).then_some((svc, slot))
        });
        let Some((service, slot)) = found else {
            return Err(not_found("container", container_id));
        };
        let behaviour = service.behaviour(slot);
        if let Some(archive) = &behaviour.archive {
            return Ok(archive.to_vec());
        }
        let path = path.trim_end_matches('/');
        let root = path.rsplit('/').next().unwrap_or_default();
        let files: Vec<(&str, &[u8])> = behaviour
            .artifacts
            .iter()
            .filter_map(|(p, data)| {
                let rel = if p == path { "" } else { p.strip_prefix(path)?.strip_prefix('/')? };
                Some((rel, data.as_slice()))
            })
            .collect();
        if files.is_empty() || root.is_empty() {
            return Err(not_found("path", path));
        }
        let io = |e: std::io::Error| Error::engine("copy files from", container_id, e);
        let mut builder = tar::Builder::new(Vec::new());
        let single_file = files.len() == 1 && files[0].0.is_empty();
        if !single_file {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, format!("{root}/"), std::io::empty()).map_err(io)?;
        }
        for (rel, data) in files {
            let name = if rel.is_empty() { root.to_owned() } else { format!("{root}/{rel}") };
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, data).map_err(io)?;
        }
        builder.into_inner().map_err(io)
    }

    fn create_config(&mut self, spec: &ConfigSpec) -> Result<String> {
        check_config("create config", &spec.name)?;
        if self.configs.contains_key(&spec.name) {
            return Err(Error::Conflict { kind: "config", name: spec.name.clone() });
        }
        // A per-replica config is one config on swarm, holding every replica's content.
        let size = spec.data.len() + spec.per_replica.iter().map(Vec::len).sum::<usize>();
        if size == 0 || size > MAX_CONFIG_BYTES {
            return Err(Error::engine(
                "create config",
                &spec.name,
                format!("config data is {size} bytes, the engine accepts 1 to {MAX_CONFIG_BYTES}"),
            ));
        }
        let id = self.new_id(ResourceKind::Config, &spec.name);
        let config =
            Config { id: id.clone(), spec: spec.clone(), users: BTreeSet::new(), created_unix: self.now_unix() };
        self.configs.insert(spec.name.clone(), config);
        Ok(id)
    }

    fn read_config(&self, key: &str) -> Result<Vec<u8>> {
        let name = self.resolve(ResourceKind::Config, key).ok_or_else(|| not_found("config", key))?;
        let spec = &self.configs[&name].spec;
        if !spec.per_replica.is_empty() {
            return Err(Error::engine(
                "read config",
                key,
                "it is a per-replica config: only ordinary configs can be read back",
            ));
        }
        Ok(spec.data.clone())
    }

    fn remove_config(&mut self, key: &str) -> Result<()> {
        let name = self.resolve(ResourceKind::Config, key).ok_or_else(|| not_found("config", key))?;
        if let Some(user) = self.configs[&name].users.first() {
            return Err(Error::engine(
                "remove config",
                &name,
                format!("config {name} is in use by service {user}: remove the service first"),
            ));
        }
        let config = self.configs.remove(&name).expect("resolved above");
        self.ids.remove(&config.id);
        Ok(())
    }

    fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Vec<Resource> {
        let resource = |id: &String, name: &String, labels: &BTreeMap<String, String>, created_unix: i64| Resource {
            kind,
            id: id.clone(),
            name: name.clone(),
            labels: labels.clone(),
            created_unix: Some(created_unix),
        };
        match kind {
            ResourceKind::Network => self
                .networks
                .iter()
                .filter(|(_, n)| selector.matches(&n.spec.labels))
                .map(|(name, n)| resource(&n.id, name, &n.spec.labels, n.created_unix))
                .collect(),
            ResourceKind::Service => self
                .services
                .iter()
                .filter(|(_, s)| selector.matches(&s.spec.labels))
                .map(|(name, s)| resource(&s.id, name, &s.spec.labels, s.created_unix))
                .collect(),
            ResourceKind::Config => self
                .configs
                .iter()
                .filter(|(_, c)| selector.matches(&c.spec.labels))
                .map(|(name, c)| resource(&c.id, name, &c.spec.labels, c.created_unix))
                .collect(),
        }
    }
}

/// The fake id of the container of `slot` of the service `service_id`.
fn container_id(service_id: &str, slot: u32) -> String {
    format!("{service_id}c{slot}")
}

/// `Error::NotFound` for `kind` `name`.
fn not_found(kind: &'static str, name: &str) -> Error {
    Error::NotFound { kind, name: name.to_owned() }
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("FakeCluster")
            .field("networks", &state.networks.keys().collect::<Vec<_>>())
            .field("services", &state.services.keys().collect::<Vec<_>>())
            .field("configs", &state.configs.keys().collect::<Vec<_>>())
            .field("latency", &state.latency)
            .finish_non_exhaustive()
    }
}

impl FakeCluster {
    /// An empty fake engine: a swarm manager with one node, zero start latency, and the
    /// default scripts (see the type's docs).
    #[must_use]
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        FakeCluster { shared: Arc::new(Shared { state: Mutex::new(State::new()), changed }) }
    }

    /// A fake that follows a plain Docker engine's rules where they differ from a swarm's (as
    /// [`DockerCluster`](crate::DockerCluster) does): a missing image fails
    /// [`create_service`](Cluster::create_service) at once with
    /// [`Error::ReplicaFailed`] and nothing is created (a swarm accepts the service and rejects
    /// its replicas); placement constraints are refused; networks come from the plain backend's
    /// default pool (`10.216.0.0/13`).
    #[must_use]
    pub fn plain() -> Self {
        let fake = Self::new();
        {
            let mut state = fake.state();
            state.plain = true;
            state.pool = crate::cluster::subnet::DEFAULT_DOCKER_POOL.parse().expect("a CIDR block");
        }
        fake
    }

    /// Carves network subnets from `pool` instead of the default `10.208.0.0/13`.
    #[must_use]
    pub fn with_subnet_pool(self, pool: SubnetPool) -> Self {
        self.state().pool = pool;
        self
    }

    /// A swarm of `n` nodes (at least 1): `fake-node-1` (hostname `node1`, the manager this
    /// client talks to) to `fake-node-N` (`nodeN`, workers). Replicas of services created from
    /// now on are spread over the ready nodes their placement allows, slot by slot
    /// (`node.hostname`, `node.id` and `node.role` constraints are honoured; a
    /// [`local_node`](crate::cluster::Placement::local_node) service goes to `node1`); when no
    /// ready node fits, they stay pending.
    #[must_use]
    pub fn with_nodes(self, n: usize) -> Self {
        self.state().nodes = (1..=n.max(1)).map(Node::new).collect();
        self
    }

    /// The node (hostname `nodeN` or id `fake-node-N`) loses power, as the engine sees it once it
    /// marks the node down: replicas on it that had not stopped keep their last report (running,
    /// or pending) with desired state shutdown, which atq reports as
    /// [`Lost`](ReplicaState::Lost) (see [`on_node`]); no new replica
    /// is scheduled there; removing their service succeeds at once, leaving their containers
    /// there ([`stranded_containers`](Self::stranded_containers)) until the node is back.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such node.
    pub fn node_down(&self, node: &str) -> Result<()> {
        {
            let mut state = self.state();
            let index = state.node_index(node)?;
            state.nodes[index].ready = false;
            let now = Instant::now();
            for service in state.services.values_mut() {
                let lost: Vec<u32> = (1..=service.spec.replicas)
                    .filter(|slot| service.node_of(*slot) == Some(index) && !service.lost.contains_key(slot))
                    .filter(|slot| !service.view(*slot, now).state.is_terminal())
                    .collect();
                for slot in lost {
                    service.lost.insert(slot, LostAt { since: now, back: None });
                }
            }
        }
        self.shared.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The node is back: ready again; its agent reports the replicas it lost as failed (exit
    /// code 255, their containers were killed with it), and removes the containers of services
    /// removed meanwhile.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such node.
    pub fn node_up(&self, node: &str) -> Result<()> {
        {
            let mut state = self.state();
            let index = state.node_index(node)?;
            state.nodes[index].ready = true;
            let now = Instant::now();
            for service in state.services.values_mut() {
                for (slot, lost) in &mut service.lost {
                    if lost.back.is_none() && service.placed.get(*slot as usize - 1).copied().flatten() == Some(index) {
                        lost.back = Some(now);
                    }
                }
            }
            state.stranded.retain(|(n, _)| *n != index);
        }
        self.shared.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Containers of removed services still on `node` (hostname or id): those that ran there
    /// when it went down, until it is back. Empty for an unknown node.
    #[must_use]
    pub fn stranded_containers(&self, node: &str) -> Vec<String> {
        let state = self.state();
        let Ok(index) = state.node_index(node) else { return Vec::new() };
        state.stranded.iter().filter(|(n, _)| *n == index).map(|(_, c)| c.clone()).collect()
    }

    /// Sets how long new replicas stay pending before they run (zero by default).
    #[must_use]
    pub fn with_latency(self, latency: Duration) -> Self {
        self.set_latency(latency);
        self
    }

    /// Sets how long replicas of services created from now on stay pending before they run.
    pub fn set_latency(&self, latency: Duration) -> &Self {
        self.state().latency = latency;
        self
    }

    /// Makes every [`Cluster`] call wait `delay` (on tokio's clock) before it takes effect
    /// (zero by default). Gives each call an await point, so a test can drop or time out the
    /// caller in the middle of a call; a call dropped while it waits has no effect.
    #[must_use]
    pub fn with_call_delay(self, delay: Duration) -> Self {
        self.state().call_delay = delay;
        self
    }

    /// Scripts the replicas of the services `matcher` selects, created from now on.
    ///
    /// Later rules take precedence, part by part: a rule that only says how replicas start
    /// (like [`never_starts`](Self::never_starts)) keeps what an earlier rule said about how
    /// they run and what they print.
    pub fn script(&self, matcher: Matcher, script: Script) -> &Self {
        self.state().rules.push(matcher, script);
        self
    }

    /// The master (services labelled `io.atq.role=master`) exits with `code` right after
    /// starting, having printed `logs` on stdout.
    pub fn master_exits<I, S>(&self, code: i64, logs: I) -> &Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.script(Matcher::role(Role::Master), Script::exits(code).stdout(logs))
    }

    /// The probe (services labelled `io.atq.role=probe`) exits with `code` right after
    /// starting, having printed `output` (split into lines) on stdout.
    pub fn probe_output(&self, code: i64, output: &str) -> &Self {
        self.script(Matcher::role(Role::Probe), Script::exits(code).stdout(output.lines()))
    }

    /// The image does not exist: every replica of a service created from now on with exactly
    /// this image reference is rejected with `No such image: <image>`, whatever its script.
    pub fn missing_image(&self, image: impl Into<String>) -> &Self {
        self.state().missing_images.insert(image.into());
        self
    }

    /// Replicas of the services (or slot) `matcher` selects stay pending for ever.
    pub fn never_starts(&self, matcher: Matcher) -> &Self {
        self.script(matcher, Script::never_starts())
    }

    /// The `nth` call of `kind` from now (1: the next one) fails with an
    /// [`Error::Engine`] saying "injected fault", without any effect.
    pub fn fail_call(&self, kind: CallKind, nth: u64) -> &Self {
        self.state().calls.arm(Some(kind), nth, FaultPoint::Before);
        self
    }

    /// The `nth` call of any kind from now (1: the next one) fails with an
    /// [`Error::Engine`] saying "injected fault", without any effect. With
    /// [`call_log`](Self::call_log) of a successful run, a test can fail each call in turn.
    pub fn fail_any_call(&self, nth: u64) -> &Self {
        self.state().calls.arm(None, nth, FaultPoint::Before);
        self
    }

    /// The `nth` call of `kind` from now takes effect, then fails with an [`Error::Engine`]
    /// saying "injected fault" — as when the engine's answer is lost. For testing cleanup of
    /// objects the caller does not know it created.
    pub fn fail_call_after(&self, kind: CallKind, nth: u64) -> &Self {
        self.state().calls.arm(Some(kind), nth, FaultPoint::After);
        self
    }

    /// Kills the running replica in `slot` (from 1) of `service`: it becomes
    /// [`Failed`](ReplicaState::Failed) with `exit_code` (or [`Complete`](ReplicaState::Complete)
    /// for 0), and its error says `task: non-zero exit (<code>)`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such service or slot; [`Error::Engine`] when the
    /// replica is not running.
    pub fn kill_replica(&self, service: &str, slot: u32, exit_code: i64) -> Result<()> {
        {
            let mut state = self.state();
            let name = state.resolve(ResourceKind::Service, service).ok_or_else(|| not_found("service", service))?;
            let svc = state.services.get_mut(&name).expect("resolved above");
            if slot == 0 || slot > svc.spec.replicas {
                return Err(not_found("replica", &format!("{name}.{slot}")));
            }
            let now = Instant::now();
            let current = svc.reported(slot, now).state;
            if current != ReplicaState::Running {
                return Err(Error::engine("kill replica", format!("{name}.{slot}"), format!("it is {current}")));
            }
            svc.killed.insert(slot, (now, exit_code));
        }
        self.shared.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// How many calls of `kind` the engine received (failed ones included).
    #[must_use]
    pub fn calls(&self, kind: CallKind) -> u64 {
        self.state().calls.count(kind)
    }

    /// How many calls of every kind the engine received (failed ones included).
    #[must_use]
    pub fn total_calls(&self) -> u64 {
        self.state().calls.total()
    }

    /// Every call the engine received since it was created (or the log was cleared), in order.
    #[must_use]
    pub fn call_log(&self) -> Vec<Call> {
        self.state().calls.log()
    }

    /// Empties the call log (the counters keep counting).
    pub fn clear_call_log(&self) {
        self.state().calls.clear_log();
    }

    /// Whether the engine holds no network, service or config.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        let state = self.state();
        state.networks.is_empty() && state.services.is_empty() && state.configs.is_empty()
    }

    /// Names of the services, sorted.
    #[must_use]
    pub fn services(&self) -> Vec<String> {
        self.state().services.keys().cloned().collect()
    }

    /// The spec a service was created with.
    #[must_use]
    pub fn service_spec(&self, name: &str) -> Option<ServiceSpec> {
        self.state().services.get(name).map(|s| s.spec.clone())
    }

    /// Names of the networks, sorted.
    #[must_use]
    pub fn networks(&self) -> Vec<String> {
        self.state().networks.keys().cloned().collect()
    }

    /// The spec a network was created with.
    #[must_use]
    pub fn network_spec(&self, name: &str) -> Option<NetworkSpec> {
        self.state().networks.get(name).map(|n| n.spec.clone())
    }

    /// The id [`create_network`](Cluster::create_network) returned for a network.
    #[must_use]
    pub fn network_id(&self, name: &str) -> Option<String> {
        self.state().networks.get(name).map(|n| n.id.clone())
    }

    /// A network's subnet (see the type's docs for how it is chosen).
    #[must_use]
    pub fn network_subnet(&self, name: &str) -> Option<Subnet> {
        self.state().networks.get(name).map(|n| n.subnet)
    }

    /// Names of the configs, sorted.
    #[must_use]
    pub fn configs(&self) -> Vec<String> {
        self.state().configs.keys().cloned().collect()
    }

    /// A config's content.
    #[must_use]
    pub fn config_data(&self, name: &str) -> Option<Vec<u8>> {
        self.state().configs.get(name).map(|c| c.spec.data.clone())
    }

    /// The spec a config was created with.
    #[must_use]
    pub fn config_spec(&self, name: &str) -> Option<ConfigSpec> {
        self.state().configs.get(name).map(|c| c.spec.clone())
    }

    /// The environment the replica in `slot` (from 1) of a service gets: the spec's `env`, then
    /// each of its `slot_env` variables set to `slot`. None when there is no such service.
    #[must_use]
    pub fn replica_env(&self, service: &str, slot: u32) -> Option<Vec<(String, String)>> {
        let state = self.state();
        let spec = &state.services.get(service)?.spec;
        let mut env = spec.env.clone();
        env.extend(spec.slot_env.iter().map(|k| (k.clone(), slot.to_string())));
        Some(env)
    }

    /// What the replica in `slot` (from 1) of a service reads at `target`, a config mount's path
    /// (for a per-replica config, its own content, see [`ConfigSpec::content_for`]). None when the
    /// service mounts nothing there.
    #[must_use]
    pub fn replica_file(&self, service: &str, slot: u32, target: &str) -> Option<Vec<u8>> {
        let state = self.state();
        let mount = state.services.get(service)?.spec.configs.iter().find(|c| c.target == target)?.clone();
        let name = state.resolve(ResourceKind::Config, &mount.config_id)?;
        Some(state.configs.get(&name)?.spec.content_for(slot))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one trait call: waits the call delay, then counts and logs it, injects a fault if
    /// one is armed, and applies `effect`.
    async fn call<T>(&self, kind: CallKind, target: &str, effect: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let delay = self.state().call_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let result = {
            let mut state = self.state();
            match state.calls.record(kind, target) {
                Some(fault) if fault.point == FaultPoint::Before => return Err(fault.into_error()),
                Some(fault) => effect(&mut state).and(Err(fault.into_error())),
                None => effect(&mut state),
            }
        };
        if matches!(kind, CallKind::RemoveService) {
            self.shared.changed.send_modify(|n| *n += 1);
        }
        result
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    async fn info(&self) -> Result<EngineInfo> {
        self.call(CallKind::Info, "", |s| {
            let rules =
                if s.plain { "in-memory engine, one node, plain Docker rules" } else { "in-memory engine, one node" };
            Ok(EngineInfo {
                backend: Backend::Fake,
                version: "24.0.0-fake".into(),
                api_version: "1.43".into(),
                local_node: Some(NODE_ID.into()),
                nodes_ready: u32::try_from(s.nodes.iter().filter(|n| n.ready).count()).unwrap_or(u32::MAX),
                nodes_total: u32::try_from(s.nodes.len()).unwrap_or(u32::MAX),
                max_config_bytes: MAX_CONFIG_BYTES,
                details: vec![("fake".into(), rules.into())],
            })
        })
        .await
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        self.call(CallKind::CreateNetwork, &spec.name, |s| s.create_network(spec)).await
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        self.call(CallKind::RemoveNetwork, name, |s| s.remove_network(name)).await
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String> {
        self.call(CallKind::CreateService, &spec.name, |s| s.create_service(spec)).await
    }

    async fn remove_service(&self, name: &str) -> Result<()> {
        self.call(CallKind::RemoveService, name, |s| s.remove_service(name)).await
    }

    async fn replicas(&self, service: &str, network: &str) -> Result<Vec<Replica>> {
        self.call(CallKind::Replicas, service, |s| s.replicas(service, network)).await
    }

    async fn logs(&self, service: &str, options: &LogOptions) -> Result<LogStream> {
        let follow = options.follow;
        let mut follower = self
            .call(CallKind::Logs, service, |s| {
                let name = s.resolve(ResourceKind::Service, service).ok_or_else(|| not_found("service", service))?;
                let svc = &s.services[&name];
                Ok(Follower::new(self.clone(), name, svc.id.clone(), svc.log_order()))
            })
            .await?;
        follower.step();
        if let Some(n) = options.tail {
            follower.keep_last(n);
        }
        if !follow {
            return Ok(Box::pin(futures_util::stream::iter(follower.buffer.into_iter().map(Ok))));
        }
        let stream =
            futures_util::stream::unfold(
                follower,
                |mut f| async move { f.next_line().await.map(|line| (Ok(line), f)) },
            );
        Ok(Box::pin(stream))
    }

    async fn create_config(&self, spec: &ConfigSpec) -> Result<String> {
        self.call(CallKind::CreateConfig, &spec.name, |s| s.create_config(spec)).await
    }

    async fn remove_config(&self, name: &str) -> Result<()> {
        self.call(CallKind::RemoveConfig, name, |s| s.remove_config(name)).await
    }

    async fn read_config(&self, name: &str) -> Result<Vec<u8>> {
        self.call(CallKind::ReadConfig, name, |s| s.read_config(name)).await
    }

    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>> {
        self.call(CallKind::ListResources, kind.as_str(), |s| Ok(s.list_resources(kind, selector))).await
    }

    async fn copy_from_replica(&self, container_id: &str, path: &str) -> Result<ChunkStream> {
        let archive =
            self.call(CallKind::CopyFromReplica, container_id, |s| s.copy_from_replica(container_id, path)).await?;
        // In chunks, as an engine sends them.
        let chunks: Vec<Result<Vec<u8>>> = archive.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        Ok(Box::pin(futures_util::stream::iter(chunks)))
    }
}

/// Reads a service's logs as its replicas start; with `follow`, until they are all done.
struct Follower {
    fake: FakeCluster,
    /// The service's name.
    name: String,
    /// Its id, so that a new service of the same name is not mistaken for it.
    id: String,
    /// Slots that print, in the order their lines appear.
    order: Vec<(Instant, u32)>,
    /// How many of `order` have printed.
    printed: usize,
    /// Lines read but not yet yielded.
    buffer: VecDeque<LogLine>,
    /// When the replicas next change by themselves; None: only an event can change them.
    wake_at: Option<Instant>,
    /// Whether the service is gone or all its replicas are done.
    done: bool,
    /// Wakes the follower when a replica is killed or a service removed.
    changed: watch::Receiver<u64>,
}

impl Follower {
    fn new(fake: FakeCluster, name: String, id: String, order: Vec<(Instant, u32)>) -> Self {
        let changed = fake.shared.changed.subscribe();
        Follower { fake, name, id, order, printed: 0, buffer: VecDeque::new(), wake_at: None, done: false, changed }
    }

    /// Reads what is there now: new lines into the buffer, and whether anything is left to wait for.
    fn step(&mut self) {
        self.changed.borrow_and_update();
        let fake = self.fake.clone();
        let state = fake.state();
        let service = state.services.get(&self.name).filter(|s| s.id == self.id);
        let Some(service) = service else {
            self.done = true;
            return;
        };
        let now = Instant::now();
        while let Some(&(at, slot)) = self.order.get(self.printed) {
            if at > now {
                break;
            }
            self.buffer.extend(
                service.behaviour(slot).logs.iter().cloned().map(|line| LogLine { replica: Some(slot), ..line }),
            );
            self.printed += 1;
        }
        let mut all_done = true;
        let mut wake_at = self.order.get(self.printed).map(|(at, _)| *at);
        for slot in 1..=service.spec.replicas {
            all_done &= service.done(slot, now);
            if let Some(next) = service.reported(slot, now).next_change {
                wake_at = Some(wake_at.map_or(next, |w| w.min(next)));
            }
        }
        self.done = all_done;
        self.wake_at = wake_at;
    }

    /// Keeps only the last `n` buffered lines of each replica (the engine's `tail`).
    fn keep_last(&mut self, n: usize) {
        let mut seen: HashMap<Option<u32>, usize> = HashMap::new();
        let mut kept: Vec<LogLine> = Vec::with_capacity(self.buffer.len());
        for line in self.buffer.drain(..).rev() {
            let count = seen.entry(line.replica).or_default();
            if *count < n {
                *count += 1;
                kept.push(line);
            }
        }
        kept.reverse();
        self.buffer = kept.into();
    }

    /// The next line, waiting for one if needed; None once the logs are over.
    async fn next_line(&mut self) -> Option<LogLine> {
        loop {
            if let Some(line) = self.buffer.pop_front() {
                return Some(line);
            }
            if self.done {
                return None;
            }
            self.step();
            if !self.buffer.is_empty() || self.done {
                continue;
            }
            match self.wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        _ = self.changed.changed() => {}
                    }
                }
                None => {
                    let _ = self.changed.changed().await;
                }
            }
        }
    }
}
