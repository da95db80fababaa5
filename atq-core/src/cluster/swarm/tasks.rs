//! Replicas from the engine's documented `GET /tasks` JSON, fetched over the engine's socket.
//!
//! Why not `bollard::Docker::list_tasks`: bollard's generated `Task` model has no
//! `NetworksAttachments` (bollard issue #767), so the addresses are dropped while decoding,
//! and bollard exposes no public way to send a request and decode the body into a type of our
//! own. The alternatives were worse:
//! - the network's verbose inspect (`GET /networks/{id}?verbose=true`) lists task endpoints
//!   only for networks attached to the node we talk to — on a multi-node swarm whose manager
//!   runs no worker it has no addresses at all;
//! - exec'ing into containers only works on the node that runs them.
//!
//! The manager's `GET /tasks` answer comes from the swarm's Raft store, so it has every task's
//! `NetworksAttachments[].Addresses` (CIDR strings, `"10.0.1.4/24"`) whichever node runs it.
//! We send that one GET ourselves through the endpoint's
//! [`EngineHttp`](crate::cluster::engine_http) client — the very client bollard sends through,
//! so the same transport (a socket, plain HTTP on this machine, or TLS) — at the API version
//! bollard negotiated, and decode it into the small serde structs below. Errors come as bollard's
//! own error variants, so that they are mapped to [`Error`](crate::Error) in the one place the
//! rest of this module uses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::cluster::{on_node, NodeStatus, Replica, ReplicaState};

/// The `/tasks` query for one service's tasks.
pub(super) fn tasks_path(api_version: &str, service: &str) -> String {
    let filters = serde_json::json!({ "service": [service] }).to_string();
    format!("/v{api_version}/tasks?filters={}", percent_encode(&filters))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A swarm task, as `GET /tasks` documents it (only the fields atq reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawTask {
    /// Task id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Raft version: higher is newer.
    #[serde(default)]
    pub version: RawVersion,
    /// The service it belongs to.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// Replica slot (replicated services).
    #[serde(default)]
    pub slot: Option<u32>,
    /// The node it was scheduled on.
    #[serde(rename = "NodeID", default)]
    pub node_id: Option<String>,
    /// What the orchestrator wants it to be ("running", or "shutdown" once it should stop,
    /// *including* after it exited on its own under restart policy "none").
    #[serde(default)]
    pub desired_state: String,
    /// What it is.
    #[serde(default)]
    pub status: RawStatus,
    /// Its networks and addresses: the field bollard's model lacks.
    #[serde(default)]
    pub networks_attachments: Vec<RawAttachment>,
    /// What it runs (only the stop grace period is read).
    #[serde(default)]
    pub spec: RawTaskSpec,
}

/// `Task.Spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawTaskSpec {
    /// `Task.Spec.ContainerSpec`.
    #[serde(default)]
    pub container_spec: RawContainerSpec,
}

/// `Task.Spec.ContainerSpec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawContainerSpec {
    /// How long the container has to stop after SIGTERM, in nanoseconds (None: the engine's 10 s).
    #[serde(default)]
    pub stop_grace_period: Option<i64>,
}

impl RawTask {
    /// The task's stop grace period, when its service set one.
    pub(super) fn stop_grace_period(&self) -> Option<Duration> {
        let nanos = u64::try_from(self.spec.container_spec.stop_grace_period?).ok()?;
        Some(Duration::from_nanos(nanos))
    }
}

/// `Task.Version`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawVersion {
    /// Raft index of the last change.
    #[serde(default)]
    pub index: u64,
}

/// `Task.Status`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawStatus {
    /// Engine state name ("new" … "running", "complete", "failed", "rejected", …).
    #[serde(default)]
    pub state: String,
    /// Failure text ("No such image: x:1", "task: non-zero exit (3)").
    #[serde(default)]
    pub err: Option<String>,
    /// The container's status, once it has one.
    #[serde(default)]
    pub container_status: Option<RawContainerStatus>,
}

/// `Task.Status.ContainerStatus`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawContainerStatus {
    /// Exit code (0 while running).
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// The container's id on the node that runs it.
    #[serde(rename = "ContainerID", default)]
    pub container_id: Option<String>,
}

/// One entry of `Task.NetworksAttachments`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawAttachment {
    /// The network object.
    #[serde(default)]
    pub network: RawNetwork,
    /// The task's addresses on it, CIDR notation.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// `NetworksAttachments[].Network`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawNetwork {
    /// Network id.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Network spec.
    #[serde(default)]
    pub spec: RawNetworkSpec,
}

/// `NetworksAttachments[].Network.Spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawNetworkSpec {
    /// Network name.
    #[serde(default)]
    pub name: String,
}

