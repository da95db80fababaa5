//! A service's replica as a container to create: atq's [`ServiceSpec`] in the Engine API's terms.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};

use super::labels as keys;
use crate::cluster::swarm::convert::{health_config, mounts};
use crate::cluster::ServiceSpec;

/// What every replica of one service shares, computed once.
#[derive(Debug, Clone)]
pub(super) struct Replicas {
    /// The service's name (its replicas are `<name>.<slot>`, and `<name>` is their DNS alias).
    pub name: String,
    /// The id the containers share (a service has no object of its own).
    pub id: String,
    /// Which backend's containers these are ([`keys::BACKEND`]).
    pub backend: &'static str,
    /// Networks to join (names); the first at creation, the others before start.
    pub networks: Vec<String>,
    /// Config names the containers use (so a config in use is not removed).
    pub configs: Vec<String>,
}

impl Replicas {
    /// The container of `slot`'s name.
    pub(super) fn container_name(&self, slot: u32) -> String {
        format!("{}.{slot}", self.name)
    }

    /// The DNS names every replica answers to on its networks: `<name>` (all replicas, as a
    /// swarm dnsrr service) and `tasks.<name>` (as swarm's per-task records).
    pub(super) fn aliases(&self) -> Vec<String> {
        vec![self.name.clone(), format!("tasks.{}", self.name)]
    }

    /// The labels of the container of `slot`: the spec's container labels, plus the backend's
    /// own ([`keys`]) from which the service is derived again.
    pub(super) fn labels(&self, spec: &ServiceSpec, slot: u32) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> =
            spec.container_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.insert(keys::BACKEND.into(), self.backend.into());
        labels.insert(keys::SERVICE.into(), self.name.clone());
        labels.insert(keys::SERVICE_ID.into(), self.id.clone());
        labels.insert(keys::SLOT.into(), slot.to_string());
        labels.insert(keys::REPLICAS.into(), spec.replicas.to_string());
        labels.insert(keys::SERVICE_LABELS.into(), service_labels(&spec.labels));
        if let Some(network) = self.networks.first() {
            labels.insert(keys::NETWORK.into(), network.clone());
        }
        for config in &self.configs {
            labels.insert(format!("{}{config}", keys::USES_CONFIG), "true".into());
        }
        labels
    }
}

