//! Task files as a hostile sender writes them: every one is refused (or reported) promptly, in
//! bounded memory, with a message that names the limit or the field. The inputs are generated
//! here, never committed.

use std::time::{Duration, Instant};

use atq_core::task::{Format, ParseBudget};
use atq_core::{Problem, Task, ValidationError};

/// Generous for a debug build on a shared 2-core machine; the pre-fix times were 45 s to 290 s.
const PROMPT: Duration = Duration::from_secs(5);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < PROMPT, "{what} took {took:?}");
    out
}

fn yaml(text: &str) -> Result<Task, ValidationError> {
    Task::from_str_with(text, Format::Yaml, &ParseBudget::default())
}

fn only(e: &ValidationError) -> &Problem {
    assert_eq!(e.problems.len(), 1, "{e}");
    &e.problems[0]
}

fn find<'e>(e: &'e ValidationError, field: &str) -> &'e Problem {
    e.problems.iter().find(|p| p.field == field).unwrap_or_else(|| panic!("no problem at {field}: {e}"))
}

const ROLES: &str = "worker: {image: i}\nmaster: {image: i}\n";

#[test]
fn an_alias_amplified_file_is_refused_naming_the_limit() {
    // The issue's file: one 100 KB string and 5,000 references to it (145 KB; ~500 MB before).
    let text = format!(
        "name: t\n{ROLES}labels:\n  big: &a \"{}\"\nx: [{}]\n",
        "x".repeat(100_000),
        vec!["*a"; 5_000].join(", ")
    );
    let e = timed("alias bomb", || yaml(&text)).unwrap_err();
    assert!(only(&e).message.ends_with(", the limit"), "{e}");
    let text = format!("name: t\n{ROLES}labels: {{a: &a x}}\nx: [{}]\n", vec!["*a"; 101].join(","));
    assert!(only(&yaml(&text).unwrap_err()).message.contains("more than 100 YAML aliases or anchors"));
    // Under the alias count, the bytes after expansion are what is counted.
    let text =
        format!("name: t\n{ROLES}labels: {{big: &a \"{}\"}}\nx: [{}]\n", "x".repeat(100_000), vec!["*a"; 60].join(","));
    let e = timed("bytes after expansion", || yaml(&text)).unwrap_err();
    assert!(only(&e).message.contains("bytes of text (after expanding aliases)"), "{e}");
}

#[test]
fn deep_nesting_is_refused_at_once_in_both_formats() {
    // The issue's file: a flow sequence nested 200,000 deep (400 KB; ~290 s before).
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let e = timed("deep YAML", || yaml(&format!("name: t\n{ROLES}x: {deep}\n"))).unwrap_err();
    assert!(only(&e).message.contains("nested more than 32 deep"), "{e}");
    let e = timed("deep JSON", || Task::from_json_str(&format!("{{\"name\": \"t\", \"x\": {deep}}}"))).unwrap_err();
    assert!(only(&e).field == "task", "{e}");
    // JSON under serde_json's own limit but over the budget: the budget's words.
    let json = format!("{{\"x\": {}{}}}", "[".repeat(60), "]".repeat(60));
    let e = Task::from_json_str(&json).unwrap_err();
    assert!(only(&e).message.contains("nested more than 32 deep"), "{e}");
}

#[test]
fn a_file_over_the_size_cap_is_refused_before_it_is_parsed() {
    let text = format!("name: t\n{ROLES}# {}\n", "x".repeat(1024 * 1024));
    let e = timed("big file", || yaml(&text)).unwrap_err();
    assert!(only(&e).message.contains("more than the limit of 1048576 bytes"), "{e}");
    let small = ParseBudget { max_bytes: 100, ..ParseBudget::default() };
    let e = Task::from_str_with(&format!("{{\"name\": \"{}\"}}", "a".repeat(100)), Format::Json, &small).unwrap_err();
    assert!(only(&e).message.contains("limit of 100 bytes"), "{e}");
}

#[test]
fn many_values_are_refused_naming_the_node_limit() {
    let budget = ParseBudget { max_nodes: 1_000, ..ParseBudget::default() };
    let text = format!("name: t\n{ROLES}x: [{}]\n", vec!["1"; 2_000].join(", "));
    let e = Task::from_str_with(&text, Format::Yaml, &budget).unwrap_err();
    assert!(only(&e).message.contains("more than 1000 values"), "{e}");
}

