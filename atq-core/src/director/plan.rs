//! The deploy plan (DESIGN.md): network, workers (dnsrr), wait until every worker runs with an
//! address, probe, delay, master (with `WORKER_CSV_VIPS`), wait until the master runs.
//!
//! Every object created goes into the deploy's [`Record`] the moment the engine answers, and
//! carries the deploy's id as a label, so a failure at any step — or the future being dropped —
//! removes exactly what this deploy made (see [`crate::cleanup`]).

use std::net::IpAddr;

use super::{probe, Emitter};
use crate::cleanup::Record;
use crate::cluster::{ConfigMount, ConfigSpec, NetworkSpec, Placement, ResourceKind, ServiceSpec};
use crate::context::Context;
use crate::data;
use crate::error::{Error, Phase, Result};
use crate::event::Event;
use crate::labels::{self, Role};
use crate::service::Service;
use crate::task::Task;
use crate::wait::{self, conditions};

/// Where the master finds the worker list as a file (one address per line).
pub const WORKERS_FILE: &str = "/atq/workers";

/// Longest `WORKER_CSV_VIPS` value atq passes in the environment. The kernel caps one
/// environment string at 128 KiB (MAX_ARG_STRLEN); beyond this the master (and the probe) read
/// [`WORKERS_FILE`] instead, named by `ATQ_WORKERS_FILE`.
pub const MAX_ENV_LIST_BYTES: usize = 120 * 1024;

