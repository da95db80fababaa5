//! atq's deploy on a real engine, against the engine's own floor and the docker CLI.
//!
//! Run by hand (never in CI; it needs a swarm manager and `atq-test/busybox:latest`, which
//! `tests/images/build.sh` builds):
//!
//! ```text
//! cargo run -p atq-benches --profile bench --bin engine-latency -- [--rounds 3] [--sizes 1,10] [--backend swarm|docker]
//! ```
//!
//! With `--backend docker` (the plain backend), for each round and each N, one after the other:
//! - (a) `atq`: `Director::deploy` on a `DockerCluster` until the master runs;
//! - (b) `floor`: the same containers made straight on the Engine API: a bridge network, N
//!   worker containers created and started concurrently (restart policy "no", an alias), poll
//!   `GET /containers/json` every 20 ms until all run with an address, the master container with
//!   `WORKER_CSV_VIPS`, poll until it runs;
//! - (c) `floor+file`: the floor, plus the one thing atq's master gets that (b)'s does not: the
//!   worker list as the file `/atq/workers`, copied in before start (`PUT /containers/{id}/archive`).
//!
//! With `--backend swarm` (the default), for each round and each N, one after the other (A B C A B C …):
//! - (a) `atq`: `Director::deploy` until the master runs (then `teardown`, timed separately);
//! - (b) `floor`: the same steps straight on the Engine API with bollard and no atq logic:
//!   network, worker service (dnsrr), poll `GET /tasks` every 20 ms until N run, read the
//!   addresses (network inspect, verbose), master service with the list, poll until it runs;
//! - (c) `cli`: the same as a user would script it: `docker network create`,
//!   `docker service create --detach=false` for the workers, `docker network inspect -v` for
//!   the addresses, then the master.
//!
//! After each deploy everything is removed, and the next one starts only once the engine shows
//! nothing left (no service, network or container), so one deploy's cleanup never slows the
//! next. Then it times a missing image failing atq's deploy. Everything (b) and (c) create
//! carries `io.atq.bench=true` and is removed on every path, also when a step fails.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use atq_benches::{load_average, ms, Summary};
use std::sync::Arc;

use atq_core::cluster::{Backend, Cluster, LabelSelector, ResourceKind};
use atq_core::{Director, DockerCluster, Error, PollInterval, Service, SwarmCluster, Task};
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, EndpointSpec, EndpointSpecModeEnum, HostConfig,
    NetworkAttachmentConfig, NetworkCreateRequest, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectNetworkOptions, ListConfigsOptions, ListContainersOptions, ListNetworksOptions,
    ListServicesOptions, ListTasksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StartContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::future::try_join_all;

/// The label on everything (b) and (c) create.
const BENCH_LABEL: &str = "io.atq.bench";
/// The floor's polling interval.
const FLOOR_POLL: Duration = Duration::from_millis(20);
/// Longest any deploy may take before the harness gives up.
const DEPLOY_LIMIT: Duration = Duration::from_secs(120);
/// A worker/master that runs until stopped and stops at once on SIGTERM (a bare `sleep` as
/// PID 1 ignores it, and every teardown would wait the 10 s stop grace period).
const RUN_FOREVER: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

struct Args {
    rounds: usize,
    sizes: Vec<u32>,
    image: String,
    /// Poll interval for atq (`--atq-poll MIN,MAX` in ms); the director's default otherwise.
    atq_poll: Option<PollInterval>,
    /// Which backend (`--backend swarm|docker`).
    backend: Backend,
}

