//! Unit tests of the fake engine, one behaviour each.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::cluster::{ConfigMount, LogSource};
use crate::labels;

fn network(name: &str) -> NetworkSpec {
    NetworkSpec { name: name.into(), attachable: true, ..Default::default() }
}

fn service(name: &str, replicas: u32, network: &str) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        image: "lab/load:1".into(),
        replicas,
        networks: vec![network.into()],
        ..Default::default()
    }
}

fn with_role(mut spec: ServiceSpec, role: Role) -> ServiceSpec {
    spec.labels.insert(labels::ROLE.into(), role.as_str().into());
    spec
}

fn states(replicas: &[Replica]) -> Vec<ReplicaState> {
    replicas.iter().map(|r| r.state).collect()
}

async fn lines(fake: &FakeCluster, service: &str, follow: bool) -> Vec<LogLine> {
    fake.logs(service, &LogOptions { follow, ..LogOptions::default() })
        .await
        .unwrap()
        .map(|l| l.unwrap())
        .collect()
        .await
}

#[tokio::test(start_paused = true)]
async fn replicas_are_pending_until_the_latency_has_passed() {
    let fake = FakeCluster::new().with_latency(Duration::from_secs(5));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 2, "n")).await.unwrap();

    tokio::time::advance(Duration::from_millis(4999)).await;
    assert_eq!(states(&fake.replicas("w", "n").await.unwrap()), [ReplicaState::Pending; 2]);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(states(&fake.replicas("w", "n").await.unwrap()), [ReplicaState::Running; 2]);
}

#[tokio::test]
async fn replicas_run_at_once_with_the_default_zero_latency() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 3, "n")).await.unwrap();

    let replicas = fake.replicas("w", "n").await.unwrap();
    assert_eq!(states(&replicas), [ReplicaState::Running; 3]);
    assert_eq!(replicas.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["w.1", "w.2", "w.3"]);
    assert_eq!(replicas.iter().map(|r| r.slot).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn a_thousand_replicas_get_unique_addresses_within_the_subnet() {
    let fake = FakeCluster::new();
    fake.create_network(&NetworkSpec { capacity: 1000, ..network("n") }).await.unwrap();
    fake.create_service(&service("w", 1000, "n")).await.unwrap();

    let subnet = fake.network_subnet("n").unwrap();
    let addresses: Vec<IpAddr> = fake.replicas("w", "n").await.unwrap().iter().map(|r| r.address.unwrap()).collect();
    let unique: HashSet<&IpAddr> = addresses.iter().collect();
    assert_eq!(unique.len(), 1000);
    assert!(addresses.iter().all(|a| subnet.contains(*a)));
    assert!(!unique.contains(&IpAddr::V4(subnet.base)));
    assert!(!unique.contains(&IpAddr::V4(subnet.gateway())));
}

#[tokio::test]
async fn each_network_gets_its_own_subnet_reused_after_removal() {
    let fake = FakeCluster::new();
    fake.create_network(&network("a")).await.unwrap();
    fake.create_network(&network("b")).await.unwrap();
    assert_eq!(fake.network_subnet("a").unwrap().to_string(), "10.208.0.0/24");
    assert_eq!(fake.network_subnet("b").unwrap().to_string(), "10.208.1.0/24");

    fake.remove_network("a").await.unwrap();
    fake.create_network(&network("c")).await.unwrap();
    assert_eq!(fake.network_subnet("c").unwrap().to_string(), "10.208.0.0/24");
}

/// The rule every backend follows: a subnet sized to the network's capacity (at least a /24),
/// and no more replicas on it than it has addresses: a /24 is not quietly given to 300 workers.
#[tokio::test]
async fn a_network_is_sized_to_its_capacity_and_holds_no_more() {
    let fake = FakeCluster::new();
    let big = NetworkSpec { capacity: 302, ..network("big") };
    fake.create_network(&big).await.unwrap();
    assert_eq!(fake.network_subnet("big").unwrap().to_string(), "10.208.0.0/23");
    fake.create_service(&service("w", 300, "big")).await.unwrap();
    let addresses: BTreeSet<IpAddr> =
        fake.replicas("w", "big").await.unwrap().iter().filter_map(|r| r.address).collect();
    assert_eq!(addresses.len(), 300);

    // A network sized by default (a /24) has 253 addresses for replicas, not 300.
    fake.create_network(&network("small")).await.unwrap();
    assert_eq!(fake.network_subnet("small").unwrap().to_string(), "10.208.2.0/24");
    let err = fake.create_service(&service("w2", 300, "small")).await.unwrap_err();
    assert!(err.to_string().contains("network small has 253 free addresses, 300 needed"), "{err}");
    fake.create_service(&service("w3", 253, "small")).await.unwrap();
}

#[tokio::test]
async fn an_exhausted_pool_is_an_error_naming_it_and_the_setting() {
    let pool: crate::cluster::subnet::SubnetPool = "10.9.0.0/23".parse().unwrap();
    let fake = FakeCluster::new().with_subnet_pool(pool);
    fake.create_network(&network("a")).await.unwrap();
    fake.create_network(&network("b")).await.unwrap();
    let err = fake.create_network(&network("c")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("10.9.0.0/23") && text.contains("ATQ_SUBNET_POOL"), "{text}");
    fake.remove_network("a").await.unwrap();
    fake.create_network(&network("c")).await.unwrap();
    assert_eq!(fake.network_subnet("c").unwrap().to_string(), "10.9.0.0/24");
}

#[tokio::test]
async fn a_replica_has_an_address_on_each_of_its_networks_and_none_elsewhere() {
    let fake = FakeCluster::new();
    for n in ["a", "b", "other"] {
        fake.create_network(&network(n)).await.unwrap();
    }
    let mut spec = service("w", 1, "a");
    spec.networks.push("b".into());
    fake.create_service(&spec).await.unwrap();

    let on = |n: &'static str| {
        let fake = fake.clone();
        async move { fake.replicas("w", n).await.unwrap()[0].address }
    };
    assert!(fake.network_subnet("a").unwrap().contains(on("a").await.unwrap()));
    assert!(fake.network_subnet("b").unwrap().contains(on("b").await.unwrap()));
    assert_eq!(on("other").await, None);
}