/// Deploys `task`, recording what it creates in `record`; returns the workers' addresses in
/// slot order. `detached` labels every object as meant to outlive this process.
pub(crate) async fn deploy(
    ctx: &Context,
    task: &Task,
    record: &mut Record,
    emitter: &Emitter,
    detached: bool,
) -> Result<Vec<IpAddr>> {
    let cluster = &*ctx.cluster;
    let name = task.name().to_owned();
    let network = task.network_name();
    let labels_for = |role: Role, deploy_id: &str| {
        let mut l = ctx.labels(task, role, deploy_id);
        if detached {
            l.insert(labels::DETACHED.into(), "true".into());
        }
        l
    };

    // 0. Data: a `fileid` naming no stored bundle fails here, before anything is created,
    //    and so does a sharded file the bundle does not have.
    let worker_data = data::data_mounts(cluster, task.workers()).await?;
    let master_data = data::data_mounts(cluster, task.master()).await?;
    let shards = data::split_service_shards(cluster, task.workers(), &worker_data).await?;

    // 1. The network is the lock: network names are unique, so of two racing deploys of one
    //    name exactly one creates it.
    let spec = NetworkSpec {
        name: network.clone(),
        labels: labels_for(Role::Network, record.deploy_id()),
        attachable: true,
        // Every worker, the master and the probe.
        capacity: task.workers().replicas.saturating_add(2),
    };
    let id = cluster.create_network(&spec).await.map_err(|e| match e {
        Error::Conflict { .. } => Error::TaskExists { name: name.clone() },
        other => other,
    })?;
    record.push(ResourceKind::Network, id);
    emitter.emit(Event::NetworkCreated {
        task: name.clone(),
        network: network.clone(),
        deploy_id: record.deploy_id().to_owned(),
    });

    // 2. Workers.
    let mut workers = service_spec(task, Role::Worker, task.workers(), task.worker_service_name(), &network);
    workers.labels = with_service_labels(labels_for(Role::Worker, record.deploy_id()), task.workers());
    workers.container_labels = workers.labels.clone();
    worker_data.apply_to(&mut workers);
    // Sharded files: one per-replica config each, mounted in place of the whole file.
    for (i, sharded) in shards.into_iter().enumerate() {
        let (header, rows) = sharded.slices.into_parts();
        let config = ConfigSpec {
            name: format!("{name}_shard{i}"),
            data: header,
            labels: labels_for(Role::Worker, record.deploy_id()),
            per_replica: rows,
        };
        let config_id = cluster.create_config(&config).await?;
        record.push(ResourceKind::Config, config_id.clone());
        workers.configs.retain(|c| c.target != sharded.target);
        workers.configs.push(ConfigMount {
            config_id,
            config_name: config.name,
            target: sharded.target,
            mode: ConfigMount::READ_ONLY,
        });
    }
    let replicas = workers.replicas;
    let id = create_service(cluster, task, &workers).await?;
    record.push(ResourceKind::Service, id);
    emitter.emit(Event::WorkersCreated { task: name.clone(), service: workers.name.clone(), replicas });

    // 3. Wait until all run with addresses.
    let counting = |running| emitter.emit(Event::WorkersRunning { task: name.clone(), running, total: replicas });
    let ready = wait::replicas_until(
        cluster,
        &workers.name,
        &network,
        ctx.poll,
        Some(wait::deadline_in(task.start_timeout())),
        Phase::Workers,
        conditions::all_running_with_addresses(&workers.name, replicas, counting),
    )
    .await?;
    let (indexes, addresses): (Vec<u32>, Vec<IpAddr>) = ready.into_iter().unzip();
    emitter.emit(Event::WorkersReady { task: name.clone(), addresses: addresses.clone() });

    // 4. The worker list as a file, for the probe and the master.
    let config = ConfigSpec {
        name: format!("{name}_workers"),
        data: addresses.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes(),
        labels: labels_for(Role::Master, record.deploy_id()),
        ..ConfigSpec::default()
    };
    let config_id = cluster.create_config(&config).await?;
    record.push(ResourceKind::Config, config_id.clone());
    let workers_file =
        ConfigMount { config_id, config_name: config.name, target: WORKERS_FILE.into(), mode: ConfigMount::READ_ONLY };

    // 5. Probe.
    if let Some(wait_command) = task.wait_command() {
        let probe_labels = labels_for(Role::Probe, record.deploy_id());
        probe::run(ctx, task, wait_command, &network, &addresses, probe_labels, &workers_file, record, emitter).await?;
    }

    // 6. Delay.
    if !task.delay().is_zero() {
        emitter.emit(Event::Delay { task: name.clone(), duration: task.delay() });
        tokio::time::sleep(task.delay()).await;
    }

    // 7. Master, with the worker list in its environment and as a file.
    let mut master = service_spec(task, Role::Master, task.master(), task.master_service_name(), &network);
    master.labels = with_service_labels(labels_for(Role::Master, record.deploy_id()), task.master());
    master.container_labels = master.labels.clone();
    master_data.apply_to(&mut master);
    master.env.extend(worker_list_env(&addresses));
    master.env.push(("ATQ_WORKER_COUNT".into(), replicas.to_string()));
    master.env.push(("ATQ_WORKER_INDEXES".into(), comma_list(&indexes)));
    if let Some(dir) = task.artifacts() {
        master.env.push(("ATQ_RESULTS_DIR".into(), dir.into()));
    }
    // Artifacts are read from the master's container, and only the engine that runs a container
    // can read its files: on a multi-node swarm the master must run on the node atq talks to.
    master.placement.local_node = task.artifacts().is_some();
    master.configs.push(workers_file);
    let id = create_service(cluster, task, &master).await?;
    record.push(ResourceKind::Service, id);
    emitter.emit(Event::MasterCreated { task: name.clone(), service: master.name.clone() });

    // 8. Wait until the master runs (or has already finished: a fast master is no failure).
    wait::replicas_until(
        cluster,
        &master.name,
        &network,
        ctx.poll,
        Some(wait::deadline_in(task.start_timeout())),
        Phase::Master,
        conditions::started(&master.name),
    )
    .await?;
    emitter.emit(Event::MasterRunning { task: name });
    Ok(addresses)
}

