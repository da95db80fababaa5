//! Both backends through the `Cluster` trait, on the real engine: the same rules on each.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use atq_core::cluster::{
    Cluster, ConfigMount, ConfigSpec, LabelSelector, LogSource, Mount, MountKind, NetworkSpec, ReplicaState,
    ResourceKind, ServiceSpec,
};
use atq_core::service::HealthCheck;
use atq_core::{DockerCluster, Error, SwarmCluster};
use atq_tests::*;

/// A network of the scope.
async fn network(scope: &Scope, name: &str) -> String {
    let spec = NetworkSpec { name: name.to_string(), labels: scope.labels(), attachable: true, capacity: 16 };
    scope.cluster.create_network(&spec).await.expect("create network");
    name.to_string()
}

/// A busybox service of the scope running `script` with `sh -c`.
fn shell_service(scope: &Scope, name: &str, network: &str, replicas: u32, script: &str) -> ServiceSpec {
    ServiceSpec {
        name: name.to_string(),
        image: BUSYBOX.to_string(),
        replicas,
        command: Some(vec!["sh".into(), "-c".into()]),
        args: vec![script.to_string()],
        networks: vec![network.to_string()],
        labels: scope.labels(),
        container_labels: scope.labels(),
        ..Default::default()
    }
}

async fn connecting_to_an_unreachable_engine_fails_fast(backend: Backend) {
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let (result, took) = timed(async {
            match backend {
                Backend::Swarm => SwarmCluster::connect_with(host).await.map(|_| ()),
                _ => DockerCluster::connect_with(host).await.map(|_| ()),
            }
        })
        .await;
        match result {
            Err(Error::EngineUnreachable { host: h, .. }) => assert_eq!(h, host),
            other => panic!("{host}: expected EngineUnreachable, got {other:?}"),
        }
        assert!(took < Duration::from_secs(1), "{host}: took {took:?}");
    }
}

async fn info_reports_a_ready_engine_of_its_backend(backend: Backend) {
    let cluster = cluster(backend).await;
    let info = cluster.info().await.unwrap();
    assert_eq!(info.backend, backend, "{info:?}");
    if backend == Backend::Swarm {
        assert!(info.details.iter().any(|(k, v)| k == "swarm" && v.starts_with("active, manager")), "{info:?}");
    } else {
        assert_eq!((info.nodes_ready, info.nodes_total), (1, 1), "{info:?}");
        assert!(info.details.iter().any(|(k, v)| k == "engine" && v.starts_with("plain Docker")), "{info:?}");
    }
    assert!(info.nodes_ready >= 1 && info.nodes_ready <= info.nodes_total, "{info:?}");
    assert!(info.local_node.as_deref().is_some_and(|n| !n.is_empty()) && !info.version.is_empty());
    assert!(info.api_version.starts_with("1."), "{info:?}");
    assert!(info.max_config_bytes >= 500 * 1024, "{info:?}");
}

async fn a_network_name_is_a_lock_until_removed(backend: Backend) {
    let scope = Scope::new(backend, "net").await;
    let name = unique("net");
    let spec = NetworkSpec { name: name.clone(), labels: scope.labels(), attachable: true, capacity: 16 };
    scope.cluster.create_network(&spec).await.unwrap();
    match scope.cluster.create_network(&spec).await {
        Err(Error::Conflict { kind: "network", name: n }) => assert_eq!(n, name),
        other => panic!("second create: {other:?}"),
    }
    assert_eq!(scope.leftovers(ResourceKind::Network).await, std::slice::from_ref(&name));
    scope.cluster.remove_network(&name).await.unwrap();
    assert!(scope.leftovers(ResourceKind::Network).await.is_empty());
    assert!(scope.cluster.remove_network(&name).await.unwrap_err().is_not_found());
    // Released: the name can be taken again at once.
    scope.cluster.create_network(&spec).await.unwrap();
    scope.cluster.remove_network(&name).await.unwrap();
}