#[tokio::test]
async fn names_are_unique_per_kind() {
    let fake = FakeCluster::new();
    fake.create_network(&network("x")).await.unwrap();
    fake.create_service(&service("x", 1, "x")).await.unwrap();
    fake.create_config(&ConfigSpec { name: "x".into(), data: b"x".to_vec(), ..Default::default() }).await.unwrap();

    let err = fake.create_network(&network("x")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { kind: "network", ref name } if name == "x"), "{err}");
    let err = fake.create_service(&service("x", 1, "x")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { kind: "service", ref name } if name == "x"), "{err}");
    let err = fake
        .create_config(&ConfigSpec { name: "x".into(), data: b"x".to_vec(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { kind: "config", ref name } if name == "x"), "{err}");
}

/// Swarm refuses a config of 0 bytes ("config data must be larger than 0"); a per-replica
/// config's shared part may be empty, as long as some replica has content.
#[tokio::test]
async fn an_empty_config_is_refused_and_a_per_replica_one_may_have_an_empty_shared_part() {
    let fake = FakeCluster::new();
    let err = fake.create_config(&ConfigSpec { name: "e".into(), ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().contains("0 bytes"), "{err}");
    let sharded = ConfigSpec { name: "s".into(), per_replica: vec![b"row\n".to_vec()], ..Default::default() };
    fake.create_config(&sharded).await.unwrap();
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let fake = FakeCluster::new();
    for bad in ["", "-x", "x_", "a.b", &"a".repeat(64)] {
        let err = fake.create_network(&network(bad)).await.unwrap_err();
        assert!(err.to_string().contains("invalid name"), "{bad}: {err}");
    }
    fake.create_config(&ConfigSpec { name: "a.b".into(), data: b"x".to_vec(), ..Default::default() }).await.unwrap();
}

#[tokio::test]
async fn a_service_needs_its_networks_and_configs() {
    let fake = FakeCluster::new();
    let err = fake.create_service(&service("w", 1, "nowhere")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { kind: "network", ref name } if name == "nowhere"), "{err}");

    fake.create_network(&network("n")).await.unwrap();
    let mut spec = service("w", 1, "n");
    spec.configs.push(ConfigMount {
        config_id: "?".into(),
        config_name: "plan".into(),
        target: "/plan".into(),
        mode: ConfigMount::READ_ONLY,
    });
    let err = fake.create_service(&spec).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { kind: "config", ref name } if name == "plan"), "{err}");
    assert_eq!(fake.services(), Vec::<String>::new());
}

