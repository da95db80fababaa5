//! Where a service's data comes from, and the mounts that put it under `/atq/data`.

use std::collections::BTreeMap;

use super::store::bundle_mounts_and_shards;
use super::store::is_clean_relative;
use super::{DATA_DIR, MAX_PATH_BYTES, MAX_SHARDS};
use crate::cluster::{Cluster, ConfigMount, Mount, MountKind, ServiceSpec};
use crate::error::{Problem, Result};
use crate::labels;
use crate::service::Service;

/// The three ways to give a service its data; each shows it under [`DATA_DIR`].
///
/// ```
/// use atq_core::data::DataSource;
/// use atq_core::Service;
/// let s = Service::new("lab/jmeter:2.13").data_volume("plans");
/// assert_eq!(DataSource::of(&s), Some(DataSource::Volume("plans".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A bundle stored as swarm configs (`fileid`): reaches every node, small files only.
    Bundle(String),
    /// A directory on every node that runs a replica (`dataPath`), bind-mounted read-only: for a
    /// shared filesystem (NFS, GlusterFS as ATQ-Director used).
    HostPath(String),
    /// A named volume (`dataVolume`), mounted read-only: for large data.
    Volume(String),
}

impl DataSource {
    /// The data source a service names, if any (a valid service names at most one).
    #[must_use]
    pub fn of(service: &Service) -> Option<DataSource> {
        if let Some(id) = &service.fileid {
            Some(DataSource::Bundle(id.clone()))
        } else if let Some(path) = &service.data_path {
            Some(DataSource::HostPath(path.clone()))
        } else {
            service.data_volume.as_ref().map(|name| DataSource::Volume(name.clone()))
        }
    }

    /// The mounts (and labels) that show this source under [`DATA_DIR`].
    ///
    /// # Errors
    /// For a bundle, as [`bundle_mounts`](super::bundle_mounts): [`DataError::NotFound`](super::DataError::NotFound)
    /// when it does not exist. Host paths and volumes are not checked here (the engine reports a
    /// missing host path when it starts a replica; a missing volume is created empty).
    pub async fn mounts(&self, cluster: &dyn Cluster) -> Result<DataMounts> {
        Ok(match self {
            DataSource::Bundle(id) => {
                let (configs, shards) = bundle_mounts_and_shards(cluster, id).await?;
                DataMounts {
                    configs,
                    labels: BTreeMap::from([(labels::USES_BUNDLES.to_owned(), id.clone())]),
                    shards,
                    ..DataMounts::default()
                }
            }
            DataSource::HostPath(path) => DataMounts::mount(MountKind::Bind, path),
            DataSource::Volume(name) => DataMounts::mount(MountKind::Volume, name),
        })
    }
}

/// What a service spec needs to show its data: mounts, config mounts and labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataMounts {
    /// Bind or volume mounts (one at most, at [`DATA_DIR`]).
    pub mounts: Vec<Mount>,
    /// Config mounts, one per file of a bundle.
    pub configs: Vec<ConfigMount>,
    /// Labels for the service: [`USES_BUNDLES`](labels::USES_BUNDLES) for a bundle, which keeps
    /// it from removal while the service exists.
    pub labels: BTreeMap<String, String>,
    /// Files the bundle marks for sharding ([`DataBundle::with_shard`](super::DataBundle::with_shard)):
    /// split across the workers unless the service shards the same file itself.
    pub shards: Vec<super::Shard>,
}

impl DataMounts {
    fn mount(kind: MountKind, source: &str) -> Self {
        DataMounts {
            mounts: vec![Mount { kind, source: source.to_owned(), target: DATA_DIR.to_owned(), read_only: true }],
            ..DataMounts::default()
        }
    }

    /// Adds these mounts and labels to a service spec.
    pub fn apply_to(self, spec: &mut ServiceSpec) {
        spec.mounts.extend(self.mounts);
        spec.configs.extend(self.configs);
        spec.labels.extend(self.labels);
    }
}