async fn racing_network_creates_have_exactly_one_winner(backend: Backend) {
    let scope = Scope::new(backend, "race").await;
    let spec = NetworkSpec { name: unique("race"), labels: scope.labels(), attachable: true, capacity: 16 };
    let results = futures_util::future::join_all((0..4).map(|_| scope.cluster.create_network(&spec))).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(Error::Conflict { .. }))).count();
    assert_eq!((won, conflicts), (1, 3), "{results:?}");
}

async fn a_second_service_of_the_same_name_is_a_conflict(backend: Backend) {
    let scope = Scope::new(backend, "svcdup").await;
    let net = network(&scope, &unique("svcdup")).await;
    let spec = shell_service(&scope, &unique("svcdup"), &net, 1, RUN_UNTIL_STOPPED);
    scope.cluster.create_service(&spec).await.unwrap();
    assert!(matches!(scope.cluster.create_service(&spec).await, Err(Error::Conflict { kind: "service", .. })));
    scope.cluster.remove_service(&spec.name).await.unwrap();
    assert!(scope.cluster.remove_service(&spec.name).await.unwrap_err().is_not_found());
}

async fn three_replicas_run_with_distinct_addresses_in_the_network_subnet(backend: Backend) {
    let scope = Scope::new(backend, "three").await;
    let net = network(&scope, &unique("three")).await;
    let spec = shell_service(&scope, &unique("three"), &net, 3, RUN_UNTIL_STOPPED);
    scope.cluster.create_service(&spec).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_running(3)).await;
    let addresses: BTreeSet<IpAddr> = replicas.iter().filter_map(|r| r.address).collect();
    assert_eq!(addresses.len(), 3, "{replicas:#?}");
    let subnet = subnet(&net);
    assert!(addresses.iter().all(|a| in_subnet(*a, subnet)), "{addresses:?} not in {subnet:?}");
    let slots: Vec<u32> = replicas.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [1, 2, 3]);
    assert!(replicas.iter().all(|r| r.name == format!("{}.{}", spec.name, r.slot) && r.node_id.is_some()));
    assert!(replicas.iter().all(|r| r.exit_code.is_none() && r.error.is_none()), "{replicas:#?}");
}

async fn a_missing_image_is_rejected_within_seconds_naming_the_image(backend: Backend) {
    let scope = Scope::new(backend, "noimg").await;
    let net = network(&scope, &unique("noimg")).await;
    let mut spec = shell_service(&scope, &unique("noimg"), &net, 2, "true");
    spec.image = "atq-test/no-such-image:404".to_string();
    // A swarm accepts the service and rejects its replicas; a plain engine refuses to create
    // the first container: either way the image is named, within seconds.
    let (error, took) = timed(async {
        match scope.cluster.create_service(&spec).await {
            Ok(_) => {
                let replicas = wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(20), |r| {
                    r.iter().any(|r| r.state.is_terminal())
                })
                .await;
                let failed = replicas.iter().find(|r| r.state.is_terminal()).unwrap().clone();
                assert!(matches!(failed.state, ReplicaState::Rejected | ReplicaState::Failed), "{failed:?}");
                failed.error.unwrap_or_default()
            }
            Err(Error::ReplicaFailed { state, message, .. }) => {
                assert_eq!(state, "rejected");
                assert!(scope.leftover_containers().is_empty(), "{:?}", scope.leftover_containers());
                message
            }
            Err(other) => panic!("{other:?}"),
        }
    })
    .await;
    assert!(error.contains("atq-test/no-such-image:404"), "{error}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

async fn exit_code_zero_and_both_output_streams_are_read_back(backend: Backend) {
    let scope = Scope::new(backend, "exit0").await;
    let net = network(&scope, &unique("exit0")).await;
    let script = "echo out-1; sleep 0.1; echo err-1 >&2; sleep 0.1; echo out-2; sleep 0.1; echo err-2 >&2";
    let spec = shell_service(&scope, &unique("exit0"), &net, 1, script);
    scope.cluster.create_service(&spec).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    assert_eq!((replicas[0].state, replicas[0].exit_code), (ReplicaState::Complete, Some(0)), "{replicas:#?}");
    let lines = logs_until(&*scope.cluster, &spec.name, Duration::from_secs(10), |l| l.len() >= 4).await;
    let got: Vec<(LogSource, &str)> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
    assert_eq!(
        got,
        [
            (LogSource::Stdout, "out-1"),
            (LogSource::Stderr, "err-1"),
            (LogSource::Stdout, "out-2"),
            (LogSource::Stderr, "err-2")
        ]
    );
}

async fn a_non_zero_exit_code_is_read_back_with_the_engine_error(backend: Backend) {
    let scope = Scope::new(backend, "exit3").await;
    let net = network(&scope, &unique("exit3")).await;
    let spec = shell_service(&scope, &unique("exit3"), &net, 1, "echo failing >&2; exit 3");
    scope.cluster.create_service(&spec).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let r = &replicas[0];
    assert_eq!((r.state, r.exit_code), (ReplicaState::Failed, Some(3)), "{r:#?}");
    // Swarm says "task: non-zero exit (3)"; a plain engine has no error for a program that ran
    // and exited (its `State.Error` is only for a container that could not run).
    match backend {
        Backend::Swarm => assert!(r.error.as_deref().unwrap_or_default().contains("exit (3)"), "{r:#?}"),
        _ => assert_eq!(r.error, None, "{r:#?}"),
    }
    // Still the same view a while later: the exited task is not dropped as "not running".
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scope.cluster.replicas(&spec.name, &net).await.unwrap(), replicas);
    let lines = logs_until(&*scope.cluster, &spec.name, Duration::from_secs(10), |l| !l.is_empty()).await;
    assert_eq!((lines[0].source, lines[0].text.as_str()), (LogSource::Stderr, "failing"));
}

