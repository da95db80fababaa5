//! What to run: [`Task`], built with [`TaskBuilder`] or read from a task file, and its
//! [`WaitCommand`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use crate::document::{Format, ParseBudget};
use crate::error::{Problem, ValidationError};
use crate::labels;
use crate::results::{ResultsSpec, Threshold};
use crate::serde_util::{opt_secs, secs};
use crate::service::Service;

mod decode;
pub(crate) mod fields;

pub use crate::service::MAX_WORKERS;

/// Longest engine object name (services and networks).
pub const MAX_ENGINE_NAME: usize = 63;

/// Default time for the workers (and then the master) to be running.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Default time after which `prune` may remove a task's leftovers.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest delay or timeout a task may ask for (one day).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Variables atq sets itself; a task may not set them.
pub const RESERVED_ENV: &[&str] = &[
    "WORKER_CSV_VIPS",
    "REMOTES",
    "MASTER_HOST",
    "ATQ_TASK",
    "ATQ_ROLE",
    "ATQ_WORKERS_FILE",
    "ATQ_RESULTS_DIR",
    "ATQ_WORKER_INDEX",
    "ATQ_WORKER_COUNT",
    "ATQ_WORKER_INDEXES",
];

/// Suffixes atq derives engine names with, besides the two aliases.
const NETWORK_SUFFIX: &str = "net";
const PROBE_SUFFIX: &str = "probe";

/// A distributed task: N workers and one master on a private network.
///
/// A `Task` is always valid: it comes from [`Task::builder`] + [`TaskBuilder::build`], or
/// from a task file ([`Task::from_str_with`], [`Task::from_yaml_str`], [`Task::from_json_str`],
/// or any serde format through its `Deserialize`), which run the same checks.
///
/// ```
/// use std::time::Duration;
/// use atq_core::{Service, Task, WaitCommand};
///
/// let task = Task::builder("checkout-load")
///     .workers(Service::new("lab/jmeter:2.13").replicas(4).env("MODE", "worker").args(["jmeter-server"]))
///     .master(Service::new("lab/jmeter:2.13").env("MODE", "master"))
///     .wait_command(WaitCommand::new("nc -w1 $IP 1099").expect("ready").timeout(Duration::from_secs(60)))
///     .delay(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(task.worker_service_name(), "checkout-load_worker");
/// # Ok::<(), atq_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "TaskFile")]
pub struct Task {
    file: TaskFile,
}

/// The wait command (ATQ-Director's `waitCommand`): a probe run on the task network once the
/// workers run and before the master starts, retried until it passes or times out.
///
/// It runs as `sh -c "<command>"` in a one-off container (image: `image`, or else the
/// master's) with `WORKER_CSV_VIPS` and `REMOTES` in its environment. It passes when it exits 0
/// and, if `expectedResult` is set, its trimmed output equals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct WaitCommand {
    /// Shell command.
    pub command: String,
    /// Output (trimmed) the command must print to pass; None or empty: exit 0 is enough.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_result: Option<String>,
    /// How long to keep trying, in seconds (default 60).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Image to run the command in; default: the master's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(60)
}

impl WaitCommand {
    /// A probe running `command`; passes on exit 0.
    pub fn new(command: impl Into<String>) -> Self {
        WaitCommand { command: command.into(), expected_result: None, timeout: default_probe_timeout(), image: None }
    }

    /// Requires the command's trimmed output to equal `expected`.
    pub fn expect(mut self, expected: impl Into<String>) -> Self {
        self.expected_result = Some(expected.into());
        self
    }

    /// How long to keep trying.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the command in `image` instead of the master's image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }
}

/// The serialised form of a task: ATQ-Director's payload plus atq's own optional fields.
///
/// Serde writes it; `task/decode.rs` reads it (one line per field: see there to add one).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskFile {
    name: String,
    #[serde(with = "secs", skip_serializing_if = "Duration::is_zero")]
    delay: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_command: Option<WaitCommand>,
    worker: Service,
    master: Service,
    #[serde(with = "secs")]
    start_timeout: Duration,
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    run_timeout: Option<Duration>,
    #[serde(with = "secs")]
    ttl: Duration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    /// Directory in the master's container whose files are the task's artifacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<String>,
    /// Where the master's results are among its artifacts, and their format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    results: Option<ResultsSpec>,
    /// Pass/fail rules judged on the results (`p95 < 500ms`); a failed one makes the run exit 99.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    thresholds: Vec<String>,
}