fn args() -> Res<Args> {
    let mut args = Args {
        rounds: 3,
        sizes: vec![1, 10],
        image: "atq-test/busybox:latest".into(),
        atq_poll: None,
        backend: Backend::Swarm,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => args.rounds = value()?.parse()?,
            "--sizes" => args.sizes = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--image" => args.image = value()?,
            "--backend" => {
                args.backend = match value()?.as_str() {
                    "swarm" => Backend::Swarm,
                    "docker" => Backend::Docker,
                    other => return Err(format!("--backend swarm|docker, not {other}").into()),
                }
            }
            "--atq-poll" => {
                let v = value()?;
                let (min, max) = v.split_once(',').ok_or("--atq-poll MIN_MS,MAX_MS")?;
                args.atq_poll = Some(PollInterval {
                    min: Duration::from_millis(min.parse()?),
                    max: Duration::from_millis(max.parse()?),
                });
            }
            "--bench" => {} // what `cargo bench` passes
            "-h" | "--help" => {
                println!(
                    "engine-latency [--rounds R] [--sizes 1,10] [--image IMG] [--atq-poll MIN_MS,MAX_MS] [--backend swarm|docker]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Res<()> {
    let args = args()?;
    let docker = Docker::connect_with_local_defaults()?;
    let version = docker.version().await?;
    let cluster: Arc<dyn Cluster> = match args.backend {
        Backend::Swarm => Arc::new(SwarmCluster::connect().await?),
        _ => Arc::new(DockerCluster::connect().await?),
    };
    let mut director = Director::from_arc(cluster.clone());
    if let Some(poll) = args.atq_poll {
        director = director.with_poll_interval(poll);
    }
    println!(
        "{} backend, engine {} (API {}), {} cores, load before: {}",
        args.backend,
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    cleanup(&docker, &bench_label()).await?;

    let methods: &[&str] =
        if args.backend == Backend::Swarm { &["atq", "floor", "cli"] } else { &["atq", "floor", "floor+file"] };
    let mut deploys: HashMap<(u32, &str), Vec<Duration>> = HashMap::new();
    let mut teardowns: HashMap<(u32, &str), Vec<Duration>> = HashMap::new();
    for round in 1..=args.rounds {
        for &n in &args.sizes {
            for &method in methods {
                let name = format!("bench-{}-{n}-{round}", method.replace('+', "-"));
                let result = match (method, args.backend) {
                    ("atq", _) => atq_deploy(&director, &*cluster, &docker, &name, &args.image, n).await,
                    ("floor", Backend::Swarm) => floor_deploy(&docker, &name, &args.image, n).await,
                    ("floor", _) => plain_floor_deploy(&docker, &name, &args.image, n, false).await,
                    ("floor+file", _) => plain_floor_deploy(&docker, &name, &args.image, n, true).await,
                    _ => cli_deploy(&docker, &name, &args.image, n).await,
                };
                // Whatever happened, nothing of this run may be left for the next.
                cleanup(&docker, &bench_label()).await?;
                cleanup(&docker, &format!("io.atq.task={name}")).await?;
                let (deploy, teardown) = result?;
                println!(
                    "round {round} N={n:<3} {method:<5} deploy {:>7} ms  teardown {:>7} ms  (load {})",
                    ms(deploy),
                    ms(teardown),
                    load_average()
                );
                deploys.entry((n, method)).or_default().push(deploy);
                teardowns.entry((n, method)).or_default().push(teardown);
            }
        }
    }

    println!(
        "\n| N | method | deploy median (ms) | min–max (ms) | ratio to floor | teardown median (ms) | min–max (ms) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &n in &args.sizes {
        let floor = Summary::of(&deploys[&(n, "floor")]).expect("floor timings");
        for &method in methods {
            let d = Summary::of(&deploys[&(n, method)]).expect("timings");
            let t = Summary::of(&teardowns[&(n, method)]).expect("timings");
            println!(
                "| {n} | {method} | {} | {}–{} | {:.2} | {} | {}–{} |",
                ms(d.median),
                ms(d.min),
                ms(d.max),
                d.ratio(&floor),
                ms(t.median),
                ms(t.min),
                ms(t.max)
            );
        }
    }

    let mut missing = Vec::new();
    for round in 1..=args.rounds {
        let failed = missing_image(&director, &*cluster, &docker, &format!("bench-missing-{round}")).await?;
        println!("round {round} missing image: deploy failed after {} ms", ms(failed));
        missing.push(failed);
    }
    let m = Summary::of(&missing).expect("timings");
    println!("\nmissing image fails the deploy: median {} ms, {}–{} ms", ms(m.median), ms(m.min), ms(m.max));
    println!("load after: {}", load_average());
    Ok(())
}

/// (a) atq: deploy until the master runs; then teardown until the engine shows nothing left.
async fn atq_deploy(
    director: &Director,
    cluster: &dyn Cluster,
    docker: &Docker,
    name: &str,
    image: &str,
    n: u32,
) -> Res<(Duration, Duration)> {
    let task = Task::builder(name)
        .workers(Service::new(image).replicas(n).command(["sh", "-c"]).args([RUN_FOREVER]))
        .master(Service::new(image).command(["sh", "-c"]).args([RUN_FOREVER]))
        .build()?;
    let mut events = director.subscribe();
    let start = Instant::now();
    let stamps = tokio::spawn(async move {
        let mut stamps = Vec::new();
        while let Ok(e) = events.recv().await {
            let name = format!("{e:?}").split([' ', '{', '(']).next().unwrap_or_default().to_string();
            let done = name == "MasterRunning" || name == "RollingBack";
            stamps.push((name, start.elapsed()));
            if done {
                break;
            }
        }
        stamps
    });
    let deployment = tokio::time::timeout(DEPLOY_LIMIT, director.deploy(&task)).await??;
    let deploy = start.elapsed();
    let stamps = tokio::time::timeout(Duration::from_secs(1), stamps).await.unwrap_or_else(|_| Ok(Vec::new()))?;
    phases("atq", &stamps);
    if deployment.workers().len() != n as usize {
        return Err(format!("atq returned {} addresses for {n} workers", deployment.workers().len()).into());
    }
    let start = Instant::now();
    deployment.teardown().await?;
    wait_atq_gone(cluster, docker, name).await?;
    Ok((deploy, start.elapsed()))
}

/// Prints when each phase of a deploy ended (ms since its start), with `ATQ_BENCH_PHASES=1`.
fn phases(method: &str, stamps: &[(String, Duration)]) {
    if std::env::var_os("ATQ_BENCH_PHASES").is_none() {
        return;
    }
    let mut line = format!("  {method:<5} phases:");
    let mut last = None;
    for (name, at) in stamps {
        // WorkersRunning repeats as replicas come up: keep the last of a run.
        if last == Some(name) && name == "WorkersRunning" && std::env::var_os("ATQ_BENCH_PHASES_ALL").is_none() {
            line.truncate(line.rfind(' ').unwrap_or(line.len()));
        }
        line.push_str(&format!(" {name}={}", ms(*at)));
        last = Some(name);
    }
    println!("{line}");
}

/// Waits until the engine shows nothing of the atq task `name`: no service, config, network
/// (by label) and no container.
async fn wait_atq_gone(cluster: &dyn Cluster, docker: &Docker, name: &str) -> Res<()> {
    let selector = LabelSelector::new().eq("io.atq.task", name);
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        let mut left = 0;
        for kind in [ResourceKind::Service, ResourceKind::Config, ResourceKind::Network] {
            left += cluster.list_resources(kind, &selector).await?.len();
        }
        left += containers(docker, &format!("io.atq.task={name}")).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{left} objects of {name} still there").into());
        }
        tokio::time::sleep(FLOOR_POLL).await;
    }
}

/// How long a task whose image does not exist takes to fail atq's deploy.
async fn missing_image(director: &Director, cluster: &dyn Cluster, docker: &Docker, name: &str) -> Res<Duration> {
    let task = Task::builder(name)
        .workers(Service::new("atq-bench/no-such-image:0").replicas(1))
        .master(Service::new("atq-bench/no-such-image:0"))
        .build()?;
    let start = Instant::now();
    let result = tokio::time::timeout(DEPLOY_LIMIT, director.deploy(&task)).await?;
    let failed = start.elapsed();
    let gone = wait_atq_gone(cluster, docker, name).await;
    cleanup(docker, &format!("io.atq.task={name}")).await?;
    gone?;
    match result {
        Err(Error::ReplicaFailed { message, .. }) => {
            println!("  ({message})");
            Ok(failed)
        }
        Err(other) => Err(format!("unexpected error for a missing image: {other}").into()),
        Ok(deployment) => {
            deployment.teardown().await?;
            Err("a missing image deployed".into())
        }
    }
}

fn labels() -> HashMap<String, String> {
    HashMap::from([(BENCH_LABEL.to_string(), "true".to_string())])
}

fn service_spec(name: &str, image: &str, network: &str, replicas: u32, env: Vec<String>) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.to_string()),
        labels: Some(labels()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_string()),
                command: Some(vec!["sh".into(), "-c".into()]),
                args: Some(vec![RUN_FOREVER.into()]),
                env: Some(env),
                labels: Some(labels()),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig { target: Some(network.to_string()), ..Default::default() }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::from(replicas)) }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ..Default::default() }),
        ..Default::default()
    }
}