#[test]
fn twenty_thousand_bad_keys_are_reported_promptly_and_bounded() {
    // The issue's file: 20,000 invalid environment keys (329 KB; ~45 s before).
    let env: String = (0..20_000).map(|i| format!("    BAD KEY {i}: v\n")).collect();
    let text = format!("name: t\nworker:\n  image: i\n  environment:\n{env}master: {{image: i}}\n");
    let e = timed("20,000 problems", || yaml(&text)).unwrap_err();
    assert_eq!(e.problems.len(), 201, "200 shown and one counting the rest");
    assert_eq!(e.problems[0].field, "worker.environment.BAD KEY 0");
    assert_eq!(e.problems[0].line, Some(5));
    assert_eq!(e.problems[199].line, Some(204));
    assert!(e.problems[200].message.contains("19800 more problems"), "{}", e.problems[200]);
}

#[test]
fn a_long_alias_is_reported_not_a_panic() {
    for len in [62, 63, 64, 200] {
        let alias = "a".repeat(len);
        let e = Task::builder("t")
            .workers(atq_core::Service::new("i").alias(&alias))
            .master(atq_core::Service::new("i"))
            .build()
            .unwrap_err();
        assert!(find(&e, "worker.alias").message.contains("at most 61 fit"), "{len}: {e}");
        let e = yaml(&format!("name: t\nworker: {{image: i, alias: {alias}}}\nmaster: {{image: i}}\n")).unwrap_err();
        assert_eq!(find(&e, "worker.alias").line, Some(2), "{e}");
    }
    // 61 leaves room for a one-character name, and no more.
    let alias = "a".repeat(61);
    let ok = Task::builder("t").workers(atq_core::Service::new("i").alias(&alias)).master(atq_core::Service::new("i"));
    assert_eq!(ok.build().unwrap().worker_service_name().len(), 63);
    let e = Task::builder("tt")
        .workers(atq_core::Service::new("i").alias(&alias))
        .master(atq_core::Service::new("i"))
        .build()
        .unwrap_err();
    assert!(find(&e, "name").message.contains("at most 1 fit"), "{e}");
}

#[test]
fn type_errors_and_missing_fields_are_all_reported_with_their_lines() {
    let text = "name: t\nworker:\n  image: i\n  replicas: -2\nmaster:\n  alias: boss\n";
    let e = yaml(text).unwrap_err();
    let fields: Vec<(&str, Option<usize>)> = e.problems.iter().map(|p| (p.field.as_str(), p.line)).collect();
    assert_eq!(fields, [("worker.replicas", Some(4)), ("master.image", Some(6))], "{e}");
    assert_eq!(e.problems[0].message, "must be a whole number from 1 to 10000, not the number -2");
    assert!(e.problems[1].message.starts_with("missing"), "{e}");
}

#[test]
fn four_misspelled_fields_are_four_problems() {
    let text = "name: t\nworkr: {image: i}\nworker:\n  imgae: i\n  image: i\n  replica: 2\nmaster: {image: i, tyy: true}\nstartTimout: 5\n";
    let e = yaml(text).unwrap_err();
    let got: Vec<(&str, Option<usize>)> = e.problems.iter().map(|p| (p.field.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [
            ("workr", Some(2)),
            ("worker.imgae", Some(4)),
            ("worker.replica", Some(6)),
            ("master.tyy", Some(7)),
            ("startTimout", Some(8))
        ],
        "{e}"
    );
    assert!(e.problems[2].message.contains("did you mean `replicas`?"), "{e}");
    assert!(e.problems[4].message.contains("did you mean `startTimeout`?"), "{e}");
}

#[test]
fn a_type_error_is_reported_at_its_line_in_a_users_words() {
    let e = yaml(&format!("name: t\n{ROLES}runTimeout: -5\n")).unwrap_err();
    let p = only(&e);
    assert_eq!((p.field.as_str(), p.line), ("runTimeout", Some(4)));
    assert_eq!(p.message, "must be a number of seconds above 0, at most 86400 (one day), not the number -5");
    let e =
        yaml("name: t\nworker: {image: i, replicas: \"3\", tty: yes, args: run}\nmaster: {image: i}\n").unwrap_err();
    assert_eq!(find(&e, "worker.replicas").message, "must be a whole number from 1 to 10000, not the text \"3\"");
    assert_eq!(find(&e, "worker.tty").message, "must be true or false, not the text \"yes\"");
    assert!(find(&e, "worker.args").message.starts_with("must be a list of text"), "{e}");
    for p in &e.problems {
        assert!(!p.message.contains("u32") && !p.message.contains("invalid type"), "{p}");
    }
}

#[test]
fn problems_are_sorted_by_line_type_and_rule_problems_together() {
    let text = "name: \"bad name!\"\nworker:\n  image: i\n  replicas: 0\n  tty: 3\nmaster:\n  image: \"\"\nttl: 5\n";
    let e = yaml(text).unwrap_err();
    let lines: Vec<Option<usize>> = e.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(1), Some(4), Some(5), Some(7), Some(8)], "{e}");
}

