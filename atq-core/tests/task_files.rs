//! Task files and the builder: ATQ-Director's payload parses, every rule names its field.

use std::time::Duration;

use atq_core::{HealthCheck, Resources, Service, Task, ValidationError, WaitCommand};

/// The JSON body ATQ-Director's `POST /task` took.
const DIRECTOR_JSON: &str = r#"{
  "name": "checkout",
  "delay": 5,
  "waitCommand": {"command": "nc -w1 $IP 1099", "expectedResult": "ready", "timeout": 60},
  "master": {"image": "lab/jmeter:2.13", "alias": "jmaster", "replicas": 1,
             "args": ["-n", "-t", "/atq/data/plan.jmx"], "environment": ["MODE=master"], "tty": false,
             "fileid": "5f2c1a"},
  "worker": {"image": "lab/jmeter:2.13", "alias": "jslave", "replicas": 4,
             "args": ["jmeter-server"], "environment": ["MODE=worker", "HEAP=-Xmx1g"], "tty": true}
}"#;

const YAML: &str = "
name: checkout
delay: 2
waitCommand:
  command: nc -w1 $IP 1099
  expectedResult: ready
  timeout: 30
  image: lab/tools:1
worker:
  image: lab/jmeter:2.13
  replicas: 3
  environment:
    MODE: worker
    PORT: 1099
  healthCheck:
    test: nc -w1 127.0.0.1 1099 </dev/null
    interval: 1
    retries: 5
  resources:
    cpus: 0.5
    memory: 256M
  constraints: ['node.role==worker']
master:
  image: lab/jmeter:2.13
  command: [/bin/sh, -c]
  args: ['jmeter -n -R $WORKER_CSV_VIPS']
startTimeout: 90
runTimeout: 600
labels:
  team: perf
";

fn problems(e: &ValidationError) -> Vec<(String, String)> {
    e.problems.iter().map(|p| (p.field.clone(), p.message.clone())).collect()
}

fn has_problem(e: &ValidationError, field: &str, needle: &str) -> bool {
    e.problems.iter().any(|p| p.field == field && p.message.contains(needle))
}

fn valid() -> atq_core::TaskBuilder {
    Task::builder("load").workers(Service::new("img:1").replicas(2)).master(Service::new("img:1"))
}

#[test]
fn atq_director_json_payload_parses_with_every_field() {
    let task = Task::from_json_str(DIRECTOR_JSON).unwrap();
    assert_eq!(task.name(), "checkout");
    assert_eq!(task.delay(), Duration::from_secs(5));
    let wait = task.wait_command().unwrap();
    assert_eq!(wait.command, "nc -w1 $IP 1099");
    assert_eq!(wait.expected_result.as_deref(), Some("ready"));
    assert_eq!(wait.timeout, Duration::from_secs(60));
    assert_eq!(task.workers().replicas, 4);
    assert!(task.workers().tty);
    assert_eq!(task.workers().environment, vec![("MODE".into(), "worker".into()), ("HEAP".into(), "-Xmx1g".into())]);
    assert_eq!(task.master().fileid.as_deref(), Some("5f2c1a"));
    assert_eq!(task.worker_service_name(), "checkout_jslave");
    assert_eq!(task.master_service_name(), "checkout_jmaster");
}

#[test]
fn yaml_task_file_parses_with_atq_fields() {
    let task = Task::from_yaml_str(YAML).unwrap();
    assert_eq!(task.workers().environment, vec![("MODE".into(), "worker".into()), ("PORT".into(), "1099".into())]);
    let hc = task.workers().health_check.as_ref().unwrap();
    assert_eq!(hc.interval, Some(Duration::from_secs(1)));
    assert_eq!(hc.retries, Some(5));
    assert_eq!(task.workers().resources.unwrap().memory.unwrap().0, 256 << 20);
    assert_eq!(task.master().command.as_deref(), Some(&["/bin/sh".to_owned(), "-c".to_owned()][..]));
    assert_eq!(task.start_timeout(), Duration::from_secs(90));
    assert_eq!(task.run_timeout(), Some(Duration::from_secs(600)));
    assert_eq!(task.labels().get("team").map(String::as_str), Some("perf"));
    assert_eq!(task.wait_command().unwrap().image.as_deref(), Some("lab/tools:1"));
}

