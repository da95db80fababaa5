//! Helpers for atq's integration tests against a real Docker engine, on both backends.
//!
//! The engine must be reachable (`DOCKER_HOST` or the local socket) and a swarm manager (the
//! plain backend runs on it too, chosen explicitly); `scripts/prepare-engine.sh` makes it so.
//! The test images are built on first use by `tests/images/build.sh` (idempotent). When the
//! engine is unreachable, tests **fail** with the reason: they never pass silently.
//!
//! A test that makes sense on both backends is written once, as `async fn name(backend:
//! Backend)`, and [`on_both!`] stamps a test per backend from it: `name::swarm` and
//! `name::docker` (`cargo test -p atq-tests -- ::docker` runs the plain backend's).
//!
//! Every test names its objects with [`unique`] and labels them with its [`Scope`]'s label;
//! the scope removes everything carrying that label when it is dropped, so a failing test
//! cleans up too, and tests can run in parallel.
//!
//! [`multinode`] reaches the multi-node swarm of `tests/multinode/up.sh` (for
//! `tests/tests/multinode.rs`), whose tests skip when it is not up.

pub mod multinode;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::sync::Arc;

pub use atq_core::cluster::Backend;
use atq_core::cluster::{Cluster, LabelSelector, LogLine, Replica, ResourceKind};
use atq_core::{Director, DockerCluster, Event, SwarmCluster};
use futures_util::StreamExt;

/// Stamps one test per backend from `async fn $name(backend: Backend)`: `$name::swarm` and
/// `$name::docker`. `on_both!(name, multi_thread)` runs them on a two-thread runtime.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn swarm() {
                super::$name($crate::Backend::Swarm).await
            }
            #[tokio::test]
            async fn docker() {
                super::$name($crate::Backend::Docker).await
            }
        }
    };
    ($name:ident, multi_thread) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn swarm() {
                super::$name($crate::Backend::Swarm).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn docker() {
                super::$name($crate::Backend::Docker).await
            }
        }
    };
}

/// The busybox test image (`tests/images/build.sh`).
pub const BUSYBOX: &str = "atq-test/busybox:latest";

/// Label every test object carries; its value is the test's scope id.
pub const TEST_LABEL: &str = "io.atq.test";

/// A shell command that runs until stopped and exits promptly on SIGTERM (PID 1 ignores
/// SIGTERM unless it traps it, and the engine would wait its 10 s grace period).
pub const RUN_UNTIL_STOPPED: &str = "trap 'exit 0' TERM; while :; do sleep 0.2; done";

/// The swarm backend on the engine, failing the test with the reason and the fix when it cannot.
pub async fn swarm() -> SwarmCluster {
    ensure_images();
    match SwarmCluster::connect().await {
        Ok(cluster) => cluster,
        Err(e) => panic!(
            "the integration tests need a Docker engine in swarm mode: {e}\n\
             Run `scripts/prepare-engine.sh` (it starts dockerd, inits the swarm and builds the test images)."
        ),
    }
}

/// The plain backend on the engine, failing the test with the reason when it cannot.
pub async fn plain() -> DockerCluster {
    ensure_images();
    match DockerCluster::connect().await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the integration tests need a Docker engine: {e}"),
    }
}

/// `backend` on the engine (see [`swarm`] and [`plain`]).
pub async fn cluster(backend: Backend) -> Arc<dyn Cluster> {
    match backend {
        Backend::Swarm => Arc::new(swarm().await),
        Backend::Docker => Arc::new(plain().await),
        Backend::Fake => panic!("the integration tests run on a real engine"),
    }
}

/// Builds the test images once per test process.
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/images/build.sh");
        let out = Command::new("sh").arg(script).output().expect("run tests/images/build.sh");
        assert!(
            out.status.success(),
            "tests/images/build.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A name no other test (or test run) uses: `atqt-<what>-<pid>-<n>`.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("atqt-{what}-{}-{n}-{:04x}", std::process::id(), nanos & 0xffff)
}

/// One test's objects: labels them, and removes all of them when dropped.
pub struct Scope {
    /// The cluster the objects live on.
    pub cluster: Arc<dyn Cluster>,
    /// Which backend it is.
    pub backend: Backend,
    /// The value of the scope's label ([`TEST_LABEL`], or `io.atq.task`) on its objects.
    pub id: String,
    /// The label key that marks this scope's objects.
    pub key: &'static str,
}