/// Polls the service's tasks every [`FLOOR_POLL`] until `n` run; fails on a failed task.
async fn floor_wait_running(docker: &Docker, service: &str, n: usize) -> Res<()> {
    let options = ListTasksOptions { filters: Some(HashMap::from([("service".into(), vec![service.to_string()])])) };
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        let tasks = docker.list_tasks(Some(options.clone())).await?;
        let mut running = 0;
        for t in &tasks {
            match t.status.as_ref().and_then(|s| s.state) {
                Some(TaskState::RUNNING) => running += 1,
                Some(TaskState::FAILED | TaskState::REJECTED) => {
                    let err = t.status.as_ref().and_then(|s| s.err.clone()).unwrap_or_default();
                    return Err(format!("{service}: task failed: {err}").into());
                }
                _ => {}
            }
        }
        if running >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{service}: {running}/{n} running after {DEPLOY_LIMIT:?}").into());
        }
        tokio::time::sleep(FLOOR_POLL).await;
    }
}

/// The worker service's addresses on `network`, from the network's verbose inspect.
async fn floor_addresses(docker: &Docker, network: &str, service: &str) -> Res<Vec<IpAddr>> {
    let inspect = docker.inspect_network(network, Some(InspectNetworkOptions { verbose: true, scope: None })).await?;
    let tasks = inspect
        .services
        .unwrap_or_default()
        .remove(service)
        .and_then(|s| s.get("Tasks").cloned())
        .and_then(|t| t.as_array().cloned())
        .unwrap_or_default();
    Ok(tasks.iter().filter_map(|t| t.get("EndpointIP")?.as_str()?.parse().ok()).collect())
}

