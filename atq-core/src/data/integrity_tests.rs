//! Tests of what a bundle keeps true between its source and the containers: a directory read
//! relative to open handles (a swapped subdirectory is never followed), the executable bit, and
//! content verified by digest before an engine's configs are reused.

use std::path::Path;

use super::intake::hooks;
use super::*;
use crate::error::Error;

fn write(dir: &Path, files: &[(&str, &[u8])]) {
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

fn data_error(result: crate::error::Result<DataBundle>) -> DataError {
    match result {
        Err(Error::Data(e)) => e,
        Err(other) => panic!("expected a DataError, got {other:?}"),
        Ok(b) => panic!("expected a refusal, got a bundle of {:?}", b.files()),
    }
}

/// A tree with `sub/plan.jmx`, and beside it (outside the bundle) `outside/secret.txt`.
fn tree_with_outside() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("bundle");
    let outside = root.path().join("outside");
    write(&bundle, &[("a.txt", b"a"), ("sub/plan.jmx", b"<plan/>")]);
    write(&outside, &[("secret.txt", b"the secret")]);
    (root, bundle, outside)
}

/// `dir/sub` becomes a symbolic link to `outside` (the directory it was moves away).
fn swap_for_link(bundle: &Path, outside: &Path) {
    std::fs::rename(bundle.join("sub"), bundle.with_file_name("moved-sub")).unwrap();
    std::os::unix::fs::symlink(outside, bundle.join("sub")).unwrap();
}

#[test]
fn a_subdirectory_swapped_for_a_link_after_listing_is_never_followed() {
    let (_root, bundle, outside) = tree_with_outside();
    let (b, o) = (bundle.clone(), outside.clone());
    let result = hooks::with_before_open(
        Box::new(move |path| {
            if path == "sub" {
                swap_for_link(&b, &o);
            }
        }),
        || DataBundle::from_dir(&bundle),
    );
    let err = data_error(result);
    assert!(matches!(&err, DataError::Symlink { entry, .. } if entry == "sub"), "{err:?}");
}

#[test]
fn a_file_replaced_after_listing_is_refused_as_changed() {
    let (_root, bundle, _outside) = tree_with_outside();
    let b = bundle.clone();
    let result = hooks::with_before_open(
        Box::new(move |path| {
            if path == "a.txt" {
                // A new file (a new inode, made while the old one still exists) takes its name.
                std::fs::write(b.join("new.tmp"), b"replaced").unwrap();
                std::fs::rename(b.join("new.tmp"), b.join("a.txt")).unwrap();
            }
        }),
        || DataBundle::from_dir(&bundle),
    );
    let err = data_error(result);
    assert!(matches!(&err, DataError::Changed { entry, .. } if entry == "a.txt"), "{err:?}");
    assert!(err.to_string().contains("Push again"), "{err}");
}

#[test]
fn a_file_swapped_for_a_link_after_listing_is_refused_as_a_link() {
    let (_root, bundle, outside) = tree_with_outside();
    let (b, o) = (bundle.clone(), outside.clone());
    let result = hooks::with_before_open(
        Box::new(move |path| {
            if path == "sub/plan.jmx" {
                std::fs::remove_file(b.join("sub/plan.jmx")).unwrap();
                std::os::unix::fs::symlink(o.join("secret.txt"), b.join("sub/plan.jmx")).unwrap();
            }
        }),
        || DataBundle::from_dir(&bundle),
    );
    let err = data_error(result);
    assert!(matches!(&err, DataError::Symlink { entry, .. } if entry == "sub/plan.jmx"), "{err:?}");
}

/// Without a hook: a helper thread flips `sub` between the directory and a link to `outside`
/// while the directory is read again and again. Whatever each read meets, it never returns the
/// file outside.
#[test]
fn a_subdirectory_flipping_to_a_link_under_a_racing_thread_never_leaks_what_is_outside() {
    let (root, bundle, outside) = tree_with_outside();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, bundle, parked) = (stop.clone(), bundle.clone(), root.path().join("parked"));
        std::thread::spawn(move || {
            let sub = bundle.join("sub");
            let mut flips = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::rename(&sub, &parked).unwrap();
                std::os::unix::fs::symlink(&outside, &sub).unwrap();
                std::thread::yield_now();
                std::fs::remove_file(&sub).unwrap();
                std::fs::rename(&parked, &sub).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let (mut read, mut refused) = (0, 0);
    for _ in 0..400 {
        match DataBundle::from_dir(&bundle) {
            Ok(b) => {
                assert!(!b.files().values().any(|c| c == b"the secret"), "read through the link: {:?}", b.files());
                read += 1;
            }
            Err(Error::Data(DataError::Symlink { .. } | DataError::Changed { .. })) | Err(Error::Io { .. }) => {
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 0 && read + refused == 400, "{flips} flips, {read} read, {refused} refused");
}

#[test]
fn an_executable_file_in_a_directory_stays_executable_and_counts_in_the_id() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("run.sh", b"#!/bin/sh\necho hi\n"), ("plan.jmx", b"<plan/>")]);
    let plain = DataBundle::from_dir(dir.path()).unwrap();
    assert!(!plain.is_executable("run.sh"));
    std::fs::set_permissions(dir.path().join("run.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let executable = DataBundle::from_dir(dir.path()).unwrap();
    assert!(executable.is_executable("run.sh") && !executable.is_executable("plan.jmx"));
    assert_eq!(executable.mode("run.sh"), crate::cluster::ConfigMount::EXECUTABLE);
    assert_eq!(executable.mode("plan.jmx"), crate::cluster::ConfigMount::READ_ONLY);
    assert_eq!(plain.files(), executable.files());
    assert_ne!(plain.id(), executable.id(), "the mode is part of the content");
}

/// A bundle without executables keeps the id the v1 framing gives (ids in task files stay valid).
#[test]
fn a_bundle_without_executables_keeps_its_v1_id() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("b/c.csv", b"1,2\n"), ("a.txt", b"a")]);
    let bundle = DataBundle::from_dir(dir.path()).unwrap();
    let mut hash = Sha256::new();
    hash.update(b"atq-bundle-v1\0");
    for (path, content) in [("a.txt", &b"a"[..]), ("b/c.csv", &b"1,2\n"[..])] {
        hash.update((path.len() as u64).to_be_bytes());
        hash.update(path);
        hash.update((content.len() as u64).to_be_bytes());
        hash.update(content);
    }
    let v1: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(bundle.digest(), v1);
    assert_eq!(bundle.id(), &v1[..ID_LEN]);
}

#[test]
fn a_zip_entry_with_an_executable_unix_mode_stays_executable() {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bin/run.sh", SimpleFileOptions::default().unix_permissions(0o755)).unwrap();
    zip.write_all(b"#!/bin/sh\n").unwrap();
    zip.start_file("data.csv", SimpleFileOptions::default().unix_permissions(0o644)).unwrap();
    zip.write_all(b"1\n").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let from_zip = DataBundle::from_zip_reader(std::io::Cursor::new(bytes), "t.zip", &Limits::default()).unwrap();
    assert!(from_zip.is_executable("bin/run.sh") && !from_zip.is_executable("data.csv"));
    // The same tree as a directory has the same id.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("bin/run.sh", b"#!/bin/sh\n"), ("data.csv", b"1\n")]);
    std::fs::set_permissions(dir.path().join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(DataBundle::from_dir(dir.path()).unwrap().id(), from_zip.id());
}