impl Scope {
    /// A new scope named after the test.
    pub async fn new(backend: Backend, test: &str) -> Scope {
        Scope { cluster: cluster(backend).await, backend, id: unique(test), key: TEST_LABEL }
    }

    /// The scope of an atq task: every object whose `io.atq.task` label is `task`.
    pub async fn for_task(backend: Backend, task: &str) -> Scope {
        Scope { cluster: cluster(backend).await, backend, id: task.to_string(), key: atq_core::labels::TASK }
    }

    /// A director on this scope's cluster.
    pub fn director(&self) -> Director {
        Director::from_arc(self.cluster.clone())
    }

    /// The scope of a data bundle: its configs (labelled `io.atq.bundle=<id>`). Declare it
    /// before the scopes of the tasks that mount it, so they are dropped (and their services
    /// removed, releasing the configs) first.
    pub async fn for_bundle(backend: Backend, id: &str) -> Scope {
        Scope { cluster: cluster(backend).await, backend, id: id.to_string(), key: atq_core::labels::BUNDLE }
    }

    /// The labels every object of this scope carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [(self.key.to_string(), self.id.clone())].into()
    }

    /// Selects this scope's objects.
    pub fn selector(&self) -> LabelSelector {
        LabelSelector::new().eq(self.key, self.id.clone())
    }

    /// Removes every service, then every network and config, of this scope.
    pub async fn cleanup(&self) -> Result<(), atq_core::Error> {
        cleanup(&self.cluster, &self.selector()).await
    }

    /// Names of this scope's objects of `kind` that the engine still has.
    pub async fn leftovers(&self, kind: ResourceKind) -> Vec<String> {
        let found = self.cluster.list_resources(kind, &self.selector()).await.expect("list resources");
        found.into_iter().map(|r| r.name).collect()
    }

    /// Containers still carrying this scope's label (`docker ps -a`).
    pub fn leftover_containers(&self) -> Vec<String> {
        containers_labelled(self.key, &self.id)
    }

    /// Asserts that the engine holds no service, network, config, container or volume of this
    /// scope (looking through the backend, and past it with the docker CLI).
    pub async fn assert_nothing_left(&self) {
        for kind in [ResourceKind::Service, ResourceKind::Network, ResourceKind::Config] {
            let left = self.leftovers(kind).await;
            assert!(left.is_empty(), "{kind:?} of {}={} left: {left:?}", self.key, self.id);
        }
        let left = self.leftover_containers();
        assert!(left.is_empty(), "containers of {}={} left: {left:?}", self.key, self.id);
        let filter = format!("label={}={}", self.key, self.id);
        let networks = docker(&["network", "ls", "-q", "--filter", &filter]);
        assert!(networks.trim().is_empty(), "networks of {}={} left: {networks}", self.key, self.id);
        let volumes = docker(&["volume", "ls", "-q", "--filter", &filter]);
        assert!(volumes.trim().is_empty(), "volumes of {}={} left: {volumes}", self.key, self.id);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        let selector = self.selector();
        // Drop runs inside the test's runtime, which cannot be blocked on: clean up on a
        // thread with a runtime of its own.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(cleanup(&cluster, &selector))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("test cleanup failed: {e}");
        }
    }
}

/// Removes what `selector` matches: services first (they hold the networks and configs).
async fn cleanup(cluster: &Arc<dyn Cluster>, selector: &LabelSelector) -> Result<(), atq_core::Error> {
    let gone = |r: Result<(), atq_core::Error>| match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    };
    for s in cluster.list_resources(ResourceKind::Service, selector).await? {
        gone(cluster.remove_service(&s.id).await)?;
    }
    for n in cluster.list_resources(ResourceKind::Network, selector).await? {
        gone(cluster.remove_network(&n.name).await)?;
    }
    for c in cluster.list_resources(ResourceKind::Config, selector).await? {
        gone(cluster.remove_config(&c.id).await)?;
    }
    Ok(())
}