async fn following_logs_yields_lines_as_they_come(backend: Backend) {
    let scope = Scope::new(backend, "follow").await;
    let net = network(&scope, &unique("follow")).await;
    let script = format!("for i in 1 2 3; do echo line-$i; sleep 0.3; done; {RUN_UNTIL_STOPPED}");
    let spec = shell_service(&scope, &unique("follow"), &net, 1, &script);
    scope.cluster.create_service(&spec).await.unwrap();
    wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_running(1)).await;
    let mut stream = scope.cluster.logs(&spec.name, &atq_core::cluster::LogOptions::follow()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        use futures_util::StreamExt;
        let line = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("a line in time");
        got.push(line.expect("stream open").unwrap().text);
    }
    assert_eq!(got, ["line-1", "line-2", "line-3"]);
}

async fn a_tty_service_logs_to_stdout(backend: Backend) {
    let scope = Scope::new(backend, "tty").await;
    let net = network(&scope, &unique("tty")).await;
    let mut spec = shell_service(&scope, &unique("tty"), &net, 1, "echo to-out; echo to-err >&2");
    spec.tty = true;
    scope.cluster.create_service(&spec).await.unwrap();
    wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let lines = logs_until(&*scope.cluster, &spec.name, Duration::from_secs(10), |l| l.len() >= 2).await;
    let got: Vec<(LogSource, &str)> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
    assert_eq!(got, [(LogSource::Stdout, "to-out"), (LogSource::Stdout, "to-err")]);
}

async fn list_resources_filters_by_label_on_the_engine(backend: Backend) {
    let scope = Scope::new(backend, "labels").await;
    let mut a = scope.labels();
    a.insert("io.atq.role".into(), "a".into());
    let mut b = scope.labels();
    b.insert("io.atq.role".into(), "b".into());
    let (ca, cb) = (unique("cfg-a"), unique("cfg-b"));
    for (name, labels) in [(&ca, &a), (&cb, &b)] {
        let spec = ConfigSpec { name: name.clone(), data: b"x".to_vec(), labels: labels.clone(), ..Default::default() };
        scope.cluster.create_config(&spec).await.unwrap();
    }
    let net = unique("net-a");
    scope
        .cluster
        .create_network(&NetworkSpec { name: net.clone(), labels: a.clone(), attachable: true, capacity: 16 })
        .await
        .unwrap();

    let role_a = scope.selector().eq("io.atq.role", "a");
    let configs = scope.cluster.list_resources(ResourceKind::Config, &role_a).await.unwrap();
    assert_eq!(configs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), [ca.as_str()]);
    assert_eq!(configs[0].labels, a);
    assert!(configs[0].created_unix.is_some_and(|t| t > 1_600_000_000), "{configs:?}");
    let networks = scope.cluster.list_resources(ResourceKind::Network, &role_a).await.unwrap();
    assert_eq!(networks.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), [net.as_str()]);
    let with_role = scope.selector().has("io.atq.role");
    assert_eq!(scope.cluster.list_resources(ResourceKind::Config, &with_role).await.unwrap().len(), 2);
    let nobody = LabelSelector::new().eq(TEST_LABEL, "nobody-has-this");
    assert!(scope.cluster.list_resources(ResourceKind::Config, &nobody).await.unwrap().is_empty());
    assert!(scope.cluster.list_resources(ResourceKind::Service, &scope.selector()).await.unwrap().is_empty());
    assert!(matches!(
        scope
            .cluster
            .create_config(&ConfigSpec { name: ca, data: b"y".to_vec(), labels: a, ..Default::default() })
            .await,
        Err(Error::Conflict { kind: "config", .. })
    ));
}