/// Maps an engine task state name onto [`ReplicaState`].
///
/// Note that a service with a health check stays in "starting" until its first passing check:
/// the engine reports "running" only once it is healthy, so `Running` already means healthy.
pub(super) fn replica_state(state: &str) -> ReplicaState {
    match state {
        "running" => ReplicaState::Running,
        "complete" => ReplicaState::Complete,
        "failed" => ReplicaState::Failed,
        "rejected" => ReplicaState::Rejected,
        "shutdown" | "remove" => ReplicaState::Shutdown,
        "orphaned" => ReplicaState::Orphaned,
        // new, allocated, pending, assigned, accepted, preparing, ready, starting
        _ => ReplicaState::Pending,
    }
}

/// Whether the orchestrator still wants this task to run.
fn wanted(desired_state: &str) -> bool {
    matches!(
        desired_state,
        "new" | "allocated" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" | "running"
    )
}

/// The service's current replica per slot.
///
/// The engine keeps old tasks around (a superseded task lingers with desired state
/// "shutdown"), but it *also* sets desired state "shutdown" on a task that exited on its own
/// under restart policy "none" — so "desired state running" alone would lose the exit code of
/// a master that finished. Per slot we therefore keep the newest task the orchestrator still
/// wants running, or, when it wants none, the newest task of the slot (the one that exited).
pub(super) fn current_replicas(service: &str, network: &str, tasks: Vec<RawTask>) -> Vec<Replica> {
    let mut by_slot: BTreeMap<u32, RawTask> = BTreeMap::new();
    for task in tasks {
        let slot = task.slot.unwrap_or(0);
        let better = match by_slot.get(&slot) {
            None => true,
            Some(have) => {
                (wanted(&task.desired_state), task.version.index) > (wanted(&have.desired_state), have.version.index)
            }
        };
        if better {
            by_slot.insert(slot, task);
        }
    }
    by_slot
        .into_values()
        .map(|task| {
            let state = replica_state(&task.status.state);
            let exit_code = if state.is_terminal() && state != ReplicaState::Rejected {
                task.status.container_status.as_ref().and_then(|c| c.exit_code)
            } else {
                None
            };
            let slot = task.slot.unwrap_or(0);
            Replica {
                name: format!("{service}.{slot}"),
                slot,
                state,
                address: address_on(&task.networks_attachments, network),
                exit_code,
                error: task.status.err.filter(|e| !e.is_empty()),
                node_id: task.node_id.filter(|n| !n.is_empty()),
                node: None,
                container_id: task.status.container_status.and_then(|c| c.container_id).filter(|c| !c.is_empty()),
                id: task.id,
            }
        })
        .collect()
}

/// The replicas judged by their nodes ([`on_node`]): `nodes` is the manager's node list, by id.
pub(super) fn on_nodes(replicas: Vec<Replica>, nodes: &BTreeMap<String, NodeStatus>) -> Vec<Replica> {
    replicas
        .into_iter()
        .map(|r| {
            let node = r.node_id.as_ref().and_then(|id| nodes.get(id));
            on_node(r, node)
        })
        .collect()
}

/// Whether a task on node `node_id` can still be waited for: its node is ready (a task not
/// scheduled yet, without a node, can be too).
pub(super) fn on_live_node(node_id: Option<&str>, nodes: &BTreeMap<String, NodeStatus>) -> bool {
    match node_id.filter(|n| !n.is_empty()) {
        None => true,
        Some(id) => nodes.get(id).is_some_and(|n| n.ready),
    }
}

