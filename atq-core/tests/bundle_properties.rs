//! Property tests: bundle intake (`DataBundle::from_zip_reader`, `DataBundle::from_dir`) answers
//! any archive or directory quickly, never panics, and whatever it accepts keeps every rule: at
//! most the limits, plain relative paths, the files' own content, and the executable bit as the
//! source had it.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use atq_core::data::{DataBundle, Limits};
use proptest::prelude::*;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Most time one intake may take (the inputs here are a few KiB).
const BOUND: Duration = Duration::from_secs(2);

fn limits() -> Limits {
    Limits::default().max_entries(20).max_total_bytes(4096).max_file_bytes(1024)
}

/// Checks what every accepted bundle must be.
fn check_accepted(bundle: &DataBundle, limits: &Limits) -> Result<(), TestCaseError> {
    prop_assert!(!bundle.is_empty() && bundle.len() <= limits.max_entries);
    prop_assert!(bundle.total_bytes() <= limits.max_total_bytes);
    prop_assert!(bundle.id().len() == 16 && bundle.digest().starts_with(bundle.id()));
    for (path, content) in bundle.files() {
        prop_assert!(!content.is_empty() && (content.len() as u64) < limits.max_file_bytes, "{path}");
        prop_assert!(!path.starts_with('/') && !path.contains('\\') && !path.contains('\0'), "{path:?}");
        prop_assert!(path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "{path:?}");
        prop_assert!(!path.chars().any(char::is_control), "{path:?}");
    }
    Ok(())
}

fn read_zip(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let limits = limits();
    let start = Instant::now();
    let result = DataBundle::from_zip_reader(Cursor::new(bytes), "p.zip", &limits);
    prop_assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    match result {
        Ok(bundle) => check_accepted(&bundle, &limits),
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(())
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,6}(/[a-z]{1,6}){0,3}(\\.txt)?",
        1 => prop::sample::select(vec![
            "../x", "/abs", "a\\b", "a//b", "./a", "a/./b", "a/../b", "C:/x", "a/", "dir/", "\u{1}ctl", "é/ü.txt",
            "a\0b", "", ".", "..",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{1,20}",
    ]
}

/// A zip written by the zip crate: entries of random names, content, modes and compression.
fn zip_archive() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        name(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::sample::select(vec![0o644u32, 0o755, 0o600, 0o777, 0o120777]),
        any::<bool>(),
    );
    prop::collection::vec(entry, 1..8).prop_map(|entries| {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content, mode, deflate) in entries {
            let method = if deflate { CompressionMethod::Deflated } else { CompressionMethod::Stored };
            let options = SimpleFileOptions::default().compression_method(method).unix_permissions(mode);
            if name.ends_with('/') {
                let _ = zip.add_directory(name, options);
            } else if zip.start_file(name, options).is_ok() {
                let _ = zip.write_all(&content);
            }
        }
        zip.finish().map(Cursor::into_inner).unwrap_or_default()
    })
}

/// `base` with `edits` applied (each a position, taken modulo the length, and a byte).
fn edited(mut base: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, how) in edits {
        let i = at % (base.len() + 1);
        match how % 3 {
            0 if i < base.len() => base[i] = byte,
            1 => base.insert(i, byte),
            _ if i < base.len() => {
                base.remove(i);
            }
            _ => {}
        }
    }
    base
}

/// One entry of a generated directory.
#[derive(Debug, Clone)]
enum Node {
    File { content: Vec<u8>, executable: bool },
    Dir,
    Link,
}

fn tree() -> impl Strategy<Value = BTreeMap<String, Node>> {
    let node = prop_oneof![
        6 => (prop::collection::vec(any::<u8>(), 0..200), any::<bool>())
            .prop_map(|(content, executable)| Node::File { content, executable }),
        2 => Just(Node::Dir),
        1 => Just(Node::Link),
    ];
    prop::collection::btree_map("[a-c]{1,2}(/[a-c]{1,2}){0,2}", node, 1..10)
}

/// Writes `tree` under `root` (entries whose parent is a file are skipped); returns the regular
/// files written, with their content and whether they are executable.
fn write_tree(root: &std::path::Path, tree: &BTreeMap<String, Node>) -> BTreeMap<String, (Vec<u8>, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = BTreeMap::new();
    for (path, node) in tree {
        let full = root.join(path);
        if std::fs::create_dir_all(full.parent().unwrap()).is_err() || full.exists() {
            continue;
        }
        match node {
            Node::File { content, executable } => {
                std::fs::write(&full, content).unwrap();
                let mode = if *executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
                files.insert(path.clone(), (content.clone(), *executable));
            }
            Node::Dir => std::fs::create_dir(&full).unwrap(),
            Node::Link => std::os::unix::fs::symlink("/etc/hostname", &full).unwrap(),
        }
    }
    // A file created first may since have become a directory's parent: keep what is a file.
    files.retain(|path, _| root.join(path).symlink_metadata().is_ok_and(|m| m.is_file()));
    files
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        read_zip(bytes)?;
    }

    #[test]
    fn zips_of_any_names_modes_and_content_are_read_or_refused(zip in zip_archive()) {
        read_zip(zip)?;
    }

    #[test]
    fn edited_zips_are_read_or_refused(
        zip in zip_archive(), edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12),
    ) {
        read_zip(edited(zip, &edits))?;
    }

    #[test]
    fn a_directory_is_read_as_it_is_or_refused(tree in tree()) {
        let root = tempfile::tempdir().unwrap();
        let files = write_tree(root.path(), &tree);
        let limits = limits();
        let start = Instant::now();
        let result = DataBundle::from_dir_with(root.path(), &limits);
        prop_assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
        let has_link = tree.iter().any(|(p, n)| matches!(n, Node::Link) && root.path().join(p).is_symlink());
        match result {
            Ok(bundle) => {
                check_accepted(&bundle, &limits)?;
                prop_assert!(!has_link, "a link was accepted");
                let got: BTreeMap<String, (Vec<u8>, bool)> = bundle
                    .files()
                    .iter()
                    .map(|(p, c)| (p.clone(), (c.clone(), bundle.is_executable(p))))
                    .collect();
                prop_assert_eq!(got, files);
            }
            Err(e) => {
                // Refused for a reason it can name: a link, an empty file, a limit.
                let message = e.to_string();
                prop_assert!(
                    has_link || files.values().any(|(c, _)| c.is_empty()) || files.is_empty()
                        || message.contains("more than") || message.contains("at least"),
                    "{message}"
                );
            }
        }
    }
}