/// (b) the floor: the same steps on the Engine API, with no atq logic.
async fn floor_deploy(docker: &Docker, name: &str, image: &str, n: u32) -> Res<(Duration, Duration)> {
    let network = format!("{name}_net");
    let workers = format!("{name}_worker");
    let master = format!("{name}_master");
    let start = Instant::now();
    let mut stamps = Vec::new();
    let mut stamp = |name: &str| stamps.push((name.to_string(), start.elapsed()));
    docker
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels()),
            ..Default::default()
        })
        .await?;
    stamp("NetworkCreated");
    docker.create_service(service_spec(&workers, image, &network, n, vec![]), None).await?;
    stamp("WorkersCreated");
    floor_wait_running(docker, &workers, n as usize).await?;
    stamp("WorkersRunning");
    let mut addresses = floor_addresses(docker, &network, &workers).await?;
    while addresses.len() < n as usize {
        // The endpoints can trail the running state by a moment.
        tokio::time::sleep(FLOOR_POLL).await;
        addresses = floor_addresses(docker, &network, &workers).await?;
    }
    stamp("WorkersReady");
    let list = addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    docker
        .create_service(service_spec(&master, image, &network, 1, vec![format!("WORKER_CSV_VIPS={list}")]), None)
        .await?;
    stamp("MasterCreated");
    floor_wait_running(docker, &master, 1).await?;
    stamp("MasterRunning");
    let deploy = start.elapsed();
    phases("floor", &stamps);

    let start = Instant::now();
    cleanup(docker, &bench_label()).await?;
    Ok((deploy, start.elapsed()))
}

/// A container of the plain floor: `RUN_FOREVER`, restart policy "no", on `network` with `alias`.
fn floor_container(image: &str, network: &str, alias: &str, env: Vec<String>) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![RUN_FOREVER.into()]),
        env: Some(env),
        labels: Some(labels()),
        host_config: Some(HostConfig {
            restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings { aliases: Some(vec![alias.to_string()]), ..Default::default() },
            )])),
        }),
        ..Default::default()
    }
}

