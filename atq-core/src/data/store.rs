//! Bundles on the engine: one swarm config per file, found again by label.
//!
//! A bundle's file number `i` (in path order) is the config `atq-data-<id>-<i>`, labelled
//! [`MANAGED`](labels::MANAGED)`=true`, [`ROLE`](labels::ROLE)`=data`, [`BUNDLE`](labels::BUNDLE)`=<id>`,
//! [`BUNDLE_PATH`](labels::BUNDLE_PATH)`=<relative path>`, [`BUNDLE_FILES`](labels::BUNDLE_FILES) and
//! [`BUNDLE_BYTES`](labels::BUNDLE_BYTES) (the whole bundle's file count and size),
//! [`BUNDLE_DIGEST`](labels::BUNDLE_DIGEST) (the bundle's whole SHA-256) and
//! [`BUNDLE_MODE`](labels::BUNDLE_MODE) (`0444`, or `0555` for an executable). Names follow from
//! the content, so two processes pushing the same data race harmlessly: the engine's unique
//! config names make one create win and the other see a conflict, which is fine.
//!
//! An id is only 64 bits of the digest, so before a push counts configs already stored under its
//! id as its own, it compares their digest, path and mode labels with its own, and it does so
//! again after creating what was missing (a different bundle of the same id pushed at the same
//! moment could have won some names): any difference is a [`DataError::Mismatch`], and nothing
//! of someone else's bundle is ever served as this one.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{max_config_bytes, shard_label, DataBundle, DataError, Shard, DATA_DIR};
use crate::cluster::{Cluster, ConfigMount, ConfigSpec, LabelSelector, Resource, ResourceKind};
use crate::error::{Error, Result};
use crate::labels::{self, Role};

/// A bundle stored on the engine, as [`list_bundles`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleInfo {
    /// The bundle id (what a task's `fileid` names).
    pub id: String,
    /// Files stored on the engine.
    pub files: usize,
    /// Files the bundle has, from its labels; more than `files` when a push was interrupted.
    pub expected_files: Option<usize>,
    /// Total bytes of the bundle's files, from its labels.
    pub bytes: Option<u64>,
    /// When its first config was created, in unix seconds (if the engine says).
    pub created_unix: Option<i64>,
}

impl BundleInfo {
    /// Whether every file of the bundle is stored.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.expected_files.is_none_or(|n| n <= self.files)
    }
}

/// The config holding file number `index` of bundle `id`: at most 29 characters, well within the
/// engine's 64, and only letters, digits and `-`.
fn config_name(id: &str, index: usize) -> String {
    format!("atq-data-{id}-{index}")
}

/// Every data config atq made.
fn data_selector() -> LabelSelector {
    LabelSelector::new().eq(labels::MANAGED, "true").eq(labels::ROLE, Role::Data.as_str())
}

/// The configs of bundle `id`.
fn bundle_selector(id: &str) -> LabelSelector {
    data_selector().eq(labels::BUNDLE, id)
}