impl TryFrom<TaskFile> for Task {
    type Error = ValidationError;
    fn try_from(file: TaskFile) -> Result<Self, ValidationError> {
        let problems = validate(&file);
        if problems.is_empty() {
            Ok(Task { file })
        } else {
            Err(ValidationError { problems })
        }
    }
}

impl From<Task> for TaskFile {
    fn from(task: Task) -> TaskFile {
        task.file
    }
}

impl Task {
    /// Starts building a task named `name`.
    pub fn builder(name: impl Into<String>) -> TaskBuilder {
        TaskBuilder {
            file: TaskFile {
                name: name.into(),
                delay: Duration::ZERO,
                wait_command: None,
                worker: Service::new(""),
                master: Service::new(""),
                start_timeout: DEFAULT_START_TIMEOUT,
                run_timeout: None,
                ttl: DEFAULT_TTL,
                labels: BTreeMap::new(),
                artifacts: None,
                results: None,
                thresholds: Vec::new(),
            },
            has_workers: false,
            has_master: false,
        }
    }

    /// Reads a task from untrusted text in `format`, within `budget`: the one entry point for
    /// task files and request bodies.
    ///
    /// Past a limit of the budget the text is refused at once, with one problem naming the limit.
    /// Otherwise every problem in the document is reported together, sorted by line, each with
    /// its field path (`worker.replicas`), its line, and what the field allows.
    ///
    /// ```
    /// use atq_core::task::{Format, ParseBudget, Task};
    ///
    /// let text = "name: t\nworker: {image: i, replicas: -2}\nmaster: {replicas: 1}\n";
    /// let e = Task::from_str_with(text, Format::Yaml, &ParseBudget::default()).unwrap_err();
    /// assert_eq!(e.problems[0].field, "worker.replicas");
    /// assert_eq!(e.problems[0].line, Some(2));
    /// assert!(e.problems[0].message.contains("a whole number from 1 to 10000"));
    /// assert_eq!(e.problems[1].field, "master.image");
    /// ```
    pub fn from_str_with(text: &str, format: Format, budget: &ParseBudget) -> Result<Task, ValidationError> {
        let node = crate::document::parse(text, format, budget).map_err(|p| ValidationError { problems: vec![p] })?;
        decode::task(&node, Some(text))
    }

    /// Reads a task from YAML (a task file), within the default [`ParseBudget`].
    pub fn from_yaml_str(text: &str) -> Result<Task, ValidationError> {
        Task::from_str_with(text, Format::Yaml, &ParseBudget::default())
    }

    /// Reads a task from JSON (ATQ-Director's payload), within the default [`ParseBudget`].
    pub fn from_json_str(text: &str) -> Result<Task, ValidationError> {
        Task::from_str_with(text, Format::Json, &ParseBudget::default())
    }