async fn create_service(cluster: &dyn crate::cluster::Cluster, task: &Task, spec: &ServiceSpec) -> Result<String> {
    cluster.create_service(spec).await.map_err(|e| match e {
        Error::Conflict { .. } => Error::TaskExists { name: task.name().to_owned() },
        other => other,
    })
}

/// The service's own labels on top of atq's, and the replica count `list` reads back.
fn with_service_labels(
    mut labels: std::collections::BTreeMap<String, String>,
    service: &Service,
) -> std::collections::BTreeMap<String, String> {
    for (k, v) in &service.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    labels.insert(labels::REPLICAS.into(), service.replicas.to_string());
    labels
}

/// The engine spec of a worker or master service (labels are added by the caller).
fn service_spec(task: &Task, role: Role, service: &Service, name: String, network: &str) -> ServiceSpec {
    let mut env = service.environment.clone();
    env.push(("ATQ_TASK".into(), task.name().into()));
    env.push(("ATQ_ROLE".into(), role.as_str().into()));
    let mut slot_env = Vec::new();
    if role == Role::Worker {
        env.push(("MASTER_HOST".into(), task.master_service_name()));
        env.push(("ATQ_WORKER_COUNT".into(), service.replicas.to_string()));
        // 1-based, the engine's replica slot: see the crate docs on the worker index.
        slot_env.push("ATQ_WORKER_INDEX".into());
    }
    ServiceSpec {
        name,
        image: service.image.clone(),
        replicas: service.replicas,
        env,
        slot_env,
        args: service.args.clone(),
        command: service.command.clone(),
        tty: service.tty,
        networks: vec![network.to_owned()],
        endpoint_mode: service.endpoint_mode,
        health_check: service.health_check.clone(),
        resources: service.resources,
        placement: Placement { local_node: false, constraints: service.constraints.clone() },
        stop_grace_period: Some(service.stop_grace_period),
        ..ServiceSpec::default()
    }
}

/// `WORKER_CSV_VIPS` and `REMOTES` (the list as ATQ-Director passed it) when it fits in one
/// environment string, and always `ATQ_WORKERS_FILE` naming the file that has it.
pub(crate) fn worker_list_env(addresses: &[IpAddr]) -> Vec<(String, String)> {
    let list = comma_list(addresses);
    let mut env = Vec::with_capacity(3);
    if list.len() <= MAX_ENV_LIST_BYTES {
        env.push(("WORKER_CSV_VIPS".into(), list.clone()));
        env.push(("REMOTES".into(), list));
    } else {
        tracing::warn!(bytes = list.len(), "worker list too long for the environment; read {WORKERS_FILE}");
    }
    env.push(("ATQ_WORKERS_FILE".into(), WORKERS_FILE.into()));
    env
}

/// `a,b,c`.
fn comma_list<T: std::fmt::Display>(items: &[T]) -> String {
    let mut out = String::with_capacity(items.len() * 16);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_list_is_comma_separated_in_slot_order() {
        let a: Vec<IpAddr> = vec!["10.0.0.3".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(comma_list(&a), "10.0.0.3,10.0.0.2");
        assert_eq!(comma_list::<IpAddr>(&[]), "");
    }

    #[test]
    fn a_worker_list_too_long_for_the_environment_is_only_in_the_file() {
        let many: Vec<IpAddr> =
            (0..10_000u32).map(|i| IpAddr::from([100, 200, 100 + (i >> 8) as u8, 100 + (i % 100) as u8])).collect();
        let env = worker_list_env(&many);
        assert!(!env.iter().any(|(k, _)| k == "WORKER_CSV_VIPS"));
        assert_eq!(env, [("ATQ_WORKERS_FILE".to_string(), WORKERS_FILE.to_string())]);
        let few = worker_list_env(&many[..3]);
        assert!(few
            .iter()
            .any(|(k, v)| k == "WORKER_CSV_VIPS" && v == "100.200.100.100,100.200.100.101,100.200.100.102"));
    }
}