impl DataBundle {
    /// Stores the bundle on the engine, one swarm config per file, and returns its id.
    ///
    /// Idempotent: files already stored (by an earlier push of the same content, complete or
    /// interrupted, or by a concurrent one) are kept, and only missing ones are created. When a
    /// create fails, the configs this call created are removed before the error is returned. If
    /// the returned future is dropped midway, the configs created so far stay (labelled, listed by
    /// [`list_bundles`] as incomplete): push again to complete them, or [`remove_bundle`].
    ///
    /// Configs already stored under the bundle's id are verified first (see the module docs).
    ///
    /// # Errors
    /// [`DataError::FileTooLarge`] when a file does not fit in one of this engine's configs
    /// ([`EngineInfo::max_config_bytes`](crate::cluster::EngineInfo::max_config_bytes)), before
    /// anything is stored; [`DataError::Mismatch`] when configs stored under the id hold other
    /// content (before anything is stored, or after, with what this call created removed); the
    /// engine's error when a create fails.
    pub async fn push(&self, cluster: &dyn Cluster) -> Result<String> {
        let limit = max_config_bytes(&cluster.info().await?);
        for (path, content) in &self.files {
            let size = content.len() as u64;
            if size >= limit {
                return Err(DataError::FileTooLarge {
                    source_name: format!("bundle {}", self.id),
                    entry: path.clone(),
                    size,
                    limit,
                }
                .into());
            }
        }
        let stored = cluster.list_resources(ResourceKind::Config, &bundle_selector(&self.id)).await?;
        self.verify(&stored)?;
        let existing: BTreeSet<String> = stored.into_iter().map(|r| r.name).collect();
        let mut created = Vec::new();
        let undo = |created: Vec<String>| async move {
            for name in created.iter().rev() {
                if let Err(undo) = cluster.remove_config(name).await {
                    tracing::warn!(config = %name, error = %undo, "could not remove a config while undoing a failed push");
                }
            }
        };
        let mut raced = false;
        for (index, (path, content)) in self.files.iter().enumerate() {
            let name = config_name(&self.id, index);
            if existing.contains(&name) {
                continue;
            }
            let spec = ConfigSpec {
                name: name.clone(),
                data: content.clone(),
                labels: self.config_labels(path),
                ..ConfigSpec::default()
            };
            match cluster.create_config(&spec).await {
                Ok(_) => created.push(name),
                Err(Error::Conflict { .. }) => raced = true,
                Err(e) => {
                    undo(created).await;
                    return Err(e);
                }
            }
        }
        if raced {
            // Another push created some of the names meanwhile: they must be this content too.
            let stored = cluster.list_resources(ResourceKind::Config, &bundle_selector(&self.id)).await?;
            if let Err(e) = self.verify(&stored) {
                undo(created).await;
                return Err(e);
            }
        }
        Ok(self.id.clone())
    }

    /// Checks that every config in `stored` (configs labelled with this bundle's id) holds a
    /// file of this bundle: the same digest, and the path and mode its name's index stands for.
    fn verify(&self, stored: &[Resource]) -> Result<()> {
        let mismatch = |config: &Resource, reason: String| -> Error {
            DataError::Mismatch { id: self.id.clone(), config: config.name.clone(), reason }.into()
        };
        let by_name: BTreeMap<String, (&String, u32)> = self
            .files
            .keys()
            .enumerate()
            .map(|(index, path)| (config_name(&self.id, index), (path, self.mode(path))))
            .collect();
        for config in stored {
            match config.labels.get(labels::BUNDLE_DIGEST) {
                None => {
                    return Err(mismatch(config, "it carries no content digest (an older atq pushed it)".to_owned()))
                }
                Some(digest) if *digest != self.digest => {
                    return Err(mismatch(
                        config,
                        format!("its content digest is {digest}, this bundle's is {}", self.digest),
                    ))
                }
                Some(_) => {}
            }
            let Some((path, mode)) = by_name.get(&config.name) else {
                return Err(mismatch(config, "this bundle has no file of that number".to_owned()));
            };
            if config.labels.get(labels::BUNDLE_PATH) != Some(*path) {
                return Err(mismatch(config, format!("it does not hold '{path}'")));
            }
            if config.labels.get(labels::BUNDLE_MODE).map(String::as_str) != Some(mode_label(*mode)) {
                return Err(mismatch(config, format!("its mode is not {}", mode_label(*mode))));
            }
        }
        Ok(())
    }

    /// The labels of the config holding the file at `path`.
    pub(super) fn config_labels(&self, path: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (labels::ROLE.to_owned(), Role::Data.as_str().to_owned()),
            (labels::BUNDLE.to_owned(), self.id.clone()),
            (labels::BUNDLE_PATH.to_owned(), path.to_owned()),
            (labels::BUNDLE_FILES.to_owned(), self.files.len().to_string()),
            (labels::BUNDLE_BYTES.to_owned(), self.total_bytes.to_string()),
            (labels::BUNDLE_DIGEST.to_owned(), self.digest.clone()),
            (labels::BUNDLE_MODE.to_owned(), mode_label(self.mode(path)).to_owned()),
        ]);
        if let Some(shard) = self.shards.get(path) {
            labels.insert(labels::BUNDLE_SHARD.to_owned(), shard_label(shard));
        }
        labels
    }
}

