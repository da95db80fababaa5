//! Files delivered into a container before it starts, as one tar archive for
//! `PUT /containers/{id}/archive?path=/` (the engine unpacks it into the container's filesystem).

use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// A file to put into every replica of a service before it starts (a config, the worker list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// Absolute path inside the container (`/atq/workers`).
    pub target: String,
    /// Its content.
    pub data: Vec<u8>,
    /// Its permission bits (`0o444`).
    pub mode: u32,
    /// What follows `data` in each replica's copy, slot 1 first (a per-replica config: a sharded
    /// file's slices); empty: every replica gets `data` alone.
    pub per_replica: Vec<Vec<u8>>,
}

/// A tar archive of `files` rooted at `/`, with a directory entry (mode 0755) for every parent
/// directory, owned by root. Refuses a target that is not an absolute path of plain names.
pub(super) fn archive(service: &str, files: &[File]) -> Result<Vec<u8>> {
    archive_for(service, files, None)
}

/// Whether some file differs between replicas (a per-replica config).
pub(super) fn per_replica(files: &[File]) -> bool {
    files.iter().any(|f| !f.per_replica.is_empty())
}

/// The archive as replica `slot` gets it: each per-replica file is its `data` followed by the
/// slot's part. `None`: the shared parts only.
pub(super) fn archive_for(service: &str, files: &[File], slot: Option<u32>) -> Result<Vec<u8>> {
    let bad = |target: &str, why: &str| {
        Error::engine("create service", service, format!("cannot deliver the file {target:?}: {why}"))
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for file in files {
        let Some(relative) = file.target.strip_prefix('/') else {
            return Err(bad(&file.target, "its path is not absolute"));
        };
        let parts: Vec<&str> = relative.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") || relative.contains('\0') {
            return Err(bad(&file.target, "its path is not a plain path"));
        }
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if dirs.insert(dir.clone()) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_uid(0);
                header.set_gid(0);
                builder
                    .append_data(&mut header, format!("{dir}/"), std::io::empty())
                    .map_err(|e| bad(&file.target, &e.to_string()))?;
            }
        }
        let part = slot
            .and_then(|s| usize::try_from(s).ok()?.checked_sub(1))
            .and_then(|i| file.per_replica.get(i))
            .map_or(&[][..], Vec::as_slice);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(file.mode);
        header.set_size((file.data.len() + part.len()) as u64);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, relative, std::io::Read::chain(file.data.as_slice(), part))
            .map_err(|e| bad(&file.target, &e.to_string()))?;
    }
    builder.into_inner().map_err(|e| Error::engine_caused("create service", service, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_at_their_paths_with_their_modes_and_parent_directories() {
        let files = [
            File { target: "/atq/workers".into(), data: b"10.0.0.2\n".to_vec(), mode: 0o444, per_replica: Vec::new() },
            File {
                target: "/atq/data/plans/run.sh".into(),
                data: b"echo hi\n".to_vec(),
                mode: 0o555,
                per_replica: Vec::new(),
            },
        ];
        let tar = archive("s", &files).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), e.header().size().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("atq/".to_string(), 0o755, 0),
                ("atq/workers".to_string(), 0o444, 9),
                ("atq/data/".to_string(), 0o755, 0),
                ("atq/data/plans/".to_string(), 0o755, 0),
                ("atq/data/plans/run.sh".to_string(), 0o555, 8),
            ]
        );
    }

    #[test]
    fn a_relative_or_climbing_target_is_refused() {
        for target in ["atq/x", "/atq/../etc/passwd", "/atq//x", "/"] {
            let files = [File { target: target.into(), data: Vec::new(), mode: 0o444, per_replica: Vec::new() }];
            assert!(archive("s", &files).is_err(), "{target}");
        }
    }
}