async fn a_config_is_visible_as_a_file_in_the_container(backend: Backend) {
    let scope = Scope::new(backend, "config").await;
    let net = network(&scope, &unique("config")).await;
    let name = unique("cfg");
    let spec = ConfigSpec {
        name: name.clone(),
        data: b"hello from a config\n".to_vec(),
        labels: scope.labels(),
        ..Default::default()
    };
    let id = scope.cluster.create_config(&spec).await.unwrap();
    let mut service =
        shell_service(&scope, &unique("config"), &net, 1, "cat /atq/data/greeting; ls -ln /atq/data/greeting");
    service.configs = vec![ConfigMount {
        config_id: id,
        config_name: name.clone(),
        target: "/atq/data/greeting".into(),
        mode: ConfigMount::READ_ONLY,
    }];
    scope.cluster.create_service(&service).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &service.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    assert_eq!(replicas[0].exit_code, Some(0), "{replicas:#?}");
    let lines = logs_until(&*scope.cluster, &service.name, Duration::from_secs(10), |l| l.len() >= 2).await;
    assert_eq!(lines[0].text, "hello from a config");
    assert!(lines[1].text.starts_with("-r--r--r--") && lines[1].text.contains(" 0 "), "{lines:?}");
    // In use by a service: the engine refuses; after the service, removal works.
    assert!(scope.cluster.remove_config(&name).await.is_err());
    scope.cluster.remove_service(&service.name).await.unwrap();
    scope.cluster.remove_config(&name).await.unwrap();
    assert!(scope.cluster.remove_config(&name).await.unwrap_err().is_not_found());
}

/// A config mounted with [`ConfigMount::EXECUTABLE`] is a program the replica can run.
async fn an_executable_config_runs_in_the_container(backend: Backend) {
    let scope = Scope::new(backend, "hardening-exec").await;
    let net = network(&scope, &unique("hardening-exec")).await;
    let name = unique("hardening-run");
    let spec = ConfigSpec {
        name: name.clone(),
        data: b"#!/bin/sh\necho ran as $0\nexit 7\n".to_vec(),
        labels: scope.labels(),
        ..ConfigSpec::default()
    };
    let id = scope.cluster.create_config(&spec).await.unwrap();
    let mut service =
        shell_service(&scope, &unique("hardening-exec"), &net, 1, "ls -ln /atq/data/run.sh; /atq/data/run.sh");
    service.configs = vec![ConfigMount {
        config_id: id,
        config_name: name.clone(),
        target: "/atq/data/run.sh".into(),
        mode: ConfigMount::EXECUTABLE,
    }];
    scope.cluster.create_service(&service).await.unwrap();
    let replicas = wait_replicas(&scope.cluster, &service.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let lines = logs_until(&scope.cluster, &service.name, Duration::from_secs(10), |l| l.len() >= 2).await;
    assert_eq!(replicas[0].exit_code, Some(7), "{replicas:#?} {lines:?}");
    assert!(lines[0].text.starts_with("-r-xr-xr-x"), "{lines:?}");
    assert_eq!(lines[1].text, "ran as /atq/data/run.sh");
    scope.cluster.remove_service(&service.name).await.unwrap();
    scope.cluster.remove_config(&name).await.unwrap();
}

async fn a_bind_mount_and_env_reach_the_container(backend: Backend) {
    let scope = Scope::new(backend, "mount").await;
    let net = network(&scope, &unique("mount")).await;
    let dir = std::env::temp_dir().join(unique("mount"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), "mounted\n").unwrap();
    let mut spec = shell_service(&scope, &unique("mount"), &net, 1, "cat /data/f.txt; echo \"$GREETING\"");
    spec.env = vec![("GREETING".into(), "hi there".into())];
    spec.mounts = vec![Mount {
        kind: MountKind::Bind,
        source: dir.display().to_string(),
        target: "/data".into(),
        read_only: true,
    }];
    scope.cluster.create_service(&spec).await.unwrap();
    wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let lines = logs_until(&*scope.cluster, &spec.name, Duration::from_secs(10), |l| l.len() >= 2).await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["mounted", "hi there"]);
    std::fs::remove_dir_all(dir).unwrap();
}