    /// Writes the task as YAML.
    #[must_use]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a task always serialises")
    }

    /// Writes the task as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a task always serialises")
    }

    /// The task's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// The worker role.
    pub fn workers(&self) -> &Service {
        &self.file.worker
    }

    /// The master role.
    pub fn master(&self) -> &Service {
        &self.file.master
    }

    /// The wait command, if any.
    #[must_use]
    pub fn wait_command(&self) -> Option<&WaitCommand> {
        self.file.wait_command.as_ref()
    }

    /// Pause between the probe passing (or the workers running) and the master starting.
    #[must_use]
    pub fn delay(&self) -> Duration {
        self.file.delay
    }

    /// Time allowed for the workers, then the master, to be running.
    #[must_use]
    pub fn start_timeout(&self) -> Duration {
        self.file.start_timeout
    }

    /// Time allowed for the master to finish once running; None: wait as long as it takes.
    #[must_use]
    pub fn run_timeout(&self) -> Option<Duration> {
        self.file.run_timeout
    }

    /// After this long, `prune` may remove what the task left behind.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.file.ttl
    }

    /// Extra labels on every engine object of the task.
    #[must_use]
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.file.labels
    }

    /// The directory, inside the master's container, whose files are the task's artifacts
    /// (`/atq/results`); None: the task has none. The master finds it in `ATQ_RESULTS_DIR`.
    #[must_use]
    pub fn artifacts(&self) -> Option<&str> {
        self.file.artifacts.as_deref()
    }

    /// Where the master's results are among its artifacts; None: found by
    /// [`results::analyze`](crate::results::analyze)'s rule when thresholds are declared.
    #[must_use]
    pub fn results(&self) -> Option<&ResultsSpec> {
        self.file.results.as_ref()
    }

    /// The pass/fail thresholds, parsed (a built task's thresholds always parse).
    #[must_use]
    pub fn thresholds(&self) -> Vec<Threshold> {
        self.file.thresholds.iter().filter_map(|t| t.parse().ok()).collect()
    }

    /// The task's overlay network: `<name>_net`.
    #[must_use]
    pub fn network_name(&self) -> String {
        format!("{}_{NETWORK_SUFFIX}", self.file.name)
    }

    /// The worker service: `<name>_<worker alias>`.
    #[must_use]
    pub fn worker_service_name(&self) -> String {
        format!("{}_{}", self.file.name, worker_alias(&self.file.worker))
    }

    /// The master service: `<name>_<master alias>`.
    #[must_use]
    pub fn master_service_name(&self) -> String {
        format!("{}_{}", self.file.name, master_alias(&self.file.master))
    }

    /// The wait command's one-off service: `<name>_probe`.
    #[must_use]
    pub fn probe_service_name(&self) -> String {
        format!("{}_{PROBE_SUFFIX}", self.file.name)
    }

    /// A copy of this task under another name (handy for running one file many times).
    pub fn renamed(&self, name: impl Into<String>) -> Result<Task, ValidationError> {
        let mut file = self.file.clone();
        file.name = name.into();
        Task::try_from(file)
    }

    /// A copy of this task whose roles without data of their own mount the data bundle `id`
    /// (`atq run --data PATH` pushes a bundle, then calls this).
    pub fn with_data_bundle(&self, id: &str) -> Result<Task, ValidationError> {
        let mut file = self.file.clone();
        for service in [&mut file.worker, &mut file.master] {
            if crate::data::DataSource::of(service).is_none() {
                service.fileid = Some(id.to_owned());
            }
        }
        Task::try_from(file)
    }

    /// A copy of this task with another field changed, re-validated.
    pub fn to_builder(&self) -> TaskBuilder {
        TaskBuilder { file: self.file.clone(), has_workers: true, has_master: true }
    }
}

fn worker_alias(s: &Service) -> &str {
    s.alias.as_deref().unwrap_or("worker")
}

fn master_alias(s: &Service) -> &str {
    s.alias.as_deref().unwrap_or("master")
}

/// Builds a [`Task`]; [`build`](TaskBuilder::build) checks every rule at once.
#[derive(Debug, Clone)]
#[must_use]
pub struct TaskBuilder {
    file: TaskFile,
    has_workers: bool,
    has_master: bool,
}

impl TaskBuilder {
    /// The worker role (N replicas).
    pub fn workers(mut self, workers: Service) -> Self {
        self.file.worker = workers;
        self.has_workers = true;
        self
    }

    /// The master role (one replica).
    pub fn master(mut self, master: Service) -> Self {
        self.file.master = master;
        self.has_master = true;
        self
    }

    /// A probe that gates the master until it passes.
    pub fn wait_command(mut self, wait: WaitCommand) -> Self {
        self.file.wait_command = Some(wait);
        self
    }

