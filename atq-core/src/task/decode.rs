//! A task (and its parts) read from a document tree: the task file's fields, one line each.
//!
//! ## Adding a field
//! 1. Add it to `TaskFile` (or [`Service`], …) with its serde attributes: they write the field.
//! 2. Read it here, in the struct's reader, with the reader for its type:
//!    `results: fields.optional(d, "results", |d, n, p| d.serde(n, p))` works for any type with a
//!    serde `Deserialize` (its first problem is reported at the field, with its line);
//!    a reader of its own in [`super::fields`] (or a struct reader like [`service`] below) reports
//!    every problem inside it, in a user's words.
//! 3. Check its rules in `validate` (task.rs) with the field path as written in the file
//!    (`results.format`): a rule problem gets the line of that field automatically.
//!
//! The compiler enforces step 2: every struct here is built with a literal, so a new field that
//! is not read does not compile.

use std::collections::BTreeMap;

use serde::de::{self, Deserialize, Deserializer};

use super::fields::Decoder;
use super::{
    default_probe_timeout, validate, Task, TaskFile, WaitCommand, DEFAULT_START_TIMEOUT, DEFAULT_TTL, MAX_WORKERS,
};
use crate::document::{Kind, Node, ParseBudget, Tally};
use crate::error::ValidationError;
use crate::service::{EndpointMode, HealthCheck, Resources, Service, Shard, SplitMode, DEFAULT_STOP_GRACE_PERIOD};

const TIMEOUT_WORDS: &str = "a number of seconds above 0, at most 86400 (one day)";
const DELAY_WORDS: &str = "a number of seconds from 0 to 86400 (one day)";
const TTL_WORDS: &str = "a number of seconds from 60 to 2592000 (30 days)";
const HEALTH_WORDS: &str = "a number of seconds (at least 0.001, at most 86400)";
const GRACE_WORDS: &str = "a number of seconds from 0 to 3600 (one hour)";

/// The task in `node`, checked: every problem of the document at once, sorted by line.
pub(super) fn task(node: &Node, text: Option<&str>) -> Result<Task, ValidationError> {
    let mut d = Decoder::new(text);
    let file = task_file(&mut d, node);
    d.add_rule_problems(validate(&file));
    let problems = d.into_problems();
    if problems.is_empty() {
        Ok(Task { file })
    } else {
        Err(ValidationError { problems })
    }
}

fn task_file(d: &mut Decoder<'_>, node: &Node) -> TaskFile {
    let placeholder = Service::new("");
    let Some(mut f) = d.fields(node, "", "a map of the task's fields (name, worker, master, …)") else {
        return Task::builder("").file;
    };
    let file = TaskFile {
        name: f
            .required(d, "name", "give the task a name (letters, digits, '-' and '_')", Decoder::text)
            .unwrap_or_default(),
        delay: f.optional(d, "delay", |d, n, p| d.seconds(n, p, DELAY_WORDS)).unwrap_or_default(),
        wait_command: f.optional(d, "waitCommand", wait_command),
        worker: f
            .required(d, "worker", "add `worker: {image: …}`", |d, n, p| service(d, n, p))
            .unwrap_or_else(|| placeholder.clone()),
        master: f.required(d, "master", "add `master: {image: …}`", |d, n, p| service(d, n, p)).unwrap_or(placeholder),
        start_timeout: f
            .optional(d, "startTimeout", |d, n, p| d.seconds(n, p, TIMEOUT_WORDS))
            .unwrap_or(DEFAULT_START_TIMEOUT),
        run_timeout: f.optional(d, "runTimeout", |d, n, p| d.seconds(n, p, TIMEOUT_WORDS)),
        ttl: f.optional(d, "ttl", |d, n, p| d.seconds(n, p, TTL_WORDS)).unwrap_or(DEFAULT_TTL),
        labels: f.optional(d, "labels", Decoder::text_map).unwrap_or_default(),
        artifacts: f.optional(d, "artifacts", Decoder::text),
        results: f.optional(d, "results", |d, n, p| d.serde(n, p)),
        thresholds: f.optional(d, "thresholds", thresholds).unwrap_or_default(),
    };
    f.finish(d);
    file
}

