//! A container, as the engine lists it, as a [`Replica`].
//!
//! `GET /containers/json` says for each container its state (`created`, `running`, `exited`,
//! …), a human status that carries the health (`Up 3 seconds (health: starting)`, `(healthy)`,
//! `(unhealthy)`), its labels and its address per network: one call for every replica of a
//! service. Only a container that exited is inspected too, for its exact exit code and the
//! engine's error (a list reports neither).

use std::net::IpAddr;

use bollard::models::{ContainerState, ContainerSummary, ContainerSummaryStateEnum};

use super::labels as keys;
use crate::cluster::{Replica, ReplicaState};

/// What a listed container's health says, from its status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// No health check, or it passed.
    Fine,
    /// The health check has not passed yet.
    Starting,
    /// The health check failed its retries.
    Unhealthy,
}

/// The health in a status text (`Up 2 seconds (health: starting)`).
pub(super) fn health(status: &str) -> Health {
    if status.contains("(health: starting)") {
        Health::Starting
    } else if status.contains("(unhealthy)") {
        Health::Unhealthy
    } else {
        Health::Fine
    }
}

/// Whether the container has exited (or died), so that only an inspect tells how.
pub(super) fn has_exited(c: &ContainerSummary) -> bool {
    matches!(c.state, Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD))
}

/// The slot a container's labels give it (0 when they do not).
pub(super) fn slot(c: &ContainerSummary) -> u32 {
    c.labels.as_ref().and_then(|l| l.get(keys::SLOT)).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The replica a listed container is. `exited` is its inspected state when it exited;
/// `network` the network (name or id) whose address to report; `node` the engine's id.
pub(super) fn replica(
    service: &str,
    c: &ContainerSummary,
    exited: Option<&ContainerState>,
    network: &str,
    node: &str,
) -> Replica {
    let slot = slot(c);
    let (state, exit_code, error) = match c.state {
        Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::PAUSED) => {
            match health(c.status.as_deref().unwrap_or_default()) {
                Health::Fine => (ReplicaState::Running, None, None),
                Health::Starting => (ReplicaState::Pending, None, None),
                Health::Unhealthy => (ReplicaState::Failed, None, Some("container is unhealthy".to_owned())),
            }
        }
        Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD) => {
            let code = exited.and_then(|s| s.exit_code);
            let mut error = exited.and_then(|s| s.error.clone()).filter(|e| !e.is_empty());
            if exited.and_then(|s| s.oom_killed) == Some(true) {
                error = Some("out of memory: the container was killed (OOM)".to_owned());
            }
            // A plain non-zero exit has no error: the engine's `State.Error` is set only when the
            // container could not run (the Director tells the two apart by it, as swarm's
            // "task: non-zero exit (N)" is told apart from "starting container failed: …").
            let state = if code == Some(0) && error.is_none() { ReplicaState::Complete } else { ReplicaState::Failed };
            (state, code, error)
        }
        Some(ContainerSummaryStateEnum::REMOVING | ContainerSummaryStateEnum::STOPPING) => {
            (ReplicaState::Shutdown, None, None)
        }
        // created, restarting (never: restart policy "no"), or a state this version does not name.
        _ => (ReplicaState::Pending, None, None),
    };
    let address = c
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|networks| {
            networks.iter().find(|(name, e)| *name == network || e.network_id.as_deref() == Some(network))
        })
        .and_then(|(_, e)| e.ip_address.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let id = c.id.clone().unwrap_or_default();
    Replica {
        name: format!("{service}.{slot}"),
        slot,
        state,
        address,
        exit_code,
        error,
        node_id: Some(node.to_owned()).filter(|n| !n.is_empty()),
        node: None,
        container_id: Some(id.clone()).filter(|i| !i.is_empty()),
        id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryNetworkSettings, EndpointSettings};
    use std::collections::HashMap;

    fn summary(state: ContainerSummaryStateEnum, status: &str) -> ContainerSummary {
        ContainerSummary {
            id: Some("c1".into()),
            state: Some(state),
            status: Some(status.into()),
            labels: Some(HashMap::from([(keys::SLOT.to_string(), "2".to_string())])),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(HashMap::from([(
                    "t_net".to_string(),
                    EndpointSettings {
                        network_id: Some("netid".into()),
                        ip_address: Some("10.208.0.3".into()),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_running_container_is_running_with_its_address_on_the_named_network() {
        let c = summary(ContainerSummaryStateEnum::RUNNING, "Up 2 seconds");
        let r = replica("t_worker", &c, None, "t_net", "node");
        assert_eq!((r.state, r.slot, r.name.as_str()), (ReplicaState::Running, 2, "t_worker.2"));
        assert_eq!(r.address, Some("10.208.0.3".parse().unwrap()));
        assert_eq!(replica("t_worker", &c, None, "netid", "node").address, r.address);
        assert_eq!(replica("t_worker", &c, None, "other", "node").address, None);
        assert_eq!((r.container_id.as_deref(), r.node_id.as_deref()), (Some("c1"), Some("node")));
    }

    #[test]
    fn health_decides_between_pending_running_and_failed() {
        let state =
            |status: &str| replica("s", &summary(ContainerSummaryStateEnum::RUNNING, status), None, "n", "").state;
        assert_eq!(state("Up 1 second (health: starting)"), ReplicaState::Pending);
        assert_eq!(state("Up 9 seconds (healthy)"), ReplicaState::Running);
        assert_eq!(state("Up 9 seconds (unhealthy)"), ReplicaState::Failed);
        assert_eq!(
            replica("s", &summary(ContainerSummaryStateEnum::CREATED, "Created"), None, "n", "").state,
            ReplicaState::Pending
        );
    }

    #[test]
    fn an_exited_container_reports_its_inspected_exit_code_and_error() {
        let c = summary(ContainerSummaryStateEnum::EXITED, "Exited (3) 1 second ago");
        assert!(has_exited(&c));
        let inspected = ContainerState { exit_code: Some(3), ..Default::default() };
        let r = replica("s", &c, Some(&inspected), "t_net", "");
        assert_eq!((r.state, r.exit_code), (ReplicaState::Failed, Some(3)));
        assert_eq!(r.error, None, "a program that ran and exited 3 is no start failure");
        let ok = ContainerState { exit_code: Some(0), ..Default::default() };
        assert_eq!(replica("s", &c, Some(&ok), "t_net", "").state, ReplicaState::Complete);
        let oom = ContainerState { exit_code: Some(137), oom_killed: Some(true), ..Default::default() };
        assert!(replica("s", &c, Some(&oom), "t_net", "").error.unwrap().contains("OOM"));
    }
}
