//! One role's container spec: [`Service`], with its [`HealthCheck`] and [`Resources`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::serde_util::{env_list, opt_secs, secs, ByteSize};

/// How long a replica has to stop after SIGTERM before it is killed, unless its role says
/// otherwise (`stopGracePeriod`): one second. A load-test worker or master has nothing to save
/// at teardown (the master has exited by then), and the engine's own default of 10 s is what a
/// worker running `sleep` as PID 1 (which ignores SIGTERM) would add to every teardown.
pub const DEFAULT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(1);

/// The longest stop grace period a role may ask for (one hour).
pub const MAX_STOP_GRACE_PERIOD: Duration = Duration::from_secs(3600);

/// Most worker replicas one task may ask for.
///
/// 10,000 keeps the worker list well inside one swarm config (about 160 KB) and the
/// deploy inside what one manager schedules in reasonable time; the `WORKER_CSV_VIPS`
/// variable itself holds about 8,000 addresses (the kernel caps one variable at 128 KiB),
/// beyond which the master reads the list from `/atq/workers` only.
pub const MAX_WORKERS: u32 = 10_000;

/// How a service's name resolves on its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// DNS round robin: the service name resolves to every replica's address. atq's default.
    #[default]
    Dnsrr,
    /// A virtual IP in front of the replicas (needs IPVS in the kernel).
    Vip,
}

/// One role of a task (the workers, or the master): what each replica runs.
///
/// Fields are public to read; a [`Task`](crate::Task) checks them all when it is built, and a
/// built task only hands out shared references, so a built task is always valid.
///
/// ```
/// use atq_core::Service;
/// let workers = Service::new("lab/jmeter:2.13")
///     .replicas(4)
///     .env("MODE", "worker")
///     .args(["jmeter-server"]);
/// assert_eq!(workers.replicas, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct Service {
    /// Image reference; must exist on the engine's nodes (atq never pulls).
    pub image: String,
    /// Name of the role; the engine service is `<task>_<alias>`. Default "worker" / "master".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Number of replicas. The master always has exactly one.
    pub replicas: u32,
    /// The container's arguments; they replace the image's CMD (as ATQ-Director's `args` did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Entrypoint override; None keeps the image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment, in order. In files: a list of `"K=V"` strings, or a map.
    #[serde(with = "env_list", skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<(String, String)>,
    /// Allocate a TTY.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Id of a data bundle to mount at `/atq/data` (see [`DataBundle`](crate::DataBundle)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fileid: Option<String>,
    /// Files of the bundle (`fileid`) split across the replicas: each replica sees only its slice,
    /// at the file's usual path under `/atq/data` (workers only; see [`Shard`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<Shard>,
    /// A directory on every node running a replica, bind-mounted read-only at `/atq/data` (for a
    /// shared filesystem such as NFS or GlusterFS; for data too large for a bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_path: Option<String>,
    /// A named volume mounted read-only at `/atq/data` (for data too large for a bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<String>,
    /// In-container health check; a replica counts as running only once it passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// CPU and memory limits per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Placement constraints, in the engine's syntax (`node.role==worker`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Extra labels on the service and its containers (keys under `io.atq.` are reserved).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How the service name resolves: `dnsrr` (default) or `vip`.
    #[serde(skip_serializing_if = "is_default")]
    pub endpoint_mode: EndpointMode,
    /// How long each replica has to stop after SIGTERM at teardown before it is killed
    /// (default [`DEFAULT_STOP_GRACE_PERIOD`], at most [`MAX_STOP_GRACE_PERIOD`]).
    #[serde(with = "secs", skip_serializing_if = "is_default_grace")]
    pub stop_grace_period: Duration,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_default_grace(d: &Duration) -> bool {
    *d == DEFAULT_STOP_GRACE_PERIOD
}

impl Service {
    /// A service of one replica running `image` with its own CMD.
    pub fn new(image: impl Into<String>) -> Self {
        Service {
            image: image.into(),
            alias: None,
            replicas: 1,
            args: Vec::new(),
            command: None,
            environment: Vec::new(),
            tty: false,
            fileid: None,
            shards: Vec::new(),
            data_path: None,
            data_volume: None,
            health_check: None,
            resources: None,
            constraints: Vec::new(),
            labels: BTreeMap::new(),
            endpoint_mode: EndpointMode::Dnsrr,
            stop_grace_period: DEFAULT_STOP_GRACE_PERIOD,
        }
    }

