//! [`DataError`]: what can go wrong with a data bundle (see [`crate::data`]).

/// What can go wrong with a data bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// No bundle of this id is stored on the engine.
    #[error("data bundle '{id}' not found: push it with `atq data push PATH`, or check `atq data ls`")]
    NotFound {
        /// The id asked for.
        id: String,
    },

    /// Some of a bundle's files are missing on the engine (a push was interrupted).
    #[error("data bundle '{id}' is incomplete ({stored} of {expected} files stored; a push was interrupted): push the same data again to complete it, or remove it with `atq data rm {id}`")]
    Incomplete {
        /// The bundle.
        id: String,
        /// Files found on the engine.
        stored: usize,
        /// Files the bundle has.
        expected: usize,
    },

    /// Services still mount the bundle.
    #[error("data bundle '{id}' is in use by {}: remove those tasks first (`atq down TASK`)", services.join(", "))]
    InUse {
        /// The bundle.
        id: String,
        /// The services that name it.
        services: Vec<String>,
    },

    /// An entry's path is not a safe relative path.
    #[error("refused entry '{entry}' of {source_name}: {rule}. A bundle keeps its files under /atq/data: rebuild it with plain relative paths")]
    UnsafePath {
        /// The zip file or directory read.
        source_name: String,
        /// The entry, as the archive or directory names it (lossy).
        entry: String,
        /// The rule it breaks.
        rule: &'static str,
    },

    /// An entry is a symbolic link.
    #[error("refused entry '{entry}' of {source_name}: it is a symbolic link, which could point outside the bundle. Replace it with a copy of the file it points to")]
    Symlink {
        /// The zip file or directory read.
        source_name: String,
        /// The entry.
        entry: String,
    },

    /// An entry of a directory was replaced by another object while the directory was read.
    #[error("refused entry '{entry}' of {source_name}: it was replaced while being read (by another file, directory or link). Push again once nothing changes the directory")]
    Changed {
        /// The directory read.
        source_name: String,
        /// The entry.
        entry: String,
    },

    /// The engine holds configs under this bundle's id whose content differs from the bundle's.
    #[error("data bundle '{id}' on the engine is not this content (config '{config}': {reason}): another bundle has the same 64-bit id, or its configs were changed outside atq, so atq will not serve it in place of yours. If the stored one is yours and unused, remove it (`atq data rm {id}`) and push again; otherwise change any file of yours (even a comment) to get another id")]
    Mismatch {
        /// The bundle id.
        id: String,
        /// The config that differs.
        config: String,
        /// How it differs.
        reason: String,
    },

    /// An entry is neither a regular file nor a directory (a device, a FIFO, a socket).
    #[error("refused entry '{entry}' of {source_name}: it is not a regular file or directory. Bundles hold plain files only")]
    SpecialFile {
        /// The zip file or directory read.
        source_name: String,
        /// The entry.
        entry: String,
    },

    /// Two entries clash: the same path twice, or a path that is both a file and a directory.
    #[error("refused entry '{entry}' of {source_name}: {rule}. Rename one of them")]
    Clash {
        /// The zip file or directory read.
        source_name: String,
        /// The second of the two entries.
        entry: String,
        /// What clashes.
        rule: String,
    },

    /// An entry is an empty file, which a swarm config cannot hold.
    #[error("refused entry '{entry}' of {source_name}: it is empty, and a swarm config holds at least 1 byte. Remove it or give it content, or ship the data with a host path (dataPath) or a volume (dataVolume)")]
    EmptyFile {
        /// The zip file or directory read.
        source_name: String,
        /// The entry.
        entry: String,
    },

    /// More entries than the limit.
    #[error("{source_name} has more than {limit} entries, the most a bundle may have: pack fewer files, or ship the data with a host path (dataPath) or a volume (dataVolume)")]
    TooManyEntries {
        /// The zip file or directory read.
        source_name: String,
        /// The limit.
        limit: usize,
    },

    /// More bytes in all than the limit.
    #[error("{source_name} holds more than {limit} bytes uncompressed (stopped at entry '{entry}'), the most a bundle may hold: ship large data with a host path (dataPath, a bind mount on a shared filesystem) or a volume (dataVolume)")]
    TooLarge {
        /// The zip file or directory read.
        source_name: String,
        /// The entry being read when the limit was passed.
        entry: String,
        /// The limit, in bytes.
        limit: u64,
    },

    /// One file is too large for a swarm config.
    #[error("refused entry '{entry}' of {source_name}: it has at least {size} bytes, and a swarm config on this engine must be smaller than {limit}. Ship it with a host path (dataPath, a bind mount on a shared filesystem) or a named volume (dataVolume) instead")]
    FileTooLarge {
        /// The zip file or directory read.
        source_name: String,
        /// The entry.
        entry: String,
        /// Bytes read from it before refusing (its size, or the limit plus one).
        size: u64,
        /// The per-file bound, in bytes (exclusive).
        limit: u64,
    },

    /// A bundle with no files.
    #[error("{source_name} holds no files: a bundle needs at least one")]
    NoFiles {
        /// The zip file or directory read.
        source_name: String,
    },

    /// The archive cannot be read (not a zip, corrupt, encrypted, an unsupported compression).
    #[error("cannot read {source_name} as a zip archive{}: {message}", entry.as_ref().map(|e| format!(" (entry '{e}')")).unwrap_or_default())]
    Archive {
        /// The zip file read.
        source_name: String,
        /// The entry concerned, if any.
        entry: Option<String>,
        /// What the zip reader reported.
        message: String,
    },

    /// A sharded file cannot be split as asked, or is not in the bundle.
    #[error("cannot shard '{file}': {message}")]
    Shard {
        /// The file (its path inside the bundle).
        file: String,
        /// What is wrong, and what to do.
        message: String,
    },
}
