//! Data bundles: test plans and data files shipped to every replica under `/atq/data`.
//!
//! A service gets its data from one of three places ([`DataSource`]):
//! - a **bundle** (`fileid`): a [`DataBundle`] read from a zip file or a directory, stored on the
//!   engine as one swarm config per file. Configs reach every node with no shared filesystem, but
//!   each must be smaller than the engine's config limit (500 KiB on engine 20.10 / older swarmkit,
//!   1000 KiB on newer ones) and all of them live in the managers' Raft store: bundles are for
//!   plans and modest data files.
//! - a **host path** (`dataPath`): a directory on every node that runs a replica (a shared
//!   filesystem such as ATQ-Director's GlusterFS), bind-mounted read-only.
//! - a **volume** (`dataVolume`): a named volume, mounted read-only. For large data.
//!
//! In every case the files appear under [`DATA_DIR`] with their relative paths kept.
//!
//! ## Safe intake
//! [`DataBundle::from_zip`] and [`DataBundle::from_dir`] read everything into memory and never
//! write to disk. They refuse, with a [`DataError`] naming the entry and the rule:
//! paths that escape (`..`, absolute paths, NUL bytes, backslashes), symbolic links and other
//! non-regular files, more than [`Limits::max_entries`] entries, more than
//! [`Limits::max_total_bytes`] bytes in all (counted while reading, never trusting the sizes an
//! archive declares), a file at or above [`Limits::max_file_bytes`], and empty files (a swarm config
//! holds at least one byte).
//!
//! A directory is walked relative to open directory handles (`openat` with `O_NOFOLLOW`), never
//! by paths from its root: a subdirectory swapped for a symbolic link while it is read is refused
//! as a link, and an entry replaced between its listing and its opening is refused as changed
//! ([`DataError::Changed`]).
//!
//! ## Modes
//! A file whose mode lets anyone execute it (the unix mode of its zip entry, or its mode in the
//! directory) stays executable: it is mounted with mode `0o555`, every other file `0o444`
//! ([`DataBundle::mode`]). So a pushed `run.sh` runs as `/atq/data/run.sh`.
//!
//! ## Ids and digests
//! A bundle's id is the first 16 hex digits of a SHA-256 over its files sorted by path, each framed
//! with its length, and its executables (see [`DataBundle::id`]): the same files give the same id
//! whether they came from a directory or a zip, whatever the compression, timestamps or entry
//! order. The whole SHA-256 ([`DataBundle::digest`]) is stored with every config of the bundle;
//! a push compares it before it counts configs already stored under the id as its own
//! ([`DataError::Mismatch`] otherwise), since 64 bits alone can be made to collide.
//!
//! ```
//! use atq_core::data::DataBundle;
//! # fn main() -> Result<(), atq_core::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir_all(dir.path().join("plans")).unwrap();
//! std::fs::write(dir.path().join("plans/load.jmx"), "<jmeterTestPlan/>").unwrap();
//! let bundle = DataBundle::from_dir(dir.path())?;
//! assert_eq!(bundle.id().len(), 16);
//! assert_eq!(bundle.files()["plans/load.jmx"], b"<jmeterTestPlan/>");
//! // `bundle.push(&cluster).await?` stores it; a task then names it with `Service::data(id)`.
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::cluster::{ConfigMount, EngineInfo};

mod central_directory;
mod intake;
pub use intake::{is_tar, is_zip};
pub mod shard;
mod source;
mod store;

pub use shard::{
    effective_shards, split_bundle_shards, split_csv, split_service_shards, Shard, ShardedFile, Slices, SplitMode,
    MAX_SHARDS,
};
pub use source::{data_mounts, DataMounts, DataSource};
pub use store::{bundle_mounts, bundle_users, list_bundles, remove_bundle, BundleInfo};

pub(crate) use source::validate_service_data;

#[cfg(test)]
mod integrity_tests;
#[cfg(test)]
mod tests;

/// Where a service's data appears in its containers.
pub const DATA_DIR: &str = "/atq/data";

/// Default most entries (files and directories) a bundle may have.
///
/// Each file becomes one config and one mount: a thousand is plenty for plans and CSV files, and
/// keeps a service spec and the managers' store reasonable.
pub const MAX_ENTRIES: usize = 1000;

