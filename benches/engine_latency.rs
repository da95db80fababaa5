//! atq's deploy on a real engine, against the engine's own floor and the docker CLI.
//!
//! Run by hand (never in CI; it needs a swarm manager and `atq-test/busybox:latest`, which
//! `tests/images/build.sh` builds):
//!
//! ```text
//! cargo run -p atq-benches --profile bench --bin engine-latency -- [--rounds 3] [--sizes 1,10]
//! ```
//!
//! For each round and each N, it times, one after the other (A B C A B C …):
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
use atq_core::cluster::{Cluster, LabelSelector, ResourceKind};
use atq_core::{Director, Error, PollInterval, Service, SwarmCluster, Task};
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    InspectNetworkOptions, ListConfigsOptions, ListContainersOptions, ListNetworksOptions, ListServicesOptions,
    ListTasksOptions,
};
use bollard::Docker;

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
}

fn args() -> Res<Args> {
    let mut args = Args { rounds: 3, sizes: vec![1, 10], image: "atq-test/busybox:latest".into(), atq_poll: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => args.rounds = value()?.parse()?,
            "--sizes" => args.sizes = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--image" => args.image = value()?,
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
                println!("engine-latency [--rounds R] [--sizes 1,10] [--image IMG] [--atq-poll MIN_MS,MAX_MS]");
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
    let cluster = SwarmCluster::connect().await?;
    let mut director = Director::new(cluster.clone());
    if let Some(poll) = args.atq_poll {
        director = director.with_poll_interval(poll);
    }
    println!(
        "engine {} (API {}), {} cores, load before: {}",
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    cleanup(&docker, &bench_label()).await?;

    let methods = ["atq", "floor", "cli"];
    let mut deploys: HashMap<(u32, &str), Vec<Duration>> = HashMap::new();
    let mut teardowns: HashMap<(u32, &str), Vec<Duration>> = HashMap::new();
    for round in 1..=args.rounds {
        for &n in &args.sizes {
            for method in methods {
                let name = format!("bench-{method}-{n}-{round}");
                let result = match method {
                    "atq" => atq_deploy(&director, &cluster, &docker, &name, &args.image, n).await,
                    "floor" => floor_deploy(&docker, &name, &args.image, n).await,
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
        for method in methods {
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
        let failed = missing_image(&director, &cluster, &docker, &format!("bench-missing-{round}")).await?;
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
    cluster: &SwarmCluster,
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
async fn wait_atq_gone(cluster: &SwarmCluster, docker: &Docker, name: &str) -> Res<()> {
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
async fn missing_image(director: &Director, cluster: &SwarmCluster, docker: &Docker, name: &str) -> Res<Duration> {
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
        let networks = docker.list_networks(Some(ListNetworksOptions { filters: Some(filters.clone()) })).await?;
        for net in &networks {
            if let Some(id) = &net.id {
                // Fails while containers still stop; the next turn retries.
                let _ = docker.remove_network(id).await;
            }
        }
        let left = services.len() + configs.len() + networks.len() + containers(docker, label).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{left} objects labelled {label} still there after {DEPLOY_LIMIT:?}").into());
        }
        tokio::time::sleep(FLOOR_POLL).await;
    }
}