/// Creates and starts `n` containers `<name>.<slot>` concurrently, with `archive` (a tar) unpacked
/// at `/` in each before it starts.
async fn floor_containers(
    docker: &Docker,
    name: &str,
    n: u32,
    body: &ContainerCreateBody,
    archive: Option<&[u8]>,
) -> Res<()> {
    try_join_all((1..=n).map(|slot| async move {
        let options = CreateContainerOptions { name: Some(format!("{name}.{slot}")), ..Default::default() };
        let created = docker.create_container(Some(options), body.clone()).await?;
        if let Some(archive) = archive {
            let options = UploadToContainerOptions { path: "/".into(), ..Default::default() };
            docker.upload_to_container(&created.id, Some(options), bollard::body_full(archive.to_vec().into())).await?;
        }
        docker.start_container(&created.id, None::<StartContainerOptions>).await?;
        Ok::<(), BoxError>(())
    }))
    .await?;
    Ok(())
}

/// Polls `GET /containers/json` every [`FLOOR_POLL`] until the `n` containers named
/// `<prefix>.…` run with an address on `network`; returns the addresses.
async fn floor_wait_containers(docker: &Docker, prefix: &str, network: &str, n: usize) -> Res<Vec<IpAddr>> {
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("name".into(), vec![format!("^/{prefix}\\.")])])),
            ..Default::default()
        };
        let running: Vec<IpAddr> = docker
            .list_containers(Some(options))
            .await?
            .iter()
            .filter(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING))
            .filter_map(|c| {
                c.network_settings.as_ref()?.networks.as_ref()?.get(network)?.ip_address.as_deref()?.parse().ok()
            })
            .collect();
        if running.len() >= n {
            return Ok(running);
        }
        if Instant::now() > deadline {
            return Err(format!("{prefix}: {}/{n} running after {DEPLOY_LIMIT:?}", running.len()).into());
        }
        tokio::time::sleep(FLOOR_POLL).await;
    }
}

/// A tar holding `atq/workers`: one address per line, as atq's master gets it.
fn workers_file(addresses: &[IpAddr]) -> Res<Vec<u8>> {
    let data: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o444);
    header.set_size(data.len() as u64);
    builder.append_data(&mut header, "atq/workers", data.as_bytes())?;
    Ok(builder.into_inner()?)
}

/// (b) on a plain engine: the same containers as atq's, straight on the Engine API.
async fn plain_floor_deploy(docker: &Docker, name: &str, image: &str, n: u32, file: bool) -> Res<(Duration, Duration)> {
    let network = format!("{name}_net");
    let workers = format!("{name}_worker");
    let master = format!("{name}_master");
    let start = Instant::now();
    let mut stamps = Vec::new();
    let mut stamp = |name: &str| stamps.push((name.to_string(), start.elapsed()));
    docker
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels()),
            ..Default::default()
        })
        .await?;
    stamp("NetworkCreated");
    floor_containers(docker, &workers, n, &floor_container(image, &network, &workers, vec![]), None).await?;
    stamp("WorkersCreated");
    let addresses = floor_wait_containers(docker, &workers, &network, n as usize).await?;
    stamp("WorkersReady");
    let list = addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let body = floor_container(image, &network, &master, vec![format!("WORKER_CSV_VIPS={list}")]);
    let archive = if file { Some(workers_file(&addresses)?) } else { None };
    floor_containers(docker, &master, 1, &body, archive.as_deref()).await?;
    stamp("MasterCreated");
    floor_wait_containers(docker, &master, &network, 1).await?;
    stamp("MasterRunning");
    let deploy = start.elapsed();
    phases("floor", &stamps);
    let start = Instant::now();
    cleanup(docker, &bench_label()).await?;
    Ok((deploy, start.elapsed()))
}