    /// A pause before the master starts.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.file.delay = delay;
        self
    }

    /// Time allowed for the workers, then the master, to be running (default 120 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.file.start_timeout = timeout;
        self
    }

    /// Time allowed for the master to finish once running (default: no limit).
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.file.run_timeout = Some(timeout);
        self
    }

    /// After this long, `prune` may remove what the task left behind (default 24 h).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.file.ttl = ttl;
        self
    }

    /// Adds a label to every engine object of the task.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.file.labels.insert(key.into(), value.into());
        self
    }

    /// Collects the files the master writes under `dir` (an absolute path in its container, such as
    /// `/atq/results`) as the task's artifacts; the master finds the path in `ATQ_RESULTS_DIR`.
    ///
    /// ```
    /// use atq_core::{Service, Task};
    ///
    /// let task = Task::builder("load")
    ///     .workers(Service::new("lab/jmeter:2.13"))
    ///     .master(Service::new("lab/jmeter:2.13"))
    ///     .artifacts("/atq/results")
    ///     .build()?;
    /// assert_eq!(task.artifacts(), Some("/atq/results"));
    /// # Ok::<(), atq_core::ValidationError>(())
    /// ```
    pub fn artifacts(mut self, dir: impl Into<String>) -> Self {
        self.file.artifacts = Some(dir.into());
        self
    }

    /// Reads the master's results from `spec.path` among its artifacts (needs
    /// [`artifacts`](TaskBuilder::artifacts)).
    ///
    /// ```
    /// use atq_core::results::{Format, ResultsSpec};
    /// use atq_core::{Service, Task};
    ///
    /// let task = Task::builder("load")
    ///     .workers(Service::new("lab/jmeter:2.13"))
    ///     .master(Service::new("lab/jmeter:2.13"))
    ///     .artifacts("/atq/results")
    ///     .results(ResultsSpec::new("results.jtl").format(Format::Jtl))
    ///     .threshold("p95 < 500ms")
    ///     .threshold("label=login: p99 < 1s")
    ///     .build()?;
    /// assert_eq!(task.thresholds().len(), 2);
    /// # Ok::<(), atq_core::ValidationError>(())
    /// ```
    pub fn results(mut self, spec: ResultsSpec) -> Self {
        self.file.results = Some(spec);
        self
    }

    /// Adds a pass/fail threshold (grammar: [`Threshold`]); checked at [`build`](TaskBuilder::build)
    /// as `thresholds[i]`.
    pub fn threshold(mut self, threshold: impl Into<String>) -> Self {
        self.file.thresholds.push(threshold.into());
        self
    }

    /// Adds several thresholds.
    pub fn thresholds<I, S>(mut self, thresholds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.file.thresholds.extend(thresholds.into_iter().map(Into::into));
        self
    }

    /// Checks every rule and returns the task, or every problem found.
    pub fn build(self) -> Result<Task, ValidationError> {
        let mut problems = Vec::new();
        if !self.has_workers {
            problems.push(problem("worker", "missing: call .workers(Service::new(image))"));
        }
        if !self.has_master {
            problems.push(problem("master", "missing: call .master(Service::new(image))"));
        }
        let (has_workers, has_master) = (self.has_workers, self.has_master);
        match Task::try_from(self.file) {
            Ok(task) if problems.is_empty() => Ok(task),
            Ok(_) => Err(ValidationError { problems }),
            Err(e) => {
                // A missing role is one problem, not one per field of its empty placeholder.
                problems.extend(e.problems.into_iter().filter(|p| {
                    (has_workers || !p.field.starts_with("worker.")) && (has_master || !p.field.starts_with("master."))
                }));
                Err(ValidationError { problems })
            }
        }
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { field: field.into(), message: message.into(), line: None }
}

/// Whether `name` is a valid engine name: `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`.
#[must_use]
pub fn is_engine_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