#[test]
fn duplicate_environment_keys_are_refused_in_both_forms() {
    let e = yaml("name: t\nworker:\n  image: i\n  environment: [A=1, B=2, A=3]\nmaster:\n  image: i\n  environment:\n    X: 1\n    X: 2\n")
        .unwrap_err();
    let a = find(&e, "worker.environment.A");
    assert!(a.message.contains("\"A\" is set twice"), "{e}");
    let x = find(&e, "master.environment.X");
    assert_eq!(x.line, Some(9));
    assert!(x.message.contains("first on line 8"), "{e}");
    // Built by hand, too.
    let mut service = atq_core::Service::new("i");
    service.environment = vec![("K".into(), "1".into()), ("K".into(), "2".into())];
    let e = Task::builder("t").workers(service).master(atq_core::Service::new("i")).build().unwrap_err();
    assert!(find(&e, "worker.environment.K").message.contains("set twice"), "{e}");
}

#[test]
fn duplicate_label_keys_and_fields_are_refused() {
    let e = yaml(&format!("name: t\n{ROLES}labels:\n  team: a\n  team: b\n")).unwrap_err();
    let p = only(&e);
    assert_eq!((p.field.as_str(), p.line), ("labels.team", Some(6)));
    assert!(p.message.contains("\"team\" is set twice"), "{e}");
    let e = yaml("name: t\nname: u\nworker: {image: i, labels: {a: 1, a: 2}}\nmaster: {image: i}\n").unwrap_err();
    assert_eq!(find(&e, "name").line, Some(2));
    assert_eq!(find(&e, "worker.labels.a").line, Some(3));
    let e = Task::from_json_str(r#"{"name": "t", "name": "u", "worker": {"image": "i"}, "master": {"image": "i"}}"#)
        .unwrap_err();
    assert!(only(&e).message.contains("set twice"), "{e}");
}

#[test]
fn json_bodies_get_the_same_treatment() {
    let json =
        "{\n  \"name\": \"t\",\n  \"worker\": {\"image\": \"i\", \"replicas\": -1, \"extra\": 1},\n  \"master\": {}\n}";
    let e = Task::from_json_str(json).unwrap_err();
    let got: Vec<(&str, Option<usize>)> = e.problems.iter().map(|p| (p.field.as_str(), p.line)).collect();
    assert_eq!(got, [("worker.replicas", Some(3)), ("worker.extra", Some(3)), ("master.image", Some(4))], "{e}");
    let e = Task::from_json_str("{\"name\": \"t\", \"worker\": yes}").unwrap_err();
    assert!(only(&e).message.starts_with("not valid JSON"), "{e}");
}

#[test]
fn any_serde_format_reads_a_task_with_the_same_checks() {
    let task: Task =
        serde_json::from_str(r#"{"name": "t", "worker": {"image": "i"}, "master": {"image": "i"}}"#).unwrap();
    assert_eq!(task.name(), "t");
    let e = serde_json::from_str::<Task>(r#"{"name": "t", "worker": {"image": "i", "replicas": -2}, "master": {}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("worker.replicas") && e.contains("master.image"), "{e}");
}

#[test]
fn scalars_keep_their_written_form_as_text() {
    let task =
        yaml("name: t\nworker:\n  image: i\n  environment: {VERSION: 1.10, HEX: 0x1F, ON: yes}\nmaster: {image: i}\n")
            .unwrap();
    assert_eq!(
        task.workers().environment,
        [("VERSION".into(), "1.10".into()), ("HEX".into(), "0x1F".into()), ("ON".into(), "yes".into())]
    );
}

#[test]
fn an_empty_or_multi_document_file_says_so() {
    assert!(only(&yaml("").unwrap_err()).message.contains("empty"));
    assert!(only(&yaml("# nothing\n").unwrap_err()).message.contains("empty"));
    let e = yaml(&format!("name: t\n{ROLES}---\nname: u\n")).unwrap_err();
    assert!(only(&e).message.contains("more than one YAML document"), "{e}");
    let e = yaml("- a\n- b\n").unwrap_err();
    assert!(only(&e).message.starts_with("must be a map of the task's fields"), "{e}");
}
