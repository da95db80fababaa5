//! Property tests: saving a master's artifacts (`Deployment::save_artifacts`, on FakeCluster with a
//! scripted archive) answers any archive quickly without panicking, writes only regular files
//! inside the target directory, and writes nothing at all when it refuses an entry as unsafe.

use std::path::Path;
use std::time::{Duration, Instant};

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::labels::Role;
use atq_core::{Director, Error, FakeCluster, Service, Task};
use proptest::prelude::*;

/// Most time saving one archive may take (the archives here are a few KiB).
const BOUND: Duration = Duration::from_secs(2);

/// Every path under `dir` (files, directories, links), relative and sorted.
fn everything_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.symlink_metadata().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What one entry of a generated archive is.
#[derive(Debug, Clone)]
struct Entry {
    /// Raw name bytes, written into the header as they are (no checks by the `tar` crate).
    name: String,
    /// The header's type flag, any byte.
    kind: u8,
    /// Content.
    data: Vec<u8>,
    /// Declared size minus the real one (a lying header), when set.
    lie: Option<i8>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "results/",
            "results/a.txt",
            "results/sub/b.csv",
            "./results/a.txt",
            "results/../../x",
            "/etc/x",
            "results/./c",
            "results//d",
            "..",
            "results/..",
            "results",
            "a/b/c/d/e/f",
            "results/sub",
            "results/sub/",
            ".",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z./]{0,40}",
        "\\PC{0,30}",
    ];
    let kind = prop_oneof![
        4 => prop::sample::select(vec![b'0', b'5', b'\0', b'2', b'1', b'3', b'4', b'6', b'7', b'x', b'g', b'L']),
        1 => any::<u8>(),
    ];
    (name, kind, prop::collection::vec(any::<u8>(), 0..600), prop::option::weighted(0.2, any::<i8>()))
        .prop_map(|(name, kind, data, lie)| Entry { name, kind, data, lie })
}

/// A tar archive of `entries`, headers written by hand so nothing is checked on the way.
fn archive(entries: &[Entry], tail: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        let name = e.name.as_bytes();
        let n = name.len().min(100);
        header.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        header.set_mode(0o644);
        let declared = match e.lie {
            Some(lie) => (e.data.len() as i64 + i64::from(lie)).max(0) as u64,
            None => e.data.len() as u64,
        };
        header.set_size(declared);
        header.as_old_mut().linkflag = [e.kind];
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + tail, 0);
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Deploys a task whose master leaves `archive` as its artifacts, saves them, and checks the result.
fn save_and_check(archive: Vec<u8>) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let fake = FakeCluster::new();
        fake.script(Matcher::role(Role::Master), Script::exits(0).artifact_archive(archive));
        let director = Director::new(fake.clone());
        let task = Task::builder("arts")
            .workers(Service::new("w"))
            .master(Service::new("m"))
            .artifacts("/atq/results")
            .build()
            .unwrap();
        let d = director.deploy(&task).await.unwrap();
        d.wait(None).await.unwrap();
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        std::fs::create_dir(root.path().join("beside")).unwrap();
        let start = Instant::now();
        let saved = d.save_artifacts(&out).await;
        prop_assert!(start.elapsed() < BOUND, "saving took {:?}", start.elapsed());
        d.teardown().await.unwrap();

        let top: Vec<String> = everything_under(root.path()).into_iter().filter(|p| !p.contains('/')).collect();
        prop_assert!(top.iter().all(|p| p == "out" || p == "beside"), "written beside the target: {top:?}");
        prop_assert!(everything_under(&root.path().join("beside")).is_empty());
        for path in everything_under(&out) {
            let meta = out.join(&path).symlink_metadata().unwrap();
            prop_assert!(meta.is_dir() || meta.is_file(), "{path} is neither a file nor a directory");
        }
        match saved {
            Ok(files) => {
                for file in files {
                    prop_assert!(file.starts_with(&out), "{} is outside {}", file.display(), out.display());
                    prop_assert!(file.symlink_metadata().unwrap().is_file(), "{} is not a file", file.display());
                }
            }
            Err(Error::UnsafeArtifact { .. }) => {
                prop_assert!(everything_under(&out).is_empty(), "refused, yet wrote {:?}", everything_under(&out));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_saved_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        save_and_check(bytes)?;
    }

    #[test]
    fn hostile_tar_archives_write_nothing_outside_the_target(
        entries in prop::collection::vec(entry(), 0..8),
        tail in prop::sample::select(vec![0usize, 100, 512, 1024]),
    ) {
        save_and_check(archive(&entries, tail))?;
    }
}

/// Found by the property test: a directory entry, then a file entry of the same name (and the
/// reverse). Whatever the answer, nothing is written outside, and a refusal writes nothing.
#[test]
fn a_directory_and_a_file_of_the_same_name() {
    let dir = |name: &str| Entry { name: name.into(), kind: b'5', data: Vec::new(), lie: None };
    let file = |name: &str| Entry { name: name.into(), kind: b'0', data: b"x".to_vec(), lie: None };
    for entries in [
        vec![dir("results/sub/"), file("results/sub")],
        vec![file("results/sub"), dir("results/sub/")],
        vec![dir("results/"), file("results")],
        vec![file("results"), dir("results/")],
        vec![file("results/a"), file("results/a/b")],
        vec![dir("results/sub"), file("results/sub/x"), file("results/sub")],
    ] {
        save_and_check(archive(&entries, 0)).unwrap_or_else(|e| panic!("{entries:?}: {e}"));
    }
}