fn validate(f: &TaskFile) -> Vec<Problem> {
    let mut out = Vec::new();
    if f.name.is_empty() {
        out.push(problem("name", "empty: give the task a name (letters, digits, '-' and '_')"));
    } else if !is_engine_name(&f.name) {
        out.push(problem(
            "name",
            format!("\"{}\" is not a valid name: use letters, digits, '-' and '_', starting and ending with a letter or digit", f.name),
        ));
    } else {
        let longest = [worker_alias(&f.worker), master_alias(&f.master), NETWORK_SUFFIX, PROBE_SUFFIX]
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(0);
        // `<name>_<suffix>`: with an alias too long to leave room for any name, the alias itself
        // is reported (see `validate_service`) and the name is not.
        let max = MAX_ENGINE_NAME.checked_sub(1 + longest).filter(|max| *max > 0);
        if let Some(max) = max.filter(|max| f.name.len() > *max) {
            out.push(problem(
                "name",
                format!(
                    "\"{}\" is {} characters; at most {max} fit, because the engine names derived from it (`<name>_<alias>`) may have at most {MAX_ENGINE_NAME}",
                    f.name,
                    f.name.len()
                ),
            ));
        }
    }
    validate_service(&mut out, "worker", &f.worker, worker_alias(&f.worker));
    validate_service(&mut out, "master", &f.master, master_alias(&f.master));
    if f.worker.replicas == 0 {
        out.push(problem("worker.replicas", "must be at least 1"));
    } else if f.worker.replicas > MAX_WORKERS {
        out.push(problem("worker.replicas", format!("{} is above the maximum of {MAX_WORKERS}", f.worker.replicas)));
    }
    if f.master.replicas != 1 {
        out.push(problem("master.replicas", format!("must be 1 (a task has one master), got {}", f.master.replicas)));
    }
    if worker_alias(&f.worker) == master_alias(&f.master) {
        out.push(problem(
            "master.alias",
            format!("\"{}\" is also the worker alias: the two roles need different aliases", master_alias(&f.master)),
        ));
    }
    if let Some(w) = &f.wait_command {
        if w.command.trim().is_empty() {
            out.push(problem("waitCommand.command", "empty: give a shell command, or remove waitCommand"));
        }
        check_duration(&mut out, "waitCommand.timeout", w.timeout, true);
        if let Some(image) = &w.image {
            check_image(&mut out, "waitCommand.image", image);
        }
    }
    check_duration(&mut out, "delay", f.delay, false);
    check_duration(&mut out, "startTimeout", f.start_timeout, true);
    if let Some(t) = f.run_timeout {
        check_duration(&mut out, "runTimeout", t, true);
    }
    if f.ttl < Duration::from_secs(60) || f.ttl > Duration::from_secs(30 * 24 * 3600) {
        out.push(problem("ttl", "must be between 60 seconds and 30 days"));
    }
    check_labels(&mut out, "labels", &f.labels);
    if let Some(dir) = &f.artifacts {
        check_artifacts_dir(&mut out, dir);
    }
    out.extend(crate::results::validate(f.results.as_ref(), &f.thresholds, f.artifacts.as_deref()));
    out
}

/// The artifacts directory: absolute, not `/`, without `.`/`..` components, NUL or newlines.
fn check_artifacts_dir(out: &mut Vec<Problem>, dir: &str) {
    let message = if !dir.starts_with('/') {
        format!("\"{dir}\" is not absolute: give a directory in the master's container, like /atq/results")
    } else if dir.trim_end_matches('/').is_empty() {
        "\"/\" is the whole container: give a directory of its own, like /atq/results".to_owned()
    } else if dir.split('/').any(|c| c == ".." || c == ".") {
        format!("\"{dir}\" contains '.' or '..': write the directory's plain absolute path")
    } else if dir.chars().any(char::is_control) {
        format!("{dir:?} contains a control character")
    } else {
        return;
    };
    out.push(problem("artifacts", message));
}

fn check_duration(out: &mut Vec<Problem>, field: &str, d: Duration, must_be_positive: bool) {
    if must_be_positive && d.is_zero() {
        out.push(problem(field, "must be more than 0 seconds"));
    } else if d > MAX_DURATION {
        out.push(problem(
            field,
            format!("{} seconds is more than the maximum of {} (one day)", d.as_secs(), MAX_DURATION.as_secs()),
        ));
    }
}

fn check_image(out: &mut Vec<Problem>, field: &str, image: &str) {
    if image.trim().is_empty() {
        out.push(problem(field, "empty: name an image that exists on the engine's nodes"));
    } else if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        out.push(problem(field, format!("\"{image}\" contains whitespace: an image reference cannot")));
    }
}

fn check_labels(out: &mut Vec<Problem>, field: &str, labels: &BTreeMap<String, String>) {
    for key in labels.keys() {
        if key.is_empty() {
            out.push(problem(field, "a label key is empty"));
        } else if key.starts_with("io.atq.") {
            out.push(problem(
                format!("{field}.{key}"),
                format!("keys under io.atq. are reserved for atq (it sets {}, {}, …)", labels::TASK, labels::ROLE),
            ));
        }
    }
}

