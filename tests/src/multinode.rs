//! The multi-node swarm of `tests/multinode/up.sh`, for the tests that need more than one node.
//!
//! `ATQ_MULTINODE_HOST` names the swarm's manager (`up.sh` prints it:
//! `unix:///run/atq-multinode/node1.sock`); the engine of the node with hostname `nodeN`
//! answers on `nodeN.sock` in the same directory (the scripts' convention). Without the
//! variable the multi-node tests skip, saying so on stderr — unless `ATQ_REQUIRE_MULTINODE=1`
//! (CI sets it), in which case they fail.
//!
//! The tests of one process share the swarm: [`swarm`] takes a shared hold on it,
//! [`swarm_exclusive`] an exclusive one for the tests that kill a node (they wait for every
//! other multi-node test to finish, and those wait for them). A [`KilledNode`] boots its node
//! again when dropped, so a failing test leaves the swarm whole.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use atq_core::cluster::{Backend, ResourceKind};
use atq_core::SwarmCluster;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{Scope, BUSYBOX};

/// The variable naming the manager of the multi-node swarm.
pub const HOST_VAR: &str = "ATQ_MULTINODE_HOST";

/// When `1`, a multi-node test fails instead of skipping if the swarm is not there.
pub const REQUIRE_VAR: &str = "ATQ_REQUIRE_MULTINODE";

/// How long [`Swarm::assert_nothing_left`] gives the nodes to remove a removed task's
/// containers: a node's agent removes them a moment after the manager deleted the task.
pub const NODE_CLEANUP_BOUND: Duration = Duration::from_secs(15);

/// The script that kills and boots nodes.
fn node_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("multinode/node.sh")
}

/// Shared by the tests that only use the swarm; exclusive for those that kill a node.
static HOLD: RwLock<()> = RwLock::const_new(());

/// One node, as the manager sees it (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The swarm's id for it (a replica's `node_id`).
    pub id: String,
    /// Its hostname (`node1`, …): also the name of its engine's socket.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `ready`, `down`, `unknown` or `disconnected`.
    pub state: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// The address it advertises to the swarm.
    pub address: String,
}

/// A dispatcher heartbeat set by [`Swarm::with_heartbeat`]: set back to 1 s when dropped.
#[derive(Debug)]
pub struct Heartbeat {
    manager: String,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["-H", &self.manager, "swarm", "update", "--dispatcher-heartbeat", "1s"])
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("could not set the dispatcher heartbeat back to 1s: {out:?}");
        }
    }
}