/// The service's labels, as stored on each container (JSON of the sorted map).
pub(super) fn service_labels(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

/// Whole seconds for the engine's `StopTimeout`, rounded up (so 0.5 s is 1 s, not "kill at once").
pub(super) fn stop_timeout(grace: Duration) -> i64 {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The container of `slot`: the spec's image, command, environment (literal values, and each
/// [`ServiceSpec::slot_env`] variable set to the slot), health check, limits, mounts and stop grace period; restart policy "no"; joined
/// to the first network with the service's aliases.
pub(super) fn container(spec: &ServiceSpec, replicas: &Replicas, slot: u32) -> ContainerCreateBody {
    // Values are literal (as the swarm backend escapes them); `slot_env` names the variables that
    // hold the replica's slot (`ATQ_WORKER_INDEX`).
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(spec.slot_env.iter().map(|k| format!("{k}={slot}")));
    let mounts = mounts(spec);
    let resources = spec.resources.unwrap_or_default();
    let host_config = HostConfig {
        restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
        mounts: (!mounts.is_empty()).then_some(mounts),
        // Rounded to whole nano-CPUs; the validated range keeps this far from overflow.
        #[allow(clippy::cast_possible_truncation)]
        nano_cpus: resources.cpus.map(|c| (c * 1e9).round() as i64),
        memory: resources.memory.map(|m| i64::try_from(m.0).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let networking_config = replicas.networks.first().map(|network| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.clone(),
            EndpointSettings { aliases: Some(replicas.aliases()), ..Default::default() },
        )])),
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.command.clone(),
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(env),
        tty: Some(spec.tty),
        labels: Some(replicas.labels(spec, slot)),
        healthcheck: spec.health_check.as_ref().map(health_config),
        // A one-off (the probe) has nothing to finish: unless told otherwise, it is killed at once.
        stop_timeout: spec.stop_grace_period.or(spec.one_off.then_some(Duration::ZERO)).map(stop_timeout),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Mount, MountKind, Placement};
    use crate::service::{HealthCheck, Resources};
    use bollard::models::MountType;

    fn replicas() -> Replicas {
        Replicas {
            name: "t_worker".into(),
            id: "abc".into(),
            backend: "docker",
            networks: vec!["t_net".into()],
            configs: vec!["t_workers".into()],
        }
    }

    #[test]
    fn a_replica_container_carries_the_spec_and_what_the_service_is_derived_from() {
        let spec = ServiceSpec {
            name: "t_worker".into(),
            image: "img:1".into(),
            replicas: 3,
            env: vec![("A".into(), "1".into()), ("LITERAL".into(), "n{{.Task.Slot}}".into())],
            slot_env: vec!["ATQ_WORKER_INDEX".into()],
            args: vec!["x".into()],
            command: Some(vec!["sh".into(), "-c".into()]),
            tty: true,
            labels: [("l".to_string(), "s".to_string())].into(),
            container_labels: [("l".to_string(), "c".to_string())].into(),
            health_check: Some(HealthCheck::new("true").interval(Duration::from_secs(2))),
            resources: Some(Resources::new().cpus(1.5).memory_bytes(1 << 20)),
            placement: Placement { local_node: true, constraints: Vec::new() },
            stop_grace_period: Some(Duration::from_millis(1500)),
            mounts: vec![Mount { kind: MountKind::Bind, source: "/h".into(), target: "/c".into(), read_only: true }],
            ..Default::default()
        };
        let c = container(&spec, &replicas(), 2);
        assert_eq!(c.env.unwrap(), ["A=1", "LITERAL=n{{.Task.Slot}}", "ATQ_WORKER_INDEX=2"]);
        assert_eq!((c.entrypoint.unwrap(), c.cmd.unwrap()), (vec!["sh".to_string(), "-c".into()], vec!["x".into()]));
        let labels = c.labels.unwrap();
        assert_eq!(labels["l"], "c");
        assert_eq!(labels[keys::SERVICE], "t_worker");
        assert_eq!(labels[keys::SLOT], "2");
        assert_eq!(labels[keys::REPLICAS], "3");
        assert_eq!(labels[keys::SERVICE_LABELS], r#"{"l":"s"}"#);
        assert_eq!(labels[&format!("{}t_workers", keys::USES_CONFIG)], "true");
        assert_eq!(c.stop_timeout, Some(2), "1.5 s rounds up");
        assert_eq!(c.healthcheck.unwrap().interval, Some(2_000_000_000));
        let host = c.host_config.unwrap();
        assert_eq!(host.restart_policy.unwrap().name, Some(RestartPolicyNameEnum::NO));
        assert_eq!((host.nano_cpus, host.memory), (Some(1_500_000_000), Some(1 << 20)));
        assert_eq!(host.mounts.unwrap()[0].typ, Some(MountType::BIND));
        let endpoints = c.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["t_net"].aliases.as_deref().unwrap(), ["t_worker", "tasks.t_worker"]);
    }

    #[test]
    fn no_args_keeps_the_images_cmd_and_no_grace_keeps_the_engines() {
        let spec = ServiceSpec { name: "s".into(), image: "i".into(), replicas: 1, ..Default::default() };
        let c = container(&spec, &replicas(), 1);
        assert_eq!((c.cmd, c.entrypoint, c.stop_timeout), (None, None, None));
        assert_eq!(stop_timeout(Duration::ZERO), 0);
        assert_eq!(stop_timeout(Duration::from_secs(3)), 3);
    }
}