#[tokio::test]
async fn a_network_in_use_cannot_be_removed() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 1, "n")).await.unwrap();

    let err = fake.remove_network("n").await.unwrap_err();
    assert!(matches!(err, Error::Engine { .. }), "{err}");
    assert!(err.to_string().contains("network n is in use by service w"), "{err}");

    fake.remove_service("w").await.unwrap();
    fake.remove_network("n").await.unwrap();
}

#[tokio::test]
async fn a_config_in_use_cannot_be_removed() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    let plan = ConfigSpec { name: "plan".into(), data: b"x".to_vec(), ..Default::default() };
    let id = fake.create_config(&plan).await.unwrap();
    let mut spec = service("w", 1, "n");
    spec.configs.push(ConfigMount {
        config_id: id,
        config_name: "plan".into(),
        target: "/plan".into(),
        mode: ConfigMount::READ_ONLY,
    });
    fake.create_service(&spec).await.unwrap();

    let err = fake.remove_config("plan").await.unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    fake.remove_service("w").await.unwrap();
    fake.remove_config("plan").await.unwrap();
}

#[tokio::test]
async fn removing_what_does_not_exist_is_not_found() {
    let fake = FakeCluster::new();
    assert!(fake.remove_network("n").await.unwrap_err().is_not_found());
    assert!(fake.remove_service("s").await.unwrap_err().is_not_found());
    assert!(fake.remove_config("c").await.unwrap_err().is_not_found());
    assert!(fake.replicas("s", "n").await.unwrap_err().is_not_found());
    assert!(fake.logs("s", &LogOptions::all()).await.err().unwrap().is_not_found());
}

#[tokio::test]
async fn objects_can_be_removed_by_id() {
    let fake = FakeCluster::new();
    let net = fake.create_network(&network("n")).await.unwrap();
    let svc = fake.create_service(&service("w", 1, "n")).await.unwrap();
    assert_eq!(fake.network_id("n"), Some(net.clone()));
    fake.remove_service(&svc).await.unwrap();
    fake.remove_network(&net).await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn a_config_larger_than_the_engine_accepts_is_refused() {
    let fake = FakeCluster::new();
    let max = fake.info().await.unwrap().max_config_bytes;
    let spec = ConfigSpec { name: "big".into(), data: vec![0; max + 1], ..Default::default() };
    assert!(matches!(fake.create_config(&spec).await.unwrap_err(), Error::Engine { .. }));
}

#[tokio::test]
async fn a_missing_image_is_rejected_with_the_engines_message() {
    let fake = FakeCluster::new();
    fake.missing_image("lab/load:1");
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 2, "n")).await.unwrap();

    let replicas = fake.replicas("w", "n").await.unwrap();
    assert_eq!(states(&replicas), [ReplicaState::Rejected; 2]);
    assert_eq!(replicas[0].error.as_deref(), Some("No such image: lab/load:1"));
}

#[tokio::test]
async fn the_master_exits_zero_by_default_right_after_starting() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&with_role(service("m", 1, "n"), Role::Master)).await.unwrap();

    let master = &fake.replicas("m", "n").await.unwrap()[0];
    assert_eq!((master.state, master.exit_code, master.error.clone()), (ReplicaState::Complete, Some(0), None));
    assert!(lines(&fake, "m", false).await.is_empty());
}