/// Which hold a test has on the swarm.
#[derive(Debug)]
enum Hold {
    Shared { _guard: RwLockReadGuard<'static, ()> },
    Exclusive { _guard: RwLockWriteGuard<'static, ()> },
}

/// The multi-node swarm, held by one test.
#[derive(Debug)]
pub struct Swarm {
    /// The manager's address (`unix:///…/node1.sock`).
    pub manager: String,
    /// The directory of the nodes' sockets.
    sockets: PathBuf,
    /// Released when the test ends.
    hold: Hold,
}

/// The swarm, held shared; `None` (the test should return) when it is not up and not required.
pub async fn swarm(test: &str) -> Option<Swarm> {
    let manager = manager_host(test)?;
    let hold = Hold::Shared { _guard: HOLD.read().await };
    Some(Swarm::ready(manager, hold).await)
}

/// The swarm, held exclusively (no other multi-node test of this process runs meanwhile): for
/// the tests that kill a node.
pub async fn swarm_exclusive(test: &str) -> Option<Swarm> {
    let manager = manager_host(test)?;
    let hold = Hold::Exclusive { _guard: HOLD.write().await };
    Some(Swarm::ready(manager, hold).await)
}

/// The manager's address from [`HOST_VAR`]; `None` after saying why the test is skipped.
fn manager_host(test: &str) -> Option<String> {
    match std::env::var(HOST_VAR).ok().filter(|h| !h.is_empty()) {
        Some(host) => Some(host),
        None if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") => panic!(
            "{REQUIRE_VAR}=1 but {HOST_VAR} is not set: build the swarm with `tests/multinode/up.sh` \
             and export the {HOST_VAR} it prints"
        ),
        None => {
            eprintln!(
                "skipped {test}: no multi-node swarm ({HOST_VAR} is not set; `tests/multinode/up.sh` builds one)"
            );
            None
        }
    }
}

impl Swarm {
    /// Checks the swarm once it is held: every node ready (a node a previous test killed may
    /// still be rejoining) and the test image on every node.
    async fn ready(manager: String, hold: Hold) -> Swarm {
        let Some(socket) = manager.strip_prefix("unix://") else {
            panic!("{HOST_VAR}={manager}: the multi-node swarm is reached over unix sockets (unix:///…/node1.sock)")
        };
        let sockets = Path::new(socket).parent().map(Path::to_path_buf).unwrap_or_default();
        let swarm = Swarm { manager, sockets, hold };
        let start = Instant::now();
        loop {
            let nodes = swarm.try_nodes();
            match &nodes {
                Ok(nodes) if nodes.len() >= 2 && nodes.iter().all(|n| n.state == "ready") => break,
                _ if start.elapsed() > Duration::from_secs(30) => panic!(
                    "the multi-node swarm at {} is not ready after 30 s: {nodes:#?}\n\
                     Run `tests/multinode/up.sh` (idempotent) to repair it.",
                    swarm.manager
                ),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        static IMAGES: OnceLock<()> = OnceLock::new();
        IMAGES.get_or_init(|| {
            for node in swarm.nodes() {
                let has = swarm.docker_on(&node.hostname, &["image", "inspect", "-f", "{{.Id}}", BUSYBOX]);
                assert!(has.is_ok(), "{BUSYBOX} is missing on {}: run `tests/multinode/up.sh` again", node.hostname);
            }
        });
        swarm
    }

    /// A cluster on the manager (what atq talks to).
    pub async fn cluster(&self) -> SwarmCluster {
        SwarmCluster::connect_with(&self.manager)
            .await
            .unwrap_or_else(|e| panic!("the multi-node manager {}: {e}", self.manager))
    }

    /// The scope of an atq task on this swarm: its objects are removed when it is dropped.
    pub async fn scope_for_task(&self, task: &str) -> Scope {
        Scope {
            cluster: Arc::new(self.cluster().await),
            backend: Backend::Swarm,
            id: task.to_string(),
            key: atq_core::labels::TASK,
        }
    }

    /// The scope of a data bundle on this swarm (declare it before the tasks' scopes).
    pub async fn scope_for_bundle(&self, id: &str) -> Scope {
        Scope {
            cluster: Arc::new(self.cluster().await),
            backend: Backend::Swarm,
            id: id.to_string(),
            key: atq_core::labels::BUNDLE,
        }
    }

    /// The engine address of the node with this hostname.
    #[must_use]
    pub fn host_of(&self, hostname: &str) -> String {
        format!("unix://{}", self.sockets.join(format!("{hostname}.sock")).display())
    }

    /// Runs the docker CLI against one node's engine: its stdout, or its stderr as the error.
    pub fn docker_on(&self, hostname: &str, args: &[&str]) -> Result<String, String> {
        run_docker(&self.host_of(hostname), args)
    }

    /// Runs the docker CLI against the manager; panics on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker").arg("-H").arg(&self.manager).args(args).output().expect("run docker");
        assert!(out.status.success(), "docker -H {} {args:?}: {}", self.manager, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets the swarm's dispatcher heartbeat (up.sh's is 1 s) until the guard is dropped, which
    /// sets it back to 1 s. Hold the swarm exclusively: the node-loss tests count on 1 s.
    ///
    /// For the heaviest test: 300 containers starting on this machine's 2 shared cores stall the
    /// engines for tens of seconds (`watch.py` saw the manager not answering for 25 s), and with a
    /// 1 s heartbeat the manager then marks every node down ("heartbeat failure") and shuts their
    /// tasks down — the engine's own verdict, which atq reports as lost replicas.
    #[must_use]
    pub fn with_heartbeat(&self, heartbeat: &str) -> Heartbeat {
        self.docker(&["swarm", "update", "--dispatcher-heartbeat", heartbeat]);
        Heartbeat { manager: self.manager.clone() }
    }

    /// Every node, as the manager sees it now.
    pub fn nodes(&self) -> Vec<Node> {
        self.try_nodes().unwrap_or_else(|e| panic!("list the nodes of {}: {e}", self.manager))
    }

    fn try_nodes(&self) -> Result<Vec<Node>, String> {
        let run = |args: &[&str]| run_docker(&self.manager, args);
        let ids = run(&["node", "ls", "-q"])?;
        let mut args = vec![
            "node",
            "inspect",
            "--format",
            "{{.ID}} {{.Description.Hostname}} {{.Spec.Role}} {{.Status.State}} {{.Spec.Availability}} {{.Status.Addr}}",
        ];
        args.extend(ids.split_whitespace());
        let mut nodes: Vec<Node> = run(&args)?
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f.len() == 6).then(|| Node {
                    id: f[0].into(),
                    hostname: f[1].into(),
                    role: f[2].into(),
                    state: f[3].into(),
                    availability: f[4].into(),
                    address: f[5].into(),
                })
            })
            .collect();
        nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(nodes)
    }