async fn a_replica_with_a_health_check_stays_pending_until_healthy(backend: Backend) {
    let scope = Scope::new(backend, "health").await;
    let net = network(&scope, &unique("health")).await;
    let script = format!("sleep 3; touch /tmp/ready; {RUN_UNTIL_STOPPED}");
    let mut spec = shell_service(&scope, &unique("health"), &net, 1, &script);
    spec.health_check = Some(HealthCheck::new("test -f /tmp/ready").interval(Duration::from_millis(500)).retries(30));
    let (_, took) = timed(async {
        scope.cluster.create_service(&spec).await.unwrap();
        // The container runs but its check has not passed: the replica is still pending.
        let label = format!("label={TEST_LABEL}={}", scope.id);
        let start = std::time::Instant::now();
        while docker(&["ps", "-q", "--filter", &label, "--filter", "health=starting"]).trim().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "no container with a starting health check");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let replicas = scope.cluster.replicas(&spec.name, &net).await.unwrap();
        assert_eq!(replicas[0].state, ReplicaState::Pending, "{replicas:#?}");
        wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_running(1)).await;
    })
    .await;
    assert!(took >= Duration::from_secs(3), "running after {took:?}, before the check could pass");
}

async fn dns_discovery_from_inside_a_container_agrees_with_the_engine(backend: Backend) {
    let scope = Scope::new(backend, "dns").await;
    let net = network(&scope, &unique("dns")).await;
    let workers = shell_service(&scope, &unique("dns-w"), &net, 3, RUN_UNTIL_STOPPED);
    scope.cluster.create_service(&workers).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &workers.name, &net, Duration::from_secs(30), all_running(3)).await;
    let mut engine: Vec<IpAddr> = replicas.iter().filter_map(|r| r.address).collect();
    engine.sort();

    // The test binary is dynamically linked against the host's glibc (no musl target here):
    // mount it and the host's loader and libraries into the busybox container.
    let binary = env!("CARGO_BIN_EXE_atq-discover");
    let bind = |source: &str, target: &str| Mount {
        kind: MountKind::Bind,
        source: source.to_string(),
        target: target.to_string(),
        read_only: true,
    };
    let mut discover = shell_service(&scope, &unique("dns-d"), &net, 1, "");
    discover.command = Some(vec!["/atq-discover".into()]);
    discover.args = vec![workers.name.clone(), "3".into(), "20".into()];
    discover.mounts = vec![
        bind(binary, "/atq-discover"),
        bind("/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
        bind("/lib64", "/lib64"),
    ];
    scope.cluster.create_service(&discover).await.unwrap();
    let done = wait_replicas(&*scope.cluster, &discover.name, &net, Duration::from_secs(40), all_terminal(1)).await;
    let lines = logs_until(&*scope.cluster, &discover.name, Duration::from_secs(10), |l| !l.is_empty()).await;
    assert_eq!(done[0].exit_code, Some(0), "{done:#?}\n{lines:#?}");
    let dns: Vec<IpAddr> = lines.iter().map(|l| l.text.parse().expect("an address")).collect();
    assert_eq!(dns, engine);
}