/// Longest alias: room is left for a one-character task name and the `_` (`a_<alias>`).
const MAX_ALIAS: usize = MAX_ENGINE_NAME - 2;

fn validate_service(out: &mut Vec<Problem>, role: &str, s: &Service, alias: &str) {
    check_image(out, &format!("{role}.image"), &s.image);
    if !is_engine_name(alias) || matches!(alias, NETWORK_SUFFIX | PROBE_SUFFIX) {
        out.push(problem(
            format!("{role}.alias"),
            format!("\"{alias}\" is not allowed: use letters, digits, '-' and '_', and not \"{NETWORK_SUFFIX}\" or \"{PROBE_SUFFIX}\""),
        ));
    } else if alias.len() > MAX_ALIAS {
        out.push(problem(
            format!("{role}.alias"),
            format!(
                "is {} characters; at most {MAX_ALIAS} fit, because the engine name `<name>_<alias>` may have at most {MAX_ENGINE_NAME}",
                alias.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &s.environment {
        let field = format!("{role}.environment.{key}");
        if !seen.insert(key.as_str()) {
            out.push(problem(field, format!("\"{key}\" is set twice: keep one")));
        } else if key.is_empty() {
            out.push(problem(format!("{role}.environment"), "a variable has an empty name"));
        } else if key.contains('=') || key.contains('\0') || key.chars().any(char::is_whitespace) {
            out.push(problem(field, "a variable name cannot contain '=', whitespace or NUL"));
        } else if RESERVED_ENV.contains(&key.as_str()) {
            out.push(problem(field, "is set by atq itself; pick another name"));
        } else if value.contains('\0') {
            out.push(problem(field, "the value contains a NUL byte"));
        }
    }
    if let Some(cmd) = &s.command {
        if cmd.is_empty() || cmd[0].is_empty() {
            out.push(problem(
                format!("{role}.command"),
                "empty: give the program to run, or leave command out to keep the image's",
            ));
        }
    }
    if let Some(id) = &s.fileid {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            out.push(problem(
                format!("{role}.fileid"),
                format!("\"{id}\" is not a data bundle id: use the id `atq data push` printed"),
            ));
        }
    }
    out.extend(crate::data::validate_service_data(role, s));
    if s.stop_grace_period > crate::service::MAX_STOP_GRACE_PERIOD {
        out.push(problem(
            format!("{role}.stopGracePeriod"),
            format!("{} seconds is more than the maximum of 3600 (one hour)", s.stop_grace_period.as_secs()),
        ));
    }
    if let Some(h) = &s.health_check {
        let field = format!("{role}.healthCheck");
        if h.test.trim().is_empty() {
            out.push(problem(format!("{field}.test"), "empty: give a shell command that exits 0 when healthy"));
        }
        for (name, d) in [("interval", h.interval), ("timeout", h.timeout)] {
            if let Some(d) = d {
                if d < Duration::from_millis(1) {
                    out.push(problem(format!("{field}.{name}"), "must be at least 1 ms"));
                } else if d > MAX_DURATION {
                    out.push(problem(format!("{field}.{name}"), "must be at most one day"));
                }
            }
        }
        if h.retries == Some(0) {
            out.push(problem(format!("{field}.retries"), "must be at least 1"));
        }
    }
    if let Some(r) = &s.resources {
        if let Some(c) = r.cpus {
            if !(c.is_finite() && c > 0.0 && c <= 1024.0) {
                out.push(problem(
                    format!("{role}.resources.cpus"),
                    format!("{c} is not a CPU count: use a number above 0, like 0.5 or 2"),
                ));
            }
        }
        if let Some(m) = r.memory {
            if m.0 < 6 * 1024 * 1024 {
                out.push(problem(format!("{role}.resources.memory"), "must be at least 6M (the engine's minimum)"));
            }
        }
    }
    for c in &s.constraints {
        if !(c.contains("==") || c.contains("!=")) {
            out.push(problem(
                format!("{role}.constraints"),
                format!("\"{c}\" is not a constraint: write `attribute==value` or `attribute!=value`"),
            ));
        }
    }
    check_labels(out, &format!("{role}.labels"), &s.labels);
}