/// Default most bytes a bundle may hold in all, uncompressed: 64 MiB.
///
/// Bundles are held in memory while read, and stored in the swarm managers' Raft log; larger
/// data belongs on a host path or a volume.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// Default per-file bound: 500 KiB, the config limit of engine 20.10 and older swarmkit.
///
/// A file must be strictly smaller than this (the engine refuses a config of exactly this size).
/// [`Limits::for_engine`] uses the engine's own figure ([`EngineInfo::max_config_bytes`]).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 500 * 1024;

/// Most bytes in a file's path inside a bundle.
pub const MAX_PATH_BYTES: usize = 1024;

/// Most bytes in one component (a file or directory name) of a path inside a bundle.
pub const MAX_NAME_BYTES: usize = 255;

/// Number of hex digits in a bundle id (64 bits of SHA-256).
pub const ID_LEN: usize = 16;

pub use crate::error::DataError;

/// Bounds on what a bundle may hold, checked while it is read.
///
/// ```
/// use atq_core::data::Limits;
/// let limits = Limits::default().max_entries(50);
/// assert_eq!(limits.max_entries, 50);
/// assert_eq!(limits.max_file_bytes, 500 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Limits {
    /// Most entries (files and directories); default [`MAX_ENTRIES`].
    pub max_entries: usize,
    /// Most bytes in all, uncompressed; default [`MAX_TOTAL_BYTES`].
    pub max_total_bytes: u64,
    /// Exclusive bound on one file's size; default [`DEFAULT_MAX_FILE_BYTES`].
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_entries: MAX_ENTRIES, max_total_bytes: MAX_TOTAL_BYTES, max_file_bytes: DEFAULT_MAX_FILE_BYTES }
    }
}

impl Limits {
    /// The default limits, with the per-file bound of this engine's configs.
    pub fn for_engine(info: &EngineInfo) -> Self {
        Limits::default().max_file_bytes(max_config_bytes(info))
    }

    /// Sets the most entries.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets the most bytes in all.
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// Sets the (exclusive) bound on one file's size.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }
}

/// The engine's config size bound, or the conservative default when it does not say.
pub(crate) fn max_config_bytes(info: &EngineInfo) -> u64 {
    match info.max_config_bytes {
        0 => DEFAULT_MAX_FILE_BYTES,
        n => n as u64,
    }
}

/// A set of files, identified by a hash of their content.
///
/// Built by [`DataBundle::from_zip`], [`DataBundle::from_dir`] or [`DataBundle::from_path`]; stored
/// on an engine by [`DataBundle::push`]. The files are held in memory, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBundle {
    /// Content-derived id, see [`DataBundle::id`].
    id: String,
    /// The whole SHA-256 the id is a prefix of, see [`DataBundle::digest`].
    digest: String,
    /// Relative path (`/`-separated) to content.
    files: BTreeMap<String, Vec<u8>>,
    /// The files that are executable (in the zip's unix mode, or the directory's).
    executables: BTreeSet<String>,
    /// Sum of the files' sizes.
    total_bytes: u64,
    /// Files marked to be split across the workers of every task that mounts the bundle, by path.
    shards: BTreeMap<String, Shard>,
}

impl DataBundle {
    /// Builds a bundle from files already checked by intake.
    fn new(files: BTreeMap<String, Vec<u8>>, executables: BTreeSet<String>) -> Self {
        let total_bytes = files.values().map(|c| c.len() as u64).sum();
        let shards = BTreeMap::new();
        let digest = content_digest(&files, &executables, &shards);
        DataBundle { id: digest[..ID_LEN].to_owned(), digest, files, executables, total_bytes, shards }
    }

    /// The bundle's id: the same content always has the same id.
    ///
    /// It is the first [`ID_LEN`] hex digits of the bundle's [`digest`](Self::digest): SHA-256
    /// over `"atq-bundle-v1\0"`, then for each file in path order: the path's length (8 bytes,
    /// big-endian), the path, the content's length (8 bytes, big-endian), the content; then, only
    /// when some files are executable, `u64::MAX` (a length no path has) and each executable path
    /// framed with its length. The lengths make the framing unambiguous; names, timestamps,
    /// compression and entry order in an archive play no part, and a bundle without executables
    /// keeps the id it had before modes counted.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The full SHA-256 of the bundle's content and modes (64 hex digits), of which
    /// [`id`](Self::id) is the prefix. [`DataBundle::push`] stores it on every config of the
    /// bundle and compares it before reusing configs already stored under the id.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The files: relative path (`/`-separated, e.g. `plans/a/b.jmx`) to content, sorted by path.
    #[must_use]
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Whether the file at `path` is executable: its zip entry's unix mode, or its mode in the
    /// directory, lets anyone execute it. It is then mounted with mode `0o555` (else `0o444`).
    #[must_use]
    pub fn is_executable(&self, path: &str) -> bool {
        self.executables.contains(path)
    }