#[tokio::test]
async fn the_master_exits_with_the_scripted_code_and_logs() {
    let fake = FakeCluster::new();
    fake.master_exits(3, ["summary = 10", "errors = 2"]);
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&with_role(service("m", 1, "n"), Role::Master)).await.unwrap();

    let master = &fake.replicas("m", "n").await.unwrap()[0];
    assert_eq!((master.state, master.exit_code), (ReplicaState::Failed, Some(3)));
    assert_eq!(master.error.as_deref(), Some("task: non-zero exit (3)"));
    let texts: Vec<String> = lines(&fake, "m", false).await.into_iter().map(|l| l.text).collect();
    assert_eq!(texts, ["summary = 10", "errors = 2"]);
}

#[tokio::test]
async fn the_probe_prints_its_scripted_output() {
    let fake = FakeCluster::new();
    fake.probe_output(0, "ready\nok");
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&with_role(service("p", 1, "n"), Role::Probe)).await.unwrap();

    let texts: Vec<String> = lines(&fake, "p", false).await.into_iter().map(|l| l.text).collect();
    assert_eq!(texts, ["ready", "ok"]);
    assert_eq!(fake.replicas("p", "n").await.unwrap()[0].state, ReplicaState::Complete);
}

#[tokio::test]
async fn services_without_a_master_or_probe_role_run_until_removed() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&with_role(service("w", 1, "n"), Role::Worker)).await.unwrap();
    assert_eq!(fake.replicas("w", "n").await.unwrap()[0].state, ReplicaState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_scripted_exit_happens_after_its_run_time() {
    let fake = FakeCluster::new();
    fake.script(Matcher::image("lab/load:1"), Script::exits_after(0, Duration::from_secs(10)));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 1, "n")).await.unwrap();

    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(fake.replicas("w", "n").await.unwrap()[0].state, ReplicaState::Running);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(fake.replicas("w", "n").await.unwrap()[0].state, ReplicaState::Complete);
}

#[tokio::test]
async fn later_rules_override_earlier_ones_part_by_part() {
    let fake = FakeCluster::new();
    fake.master_exits(2, ["bye"]);
    fake.never_starts(Matcher::role(Role::Master));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&with_role(service("m", 1, "n"), Role::Master)).await.unwrap();

    let master = &fake.replicas("m", "n").await.unwrap()[0];
    assert_eq!(master.state, ReplicaState::Pending);
    let b = fake.state().services["m"].behaviour.clone();
    assert_eq!(b.run, Run::Exits { code: 2, after: Duration::ZERO });
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_starts_stays_pending() {
    let fake = FakeCluster::new();
    fake.never_starts(Matcher::name("w").slot(2));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 3, "n")).await.unwrap();

    tokio::time::advance(Duration::from_secs(3600)).await;
    let replicas = fake.replicas("w", "n").await.unwrap();
    assert_eq!(states(&replicas), [ReplicaState::Running, ReplicaState::Pending, ReplicaState::Running]);
    assert_eq!(replicas[1].node_id, None);
}

#[tokio::test]
async fn fail_call_fails_the_nth_call_of_that_kind_without_effect() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.fail_call(CallKind::CreateService, 2);

    fake.create_service(&service("a", 1, "n")).await.unwrap();
    let err = fake.create_service(&service("b", 1, "n")).await.unwrap_err();
    assert!(matches!(err, Error::Engine { operation: "create service", ref resource, .. } if resource == "b"));
    assert!(err.to_string().contains("injected fault"), "{err}");
    fake.create_service(&service("c", 1, "n")).await.unwrap();
    assert_eq!(fake.services(), ["a", "c"]);
    assert_eq!(fake.calls(CallKind::CreateService), 3);
}

#[tokio::test]
async fn fail_call_after_takes_effect_then_fails() {
    let fake = FakeCluster::new();
    fake.fail_call_after(CallKind::CreateNetwork, 1);
    assert!(fake.create_network(&network("n")).await.is_err());
    assert_eq!(fake.networks(), ["n"]);
}

#[tokio::test]
async fn the_call_log_records_every_call_in_order() {
    let fake = FakeCluster::new();
    fake.fail_call(CallKind::RemoveNetwork, 1);
    fake.create_network(&network("n")).await.unwrap();
    let _ = fake.remove_network("n").await;
    fake.list_resources(ResourceKind::Service, &LabelSelector::new()).await.unwrap();

    let log = fake.call_log();
    let got: Vec<(CallKind, &str, bool)> = log.iter().map(|c| (c.kind, c.target.as_str(), c.faulted)).collect();
    assert_eq!(
        got,
        [
            (CallKind::CreateNetwork, "n", false),
            (CallKind::RemoveNetwork, "n", true),
            (CallKind::ListResources, "service", false)
        ]
    );
}