async fn removal_leaves_nothing_behind(backend: Backend) {
    let scope = Scope::new(backend, "removal").await;
    let net = network(&scope, &unique("removal")).await;
    let config = unique("cfg");
    let id = scope
        .cluster
        .create_config(&ConfigSpec {
            name: config.clone(),
            data: b"d".to_vec(),
            labels: scope.labels(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut spec = shell_service(&scope, &unique("removal"), &net, 2, RUN_UNTIL_STOPPED);
    spec.configs = vec![ConfigMount {
        config_id: id,
        config_name: config.clone(),
        target: "/atq/data/d".into(),
        mode: ConfigMount::READ_ONLY,
    }];
    scope.cluster.create_service(&spec).await.unwrap();
    wait_replicas(&*scope.cluster, &spec.name, &net, Duration::from_secs(30), all_running(2)).await;
    assert_eq!(scope.leftover_containers().len(), 2);

    // Straight after the service: its containers are still stopping and hold the network.
    let (removed, took) = timed(async {
        scope.cluster.remove_service(&spec.name).await?;
        scope.cluster.remove_network(&net).await?;
        scope.cluster.remove_config(&config).await
    })
    .await;
    removed.unwrap();
    eprintln!("service + network + config removed in {took:?}");
    for kind in [ResourceKind::Service, ResourceKind::Network, ResourceKind::Config] {
        assert!(scope.leftovers(kind).await.is_empty(), "{kind:?} left");
    }
    assert!(scope.leftover_containers().is_empty(), "containers left: {:?}", scope.leftover_containers());
    assert!(docker(&["network", "ls", "-q", "--filter", &format!("name=^{net}$")]).trim().is_empty());
    // And the names are free again.
    scope
        .cluster
        .create_network(&NetworkSpec { name: net, labels: scope.labels(), attachable: true, capacity: 16 })
        .await
        .unwrap();
    scope.cleanup().await.unwrap();
    assert!(scope.leftovers(ResourceKind::Network).await.is_empty());
}

/// Each line names the replica (slot) that printed it, and a followed log ends on its own once
/// every replica has exited: the engine never ends the stream itself.
async fn followed_logs_name_their_replica_and_end_when_every_replica_exited(backend: Backend) {
    use futures_util::StreamExt;
    let scope = Scope::new(backend, "logend").await;
    let net = network(&scope, &unique("logend")).await;
    let script = "echo start-$ATQ_SLOT; sleep 1; echo end-$ATQ_SLOT";
    let mut spec = shell_service(&scope, &unique("logend"), &net, 2, script);
    spec.slot_env.push("ATQ_SLOT".into());
    scope.cluster.create_service(&spec).await.unwrap();
    let stream = scope.cluster.logs(&spec.name, &atq_core::cluster::LogOptions::follow()).await.unwrap();
    let lines: Vec<_> = tokio::time::timeout(Duration::from_secs(30), stream.collect::<Vec<_>>())
        .await
        .expect("the followed log ends once both replicas exited");
    let mut seen: Vec<(Option<u32>, String)> =
        lines.into_iter().map(|l| l.unwrap()).map(|l| (l.replica, l.text)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Some(1), "end-1".to_string()),
            (Some(1), "start-1".to_string()),
            (Some(2), "end-2".to_string()),
            (Some(2), "start-2".to_string())
        ]
    );
}

/// Per-replica configs, as sharding uses them: one config gives each replica its own content at
/// one path (swarm: a templated config; plain: each container's copy), `slot_env` gives each its
/// slot, and literal values that look like templates stay literal.
async fn each_replica_reads_its_own_per_replica_config_and_slot(backend: Backend) {
    let scope = Scope::new(backend, "sharding-replica").await;
    let net = network(&scope, &unique("sharding-replica")).await;
    let name = unique("sharding-cfg");
    let spec = ConfigSpec {
        name: name.clone(),
        data: b"id,note\r\n".to_vec(),
        labels: scope.labels(),
        per_replica: vec![b"1,{{.Task.Slot}}\r\n".to_vec(), Vec::new(), b"3,\"two\nlines\"\r\n".to_vec()],
    };
    let id = scope.cluster.create_config(&spec).await.unwrap();
    assert!(matches!(scope.cluster.read_config(&name).await.unwrap_err(), Error::Engine { .. }));
    let plain = unique("sharding-plain");
    let plain_spec = ConfigSpec {
        name: plain.clone(),
        data: b"\x00\xffbytes".to_vec(),
        labels: scope.labels(),
        ..Default::default()
    };
    scope.cluster.create_config(&plain_spec).await.unwrap();
    assert_eq!(scope.cluster.read_config(&plain).await.unwrap(), b"\x00\xffbytes");
    assert!(scope.cluster.read_config(&unique("sharding-none")).await.unwrap_err().is_not_found());
    scope.cluster.remove_config(&plain).await.unwrap();
    let mut service = shell_service(
        &scope,
        &unique("sharding-replica"),
        &net,
        3,
        "echo \"$ATQ_WORKER_INDEX $LITERAL $(od -An -c /atq/data/u.csv | tr -s ' \\n' ' ')\"",
    );
    service.env = vec![("LITERAL".into(), "{{.Task.Slot}}".into())];
    service.slot_env = vec!["ATQ_WORKER_INDEX".into()];
    service.configs = vec![ConfigMount {
        config_id: id,
        config_name: name.clone(),
        target: "/atq/data/u.csv".into(),
        mode: ConfigMount::READ_ONLY,
    }];
    scope.cluster.create_service(&service).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &service.name, &net, Duration::from_secs(60), all_terminal(3)).await;
    assert!(replicas.iter().all(|r| r.exit_code == Some(0)), "{replicas:#?}");
    let lines = logs_until(&*scope.cluster, &service.name, Duration::from_secs(10), |l| l.len() >= 3).await;
    let mut texts: Vec<String> = lines.iter().map(|l| l.text.trim_end().to_string()).collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            r"1 {{.Task.Slot}}  i d , n o t e \r \n 1 , { { . T a s k . S l o t } } \r \n",
            r"2 {{.Task.Slot}}  i d , n o t e \r \n",
            r#"3 {{.Task.Slot}}  i d , n o t e \r \n 3 , " t w o \n l i n e s " \r \n"#,
        ]
    );
    scope.cluster.remove_service(&service.name).await.unwrap();
    scope.cluster.remove_config(&name).await.unwrap();
}