/// The first address on `network` (matched by name, or by id), without its prefix length.
fn address_on(attachments: &[RawAttachment], network: &str) -> Option<IpAddr> {
    attachments
        .iter()
        .filter(|a| a.network.spec.name == network || a.network.id == network)
        .flat_map(|a| a.addresses.iter())
        .find_map(|cidr| cidr.split('/').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, slot: u32, index: u64, desired: &str, state: &str) -> RawTask {
        serde_json::from_value(serde_json::json!({
            "ID": id, "Version": {"Index": index}, "Slot": slot, "NodeID": "n1",
            "DesiredState": desired,
            "Status": {"State": state, "Err": if state == "failed" { "task: non-zero exit (3)" } else { "" },
                       "ContainerStatus": {"ExitCode": if state == "failed" { 3 } else { 0 }, "ContainerID": format!("c-{id}")}},
            "NetworksAttachments": [
                {"Network": {"ID": "ingressid", "Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.9/24"]},
                {"Network": {"ID": "netid", "Spec": {"Name": "net"}}, "Addresses": ["10.0.1.4/24"]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn address_is_the_one_on_the_named_network_without_prefix() {
        let r = current_replicas("s", "net", vec![task("a", 1, 5, "running", "running")]);
        assert_eq!(r[0].address, Some("10.0.1.4".parse().unwrap()));
        let r = current_replicas("s", "netid", vec![task("a", 1, 5, "running", "running")]);
        assert_eq!(r[0].address, Some("10.0.1.4".parse().unwrap()));
        let r = current_replicas("s", "other", vec![task("a", 1, 5, "running", "running")]);
        assert_eq!(r[0].address, None);
    }

    #[test]
    fn a_task_that_exited_on_its_own_keeps_its_exit_code() {
        let r = current_replicas("s", "net", vec![task("a", 1, 5, "shutdown", "failed")]);
        assert_eq!((r[0].state, r[0].exit_code), (ReplicaState::Failed, Some(3)));
        assert_eq!(r[0].error.as_deref(), Some("task: non-zero exit (3)"));
        assert_eq!(r[0].name, "s.1");
        assert_eq!(r[0].container_id.as_deref(), Some("c-a"));
    }

    #[test]
    fn a_superseded_task_is_left_out_for_the_wanted_one() {
        let tasks = vec![
            task("old", 1, 9, "shutdown", "shutdown"),
            task("new", 1, 7, "running", "starting"),
            task("two", 2, 3, "running", "running"),
        ];
        let r = current_replicas("s", "net", tasks);
        assert_eq!(r.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["new", "two"]);
        assert_eq!(r[0].state, ReplicaState::Pending);
    }

    fn nodes(down: &str) -> BTreeMap<String, NodeStatus> {
        ["n1", "n2", "n3"]
            .into_iter()
            .map(|id| {
                let ready = id != down;
                let why = if ready { "ready".into() } else { "down: heartbeat failure".into() };
                (id.to_string(), NodeStatus { hostname: format!("node{}", &id[1..]), ready, why })
            })
            .collect()
    }

    fn on(id: &str, slot: u32, node: &str, desired: &str, state: &str) -> RawTask {
        let mut t = task(id, slot, 5, desired, state);
        t.node_id = Some(node.into());
        t
    }

    /// What the engine reports of a task whose node was killed: its last state ("running", or
    /// "assigned" before it started) with desired state shutdown. atq calls it lost, naming the
    /// node, and counts it as neither running nor pending.
    #[test]
    fn a_task_on_a_down_node_is_lost_naming_the_node() {
        let tasks = vec![
            on("a", 1, "n2", "running", "running"),
            on("b", 2, "n3", "shutdown", "running"),
            on("c", 3, "n3", "shutdown", "assigned"),
        ];
        let r = on_nodes(current_replicas("s", "net", tasks), &nodes("n3"));
        assert_eq!((r[0].state, r[0].node.as_deref()), (ReplicaState::Running, Some("node2")));
        for lost in &r[1..] {
            assert_eq!(lost.state, ReplicaState::Lost, "{lost:?}");
            assert_eq!(lost.node.as_deref(), Some("node3"));
            let error = lost.error.as_deref().unwrap();
            assert!(error.contains("its node node3 (n3) is down: heartbeat failure"), "{error}");
            assert_eq!(lost.exit_code, None);
        }
        assert!(r[2].error.as_deref().unwrap().contains("it was pending there"));
    }

    #[test]
    fn a_task_that_exited_before_its_node_went_keeps_its_exit_code() {
        let r = on_nodes(current_replicas("s", "net", vec![on("a", 1, "n3", "shutdown", "failed")]), &nodes("n3"));
        assert_eq!((r[0].state, r[0].exit_code), (ReplicaState::Failed, Some(3)));
    }

    #[test]
    fn a_task_on_a_node_the_swarm_no_longer_knows_is_lost() {
        let r = on_nodes(current_replicas("s", "net", vec![on("a", 1, "gone", "shutdown", "running")]), &nodes(""));
        assert_eq!((r[0].state, r[0].node.as_deref()), (ReplicaState::Lost, None));
        assert!(r[0].error.as_deref().unwrap().contains("its node gone is no longer in the swarm"));
        assert!(on_live_node(None, &nodes("")), "not scheduled yet");
        assert!(on_live_node(Some("n1"), &nodes("n3")));
        assert!(!on_live_node(Some("n3"), &nodes("n3")));
        assert!(!on_live_node(Some("gone"), &nodes("n3")));
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(tasks_path("1.41", "a_b"), "/v1.41/tasks?filters=%7B%22service%22%3A%5B%22a_b%22%5D%7D");
    }
}