#[tokio::test]
async fn a_killed_replica_fails_with_its_exit_code() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 2, "n")).await.unwrap();
    fake.kill_replica("w", 2, 137).unwrap();

    let replicas = fake.replicas("w", "n").await.unwrap();
    assert_eq!(states(&replicas), [ReplicaState::Running, ReplicaState::Failed]);
    assert_eq!(replicas[1].exit_code, Some(137));
    assert_eq!(replicas[1].error.as_deref(), Some("task: non-zero exit (137)"));
    assert!(fake.kill_replica("w", 2, 1).is_err(), "a dead replica cannot be killed again");
    assert!(fake.kill_replica("w", 3, 1).unwrap_err().is_not_found());
}

#[tokio::test]
async fn list_resources_selects_by_label() {
    let fake = FakeCluster::new();
    let labelled = |name: &str, task: &str| NetworkSpec {
        name: name.into(),
        labels: BTreeMap::from([(labels::MANAGED.into(), "true".into()), (labels::TASK.into(), task.into())]),
        attachable: true,
        capacity: 1,
    };
    fake.create_network(&labelled("a", "t1")).await.unwrap();
    fake.create_network(&labelled("b", "t2")).await.unwrap();
    fake.create_network(&network("c")).await.unwrap();

    let names = |rs: Vec<Resource>| rs.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let managed = fake.list_resources(ResourceKind::Network, &LabelSelector::new().has(labels::MANAGED)).await;
    assert_eq!(names(managed.unwrap()), ["a", "b"]);
    let t2 = fake.list_resources(ResourceKind::Network, &LabelSelector::new().eq(labels::TASK, "t2")).await.unwrap();
    assert_eq!(names(t2.clone()), ["b"]);
    assert!(t2[0].created_unix.is_some());
    assert!(fake.list_resources(ResourceKind::Service, &LabelSelector::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_fake_is_empty_again_after_everything_is_removed() {
    let fake = FakeCluster::new();
    assert!(fake.is_empty());
    fake.create_network(&network("n")).await.unwrap();
    fake.create_config(&ConfigSpec { name: "c".into(), data: b"x".to_vec(), ..Default::default() }).await.unwrap();
    fake.create_service(&service("w", 2, "n")).await.unwrap();
    assert!(!fake.is_empty());

    fake.remove_service("w").await.unwrap();
    fake.remove_config("c").await.unwrap();
    fake.remove_network("n").await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn clones_share_one_engine() {
    let fake = FakeCluster::new();
    let clone = fake.clone();
    clone.create_network(&network("n")).await.unwrap();
    assert_eq!(fake.networks(), ["n"]);
    assert_eq!(fake.network_spec("n"), Some(network("n")));
}

#[tokio::test]
async fn the_spec_a_service_was_created_with_is_kept_for_inspection() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    let mut spec = service("m", 1, "n");
    spec.env.push(("WORKER_CSV_VIPS".into(), "10.0.0.2,10.0.0.3".into()));
    fake.create_service(&spec).await.unwrap();
    assert_eq!(fake.service_spec("m"), Some(spec));
    assert_eq!(fake.service_spec("nope"), None);
}

#[tokio::test]
async fn the_engine_is_a_single_node_swarm_manager() {
    let info = FakeCluster::new().info().await.unwrap();
    assert_eq!(info.backend, crate::cluster::Backend::Fake);
    assert_eq!((info.local_node.as_deref(), info.nodes_ready, info.nodes_total), (Some("fake-node-1"), 1, 1));
    assert_eq!(info.max_config_bytes, 500 * 1024);
}

#[tokio::test]
async fn logs_interleave_stdout_and_stderr_in_slot_order() {
    let fake = FakeCluster::new();
    fake.script(Matcher::name("w"), Script::new().stdout(["out"]).stderr(["err"]));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 2, "n")).await.unwrap();

    let got: Vec<(LogSource, String)> =
        lines(&fake, "w", false).await.into_iter().map(|l| (l.source, l.text)).collect();
    let want = [(LogSource::Stdout, "out"), (LogSource::Stderr, "err")].map(|(s, t)| (s, t.to_owned()));
    assert_eq!(got, [want.clone(), want].concat());
}

#[tokio::test(start_paused = true)]
async fn following_logs_waits_for_replicas_to_start_and_ends_when_they_exit() {
    let fake = FakeCluster::new().with_latency(Duration::from_secs(1));
    fake.script(Matcher::name("m"), Script::exits_after(0, Duration::from_secs(5)).stdout(["hello"]));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("m", 1, "n")).await.unwrap();

    assert!(lines(&fake, "m", false).await.is_empty(), "nothing printed before the start");
    let start = Instant::now();
    let texts: Vec<String> = lines(&fake, "m", true).await.into_iter().map(|l| l.text).collect();
    assert_eq!(texts, ["hello"]);
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn following_logs_ends_when_the_service_is_removed() {
    let fake = FakeCluster::new();
    fake.script(Matcher::name("w"), Script::new().stdout(["up"]));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 1, "n")).await.unwrap();

    let mut stream = fake.logs("w", &LogOptions::follow()).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().text, "up");
    let remover = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        remover.remove_service("w").await.unwrap();
    });
    assert!(stream.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn following_logs_ends_when_the_last_running_replica_is_killed() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 1, "n")).await.unwrap();

    let mut stream = fake.logs("w", &LogOptions::follow()).await.unwrap();
    let killer = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        killer.kill_replica("w", 1, 137).unwrap();
    });
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn ten_thousand_replicas_are_cheap_to_create_list_and_remove() {
    let fake = FakeCluster::new();
    fake.create_network(&NetworkSpec { capacity: 10_002, ..network("n") }).await.unwrap();
    fake.create_service(&service("w", 10_000, "n")).await.unwrap();
    for _ in 0..10 {
        let replicas = fake.replicas("w", "n").await.unwrap();
        assert_eq!(replicas.len(), 10_000);
    }
    let last = fake.replicas("w", "n").await.unwrap().pop().unwrap();
    assert_eq!(last.address, Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 208, 39, 17))));
    fake.remove_service("w").await.unwrap();
    fake.remove_network("n").await.unwrap();
    assert!(fake.is_empty());
}