/// The mounts and labels for a service's data (empty when it names none). The
/// [`Director`](crate::Director) calls it for each role at deploy time, before creating the
/// service, and applies the result with [`DataMounts::apply_to`].
///
/// # Errors
/// As [`DataSource::mounts`]: a `fileid` naming no stored bundle fails with
/// [`DataError::NotFound`](super::DataError::NotFound).
pub async fn data_mounts(cluster: &dyn Cluster, service: &Service) -> Result<DataMounts> {
    match DataSource::of(service) {
        Some(source) => source.mounts(cluster).await,
        None => Ok(DataMounts::default()),
    }
}

/// Checks a service's data settings: at most one source; a host path absolute and plain; a volume
/// name the engine accepts. Called by task validation.
pub(crate) fn validate_service_data(role: &str, s: &Service) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut problem = |field: &str, message: String| {
        out.push(Problem { field: format!("{role}.{field}"), message, line: None });
    };
    let set: Vec<&str> =
        [("fileid", s.fileid.is_some()), ("dataPath", s.data_path.is_some()), ("dataVolume", s.data_volume.is_some())]
            .into_iter()
            .filter_map(|(name, is_set)| is_set.then_some(name))
            .collect();
    if set.len() > 1 {
        problem(
            set[1],
            format!(
                "{} are all set, but only one may be: each mounts the service's data at {DATA_DIR}",
                set.join(" and ")
            ),
        );
    }
    if let Some(path) = &s.data_path {
        if !path.starts_with('/') {
            problem(
                "dataPath",
                format!("\"{path}\" is not an absolute path: give the directory's full path on the nodes"),
            );
        } else if path.contains('\0') || path.chars().any(char::is_control) {
            problem("dataPath", "contains a NUL byte or a control character".to_owned());
        } else if path.split('/').any(|c| c == "..") {
            problem("dataPath", format!("\"{path}\" contains '..': give the directory's plain full path"));
        } else if path.split('/').all(str::is_empty) {
            problem("dataPath", "is the root directory: give the directory that holds the data".to_owned());
        }
    }
    validate_shards(&mut problem, role, s);
    if let Some(name) = &s.data_volume {
        if !is_volume_name(name) {
            problem(
                "dataVolume",
                format!("\"{name}\" is not a volume name: use at least 2 letters, digits, '_', '.' or '-', starting with a letter or digit"),
            );
        }
    }
    out
}

/// Checks a service's `shards`: workers only, on a bundle, at most [`MAX_SHARDS`] distinct plain
/// relative paths, each with a usable delimiter.
fn validate_shards(problem: &mut impl FnMut(&str, String), role: &str, s: &Service) {
    if s.shards.is_empty() {
        return;
    }
    if role != "worker" {
        problem(
            "shards",
            "only workers are sharded: the master is one replica and sees the whole file; move shards to worker".into(),
        );
        return;
    }
    // No source at all is fine here: `atq run --data` names the bundle later, and a deploy
    // without one fails naming the shard.
    if s.data_path.is_some() || s.data_volume.is_some() {
        problem(
            "shards",
            "shards split files of the service's data bundle (fileid): atq cannot read a dataPath or a dataVolume to split it".into(),
        );
    }
    if s.shards.len() > MAX_SHARDS {
        problem("shards", format!("{} files are sharded; at most {MAX_SHARDS} may be", s.shards.len()));
    }
    for (i, shard) in s.shards.iter().enumerate() {
        let file = &shard.file;
        if !is_clean_relative(file) || file.len() > MAX_PATH_BYTES {
            problem(
                &format!("shards[{i}].file"),
                format!("\"{file}\" is not a file of a bundle: give its relative path inside the bundle, like users.csv or data/users.csv"),
            );
        } else if let Some(first) = s.shards[..i].iter().position(|other| other.file == *file) {
            problem(&format!("shards[{i}].file"), format!("\"{file}\" is already sharded by shards[{first}]"));
        }
        if let Err(message) = shard.delimiter_byte() {
            problem(&format!("shards[{i}].delimiter"), message);
        }
    }
}

/// The engine's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn is_volume_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}