    /// Sets the number of replicas.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Adds an environment variable (a later value for the same key wins).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.environment.retain(|(k, _)| *k != key);
        self.environment.push((key, value.into()));
        self
    }

    /// Sets the container's arguments (they replace the image's CMD).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides the image's entrypoint.
    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// Allocates a TTY.
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// Names the role; the engine service becomes `<task>_<alias>`.
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    /// Mounts the data bundle `fileid` at `/atq/data`.
    pub fn data(mut self, fileid: impl Into<String>) -> Self {
        self.fileid = Some(fileid.into());
        self
    }

    /// Splits a file of the service's bundle across its replicas: each worker sees only its
    /// slice, header first, at the file's usual path (a later shard of the same file wins).
    ///
    /// ```
    /// use atq_core::data::{Shard, SplitMode};
    /// use atq_core::{Service, Task};
    ///
    /// let task = Task::builder("load")
    ///     .workers(
    ///         Service::new("lab/jmeter:2.13")
    ///             .replicas(4)
    ///             .data("0123456789abcdef")
    ///             .shard(Shard::new("users.csv").split(SplitMode::Blocks)),
    ///     )
    ///     .master(Service::new("lab/jmeter:2.13"))
    ///     .build()?;
    /// assert_eq!(task.workers().shards[0].file, "users.csv");
    /// # Ok::<(), atq_core::ValidationError>(())
    /// ```
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shards.retain(|s| s.file != shard.file);
        self.shards.push(shard);
        self
    }

    /// Bind-mounts `path`, a directory on every node that runs a replica (a shared filesystem),
    /// read-only at `/atq/data`. A service names at most one of [`data`](Self::data),
    /// `data_path` and [`data_volume`](Self::data_volume).
    pub fn data_path(mut self, path: impl Into<String>) -> Self {
        self.data_path = Some(path.into());
        self
    }

    /// Mounts the named volume `name` read-only at `/atq/data`.
    pub fn data_volume(mut self, name: impl Into<String>) -> Self {
        self.data_volume = Some(name.into());
        self
    }

    /// Adds an in-container health check.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Limits CPU and memory per replica.
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Adds a placement constraint (`node.labels.zone==a`).
    pub fn constraint(mut self, constraint: impl Into<String>) -> Self {
        self.constraints.push(constraint.into());
        self
    }

    /// Adds a label to the service and its containers.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Gives each replica `grace` to stop after SIGTERM at teardown before it is killed
    /// (default [`DEFAULT_STOP_GRACE_PERIOD`]): raise it for a worker that must flush something.
    pub fn stop_grace_period(mut self, grace: Duration) -> Self {
        self.stop_grace_period = grace;
        self
    }

    /// Chooses how the service name resolves (default [`EndpointMode::Dnsrr`]).
    pub fn endpoint_mode(mut self, mode: EndpointMode) -> Self {
        self.endpoint_mode = mode;
        self
    }
}

/// An in-container health check, run by the engine (Docker's HEALTHCHECK).
///
/// A replica with a health check counts as running only once the check passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct HealthCheck {
    /// The command, run by `/bin/sh -c` in the container; healthy when it exits 0.
    pub test: String,
    /// Time between checks; None: the engine's default (Docker: 30 s).
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Time one check may take; None: the engine's default (Docker: 30 s).
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failed checks in a row before unhealthy; None: the engine's default (Docker: 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Grace period after start during which failures do not count.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
}

impl HealthCheck {
    /// A check running `test` through the container's shell.
    pub fn new(test: impl Into<String>) -> Self {
        HealthCheck { test: test.into(), interval: None, timeout: None, retries: None, start_period: None }
    }

    /// Time between checks.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Time one check may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Failed checks in a row before the replica is unhealthy.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Grace period after start.
    pub fn start_period(mut self, start_period: Duration) -> Self {
        self.start_period = Some(start_period);
        self
    }
}