#[tokio::test]
async fn released_addresses_are_reused() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("a", 2, "n")).await.unwrap();
    let first = fake.replicas("a", "n").await.unwrap()[0].address;
    fake.remove_service("a").await.unwrap();
    fake.create_service(&service("b", 1, "n")).await.unwrap();
    assert_eq!(fake.replicas("b", "n").await.unwrap()[0].address, first);
}

#[tokio::test]
async fn fail_any_call_fails_the_nth_call_whatever_its_kind() {
    let fake = FakeCluster::new();
    fake.fail_any_call(2);
    fake.create_network(&network("n")).await.unwrap();
    let err = fake.info().await.unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    fake.info().await.unwrap();
    assert_eq!(fake.total_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_during_its_delay_has_no_effect() {
    let fake = FakeCluster::new().with_call_delay(Duration::from_millis(100));
    let dropped = tokio::time::timeout(Duration::from_millis(50), fake.create_network(&network("n"))).await;
    assert!(dropped.is_err(), "the call was still waiting");
    assert!(fake.is_empty());
    assert_eq!(fake.calls(CallKind::CreateNetwork), 0);

    fake.create_network(&network("n")).await.unwrap();
    assert_eq!(fake.networks(), ["n"]);
}

#[tokio::test(start_paused = true)]
async fn copy_from_replica_archives_the_scripted_files_under_the_path() {
    let fake = FakeCluster::new();
    fake.script(
        Matcher::name("m"),
        Script::exits(0).artifact("/out/a.txt", "A").artifact("/out/sub/b.txt", "B").artifact("/other/c", "C"),
    );
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("m", 1, "n")).await.unwrap();
    let replica = fake.replicas("m", "n").await.unwrap().remove(0);
    let container = replica.container_id.expect("a started replica has a container");

    let chunks: Vec<Vec<u8>> =
        fake.copy_from_replica(&container, "/out/").await.unwrap().map(|c| c.unwrap()).collect().await;
    let archive = chunks.concat();
    let mut names = Vec::new();
    for entry in tar::Archive::new(archive.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
        names.push((entry.path().unwrap().display().to_string(), content));
    }
    let expected = [("out/", ""), ("out/a.txt", "A"), ("out/sub/b.txt", "B")];
    assert_eq!(names, expected.map(|(n, c)| (n.to_owned(), c.to_owned())));
    assert_eq!(fake.call_log().last().unwrap().kind, CallKind::CopyFromReplica);

    let err = fake.copy_from_replica(&container, "/nothing").await.err().unwrap();
    assert!(matches!(err, Error::NotFound { kind: "path", .. }), "{err}");
    let err = fake.copy_from_replica("nope", "/out").await.err().unwrap();
    assert!(matches!(err, Error::NotFound { kind: "container", .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_started_has_no_container() {
    let fake = FakeCluster::new();
    fake.never_starts(Matcher::name("w"));
    fake.create_network(&network("n")).await.unwrap();
    fake.create_service(&service("w", 1, "n")).await.unwrap();
    assert_eq!(fake.replicas("w", "n").await.unwrap()[0].container_id, None);
}

#[tokio::test]
async fn each_replica_sees_its_own_content_of_a_per_replica_config_and_its_slot_in_the_env() {
    let fake = FakeCluster::new();
    fake.create_network(&network("n")).await.unwrap();
    let users = ConfigSpec {
        name: "users".into(),
        data: b"id\n".to_vec(),
        per_replica: vec![b"1\n".to_vec(), b"2\n".to_vec()],
        ..Default::default()
    };
    let id = fake.create_config(&users).await.unwrap();
    let mut spec = service("w", 3, "n");
    spec.env = vec![("A".into(), "x".into())];
    spec.slot_env = vec!["ATQ_WORKER_INDEX".into()];
    spec.configs.push(ConfigMount {
        config_id: id,
        config_name: "users".into(),
        target: "/atq/data/u.csv".into(),
        mode: ConfigMount::READ_ONLY,
    });
    fake.create_service(&spec).await.unwrap();

    assert_eq!(fake.replica_file("w", 1, "/atq/data/u.csv").unwrap(), b"id\n1\n");
    assert_eq!(fake.replica_file("w", 2, "/atq/data/u.csv").unwrap(), b"id\n2\n");
    assert_eq!(fake.replica_file("w", 3, "/atq/data/u.csv").unwrap(), b"id\n", "beyond the list: the data only");
    assert_eq!(fake.replica_file("w", 1, "/elsewhere"), None);
    let env = fake.replica_env("w", 3).unwrap();
    assert_eq!(env, [("A".to_string(), "x".to_string()), ("ATQ_WORKER_INDEX".to_string(), "3".to_string())]);
    // Only ordinary configs are read back.
    assert!(matches!(fake.read_config("users").await.unwrap_err(), Error::Engine { .. }));
    assert!(fake.read_config("nope").await.unwrap_err().is_not_found());
    fake.create_config(&ConfigSpec { name: "plain".into(), data: b"p".to_vec(), ..Default::default() }).await.unwrap();
    assert_eq!(fake.read_config("plain").await.unwrap(), b"p");
    assert_eq!(fake.calls(CallKind::ReadConfig), 3);
}

#[tokio::test]
async fn a_per_replica_config_counts_every_replicas_content_against_the_limit() {
    let fake = FakeCluster::new();
    let max = fake.info().await.unwrap().max_config_bytes;
    let spec = ConfigSpec {
        name: "big".into(),
        data: vec![b'h'; 10],
        per_replica: vec![vec![b'x'; max / 2], vec![b'y'; max / 2]],
        ..Default::default()
    };
    assert!(matches!(fake.create_config(&spec).await.unwrap_err(), Error::Engine { .. }));
}