    /// The node with this hostname; panics when there is none.
    pub fn node(&self, hostname: &str) -> Node {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.hostname == hostname)
            .cloned()
            .unwrap_or_else(|| panic!("no node {hostname}: {nodes:#?}"))
    }

    /// The hostnames of the worker nodes (not managers).
    pub fn worker_hostnames(&self) -> Vec<String> {
        self.nodes().into_iter().filter(|n| n.role == "worker").map(|n| n.hostname).collect()
    }

    /// Polls the manager every 100 ms until the node is in `state` (`down`, `ready`); returns
    /// how long that took; panics after `timeout`.
    pub async fn wait_node_state(&self, hostname: &str, state: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let node = self.node(hostname);
            if node.state == state {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "{hostname} is not {state} after {timeout:?}: {node:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the node as a power cut would (`node.sh kill`: every process SIGKILLed, its link
    /// pulled). Needs the exclusive hold. The node boots again when the result is dropped.
    pub fn kill(&self, hostname: &str) -> KilledNode {
        assert!(matches!(self.hold, Hold::Exclusive { .. }), "killing a node needs swarm_exclusive()");
        run_node_script("kill", hostname);
        KilledNode { hostname: hostname.to_string(), manager: self.manager.clone(), started: false }
    }

    /// [`kill`](Swarm::kill)s the node and waits (up to 15 s) until the manager marks it down.
    pub async fn kill_until_down(&self, hostname: &str) -> KilledNode {
        let killed = self.kill(hostname);
        self.wait_node_state(hostname, "down", Duration::from_secs(15)).await;
        killed
    }

    /// `node: container` for each container (any state) labelled `key=value` on any node; a
    /// node whose engine does not answer is listed as `node: unreachable (…)`.
    pub fn containers_labelled(&self, key: &str, value: &str) -> Vec<String> {
        let filter = format!("label={key}={value}");
        self.on_every_node(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
    }

    /// `node: network` for each network labelled `key=value` in any node's local view.
    pub fn networks_labelled(&self, key: &str, value: &str) -> Vec<String> {
        let filter = format!("label={key}={value}");
        self.on_every_node(&["network", "ls", "--filter", &filter, "--format", "{{.Name}}"])
    }

    fn on_every_node(&self, args: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for node in self.nodes() {
            match self.docker_on(&node.hostname, args) {
                Ok(out) => found.extend(out.lines().map(|l| format!("{}: {l}", node.hostname))),
                Err(e) => found.push(format!("{}: unreachable ({e})", node.hostname)),
            }
        }
        found
    }

    /// Asserts that the manager holds no service, network or config of the scope.
    pub async fn assert_manager_holds_nothing(&self, scope: &Scope) {
        for kind in [ResourceKind::Service, ResourceKind::Network, ResourceKind::Config] {
            let left = scope.leftovers(kind).await;
            assert!(left.is_empty(), "{kind:?} of {}={} left on the manager: {left:?}", scope.key, scope.id);
        }
    }

    /// Asserts that the manager holds no service, network or config of the scope, and that
    /// within [`NODE_CLEANUP_BOUND`] no node holds a container or network of it; returns how
    /// long the nodes took.
    pub async fn assert_nothing_left(&self, scope: &Scope) -> Duration {
        self.assert_manager_holds_nothing(scope).await;
        let start = Instant::now();
        loop {
            let mut left = self.containers_labelled(scope.key, &scope.id);
            left.extend(self.networks_labelled(scope.key, &scope.id));
            if left.is_empty() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < NODE_CLEANUP_BOUND,
                "after {NODE_CLEANUP_BOUND:?}, the nodes still hold objects of {}={}: {left:?}",
                scope.key,
                scope.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Swarm {
    /// After a test that killed a node, waits (within [`NODE_CLEANUP_BOUND`]) until no node
    /// holds a container of a removed service, then removes what is still there, so the next
    /// test starts clean even when this one failed. (A node killed again before it removed
    /// such a container forgets it: the engine never removes it.)
    fn drop(&mut self) {
        if !matches!(self.hold, Hold::Exclusive { .. }) {
            return;
        }
        let start = Instant::now();
        loop {
            let orphans = self.containers_of_removed_services();
            if orphans.is_empty() {
                return;
            }
            if start.elapsed() > NODE_CLEANUP_BOUND {
                eprintln!("removing containers the engine left after {NODE_CLEANUP_BOUND:?}: {orphans:?}");
                for (node, id) in &orphans {
                    let _ = self.docker_on(node, &["rm", "-f", id]);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Swarm {
    /// (node, container id) of every container on any node whose swarm service is gone.
    fn containers_of_removed_services(&self) -> Vec<(String, String)> {
        // Never panics: it runs in `drop`, possibly while a failed test unwinds.
        let Ok(services) = run_docker(&self.manager, &["service", "ls", "-q"]) else { return Vec::new() };
        let services: std::collections::BTreeSet<&str> = services.lines().collect();
        let mut orphans = Vec::new();
        for node in self.try_nodes().unwrap_or_default() {
            let format = "{{.ID}} {{.Label \"com.docker.swarm.service.id\"}}";
            let listed = self.docker_on(
                &node.hostname,
                &["ps", "-a", "--no-trunc", "--filter", "label=com.docker.swarm.service.id", "--format", format],
            );
            for line in listed.unwrap_or_default().lines() {
                if let Some((id, service)) = line.split_once(' ') {
                    if !services.contains(service) {
                        orphans.push((node.hostname.clone(), id.to_string()));
                    }
                }
            }
        }
        orphans
    }
}

/// A node [`Swarm::kill`] killed; [`start`](KilledNode::start) boots it (dropping does too).
#[derive(Debug)]
pub struct KilledNode {
    hostname: String,
    manager: String,
    started: bool,
}

impl KilledNode {
    /// Its hostname.
    #[must_use]
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Boots the node (`node.sh start`) and waits until the manager sees it ready; returns how
    /// long that took.
    pub async fn start(mut self) -> Duration {
        let start = Instant::now();
        let hostname = self.hostname.clone();
        let manager = self.manager.clone();
        self.started = true;
        tokio::task::spawn_blocking(move || boot(&hostname, &manager)).await.expect("boot the node");
        start.elapsed()
    }
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if !self.started {
            boot(&self.hostname, &self.manager);
        }
    }
}

/// `node.sh start`, then waits (up to 60 s) until the manager lists the node as ready.
fn boot(hostname: &str, manager: &str) {
    run_node_script("start", hostname);
    let start = Instant::now();
    loop {
        let out = Command::new("docker")
            .args(["-H", manager, "node", "inspect", "--format", "{{.Status.State}}", hostname])
            .output()
            .expect("run docker");
        if String::from_utf8_lossy(&out.stdout).trim() == "ready" {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{hostname} is not ready 60 s after it was started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the docker CLI against the engine at `host`: its stdout, or its stderr as the error.
fn run_docker(host: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").arg("-H").arg(host).args(args).output().map_err(|e| format!("run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn run_node_script(command: &str, hostname: &str) {
    let script = node_script();
    let out = Command::new(&script).args([command, hostname]).output().expect("run tests/multinode/node.sh");
    assert!(
        out.status.success(),
        "{} {command} {hostname}: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