/// The [`BUNDLE_MODE`](labels::BUNDLE_MODE) label's value for a mode.
fn mode_label(mode: u32) -> &'static str {
    if mode == ConfigMount::EXECUTABLE {
        "0555"
    } else {
        "0444"
    }
}

fn label_number<T: std::str::FromStr>(r: &Resource, key: &str) -> Option<T> {
    r.labels.get(key).and_then(|v| v.parse().ok())
}

/// Every bundle stored on the engine, sorted by id.
///
/// # Errors
/// The engine's error when listing configs fails.
pub async fn list_bundles(cluster: &dyn Cluster) -> Result<Vec<BundleInfo>> {
    let mut bundles: BTreeMap<String, BundleInfo> = BTreeMap::new();
    for config in cluster.list_resources(ResourceKind::Config, &data_selector()).await? {
        let Some(id) = config.labels.get(labels::BUNDLE) else { continue };
        let info = bundles.entry(id.clone()).or_insert_with(|| BundleInfo {
            id: id.clone(),
            files: 0,
            expected_files: None,
            bytes: None,
            created_unix: None,
        });
        info.files += 1;
        info.expected_files = info.expected_files.or(label_number(&config, labels::BUNDLE_FILES));
        info.bytes = info.bytes.or(label_number(&config, labels::BUNDLE_BYTES));
        info.created_unix = match (info.created_unix, config.created_unix) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(bundles.into_values().collect())
}

/// The services that mount bundle `id` (their [`USES_BUNDLES`](labels::USES_BUNDLES) label names it).
///
/// # Errors
/// The engine's error when listing services fails.
pub async fn bundle_users(cluster: &dyn Cluster, id: &str) -> Result<Vec<String>> {
    let services =
        cluster.list_resources(ResourceKind::Service, &LabelSelector::new().has(labels::USES_BUNDLES)).await?;
    let mut users: Vec<String> = services
        .into_iter()
        .filter(|s| s.labels.get(labels::USES_BUNDLES).is_some_and(|v| v.split(',').any(|u| u.trim() == id)))
        .map(|s| s.name)
        .collect();
    users.sort();
    Ok(users)
}

/// Removes bundle `id` from the engine, refusing while a service mounts it.
///
/// The engine itself also refuses to remove a config a service uses, so a task deployed between
/// the check and the removal makes this fail rather than break the task.
///
/// # Errors
/// [`DataError::InUse`] naming the services that mount it; [`DataError::NotFound`] when no config
/// of the bundle exists; the engine's error when a removal fails (the other configs are still tried).
pub async fn remove_bundle(cluster: &dyn Cluster, id: &str) -> Result<()> {
    let services = bundle_users(cluster, id).await?;
    if !services.is_empty() {
        return Err(DataError::InUse { id: id.to_owned(), services }.into());
    }
    let configs = cluster.list_resources(ResourceKind::Config, &bundle_selector(id)).await?;
    if configs.is_empty() {
        return Err(DataError::NotFound { id: id.to_owned() }.into());
    }
    let mut first_error = None;
    for config in configs {
        match cluster.remove_config(&config.name).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The config mounts that put bundle `id`'s files under `/atq/data/<relative path>`, sorted by
/// path. The [`Director`](crate::Director) calls it at deploy time for a service whose `fileid`
/// names a bundle.
///
/// # Errors
/// [`DataError::NotFound`] when the bundle does not exist; [`DataError::Incomplete`] when some of
/// its files are missing (an interrupted push); the engine's error when listing fails.
pub async fn bundle_mounts(cluster: &dyn Cluster, id: &str) -> Result<Vec<ConfigMount>> {
    Ok(bundle_mounts_and_shards(cluster, id).await?.0)
}

/// [`bundle_mounts`], and the files the bundle marks for sharding (from their configs'
/// [`BUNDLE_SHARD`](labels::BUNDLE_SHARD) labels), in one listing.
///
/// # Errors
/// As [`bundle_mounts`]; [`DataError::Shard`] when a mark on the engine cannot be read.
pub(crate) async fn bundle_mounts_and_shards(
    cluster: &dyn Cluster,
    id: &str,
) -> Result<(Vec<ConfigMount>, Vec<Shard>)> {
    let configs = cluster.list_resources(ResourceKind::Config, &bundle_selector(id)).await?;
    if configs.is_empty() {
        return Err(DataError::NotFound { id: id.to_owned() }.into());
    }
    let expected = configs.iter().filter_map(|c| label_number::<usize>(c, labels::BUNDLE_FILES)).max().unwrap_or(0);
    // Every config of one bundle carries one digest (none, for a bundle an older atq pushed): two
    // digests under one id are two bundles mixed, and neither is served.
    let digest = configs[0].labels.get(labels::BUNDLE_DIGEST);
    if let Some(other) = configs.iter().find(|c| c.labels.get(labels::BUNDLE_DIGEST) != digest) {
        return Err(DataError::Mismatch {
            id: id.to_owned(),
            config: other.name.clone(),
            reason: "its content digest differs from the other configs' of this id (two bundles mixed)".to_owned(),
        }
        .into());
    }
    let mut by_path = BTreeMap::new();
    let mut shards = Vec::new();
    for config in configs {
        let Some(path) = config.labels.get(labels::BUNDLE_PATH) else { continue };
        if let Some(mark) = config.labels.get(labels::BUNDLE_SHARD) {
            shards.push(read_shard_mark(id, path, mark)?);
        }
        if !is_clean_relative(path) {
            return Err(DataError::UnsafePath {
                source_name: format!("bundle {id} on the engine"),
                entry: path.clone(),
                rule: "its stored path is not a plain relative path",
            }
            .into());
        }
        let mode = match config.labels.get(labels::BUNDLE_MODE).map(String::as_str) {
            None | Some("0444") => ConfigMount::READ_ONLY,
            Some("0555") => ConfigMount::EXECUTABLE,
            Some(other) => {
                return Err(DataError::Mismatch {
                    id: id.to_owned(),
                    config: config.name.clone(),
                    reason: format!("its stored mode '{other}' is neither 0444 nor 0555"),
                }
                .into())
            }
        };
        let target = format!("{DATA_DIR}/{path}");
        by_path.insert(path.clone(), ConfigMount { config_id: config.id, config_name: config.name, target, mode });
    }
    if by_path.len() < expected {
        return Err(DataError::Incomplete { id: id.to_owned(), stored: by_path.len(), expected }.into());
    }
    Ok((by_path.into_values().collect(), shards))
}

/// A shard mark as the engine holds it (untrusted): JSON of at most 1 KiB, naming the config's
/// own file, with a usable delimiter.
fn read_shard_mark(id: &str, path: &str, mark: &str) -> Result<Shard> {
    let fail = |message: String| DataError::Shard { file: path.to_owned(), message };
    if mark.len() > 1024 {
        return Err(
            fail(format!("bundle {id} on the engine has a shard mark of {} bytes: push it again", mark.len())).into()
        );
    }
    let shard: Shard = serde_json::from_str(mark)
        .map_err(|e| fail(format!("bundle {id} on the engine has an unreadable shard mark ({e}): push it again")))?;
    if shard.file != path {
        return Err(fail(format!(
            "bundle {id} on the engine marks another file ({}) on this one: push it again",
            shard.file
        ))
        .into());
    }
    shard.delimiter_byte().map_err(fail)?;
    Ok(shard)
}

/// Whether `path` is a `/`-separated relative path of plain names (as intake guarantees).
pub(super) fn is_clean_relative(path: &str) -> bool {
    !path.is_empty() && !path.contains(['\0', '\\']) && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}