    /// The mode the file at `path` gets in the containers:
    /// [`ConfigMount::EXECUTABLE`](crate::cluster::ConfigMount::EXECUTABLE) for an executable,
    /// [`ConfigMount::READ_ONLY`](crate::cluster::ConfigMount::READ_ONLY) otherwise.
    #[must_use]
    pub fn mode(&self, path: &str) -> u32 {
        if self.is_executable(path) {
            ConfigMount::EXECUTABLE
        } else {
            ConfigMount::READ_ONLY
        }
    }

    /// Number of files.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the bundle has no files (never true for a bundle built by this module).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Sum of the files' sizes, in bytes.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Marks a file of the bundle to be split across the workers of every task that mounts it
    /// (`atq data push --split FILE=MODE`): the bundle stores the whole file, and each deploy
    /// splits it for its own worker count. A task's own `worker.shards` entry for the same file
    /// wins; the master always sees the whole file. The marks are part of the bundle's
    /// [`id`](Self::id): the same files marked differently are another bundle.
    ///
    /// ```
    /// use atq_core::data::{DataBundle, Shard, SplitMode};
    /// # fn main() -> Result<(), atq_core::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("users.csv"), "user\nann\nbob\n").unwrap();
    /// let plain = DataBundle::from_dir(dir.path())?;
    /// let marked = plain.clone().with_shard(Shard::new("users.csv").split(SplitMode::Blocks))?;
    /// assert_ne!(plain.id(), marked.id());
    /// assert_eq!(marked.shards().count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`DataError::Shard`] when the bundle has no such file, the delimiter is unusable, or more
    /// than [`MAX_SHARDS`] files would be marked.
    pub fn with_shard(mut self, shard: Shard) -> crate::Result<Self> {
        let fail = |message: String| DataError::Shard { file: shard.file.clone(), message };
        if !self.files.contains_key(&shard.file) {
            return Err(shard::not_in_bundle(&shard.file, &self.id, self.files.keys().map(String::as_str)).into());
        }
        shard.delimiter_byte().map_err(fail)?;
        if !self.shards.contains_key(&shard.file) && self.shards.len() >= MAX_SHARDS {
            return Err(fail(format!("a bundle marks at most {MAX_SHARDS} files for sharding")).into());
        }
        self.shards.insert(shard.file.clone(), shard);
        self.digest = content_digest(&self.files, &self.executables, &self.shards);
        self.id = self.digest[..ID_LEN].to_owned();
        Ok(self)
    }

    /// The files marked for sharding, by path (see [`with_shard`](Self::with_shard)).
    pub fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.values()
    }
}

/// See [`DataBundle::id`]: the whole digest, as 64 hex digits. Shard marks, when there are any,
/// follow the files (each as its path and its label value, framed the same way), and executable
/// paths follow those, so bundles without either keep their ids.
fn content_digest(
    files: &BTreeMap<String, Vec<u8>>,
    executables: &BTreeSet<String>,
    shards: &BTreeMap<String, Shard>,
) -> String {
    let mut hash = Sha256::new();
    hash.update(b"atq-bundle-v1\0");
    let mut framed = |a: &[u8], b: &[u8]| {
        hash.update((a.len() as u64).to_be_bytes());
        hash.update(a);
        hash.update((b.len() as u64).to_be_bytes());
        hash.update(b);
    };
    for (path, content) in files {
        framed(path.as_bytes(), content);
    }
    if !shards.is_empty() {
        framed(b"\0shards", b"");
        for (path, shard) in shards {
            framed(path.as_bytes(), shard_label(shard).as_bytes());
        }
    }
    if !executables.is_empty() {
        hash.update(u64::MAX.to_be_bytes());
        for path in executables {
            hash.update((path.len() as u64).to_be_bytes());
            hash.update(path.as_bytes());
        }
    }
    let mut digest = String::with_capacity(64);
    for byte in hash.finalize() {
        let _ = write!(digest, "{byte:02x}");
    }
    digest
}

/// The value of the [`BUNDLE_SHARD`](crate::labels::BUNDLE_SHARD) label: the shard as JSON.
pub(crate) fn shard_label(shard: &Shard) -> String {
    serde_json::to_string(shard).unwrap_or_default()
}

/// Whether `id` has the shape of a bundle id (lower-case hex, [`ID_LEN`] digits).
#[must_use]
pub fn is_bundle_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
