//! The labels atq puts on every engine object it creates.
//!
//! Keys under `io.atq.` are reserved: atq sets them, and `prune` and `list` read them back,
//! so that any process (not only the one that deployed) sees the same tasks.

/// Marks every object atq created. Value: `true`.
pub const MANAGED: &str = "io.atq.managed";
/// The task an object belongs to. Value: the task name.
pub const TASK: &str = "io.atq.task";
/// What an object is for. Value: one of [`Role`]'s names.
pub const ROLE: &str = "io.atq.role";
/// Which process created the object. Value: `host:pid:start`, see [`Owner`](crate::Owner).
pub const OWNER: &str = "io.atq.owner";
/// When `prune` may remove the object. Value: unix seconds.
pub const EXPIRES: &str = "io.atq.expires";
/// On a task deployed to outlive its process (`atq up`, `--keep`, `keep()`). Value: `true`.
/// `prune` removes such a task only past its expiry, never because its owner is gone.
pub const DETACHED: &str = "io.atq.detached";
/// The deploy attempt that created an object. Value: unique per `deploy` call. Lets a failed
/// deploy remove exactly what it created, even an object whose creation it never heard back
/// about, without touching what a racing deploy of the same name created.
pub const DEPLOY: &str = "io.atq.deploy";
/// The data bundle a config belongs to. Value: the bundle id.
pub const BUNDLE: &str = "io.atq.bundle";
/// On a service: the data bundles it mounts, comma-separated. Keeps bundles from removal while in use.
pub const USES_BUNDLES: &str = "io.atq.uses-bundles";
/// On a data config: the file's path inside the bundle.
pub const BUNDLE_PATH: &str = "io.atq.bundle-path";
/// On a data config: the number of files in its bundle (so a partial push can be detected).
pub const BUNDLE_FILES: &str = "io.atq.bundle-files";
/// On a data config whose file the bundle marks for sharding: the shard, as JSON
/// (`{"file":"users.csv","split":"blocks"}`).
pub const BUNDLE_SHARD: &str = "io.atq.bundle-shard";
/// On a data config: the total bytes of its bundle.
pub const BUNDLE_BYTES: &str = "io.atq.bundle-bytes";
/// On a data config: the whole SHA-256 of its bundle (64 hex digits, see
/// [`DataBundle::digest`](crate::data::DataBundle::digest)), compared before a push reuses it.
pub const BUNDLE_DIGEST: &str = "io.atq.bundle-digest";
/// On a data config: the file's mode in the containers, `0444` or `0555` (executable).
pub const BUNDLE_MODE: &str = "io.atq.bundle-mode";
/// On a worker or master service: the number of replicas the task asked for.
pub const REPLICAS: &str = "io.atq.replicas";

/// What an engine object is for, stored under [`ROLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The task's overlay network.
    Network,
    /// The worker service.
    Worker,
    /// The master service (and the config holding the worker list).
    Master,
    /// A one-off service running the task's wait command.
    Probe,
    /// A config holding one file of a data bundle.
    Data,
}

impl Role {
    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Network => "network",
            Role::Worker => "worker",
            Role::Master => "master",
            Role::Probe => "probe",
            Role::Data => "data",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