on_both!(connecting_to_an_unreachable_engine_fails_fast);
on_both!(info_reports_a_ready_engine_of_its_backend);
on_both!(a_network_name_is_a_lock_until_removed);
on_both!(racing_network_creates_have_exactly_one_winner);
on_both!(a_second_service_of_the_same_name_is_a_conflict);
on_both!(three_replicas_run_with_distinct_addresses_in_the_network_subnet);
on_both!(a_missing_image_is_rejected_within_seconds_naming_the_image);
on_both!(exit_code_zero_and_both_output_streams_are_read_back);
on_both!(a_non_zero_exit_code_is_read_back_with_the_engine_error);
on_both!(following_logs_yields_lines_as_they_come);
on_both!(a_tty_service_logs_to_stdout);
on_both!(list_resources_filters_by_label_on_the_engine);
on_both!(a_config_is_visible_as_a_file_in_the_container);
on_both!(a_bind_mount_and_env_reach_the_container);
on_both!(a_replica_with_a_health_check_stays_pending_until_healthy);
on_both!(dns_discovery_from_inside_a_container_agrees_with_the_engine);
on_both!(removal_leaves_nothing_behind);
on_both!(followed_logs_name_their_replica_and_end_when_every_replica_exited);
on_both!(each_replica_reads_its_own_per_replica_config_and_slot);
on_both!(an_executable_config_runs_in_the_container);