/// Polls the service's replicas every 100 ms until `done` holds for them, and returns them;
/// panics with the last view after `timeout`.
pub async fn wait_replicas(
    cluster: &dyn Cluster,
    service: &str,
    network: &str,
    timeout: Duration,
    done: impl Fn(&[Replica]) -> bool,
) -> Vec<Replica> {
    let start = Instant::now();
    loop {
        let replicas = cluster.replicas(service, network).await.expect("list replicas");
        if done(&replicas) {
            return replicas;
        }
        assert!(start.elapsed() < timeout, "after {timeout:?}, replicas of {service}: {replicas:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether there are `n` replicas, all running with an address.
pub fn all_running(n: usize) -> impl Fn(&[Replica]) -> bool {
    move |r: &[Replica]| {
        r.len() == n && r.iter().all(|r| r.state == atq_core::cluster::ReplicaState::Running && r.address.is_some())
    }
}

/// Whether there are `n` replicas and all are in a final state.
pub fn all_terminal(n: usize) -> impl Fn(&[Replica]) -> bool {
    move |r: &[Replica]| r.len() == n && r.iter().all(|r| r.state.is_terminal())
}

/// The whole log of a service, read until its end.
pub async fn logs(cluster: &dyn Cluster, service: &str) -> Vec<LogLine> {
    let stream = cluster.logs(service, &atq_core::cluster::LogOptions::all()).await.expect("read logs");
    stream.map(|l| l.expect("log line")).collect().await
}

/// Reads logs until `done` holds for them (the engine's log broker can lag behind a task's
/// exit by a moment); panics with what it got after `timeout`.
pub async fn logs_until(
    cluster: &dyn Cluster,
    service: &str,
    timeout: Duration,
    done: impl Fn(&[LogLine]) -> bool,
) -> Vec<LogLine> {
    let start = Instant::now();
    loop {
        let lines = logs(cluster, service).await;
        if done(&lines) {
            return lines;
        }
        assert!(start.elapsed() < timeout, "after {timeout:?}, logs of {service}: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every event a director emits, with the instant it was received.
///
/// Records from a background task, so the times are close to when the director emitted them
/// (best with a multi-threaded test runtime).
pub struct EventLog {
    events: std::sync::Arc<std::sync::Mutex<Vec<(Instant, Event)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Starts recording `director`'s events.
    pub fn record(director: &Director) -> EventLog {
        let mut rx = director.subscribe();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => sink.lock().expect("lock").push((Instant::now(), event)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the event log lagged behind by {n} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        EventLog { events, task }
    }

    /// The events of `task` received so far, in order, with their times.
    pub fn of(&self, task: &str) -> Vec<(Instant, Event)> {
        self.events.lock().expect("lock").iter().filter(|(_, e)| e.task() == task).cloned().collect()
    }

    /// When the first event of `task` matching `which` was received; panics listing the events
    /// when there is none.
    pub fn when(&self, task: &str, which: impl Fn(&Event) -> bool) -> Instant {
        let events = self.of(task);
        match events.iter().find(|(_, e)| which(e)) {
            Some((at, _)) => *at,
            None => panic!("no such event for {task}; got: {:#?}", events.iter().map(|(_, e)| e).collect::<Vec<_>>()),
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The containers (any state, `docker ps -a`) carrying the label `key=value`.
pub fn containers_labelled(key: &str, value: &str) -> Vec<String> {
    docker(&["ps", "-a", "--filter", &format!("label={key}={value}"), "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, and returns that; panics with `what`
/// after `timeout`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, timeout: Duration, check: impl Fn() -> F) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(start.elapsed() < timeout, "after {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the docker CLI and returns its stdout; panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The IPv4 subnet of a network, from `docker network inspect`: (base address, prefix length).
pub fn subnet(network: &str) -> (IpAddr, u8) {
    let cidr = docker(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", network]);
    let (base, len) = cidr.trim().split_once('/').expect("CIDR");
    (base.parse().expect("address"), len.parse().expect("prefix"))
}

/// Whether `address` lies in `subnet`.
pub fn in_subnet(address: IpAddr, (base, len): (IpAddr, u8)) -> bool {
    match (address, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        _ => false,
    }
}

/// Measures how long `f` takes.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}