fn wait_command(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<WaitCommand> {
    let mut f = d.fields(node, path, "a map with command (and expectedResult, timeout, image)")?;
    let wait = WaitCommand {
        command: f
            .required(d, "command", "give the shell command to run", Decoder::text)
            .unwrap_or_else(|| "true".into()),
        expected_result: f.optional(d, "expectedResult", Decoder::text),
        timeout: f
            .optional(d, "timeout", |d, n, p| d.seconds(n, p, TIMEOUT_WORDS))
            .unwrap_or_else(default_probe_timeout),
        image: f.optional(d, "image", Decoder::text),
    };
    f.finish(d);
    Some(wait)
}

/// One role: `worker` or `master` (or a service read on its own, at path "").
pub(crate) fn service(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Service> {
    let mut f = d.fields(node, path, "a map of the role's fields (image, replicas, …)")?;
    let replicas_words = if path == "master" {
        "1 (a task has one master)".to_owned()
    } else {
        format!("a whole number from 1 to {MAX_WORKERS}")
    };
    let service = Service {
        image: f
            .required(d, "image", "name an image that exists on the engine's nodes", Decoder::text)
            .unwrap_or_default(),
        alias: f.optional(d, "alias", Decoder::text),
        replicas: f.optional(d, "replicas", |d, n, p| d.whole_number(n, p, &replicas_words)).unwrap_or(1),
        args: f.optional(d, "args", Decoder::text_list).unwrap_or_default(),
        command: f.optional(d, "command", Decoder::text_list),
        environment: f.optional(d, "environment", Decoder::environment).unwrap_or_default(),
        tty: f.optional(d, "tty", Decoder::boolean).unwrap_or(false),
        fileid: f.optional(d, "fileid", Decoder::text),
        shards: f.optional(d, "shards", shards).unwrap_or_default(),
        data_path: f.optional(d, "dataPath", Decoder::text),
        data_volume: f.optional(d, "dataVolume", Decoder::text),
        health_check: f.optional(d, "healthCheck", health_check),
        resources: f.optional(d, "resources", resources),
        constraints: f.optional(d, "constraints", Decoder::text_list).unwrap_or_default(),
        labels: f.optional(d, "labels", Decoder::text_map).unwrap_or_else(BTreeMap::new),
        endpoint_mode: f
            .optional(d, "endpointMode", |d, n, p| d.one_of(n, p, &["dnsrr", "vip"]))
            .map_or(EndpointMode::Dnsrr, |m| if m == "vip" { EndpointMode::Vip } else { EndpointMode::Dnsrr }),
        stop_grace_period: f
            .optional(d, "stopGracePeriod", |d, n, p| d.seconds(n, p, GRACE_WORDS))
            .unwrap_or(DEFAULT_STOP_GRACE_PERIOD),
    };
    f.finish(d);
    Some(service)
}

/// `thresholds: ["p95 < 500ms", …]`: each item as written. YAML reads an unquoted
/// `- label=login: p99 < 1s` as a one-entry map; it is the same threshold. Each rule is checked in
/// `validate` (through `results::validate`), at `thresholds[i]`.
fn thresholds(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Vec<String>> {
    let Kind::List(items) = &node.kind else {
        d.expected(node, path, "a list of thresholds, like [\"p95 < 500ms\", \"error_rate < 1%\"]");
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        match &item.kind {
            Kind::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                if let Some(rule) = d.text(value, &item_path) {
                    out.push(format!("{}: {rule}", key.name));
                }
            }
            _ => {
                if let Some(text) = d.text(item, &item_path) {
                    out.push(text);
                }
            }
        }
    }
    Some(out)
}

/// `shards: [{file, split, header, delimiter}]`: every item, every problem.
fn shards(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Vec<Shard>> {
    let Kind::List(items) = &node.kind else {
        d.expected(node, path, "a list of files to split, like [{file: users.csv}]");
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some(mut f) = d.fields(item, &item_path, "a map with file (and split, header, delimiter)") else {
            continue;
        };
        let shard = Shard {
            file: f
                .required(d, "file", "name a CSV file of the bundle, like users.csv", Decoder::text)
                .unwrap_or_default(),
            split: f.optional(d, "split", |d, n, p| d.one_of(n, p, &["round-robin", "blocks"])).map_or(
                SplitMode::RoundRobin,
                |m| if m == "blocks" { SplitMode::Blocks } else { SplitMode::RoundRobin },
            ),
            header: f.optional(d, "header", Decoder::boolean).unwrap_or(true),
            delimiter: f.optional(d, "delimiter", Decoder::character).unwrap_or(','),
        };
        f.finish(d);
        out.push(shard);
    }
    Some(out)
}

fn health_check(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<HealthCheck> {
    let mut f = d.fields(node, path, "a map with test (and interval, timeout, retries, startPeriod)")?;
    let check = HealthCheck {
        test: f
            .required(d, "test", "give a shell command that exits 0 when healthy", Decoder::text)
            .unwrap_or_else(|| "true".into()),
        interval: f.optional(d, "interval", |d, n, p| d.seconds(n, p, HEALTH_WORDS)),
        timeout: f.optional(d, "timeout", |d, n, p| d.seconds(n, p, HEALTH_WORDS)),
        retries: f.optional(d, "retries", |d, n, p| d.whole_number(n, p, "a whole number, at least 1")),
        start_period: f.optional(d, "startPeriod", |d, n, p| d.seconds(n, p, HEALTH_WORDS)),
    };
    f.finish(d);
    Some(check)
}

fn resources(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Resources> {
    let mut f = d.fields(node, path, "a map with cpus and/or memory")?;
    let resources = Resources {
        cpus: f.optional(d, "cpus", |d, n, p| d.number(n, p, "a number of CPUs above 0, like 0.5 or 2")),
        memory: f.optional(d, "memory", Decoder::byte_size),
    };
    f.finish(d);
    Some(resources)
}

/// Reads any serde input into a tree (within the default budget), then `read` it: the
/// `Deserialize` of the task's types, so that a task read by any serde format gets the same
/// checks as a task file.
fn deserialize_via<'de, D, T>(
    d: D,
    read: impl FnOnce(&mut Decoder<'_>, &Node) -> Option<T>,
    rules: impl FnOnce(&T) -> Vec<crate::error::Problem>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let budget = ParseBudget::default();
    let tally = Tally::install(&budget, false);
    let node = Node::deserialize(d);
    let over = tally.finish_message(&budget);
    let node = node.map_err(|e| match over {
        Some(message) => de::Error::custom(message),
        None => e,
    })?;
    let mut decoder = Decoder::new(None);
    let value = read(&mut decoder, &node);
    if let Some(value) = &value {
        decoder.add_rule_problems(rules(value));
    }
    let problems = decoder.into_problems();
    match value {
        Some(value) if problems.is_empty() => Ok(value),
        _ => Err(de::Error::custom(ValidationError { problems })),
    }
}

impl<'de> Deserialize<'de> for Task {
    /// Any serde format: the same fields, checks and messages as [`Task::from_str_with`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = deserialize_via(d, |d, n| Some(task_file(d, n)), validate)?;
        Ok(Task { file })
    }
}

impl<'de> Deserialize<'de> for Service {
    /// The fields of a task file's `worker` or `master`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via(d, |d, n| service(d, n, ""), |_| Vec::new())
    }
}

impl<'de> Deserialize<'de> for WaitCommand {
    /// The fields of a task file's `waitCommand`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via(d, |d, n| wait_command(d, n, ""), |_| Vec::new())
    }
}

impl<'de> Deserialize<'de> for HealthCheck {
    /// The fields of a task file's `healthCheck`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via(d, |d, n| health_check(d, n, ""), |_| Vec::new())
    }
}

impl<'de> Deserialize<'de> for Resources {
    /// The fields of a task file's `resources`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via(d, |d, n| resources(d, n, ""), |_| Vec::new())
    }
}