#[test]
fn a_task_round_trips_through_yaml_and_json() {
    let task = Task::from_yaml_str(YAML).unwrap();
    assert_eq!(Task::from_yaml_str(&task.to_yaml()).unwrap(), task);
    assert_eq!(Task::from_json_str(&task.to_json()).unwrap(), task);
}

#[test]
fn the_builder_and_the_file_make_the_same_task() {
    let built = Task::builder("checkout")
        .workers(
            Service::new("lab/jmeter:2.13")
                .alias("jslave")
                .replicas(4)
                .env("MODE", "worker")
                .env("HEAP", "-Xmx1g")
                .args(["jmeter-server"])
                .tty(true),
        )
        .master(
            Service::new("lab/jmeter:2.13")
                .alias("jmaster")
                .env("MODE", "master")
                .args(["-n", "-t", "/atq/data/plan.jmx"])
                .data("5f2c1a"),
        )
        .wait_command(WaitCommand::new("nc -w1 $IP 1099").expect("ready").timeout(Duration::from_secs(60)))
        .delay(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(built, Task::from_json_str(DIRECTOR_JSON).unwrap());
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let e = Task::from_yaml_str("name: a\nworker: {image: i}\nmaster: {image: i}\nreplica: 3\n").unwrap_err();
    assert!(e.to_string().contains("replica"), "{e}");
    let e = Task::from_yaml_str("name: a\nworker: {image: i, replicsa: 2}\nmaster: {image: i}\n").unwrap_err();
    assert!(e.problems[0].field.contains("worker"), "{:?}", problems(&e));
    assert!(e.to_string().contains("replicsa"), "{e}");
    assert_eq!(e.problems[0].line, Some(2));
    let e = Task::from_json_str(r#"{"name":"a","worker":{"image":"i"},"master":{"image":"i"},"extra":1}"#).unwrap_err();
    assert_eq!(e.problems[0].field, "extra");
}

#[test]
fn a_missing_required_field_is_named() {
    let e = Task::from_yaml_str("name: a\nworker: {replicas: 2}\nmaster: {image: i}\n").unwrap_err();
    assert!(e.to_string().contains("image"), "{e}");
    let e = Task::from_json_str(r#"{"name":"a","master":{"image":"i"}}"#).unwrap_err();
    assert_eq!(e.problems[0].field, "worker");
}

#[test]
fn an_environment_entry_without_equals_is_rejected() {
    let e =
        Task::from_yaml_str("name: a\nworker: {image: i, environment: [NOEQUALS]}\nmaster: {image: i}\n").unwrap_err();
    assert!(e.to_string().contains("KEY=VALUE"), "{e}");
}

#[test]
fn task_name_must_make_valid_engine_names() {
    for bad in ["", "-lead", "trail-", "has space", "dots.no", "ünï"] {
        let e = valid().to_builder_named(bad).build().unwrap_err();
        assert!(e.problems.iter().any(|p| p.field == "name"), "{bad:?}: {e}");
    }
    let longest_ok = "a".repeat(63 - 1 - "worker".len());
    assert!(valid().to_builder_named(&longest_ok).build().is_ok());
    let e = valid().to_builder_named(&format!("{longest_ok}a")).build().unwrap_err();
    assert!(has_problem(&e, "name", "at most 56"), "{e}");
}

trait Rename {
    fn to_builder_named(self, name: &str) -> atq_core::TaskBuilder;
}

impl Rename for atq_core::TaskBuilder {
    fn to_builder_named(self, name: &str) -> atq_core::TaskBuilder {
        let task = self.build().unwrap();
        Task::builder(name).workers(task.workers().clone()).master(task.master().clone())
    }
}

#[test]
fn a_long_alias_shortens_the_longest_allowed_name() {
    let name = "a".repeat(50);
    let e = Task::builder(&name)
        .workers(Service::new("i").alias("a-very-long-worker-alias"))
        .master(Service::new("i"))
        .build()
        .unwrap_err();
    assert!(has_problem(&e, "name", "at most 38"), "{e}");
}

#[test]
fn replicas_must_be_between_one_and_the_maximum() {
    let e = Task::builder("a").workers(Service::new("i").replicas(0)).master(Service::new("i")).build().unwrap_err();
    assert!(has_problem(&e, "worker.replicas", "at least 1"));
    let e = Task::builder("a")
        .workers(Service::new("i").replicas(atq_core::task::MAX_WORKERS + 1))
        .master(Service::new("i"))
        .build()
        .unwrap_err();
    assert!(has_problem(&e, "worker.replicas", "maximum"));
    let e = Task::builder("a").workers(Service::new("i")).master(Service::new("i").replicas(2)).build().unwrap_err();
    assert!(has_problem(&e, "master.replicas", "must be 1"));
}

#[test]
fn images_must_be_named() {
    let e = Task::builder("a").workers(Service::new("")).master(Service::new("has space")).build().unwrap_err();
    assert!(has_problem(&e, "worker.image", "empty"));
    assert!(has_problem(&e, "master.image", "whitespace"));
}

#[test]
fn env_keys_are_checked_and_atq_variables_are_reserved() {
    let e = Task::builder("a")
        .workers(Service::new("i").env("WORKER_CSV_VIPS", "x").env("BAD KEY", "v"))
        .master(Service::new("i").env("", "v"))
        .build()
        .unwrap_err();
    assert!(has_problem(&e, "worker.environment.WORKER_CSV_VIPS", "set by atq"));
    assert!(has_problem(&e, "worker.environment.BAD KEY", "cannot contain"));
    assert!(has_problem(&e, "master.environment", "empty name"));
}

#[test]
fn timeouts_must_be_positive_and_bounded() {
    let e = valid().wait_command(WaitCommand::new("true").timeout(Duration::ZERO)).build().unwrap_err();
    assert!(has_problem(&e, "waitCommand.timeout", "more than 0"));
    let e = valid().delay(Duration::from_secs(2 * 24 * 3600)).start_timeout(Duration::ZERO).build().unwrap_err();
    assert!(has_problem(&e, "delay", "maximum"));
    assert!(has_problem(&e, "startTimeout", "more than 0"));
    let e = Task::from_yaml_str("name: a\ndelay: -1\nworker: {image: i}\nmaster: {image: i}\n").unwrap_err();
    assert!(has_problem(&e, "delay", "a number of seconds from 0 to 86400"), "{e}");
    assert_eq!(e.problems[0].line, Some(2));
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = Task::builder("bad name")
        .workers(Service::new("").replicas(0))
        .master(Service::new("i").replicas(3))
        .wait_command(WaitCommand::new(" "))
        .build()
        .unwrap_err();
    let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
    for f in ["name", "worker.image", "worker.replicas", "master.replicas", "waitCommand.command"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn a_builder_without_roles_names_them() {
    let e = Task::builder("a").build().unwrap_err();
    assert_eq!(problems(&e).iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), vec!["worker", "master"]);
}

#[test]
fn the_two_roles_need_different_aliases() {
    let e = Task::builder("a")
        .workers(Service::new("i").alias("x"))
        .master(Service::new("i").alias("x"))
        .build()
        .unwrap_err();
    assert!(has_problem(&e, "master.alias", "different"));
    let e = Task::builder("a").workers(Service::new("i").alias("probe")).master(Service::new("i")).build().unwrap_err();
    assert!(has_problem(&e, "worker.alias", "not allowed"));
}

#[test]
fn health_checks_resources_constraints_and_labels_are_checked() {
    let e = Task::builder("a")
        .workers(
            Service::new("i")
                .health_check(HealthCheck::new("").retries(0))
                .resources(Resources::new().cpus(0.0).memory_bytes(1024))
                .constraint("node.role")
                .label("io.atq.task", "x"),
        )
        .master(Service::new("i"))
        .label("io.atq.owner", "me")
        .build()
        .unwrap_err();
    assert!(has_problem(&e, "worker.healthCheck.test", "empty"));
    assert!(has_problem(&e, "worker.healthCheck.retries", "at least 1"));
    assert!(has_problem(&e, "worker.resources.cpus", "not a CPU count"));
    assert!(has_problem(&e, "worker.resources.memory", "6M"));
    assert!(has_problem(&e, "worker.constraints", "=="));
    assert!(has_problem(&e, "worker.labels.io.atq.task", "reserved"));
    assert!(has_problem(&e, "labels.io.atq.owner", "reserved"));
}

#[test]
fn memory_sizes_accept_units_and_reject_nonsense() {
    let ok = Task::from_yaml_str("name: a\nworker: {image: i, resources: {memory: 1g}}\nmaster: {image: i}\n").unwrap();
    assert_eq!(ok.workers().resources.unwrap().memory.unwrap().0, 1 << 30);
    let e = Task::from_yaml_str("name: a\nworker: {image: i, resources: {memory: 12parsecs}}\nmaster: {image: i}\n")
        .unwrap_err();
    assert!(e.to_string().contains("parsecs"), "{e}");
}

#[test]
fn a_task_file_breaking_several_rules_lists_each_field_with_its_line() {
    let text = "name: \"bad name!\"\nworker:\n  image: i\n  replicas: 0\nmaster:\n  image: \"\"\n";
    let e = Task::from_yaml_str(text).unwrap_err();
    let lines: Vec<(&str, Option<usize>)> = e.problems.iter().map(|p| (p.field.as_str(), p.line)).collect();
    assert!(lines.contains(&("name", Some(1))), "{lines:?}");
    assert!(lines.contains(&("worker.replicas", Some(4))), "{lines:?}");
    assert!(lines.contains(&("master.image", Some(6))), "{lines:?}");
    let json = "{\n  \"name\": \"a\",\n  \"worker\": {\"image\": \"i\", \"replicas\": 0},\n  \"master\": {\"image\": \"i\"}\n}";
    let e = Task::from_json_str(json).unwrap_err();
    assert_eq!((e.problems[0].field.as_str(), e.problems[0].line), ("worker.replicas", Some(3)));
}

#[test]
fn with_data_bundle_fills_the_roles_that_have_no_data() {
    let task =
        Task::builder("d").workers(Service::new("i").data_volume("plans")).master(Service::new("i")).build().unwrap();
    let with = task.with_data_bundle("0123456789abcdef").unwrap();
    assert_eq!(with.workers().fileid, None, "keeps its own volume");
    assert_eq!(with.workers().data_volume.as_deref(), Some("plans"));
    assert_eq!(with.master().fileid.as_deref(), Some("0123456789abcdef"));
    assert!(task.with_data_bundle("not an id!").is_err());
}

#[test]
fn a_stop_grace_period_per_role_defaults_to_one_second_and_is_bounded() {
    let task = Task::from_yaml_str("name: g\nworker: {image: i, stopGracePeriod: 0.5}\nmaster: {image: i}\n").unwrap();
    assert_eq!(task.workers().stop_grace_period, Duration::from_millis(500));
    assert_eq!(task.master().stop_grace_period, atq_core::service::DEFAULT_STOP_GRACE_PERIOD);
    assert_eq!(atq_core::service::DEFAULT_STOP_GRACE_PERIOD, Duration::from_secs(1));
    // It round-trips, and the default is not written out.
    let yaml = task.to_yaml();
    assert!(yaml.contains("stopGracePeriod: 0.5") && yaml.matches("stopGracePeriod").count() == 1, "{yaml}");
    assert_eq!(Task::from_yaml_str(&yaml).unwrap(), task);

    let err = Task::from_yaml_str(
        "name: g\nworker: {image: i, stopGracePeriod: 7200}\nmaster: {image: i, stopGracePeriod: -1}\n",
    )
    .unwrap_err();
    assert!(has_problem(&err, "worker.stopGracePeriod", "maximum of 3600"), "{err}");
    assert!(has_problem(&err, "master.stopGracePeriod", "from 0 to 3600"), "{err}");
    let built = valid().workers(Service::new("i").stop_grace_period(Duration::from_secs(5))).build().unwrap();
    assert_eq!(built.workers().stop_grace_period, Duration::from_secs(5));
}