/// CPU and memory limits per replica.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct Resources {
    /// CPUs (1.5 = one and a half cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory; in files a number of bytes or a string like `"512M"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
}

impl Resources {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits CPUs.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Limits memory, in bytes.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory = Some(ByteSize(bytes));
        self
    }
}

/// How the rows of a sharded file are dealt to the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitMode {
    /// Row `k` (from 0) goes to worker `k % N + 1`: every worker gets rows from the whole file
    /// (a file sorted by date or region is mixed across the workers). The default.
    #[default]
    RoundRobin,
    /// Worker 1 gets the first rows, worker 2 the next, and so on: each worker's rows are
    /// contiguous in the file (for ranges of ids, or rows meant to be used in order).
    Blocks,
}

impl SplitMode {
    /// The name used in task files and on the command line (`round-robin`, `blocks`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SplitMode::RoundRobin => "round-robin",
            SplitMode::Blocks => "blocks",
        }
    }
}

impl std::fmt::Display for SplitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SplitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round-robin" => Ok(SplitMode::RoundRobin),
            "blocks" => Ok(SplitMode::Blocks),
            other => Err(format!("\"{other}\" is not a split mode: use round-robin or blocks")),
        }
    }
}

/// A file of a service's data bundle to split across its workers (`worker.shards[]` in a task file).
///
/// Each worker sees its slice at the file's usual path, `/atq/data/<file>`, so a test plan
/// that reads that path needs no change; the master, if it mounts the same bundle, sees the
/// whole file.
///
/// ```
/// use atq_core::data::{Shard, SplitMode};
/// let shard = Shard::new("data/users.csv").split(SplitMode::Blocks).delimiter(b';');
/// assert_eq!(shard.file, "data/users.csv");
/// assert!(shard.header);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[must_use]
pub struct Shard {
    /// The file's path inside the bundle (`users.csv`, `data/users.csv`).
    pub file: String,
    /// How rows are dealt out; default [`SplitMode::RoundRobin`].
    #[serde(default, skip_serializing_if = "is_round_robin")]
    pub split: SplitMode,
    /// Whether the first record is a header, repeated at the top of every slice. Default true.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub header: bool,
    /// The field delimiter, one ASCII character (`,` by default; `;` or a tab for other
    /// dialects). Record boundaries depend on it: a quote opens a quoted field only right after
    /// a delimiter or at the start of a record.
    #[serde(default = "comma", skip_serializing_if = "is_comma")]
    pub delimiter: char,
}

fn yes() -> bool {
    true
}

fn comma() -> char {
    ','
}

fn is_comma(c: &char) -> bool {
    *c == ','
}

fn is_round_robin(m: &SplitMode) -> bool {
    *m == SplitMode::RoundRobin
}

impl Shard {
    /// Splits `file` (a path inside the bundle) round-robin, with a header, on commas.
    pub fn new(file: impl Into<String>) -> Self {
        Shard { file: file.into(), split: SplitMode::RoundRobin, header: true, delimiter: ',' }
    }

    /// Chooses how rows are dealt out.
    pub fn split(mut self, mode: SplitMode) -> Self {
        self.split = mode;
        self
    }

    /// Says whether the file starts with a header record (default true).
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Sets the field delimiter (one ASCII character; default `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = char::from(delimiter);
        self
    }

    /// Checks the delimiter: one ASCII character that neither quotes fields nor ends records.
    ///
    /// # Errors
    /// What is wrong with it, for a message naming the field.
    pub fn delimiter_check(&self) -> Result<(), String> {
        self.delimiter_byte().map(|_| ())
    }

    /// The delimiter as a byte, or why it cannot be one.
    pub(crate) fn delimiter_byte(&self) -> Result<u8, String> {
        let c = self.delimiter;
        if !c.is_ascii() {
            return Err(format!("{c:?} is not an ASCII character: give one, like \",\", \";\" or \"\\t\""));
        }
        let b = c as u8;
        if matches!(b, b'"' | b'\n' | b'\r') {
            return Err(format!("{c:?} cannot be a delimiter: it ends records or quotes fields"));
        }
        Ok(b)
    }
}