/// Runs `docker ARGS`; fails with its stderr when it fails.
async fn docker_cli(args: &[&str]) -> Res<String> {
    let out = tokio::process::Command::new("docker").args(args).stdin(Stdio::null()).output().await?;
    if !out.status.success() {
        return Err(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (c) the docker CLI, as a user would script it.
async fn cli_deploy(docker: &Docker, name: &str, image: &str, n: u32) -> Res<(Duration, Duration)> {
    let network = format!("{name}_net");
    let workers = format!("{name}_worker");
    let master = format!("{name}_master");
    let label = bench_label();
    let replicas = n.to_string();
    let start = Instant::now();
    docker_cli(&["network", "create", "--driver", "overlay", "--attachable", "--label", &label, &network]).await?;
    #[rustfmt::skip]
    docker_cli(&[
        "service", "create", "--detach=false", "--quiet", "--name", &workers, "--network", &network,
        "--endpoint-mode", "dnsrr", "--replicas", &replicas, "--restart-condition", "none",
        "--label", &label, "--container-label", &label, image, "sh", "-c", RUN_FOREVER,
    ])
    .await?;
    let format = format!("{{{{range (index .Services \"{workers}\").Tasks}}}}{{{{.EndpointIP}}}},{{{{end}}}}");
    let list = docker_cli(&["network", "inspect", "--verbose", "--format", &format, &network]).await?;
    let env = format!("WORKER_CSV_VIPS={}", list.trim().trim_end_matches(','));
    #[rustfmt::skip]
    docker_cli(&[
        "service", "create", "--detach=false", "--quiet", "--name", &master, "--network", &network,
        "--restart-condition", "none", "--env", &env,
        "--label", &label, "--container-label", &label, image, "sh", "-c", RUN_FOREVER,
    ])
    .await?;
    let deploy = start.elapsed();
    if list.trim().trim_end_matches(',').split(',').count() != n as usize {
        return Err(format!("the CLI read {list:?} for {n} workers").into());
    }
    let start = Instant::now();
    cleanup(docker, &bench_label()).await?;
    Ok((deploy, start.elapsed()))
}

/// How many containers (running or not) carry `label`.
async fn containers(docker: &Docker, label: &str) -> Res<usize> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".into(), vec![label.to_string()])])),
        ..Default::default()
    };
    Ok(docker.list_containers(Some(options)).await?.len())
}

fn bench_label() -> String {
    format!("{BENCH_LABEL}=true")
}

/// Removes everything labelled `label` (`k=v`): services, then configs and networks; and waits
/// until the engine shows none of it, containers included.
async fn cleanup(docker: &Docker, label: &str) -> Res<()> {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        let options = ListServicesOptions { filters: Some(filters.clone()), status: None };
        let services = docker.list_services(Some(options)).await?;
        for s in &services {
            if let Some(id) = &s.id {
                let _ = docker.delete_service(id).await;
            }
        }
        let configs = docker.list_configs(Some(ListConfigsOptions { filters: Some(filters.clone()) })).await?;
        for c in &configs {
            if let Some(id) = &c.id {
                // Fails while a service still mounts it; the next turn retries.
                let _ = docker.delete_config(id).await;
            }
        }
        let options = ListContainersOptions { all: true, filters: Some(filters.clone()), ..Default::default() };
        for c in docker.list_containers(Some(options)).await? {
            if let Some(id) = &c.id {
                let _ = docker
                    .remove_container(id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                    .await;
            }
        }
        let networks = docker.list_networks(Some(ListNetworksOptions { filters: Some(filters.clone()) })).await?;
        for net in &networks {
            if let Some(id) = &net.id {
                // Fails while containers still stop; the next turn retries.
                let _ = docker.remove_network(id).await;
            }
        }
        // The plain backend's network locks and configs.
        let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(filters.clone()) })).await?;
        let volumes = volumes.volumes.unwrap_or_default();
        for v in &volumes {
            let _ = docker.remove_volume(&v.name, None::<RemoveVolumeOptions>).await;
        }
        let left = services.len() + configs.len() + networks.len() + volumes.len() + containers(docker, label).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{left} objects labelled {label} still there after {DEPLOY_LIMIT:?}").into());
        }
        tokio::time::sleep(FLOOR_POLL).await;
    }
}