/// A plain engine is one node: a constraint cannot be honoured, and is refused before anything
/// is made, naming what to do.
#[tokio::test]
async fn a_plain_engine_refuses_placement_constraints() {
    let scope = Scope::new(Backend::Docker, "cons").await;
    let net = network(&scope, &unique("cons")).await;
    let mut spec = shell_service(&scope, &unique("cons"), &net, 1, RUN_UNTIL_STOPPED);
    spec.placement.constraints = vec!["node.role==worker".into()];
    let err = scope.cluster.create_service(&spec).await.unwrap_err();
    assert!(matches!(err, Error::EngineUnsuitable { backend: "docker", .. }), "{err:?}");
    assert!(err.to_string().contains("ATQ_ENGINE=swarm"), "{err}");
    assert!(scope.leftover_containers().is_empty());
}

/// The service's own name resolves, through the engine's DNS on the network, to every replica
/// (a swarm dnsrr service's name does; a plain backend's replicas share it as an alias).
async fn the_service_name_resolves_to_every_replica(backend: Backend) {
    let scope = Scope::new(backend, "alias").await;
    let net = network(&scope, &unique("alias")).await;
    let workers = shell_service(&scope, &unique("alias-w"), &net, 3, RUN_UNTIL_STOPPED);
    scope.cluster.create_service(&workers).await.unwrap();
    let replicas = wait_replicas(&*scope.cluster, &workers.name, &net, Duration::from_secs(30), all_running(3)).await;
    let engine: BTreeSet<IpAddr> = replicas.iter().filter_map(|r| r.address).collect();
    // busybox nslookup prints the server as `Address: 127.0.0.11:53`, then one line per answer.
    let script = format!("nslookup {} 127.0.0.11 | sed -n 's/^Address:[[:space:]]*\\([0-9.]*\\)$/\\1/p'", workers.name);
    let lookup = shell_service(&scope, &unique("alias-q"), &net, 1, &script);
    scope.cluster.create_service(&lookup).await.unwrap();
    wait_replicas(&*scope.cluster, &lookup.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let lines = logs_until(&*scope.cluster, &lookup.name, Duration::from_secs(10), |l| l.len() >= 3).await;
    let dns: BTreeSet<IpAddr> = lines.iter().filter_map(|l| l.text.trim().parse().ok()).collect();
    assert_eq!(dns, engine, "{lines:#?}");
}

on_both!(the_service_name_resolves_to_every_replica);

/// On a plain engine a config is two volumes: listing configs (every `atq ls` and `prune` does)
/// returns the small one, never the content, which only a service that mounts it reads.
#[tokio::test]
async fn a_plain_engines_config_listing_does_not_carry_its_content() {
    let scope = Scope::new(Backend::Docker, "cfgbig").await;
    let name = unique("cfgbig");
    let data: Vec<u8> = (0..900 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let spec = ConfigSpec { name: name.clone(), data: data.clone(), labels: scope.labels(), per_replica: Vec::new() };
    scope.cluster.create_config(&spec).await.unwrap();
    let listed =
        docker(&["volume", "ls", "--filter", "label=io.atq.engine.kind=config", "--format", "{{.Name}} {{.Labels}}"]);
    let mine = listed.lines().find(|l| l.contains(&name)).unwrap_or_else(|| panic!("{name} not listed: {listed}"));
    assert!(mine.len() < 4096, "the listing carries {} bytes for {name}", mine.len());
    // The content is whole where a replica gets it.
    let net = network(&scope, &unique("cfgbig")).await;
    let mut service = shell_service(&scope, &unique("cfgbig"), &net, 1, "wc -c < /atq/data/big");
    service.configs = vec![ConfigMount {
        config_id: name.clone(),
        config_name: name.clone(),
        target: "/atq/data/big".into(),
        mode: ConfigMount::READ_ONLY,
    }];
    scope.cluster.create_service(&service).await.unwrap();
    wait_replicas(&*scope.cluster, &service.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    let lines = logs_until(&*scope.cluster, &service.name, Duration::from_secs(10), |l| !l.is_empty()).await;
    assert_eq!(lines[0].text.trim(), data.len().to_string(), "{lines:?}");
    scope.cluster.remove_service(&service.name).await.unwrap();
    scope.cluster.remove_config(&name).await.unwrap();
    scope.cluster.remove_network(&net).await.unwrap();
    scope.assert_nothing_left().await;
}
