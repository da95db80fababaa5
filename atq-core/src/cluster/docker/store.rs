//! What a plain engine has no object for, kept in labelled volumes: the locks that make network
//! names unique, and configs.
//!
//! A plain engine lets two networks share a name (`CheckDuplicate` is best effort: two creates
//! of one name at the same moment both succeed, measured on 20.10), while atq needs the task
//! network's name to be a lock. Volume names *are* unique, and creating a volume of a name that
//! exists returns the existing one unchanged: so each create labels its volume with a fresh
//! nonce, and the create whose nonce comes back holds the name. A network is made only by the
//! holder of its lock volume ([`lock_name`]), which is removed after the network.
//!
//! Configs (small files delivered to replicas: data bundle files, the worker list) are volumes
//! too: a volume needs no image and no container to be written, is listed by label, and
//! survives the process that made it, as a swarm config does. Each config is two volumes: the
//! config itself ([`config_name`]: its labels, its nonce), which listing returns, and its content
//! ([`content_name`]: base64 in a label, [`DATA`], with the config's nonce), which only a service
//! that mounts the config reads — so that listing configs (every `atq ls`, `prune`) never moves
//! their contents. The content is made after the config and removed before it, so a content
//! volume never outlives its config; a config whose content is missing (a create interrupted
//! between the two) is reported as such. The content is copied into each replica before it starts.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::errors::Error as BollardError;
use bollard::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};
use bollard::Docker;

use crate::error::{Error, Result};

/// Prefix of a network's lock volume.
const LOCK_PREFIX: &str = "io.atq.network.";
/// Prefix of a config's volume.
const CONFIG_PREFIX: &str = "io.atq.config.";
/// Prefix of a config's content volume.
const CONTENT_PREFIX: &str = "io.atq.config-content.";

/// What a volume of this store holds: `network-lock` or `config`.
pub(super) const KIND: &str = "io.atq.engine.kind";
/// The nonce of the create that made the volume.
pub(super) const NONCE: &str = "io.atq.engine.nonce";
/// The name of the network or config the volume stands for.
pub(super) const NAME: &str = "io.atq.engine.name";
/// A config's content, base64.
pub(super) const DATA: &str = "io.atq.engine.data";

/// [`KIND`] of a network's lock.
pub(super) const KIND_LOCK: &str = "network-lock";
/// [`KIND`] of a config.
pub(super) const KIND_CONFIG: &str = "config";
/// [`KIND`] of a config's content.
pub(super) const KIND_CONTENT: &str = "config-content";

/// The lock volume of the network `name`.
pub(super) fn lock_name(network: &str) -> String {
    format!("{LOCK_PREFIX}{network}")
}

/// The network a lock volume stands for, if `volume` is one.
pub(super) fn network_of_lock(volume: &str) -> Option<&str> {
    volume.strip_prefix(LOCK_PREFIX)
}

/// The volume of the config `name`.
pub(super) fn config_name(config: &str) -> String {
    format!("{CONFIG_PREFIX}{config}")
}

/// The volume holding the content of the config `name`.
pub(super) fn content_name(config: &str) -> String {
    format!("{CONTENT_PREFIX}{config}")
}

/// The config a volume holds, if `volume` is one.
pub(super) fn config_of_volume(volume: &str) -> Option<&str> {
    volume.strip_prefix(CONFIG_PREFIX)
}

/// A fresh nonce: this process, the time and a counter.
pub(super) fn nonce() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// Creates the volume `name` with `labels` (which must hold a [`NONCE`]); Ok(false) when a volume
/// of that name already existed (another create holds it).
pub(super) async fn claim(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> std::result::Result<bool, BollardError> {
    let nonce = labels.get(NONCE).cloned();
    let request = VolumeCreateRequest {
        name: Some(name.to_owned()),
        driver: Some("local".to_owned()),
        labels: Some(labels),
        ..Default::default()
    };
    let volume = docker.create_volume(request).await?;
    Ok(nonce.is_some() && volume.labels.get(NONCE) == nonce.as_ref())
}

/// Removes the volume `name`; Ok(false) when there was none.
pub(super) async fn release(docker: &Docker, name: &str) -> std::result::Result<bool, BollardError> {
    match docker.remove_volume(name, None::<RemoveVolumeOptions>).await {
        Ok(()) => Ok(true),
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The volume `name`, or None.
pub(super) async fn get(docker: &Docker, name: &str) -> std::result::Result<Option<Volume>, BollardError> {
    match docker.inspect_volume(name).await {
        Ok(v) => Ok(Some(v)),
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Volumes of `kind` whose labels match every filter (`key` or `key=value`).
pub(super) async fn list(
    docker: &Docker,
    kind: &str,
    mut filters: Vec<String>,
) -> std::result::Result<Vec<Volume>, BollardError> {
    filters.push(format!("{KIND}={kind}"));
    let options = ListVolumesOptions { filters: Some(HashMap::from([("label".to_owned(), filters)])) };
    Ok(docker.list_volumes(Some(options)).await?.volumes.unwrap_or_default())
}

/// A config volume's content.
pub(super) fn data_of(volume: &Volume, config: &str) -> Result<Vec<u8>> {
    let encoded = volume.labels.get(DATA).map(String::as_str).unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::engine("read config", config, format!("its stored content is not base64: {e}")))
}

/// Label holding a per-replica config's parts (a JSON list of base64 strings, slot 1 first).
pub(super) const PER_REPLICA: &str = "io.atq.engine.per-replica";

/// A config's per-replica parts as stored (empty: the same content for every replica).
pub(super) fn per_replica_of(volume: &Volume, config: &str) -> Result<Vec<Vec<u8>>> {
    let Some(encoded) = volume.labels.get(PER_REPLICA) else { return Ok(Vec::new()) };
    let bad =
        |why: String| Error::engine("read config", config, format!("its stored per-replica content is broken: {why}"));
    let parts: Vec<String> = serde_json::from_str(encoded).map_err(|e| bad(e.to_string()))?;
    parts.iter().map(|p| base64::engine::general_purpose::STANDARD.decode(p).map_err(|e| bad(e.to_string()))).collect()
}

/// A config's per-replica parts, for [`PER_REPLICA`].
pub(super) fn encode_per_replica(parts: &[Vec<u8>]) -> String {
    let encoded: Vec<String> = parts.iter().map(|p| encode(p)).collect();
    serde_json::to_string(&encoded).expect("strings serialise")
}

/// A config's content as stored.
pub(super) fn encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Whether a label is this store's own (not one the caller gave).
pub(super) fn is_internal(key: &str) -> bool {
    key.starts_with("io.atq.engine.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_round_trip() {
        assert_eq!(network_of_lock(&lock_name("t_net")), Some("t_net"));
        assert_eq!(config_of_volume(&config_name("t_workers")), Some("t_workers"));
        assert_eq!(network_of_lock(&config_name("x")), None);
        assert_eq!(config_of_volume(&content_name("x")), None);
        assert_ne!(nonce(), nonce());
        assert!(is_internal(DATA) && !is_internal("io.atq.task"));
    }
}
