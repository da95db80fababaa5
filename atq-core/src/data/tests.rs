//! Tests of data bundles: hostile archives, ids, the round trip through an engine, data sources.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::*;
use crate::cluster::{
    Cluster, ConfigMount, ConfigSpec, EngineInfo, LabelSelector, LogStream, MockCluster, Mount, MountKind, NetworkSpec,
    Replica, Resource, ResourceKind, ServiceSpec,
};
use crate::error::{Error, Result};
use crate::{labels, Service, Task};

// ---------------------------------------------------------------------------------------------
// Helpers

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

fn deflated(level: i64) -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).compression_level(Some(level))
}

/// A zip of `files`, written in memory.
fn zip_of(files: &[(&str, &[u8])], options: SimpleFileOptions) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn read_zip(bytes: Vec<u8>) -> Result<DataBundle> {
    DataBundle::from_zip_reader(Cursor::new(bytes), "test.zip", &Limits::default())
}

fn read_zip_with(bytes: Vec<u8>, limits: &Limits) -> Result<DataBundle> {
    DataBundle::from_zip_reader(Cursor::new(bytes), "test.zip", limits)
}

fn data_error(result: Result<DataBundle>) -> DataError {
    match result {
        Err(Error::Data(e)) => e,
        Err(other) => panic!("expected a DataError, got {other:?}"),
        Ok(b) => panic!("expected a refusal, got a bundle of {:?}", b.files().keys().collect::<Vec<_>>()),
    }
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Writes `zip` into a fresh directory, reads it back from disk, and checks nothing else appeared.
fn refused_from_disk(zip: Vec<u8>) -> DataError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.zip");
    std::fs::write(&path, zip).unwrap();
    let err = data_error(DataBundle::from_zip(&path));
    assert_eq!(tree(dir.path()), ["hostile.zip"], "intake wrote to disk");
    err
}

fn nested_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("plans/a/b.jmx", b"<jmeterTestPlan version=\"1.2\"/>\n"),
        ("data/users.csv", b"id,name\n1,ana\n2,luis\n"),
        ("README", b"load test data\n"),
    ]
}

fn write_dir(root: &Path, files: &[(&str, &[u8])]) {
    for (name, content) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// An in-test engine holding configs and service labels, with one injectable failure.

struct Configs {
    by_name: BTreeMap<String, (String, ConfigSpec)>,
    next_id: usize,
}

struct MemCluster {
    configs: Mutex<Configs>,
    services: Mutex<Vec<Resource>>,
    max_config_bytes: usize,
    /// Fail the create_config call of this number (1-based, counted from the start); 0 for none.
    fail_create: AtomicUsize,
    creates: AtomicUsize,
    removes: AtomicUsize,
    /// A config stored just before the next create_config call runs (another push racing this one).
    racing: Mutex<Option<ConfigSpec>>,
}

impl MemCluster {
    fn new() -> Self {
        MemCluster {
            configs: Mutex::new(Configs { by_name: BTreeMap::new(), next_id: 0 }),
            services: Mutex::new(Vec::new()),
            max_config_bytes: 500 * 1024,
            fail_create: AtomicUsize::new(0),
            creates: AtomicUsize::new(0),
            removes: AtomicUsize::new(0),
            racing: Mutex::new(None),
        }
    }

    /// Stores `spec` as is (labels and all), as another process could.
    fn store(&self, spec: ConfigSpec) {
        let mut configs = self.configs.lock().unwrap();
        configs.next_id += 1;
        let id = format!("cfg{}", configs.next_id);
        configs.by_name.insert(spec.name.clone(), (id, spec));
    }

    /// Makes the `n`-th create_config call from now fail.
    fn fail_create_in(&self, n: usize) {
        self.fail_create.store(self.creates.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    fn config_names(&self) -> Vec<String> {
        self.configs.lock().unwrap().by_name.keys().cloned().collect()
    }

    fn config(&self, name: &str) -> ConfigSpec {
        self.configs.lock().unwrap().by_name[name].1.clone()
    }

    fn add_service(&self, name: &str, uses: &str) {
        self.services.lock().unwrap().push(Resource {
            kind: ResourceKind::Service,
            id: format!("svc-{name}"),
            name: name.to_owned(),
            labels: BTreeMap::from([(labels::USES_BUNDLES.to_owned(), uses.to_owned())]),
            created_unix: Some(1),
        });
    }

    fn drop_config(&self, name: &str) {
        self.configs.lock().unwrap().by_name.remove(name).unwrap();
    }
}

fn unsupported<T>(what: &'static str) -> Result<T> {
    Err(Error::engine(what, "mem", "not supported by the in-test cluster"))
}

#[async_trait]
impl Cluster for MemCluster {
    async fn info(&self) -> Result<EngineInfo> {
        Ok(EngineInfo { max_config_bytes: self.max_config_bytes, ..EngineInfo::default() })
    }
    async fn create_network(&self, _: &NetworkSpec) -> Result<String> {
        unsupported("create network")
    }
    async fn remove_network(&self, _: &str) -> Result<()> {
        unsupported("remove network")
    }
    async fn create_service(&self, _: &ServiceSpec) -> Result<String> {
        unsupported("create service")
    }
    async fn remove_service(&self, _: &str) -> Result<()> {
        unsupported("remove service")
    }
    async fn replicas(&self, _: &str, _: &str) -> Result<Vec<Replica>> {
        unsupported("list replicas")
    }
    async fn logs(&self, _: &str, _: &crate::cluster::LogOptions) -> Result<LogStream> {
        unsupported("read logs")
    }
    async fn create_config(&self, spec: &ConfigSpec) -> Result<String> {
        if let Some(other) = self.racing.lock().unwrap().take() {
            self.store(other);
        }
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_create.load(Ordering::SeqCst) == n {
            return Err(Error::engine("create config", &spec.name, "injected failure"));
        }
        // The engine's own rules (swarmkit's validateConfigSpec).
        if spec.data.is_empty() || spec.data.len() >= self.max_config_bytes || spec.name.len() > 64 {
            return Err(Error::engine(
                "create config",
                &spec.name,
                "config data must be larger than 0 and less than the limit",
            ));
        }
        let mut configs = self.configs.lock().unwrap();
        if configs.by_name.contains_key(&spec.name) {
            return Err(Error::Conflict { kind: "config", name: spec.name.clone() });
        }
        configs.next_id += 1;
        let id = format!("cfg{}", configs.next_id);
        configs.by_name.insert(spec.name.clone(), (id.clone(), spec.clone()));
        Ok(id)
    }
    async fn remove_config(&self, name: &str) -> Result<()> {
        self.removes.fetch_add(1, Ordering::SeqCst);
        match self.configs.lock().unwrap().by_name.remove(name) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound { kind: "config", name: name.to_owned() }),
        }
    }
    async fn copy_from_replica(&self, _: &str, _: &str) -> Result<crate::cluster::ChunkStream> {
        unsupported("copy files from")
    }
    async fn list_resources(&self, kind: ResourceKind, selector: &LabelSelector) -> Result<Vec<Resource>> {
        Ok(match kind {
            ResourceKind::Config => self
                .configs
                .lock()
                .unwrap()
                .by_name
                .values()
                .filter(|(_, spec)| selector.matches(&spec.labels))
                .map(|(id, spec)| Resource {
                    kind,
                    id: id.clone(),
                    name: spec.name.clone(),
                    labels: spec.labels.clone(),
                    created_unix: Some(1_700_000_000),
                })
                .collect(),
            ResourceKind::Service => {
                self.services.lock().unwrap().iter().filter(|r| selector.matches(&r.labels)).cloned().collect()
            }
            ResourceKind::Network => Vec::new(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile archives

#[test]
fn zip_slip_with_parent_dir_is_refused() {
    let zip = zip_of(&[("ok.txt", b"fine"), ("../../evil.sh", b"#!/bin/sh\nrm -rf /\n")], stored());
    let err = refused_from_disk(zip);
    assert!(matches!(&err, DataError::UnsafePath { entry, .. } if entry == "../../evil.sh"), "{err:?}");
    assert!(err.to_string().contains("../../evil.sh"), "{err}");
}

#[test]
fn parent_dir_inside_the_bundle_is_refused_too() {
    let err = data_error(read_zip(zip_of(&[("a/../b.txt", b"x")], stored())));
    assert!(matches!(&err, DataError::UnsafePath { rule, .. } if rule.contains("'..'")), "{err:?}");
}

#[test]
fn absolute_path_is_refused() {
    let err = refused_from_disk(zip_of(&[("/etc/cron.d/evil", b"* * * * * root sh\n")], stored()));
    assert!(
        matches!(&err, DataError::UnsafePath { entry, rule, .. } if entry == "/etc/cron.d/evil" && rule.contains("absolute")),
        "{err:?}"
    );
}

#[test]
fn windows_style_paths_are_refused() {
    for name in ["C:/evil.bat", "..\\evil.bat", "dir\\file.txt"] {
        let err = data_error(read_zip(zip_of(&[(name, b"x")], stored())));
        assert!(matches!(&err, DataError::UnsafePath { entry, .. } if entry == name), "{name}: {err:?}");
    }
}

#[test]
fn nul_byte_in_a_name_is_refused() {
    let err = data_error(read_zip(zip_of(&[("plan.jmx\0.txt", b"x")], stored())));
    assert!(matches!(&err, DataError::UnsafePath { rule, .. } if rule.contains("NUL")), "{err:?}");
}

#[test]
fn symlink_entry_is_refused() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("plan.jmx", stored()).unwrap();
    zip.write_all(b"<plan/>").unwrap();
    zip.add_symlink("passwd", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let err = refused_from_disk(zip.finish().unwrap().into_inner());
    assert!(matches!(&err, DataError::Symlink { entry, .. } if entry == "passwd"), "{err:?}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

/// Bits written least-significant first, as deflate wants.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: written most-significant bit first.
    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | (((code >> i) & 1) << (len - 1 - i)));
        self.put(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Raw deflate of `n` zero bytes in one fixed-Huffman block: a literal 0, then
/// <length 258, distance 1> matches (13 bits per 258 bytes), then literals for the rest.
fn deflate_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    bits.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        bits.code(0xC5, 8); // symbol 285: length 258
        bits.code(0, 5); // distance code 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8); // the few bytes left, as literals
    }
    bits.code(0, 7); // end of block (256)
    bits.finish()
}

const CRC_POLY: u32 = 0xedb8_8320;

/// a(x) * b(x) modulo the CRC-32 polynomial (reflected), as zlib's `multmodp`.
fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ CRC_POLY } else { b >> 1 };
    }
}

/// CRC-32 of `n` zero bytes, in O(log n) (zlib's `x2nmodp`).
fn crc32_of_zeros(n: u64) -> u32 {
    let mut x2n = 1u32 << 30; // x^1, then x^2, x^4, …
    let mut power = 1u32 << 31; // x^0
    let mut bits = n * 8;
    while bits > 0 {
        if bits & 1 != 0 {
            power = multmodp(x2n, power);
        }
        x2n = multmodp(x2n, x2n);
        bits >>= 1;
    }
    !multmodp(power, 0xffff_ffff)
}

fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ CRC_POLY } else { crc >> 1 };
        }
    }
    !crc
}

/// A zip with one deflated entry `name` holding `n` zero bytes, honest in every header, built
/// without ever holding the zeros.
fn zip_of_zeros(name: &str, n: u64) -> Vec<u8> {
    let data = deflate_zeros(n);
    let (crc, csize, usize_) = (crc32_of_zeros(n), u32::try_from(data.len()).unwrap(), u32::try_from(n).unwrap());
    let name_len = u16::try_from(name.len()).unwrap();
    let mut zip = Vec::new();
    let common = |zip: &mut Vec<u8>| {
        for v in [20u16, 0, 8, 0, 0x21] {
            zip.extend(v.to_le_bytes()); // version needed, flags, deflate, time, date (1980-01-01)
        }
        for v in [crc, csize, usize_] {
            zip.extend(v.to_le_bytes());
        }
        zip.extend(name_len.to_le_bytes());
        zip.extend(0u16.to_le_bytes()); // extra length
    };
    zip.extend(0x0403_4b50u32.to_le_bytes());
    common(&mut zip);
    zip.extend(name.as_bytes());
    zip.extend(&data);
    let cd_start = u32::try_from(zip.len()).unwrap();
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend((3u16 << 8 | 20).to_le_bytes()); // made by: unix
    common(&mut zip);
    zip.extend([0u8; 6]); // comment length, disk, internal attributes
    zip.extend((0o100_644u32 << 16).to_le_bytes()); // external attributes: regular file
    zip.extend(0u32.to_le_bytes()); // local header offset
    zip.extend(name.as_bytes());
    let cd_size = u32::try_from(zip.len()).unwrap() - cd_start;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0u8; 4]);
    zip.extend(1u16.to_le_bytes());
    zip.extend(1u16.to_le_bytes());
    zip.extend(cd_size.to_le_bytes());
    zip.extend(cd_start.to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    zip
}

#[test]
fn the_handmade_zip_of_zeros_is_a_valid_archive() {
    assert_eq!(crc32_of_zeros(1000), crc32_bitwise(&[0; 1000]));
    assert_eq!(crc32_of_zeros(1), crc32_bitwise(&[0]));
    for n in [1, 2, 3, 259, 260, 261, 1000, 4096] {
        let bundle = read_zip(zip_of_zeros("z.bin", n)).unwrap();
        assert_eq!(bundle.files()["z.bin"], vec![0u8; usize::try_from(n).unwrap()], "n = {n}");
    }
}

/// A single entry that inflates to 1 GiB of zeros.
fn zip_bomb() -> Vec<u8> {
    zip_of_zeros("zeros.csv", 1 << 30)
}

#[test]
fn a_gigabyte_of_zeros_is_refused_quickly_at_the_limits() {
    let bomb = zip_bomb();
    assert!(bomb.len() < 8 << 20, "the bomb should be small: {} bytes", bomb.len());

    // With the default per-file bound, reading stops after 500 KiB + 1 byte.
    let started = Instant::now();
    let err = refused_from_disk(bomb.clone());
    assert!(
        matches!(&err, DataError::FileTooLarge { entry, size, limit, .. } if entry == "zeros.csv" && *size == *limit && *limit == DEFAULT_MAX_FILE_BYTES),
        "{err:?}"
    );
    assert!(err.to_string().contains("dataPath"), "the message says what to do instead: {err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    // Even with no per-file bound, the total bound stops it after 64 MiB + 1 byte.
    let started = Instant::now();
    let err = data_error(read_zip_with(bomb, &Limits::default().max_file_bytes(u64::MAX)));
    assert!(matches!(&err, DataError::TooLarge { limit, .. } if *limit == MAX_TOTAL_BYTES), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn total_size_counts_bytes_read_across_files() {
    let a = vec![b'a'; 400];
    let zip = zip_of(&[("1.csv", &a), ("2.csv", &a), ("3.csv", &a)], deflated(6));
    let err = data_error(read_zip_with(zip, &Limits::default().max_total_bytes(1000)));
    assert!(matches!(&err, DataError::TooLarge { entry, limit: 1000, .. } if entry == "3.csv"), "{err:?}");
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"x".as_slice())).collect();
    let err = refused_from_disk(zip_of(&files, stored()));
    assert!(matches!(&err, DataError::TooManyEntries { limit, .. } if *limit == MAX_ENTRIES), "{err:?}");

    let fine = data_error(read_zip_with(zip_of(&files, stored()), &Limits::default().max_entries(10)));
    assert!(matches!(fine, DataError::TooManyEntries { limit: 10, .. }));
}

#[test]
fn a_file_at_the_config_limit_is_refused_and_one_byte_less_is_accepted() {
    let limit = usize::try_from(DEFAULT_MAX_FILE_BYTES).unwrap();
    let big = vec![7u8; limit];
    let err = refused_from_disk(zip_of(&[("big.csv", &big)], deflated(6)));
    assert!(matches!(&err, DataError::FileTooLarge { entry, .. } if entry == "big.csv"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("host path") && msg.contains("volume"), "{msg}");

    let bundle = read_zip(zip_of(&[("big.csv", &big[1..])], deflated(6))).unwrap();
    assert_eq!(bundle.total_bytes(), DEFAULT_MAX_FILE_BYTES - 1);

    let newer_engine = EngineInfo { max_config_bytes: 1000 * 1024, ..EngineInfo::default() };
    let bundle = read_zip_with(zip_of(&[("big.csv", &big)], deflated(6)), &Limits::for_engine(&newer_engine)).unwrap();
    assert_eq!(bundle.len(), 1);
}

#[test]
fn empty_files_and_empty_bundles_are_refused() {
    let err = data_error(read_zip(zip_of(&[("a.txt", b"x"), ("empty.txt", b"")], stored())));
    assert!(matches!(&err, DataError::EmptyFile { entry, .. } if entry == "empty.txt"), "{err:?}");

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.add_directory("only-a-dir/", SimpleFileOptions::default()).unwrap();
    let err = data_error(read_zip(zip.finish().unwrap().into_inner()));
    assert!(matches!(err, DataError::NoFiles { .. }), "{err:?}");
}

#[test]
fn duplicate_paths_and_file_directory_clashes_are_refused() {
    // The zip writer refuses duplicate names itself, so the duplicate differs in spelling only.
    let err = data_error(read_zip(zip_of(&[("a/b.txt", b"1"), ("a/./b.txt", b"2")], stored())));
    assert!(matches!(err, DataError::UnsafePath { .. } | DataError::Clash { .. }), "{err:?}");

    let err = data_error(read_zip(zip_of(&[("a", b"file"), ("a/b.txt", b"nested")], stored())));
    assert!(matches!(&err, DataError::Clash { entry, .. } if entry == "a/b.txt"), "{err:?}");

    let err = data_error(read_zip(zip_of(&[("a/b.txt", b"nested"), ("a", b"file")], stored())));
    assert!(matches!(&err, DataError::Clash { entry, .. } if entry == "a"), "{err:?}");
}

#[test]
fn garbage_is_not_an_archive() {
    let err = data_error(read_zip(b"this is not a zip file at all".to_vec()));
    assert!(matches!(err, DataError::Archive { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn symlinks_in_a_directory_are_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &[("plans/a.jmx", b"<plan/>")]);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("plans/passwd")).unwrap();
    let err = data_error(DataBundle::from_dir(dir.path()));
    assert!(matches!(&err, DataError::Symlink { entry, .. } if entry == "plans/passwd"), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &[("a.jmx", b"<plan/>")]);
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    let err = data_error(DataBundle::from_dir(dir.path()));
    assert!(matches!(&err, DataError::Symlink { entry, .. } if entry == "etc"), "{err:?}");
}

#[cfg(unix)]
#[test]
fn fifos_in_a_directory_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &[("a.jmx", b"<plan/>")]);
    let made = std::process::Command::new("mkfifo").arg(dir.path().join("pipe")).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let err = data_error(DataBundle::from_dir(dir.path()));
    assert!(matches!(&err, DataError::SpecialFile { entry, .. } if entry == "pipe"), "{err:?}");
}

#[test]
fn directory_limits_apply_too() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &[("a/1.csv", b"1"), ("a/2.csv", b"2"), ("b.csv", b"3")]);
    let err = data_error(DataBundle::from_dir_with(dir.path(), &Limits::default().max_entries(3)));
    assert!(matches!(err, DataError::TooManyEntries { limit: 3, .. }), "{err:?}");
    let err = data_error(DataBundle::from_dir_with(dir.path(), &Limits::default().max_file_bytes(1)));
    assert!(matches!(err, DataError::FileTooLarge { .. }), "{err:?}");
    assert_eq!(DataBundle::from_dir(dir.path()).unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Ids

#[test]
fn same_files_have_the_same_id_whatever_the_compression_order_or_time() {
    let files = nested_files();
    let mut reversed = files.clone();
    reversed.reverse();
    let old = DateTime::from_date_and_time(1999, 12, 31, 23, 59, 58).unwrap();
    let ids: Vec<String> = [
        zip_of(&files, stored()),
        zip_of(&files, deflated(1)),
        zip_of(&files, deflated(9)),
        zip_of(&reversed, deflated(6).last_modified_time(old)),
    ]
    .into_iter()
    .map(|zip| read_zip(zip).unwrap().id().to_owned())
    .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(is_bundle_id(&ids[0]), "{}", ids[0]);
}

#[test]
fn a_directory_and_a_zip_of_it_have_the_same_id() {
    let files = nested_files();
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &files);
    let from_dir = DataBundle::from_dir(dir.path()).unwrap();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for d in ["data/", "plans/", "plans/a/"] {
        zip.add_directory(d, SimpleFileOptions::default()).unwrap();
    }
    for (name, content) in &files {
        zip.start_file(*name, deflated(6)).unwrap();
        zip.write_all(content).unwrap();
    }
    let from_zip = read_zip(zip.finish().unwrap().into_inner()).unwrap();
    assert_eq!(from_dir.id(), from_zip.id());
    assert_eq!(from_dir, from_zip);
    let via_path = DataBundle::from_path(dir.path(), &Limits::default()).unwrap();
    assert_eq!(via_path.id(), from_dir.id());
}

#[test]
fn different_content_or_framing_gives_a_different_id() {
    let a = read_zip(zip_of(&[("ab", b"c")], stored())).unwrap();
    let b = read_zip(zip_of(&[("a", b"bc")], stored())).unwrap();
    let c = read_zip(zip_of(&[("ab", b"d")], stored())).unwrap();
    let d = read_zip(zip_of(&[("ba", b"c")], stored())).unwrap();
    let ids = [a.id(), b.id(), c.id(), d.id()];
    for (i, x) in ids.iter().enumerate() {
        for y in &ids[i + 1..] {
            assert_ne!(x, y);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// On the engine

fn nested_bundle() -> DataBundle {
    read_zip(zip_of(&nested_files(), deflated(6))).unwrap()
}

#[tokio::test]
async fn push_stores_one_labelled_config_per_file_and_mounts_round_trip_nested_paths() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    let id = bundle.push(&cluster).await.unwrap();
    assert_eq!(id, bundle.id());

    let names = cluster.config_names();
    assert_eq!(names, (0..3).map(|i| format!("atq-data-{id}-{i}")).collect::<Vec<_>>());
    let first = cluster.config(&names[0]);
    assert_eq!(first.labels[labels::MANAGED], "true");
    assert_eq!(first.labels[labels::ROLE], "data");
    assert_eq!(first.labels[labels::BUNDLE], id);
    assert_eq!(first.labels[labels::BUNDLE_FILES], "3");
    assert_eq!(first.labels[labels::BUNDLE_BYTES], bundle.total_bytes().to_string());

    let mounts = bundle_mounts(&cluster, &id).await.unwrap();
    let targets: Vec<&str> = mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, ["/atq/data/README", "/atq/data/data/users.csv", "/atq/data/plans/a/b.jmx"]);
    for mount in &mounts {
        let path = mount.target.strip_prefix("/atq/data/").unwrap();
        let config = cluster.config(&mount.config_name);
        assert_eq!(config.labels[labels::BUNDLE_PATH], path);
        assert_eq!(config.data, bundle.files()[path], "content of {path}");
        assert!(mount.config_id.starts_with("cfg"));
    }
}

#[tokio::test]
async fn pushing_the_same_content_twice_is_idempotent() {
    let cluster = MemCluster::new();
    let first = nested_bundle().push(&cluster).await.unwrap();
    let creates = cluster.creates.load(Ordering::SeqCst);
    let again =
        DataBundle::from_zip_reader(Cursor::new(zip_of(&nested_files(), stored())), "again.zip", &Limits::default())
            .unwrap()
            .push(&cluster)
            .await
            .unwrap();
    assert_eq!(first, again);
    assert_eq!(cluster.creates.load(Ordering::SeqCst), creates, "nothing created the second time");
    assert_eq!(cluster.config_names().len(), 3);
}

#[tokio::test]
async fn a_partial_push_is_completed_by_pushing_again() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    let id = bundle.push(&cluster).await.unwrap();
    cluster.drop_config(&format!("atq-data-{id}-1"));
    let err = bundle_mounts(&cluster, &id).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Incomplete { stored: 2, expected: 3, .. })), "{err:?}");
    assert!(!list_bundles(&cluster).await.unwrap()[0].is_complete());

    let before = cluster.creates.load(Ordering::SeqCst);
    bundle.push(&cluster).await.unwrap();
    assert_eq!(cluster.creates.load(Ordering::SeqCst), before + 1);
    assert_eq!(bundle_mounts(&cluster, &id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_failure_mid_push_removes_what_this_push_created() {
    let cluster = MemCluster::new();
    cluster.fail_create_in(2);
    let err = nested_bundle().push(&cluster).await.unwrap_err();
    assert!(matches!(&err, Error::Engine { message, .. } if message == "injected failure"), "{err:?}");
    assert!(cluster.config_names().is_empty(), "left behind: {:?}", cluster.config_names());
}

#[tokio::test]
async fn a_failure_mid_push_keeps_what_an_earlier_push_stored() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    bundle.push(&cluster).await.unwrap();
    // An earlier push got only as far as file 0.
    cluster.drop_config(&format!("atq-data-{}-1", bundle.id()));
    cluster.drop_config(&format!("atq-data-{}-2", bundle.id()));
    // This push creates file 1, then fails on file 2.
    cluster.fail_create_in(2);
    let err = bundle.push(&cluster).await.unwrap_err();
    assert!(matches!(err, Error::Engine { .. }), "{err:?}");
    assert_eq!(cluster.config_names(), [format!("atq-data-{}-0", bundle.id())]);
}

#[tokio::test]
async fn a_file_too_large_for_this_engine_is_refused_before_anything_is_stored() {
    let mut cluster = MockCluster::new();
    cluster.expect_info().times(1).returning(|| Ok(EngineInfo { max_config_bytes: 10, ..EngineInfo::default() }));
    // No other expectation: any list, create or remove call would panic.
    let err = nested_bundle().push(&cluster).await.unwrap_err();
    assert!(
        matches!(&err, Error::Data(DataError::FileTooLarge { entry, limit: 10, .. }) if entry == "README"),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_bundles_reports_id_files_bytes_and_created_time() {
    let cluster = MemCluster::new();
    let a = nested_bundle();
    let b = read_zip(zip_of(&[("one.csv", b"1,2,3\n")], stored())).unwrap();
    a.push(&cluster).await.unwrap();
    b.push(&cluster).await.unwrap();
    let mut got = list_bundles(&cluster).await.unwrap();
    got.sort_by_key(|x| x.files);
    assert_eq!(
        got,
        [
            BundleInfo {
                id: b.id().to_owned(),
                files: 1,
                expected_files: Some(1),
                bytes: Some(6),
                created_unix: Some(1_700_000_000)
            },
            BundleInfo {
                id: a.id().to_owned(),
                files: 3,
                expected_files: Some(3),
                bytes: Some(a.total_bytes()),
                created_unix: Some(1_700_000_000)
            },
        ]
    );
    assert!(got.iter().all(BundleInfo::is_complete));
}

#[tokio::test]
async fn a_bundle_in_use_is_not_removed() {
    let cluster = MemCluster::new();
    let id = nested_bundle().push(&cluster).await.unwrap();
    cluster.add_service("load_master", &format!("0123456789abcdef,{id}"));
    cluster.add_service("other_worker", "0123456789abcdef");
    let err = remove_bundle(&cluster, &id).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::InUse { services, .. }) if services == &["load_master"]), "{err:?}");
    assert!(err.to_string().contains("load_master"), "{err}");
    assert_eq!(cluster.config_names().len(), 3);
    assert_eq!(cluster.removes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn removing_a_bundle_removes_its_configs_and_then_it_is_not_found() {
    let cluster = MemCluster::new();
    let keep = read_zip(zip_of(&[("keep.csv", b"k")], stored())).unwrap();
    keep.push(&cluster).await.unwrap();
    let id = nested_bundle().push(&cluster).await.unwrap();
    remove_bundle(&cluster, &id).await.unwrap();
    assert_eq!(cluster.config_names(), [format!("atq-data-{}-0", keep.id())]);

    for err in [remove_bundle(&cluster, &id).await.unwrap_err(), bundle_mounts(&cluster, &id).await.unwrap_err()] {
        assert!(matches!(&err, Error::Data(DataError::NotFound { id: missing }) if *missing == id), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Data sources on services

#[tokio::test]
async fn a_service_without_data_gets_no_mounts() {
    let mounts = data_mounts(&MockCluster::new(), &Service::new("busybox")).await.unwrap();
    assert_eq!(mounts, DataMounts::default());
}

#[tokio::test]
async fn host_paths_and_volumes_mount_read_only_at_atq_data() {
    let cluster = MockCluster::new();
    let bind = data_mounts(&cluster, &Service::new("busybox").data_path("/mnt/gluster/plans")).await.unwrap();
    assert_eq!(
        bind.mounts,
        [Mount {
            kind: MountKind::Bind,
            source: "/mnt/gluster/plans".into(),
            target: "/atq/data".into(),
            read_only: true
        }]
    );
    assert!(bind.configs.is_empty() && bind.labels.is_empty());

    let volume = data_mounts(&cluster, &Service::new("busybox").data_volume("big-data")).await.unwrap();
    assert_eq!(volume.mounts[0].kind, MountKind::Volume);
    assert_eq!(volume.mounts[0].source, "big-data");
}

#[tokio::test]
async fn a_bundle_source_gives_config_mounts_and_the_uses_label() {
    let cluster = MemCluster::new();
    let id = nested_bundle().push(&cluster).await.unwrap();
    let mounts = data_mounts(&cluster, &Service::new("busybox").data(&id)).await.unwrap();
    assert_eq!(mounts.configs.len(), 3);
    assert_eq!(mounts.labels[labels::USES_BUNDLES], id);
    let mut spec = ServiceSpec::default();
    mounts.apply_to(&mut spec);
    assert_eq!(spec.configs.len(), 3);
    assert_eq!(spec.labels[labels::USES_BUNDLES], id);

    let err = data_mounts(&cluster, &Service::new("busybox").data("0000000000000000")).await.unwrap_err();
    assert!(matches!(err, Error::Data(DataError::NotFound { .. })), "{err:?}");
}

fn build(workers: Service) -> std::result::Result<Task, crate::ValidationError> {
    Task::builder("load").workers(workers).master(Service::new("busybox")).build()
}

#[test]
fn a_service_names_at_most_one_data_source() {
    let err = build(Service::new("busybox").data("0123456789abcdef").data_volume("plans")).unwrap_err();
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["worker.dataVolume"], "{err}");
    assert!(err.to_string().contains("fileid and dataVolume"), "{err}");
    build(Service::new("busybox").data_path("/srv/data")).unwrap();
    build(Service::new("busybox").data_volume("plans")).unwrap();
}

#[test]
fn host_paths_must_be_plain_absolute_directories_and_volume_names_valid() {
    for bad in ["relative/dir", "/srv/../etc", "/", "/srv/\0x"] {
        let err = build(Service::new("busybox").data_path(bad)).unwrap_err();
        assert_eq!(err.problems[0].field, "worker.dataPath", "{bad}: {err}");
    }
    for bad in ["x", "-x", "has space", "a/b"] {
        let err = build(Service::new("busybox").data_volume(bad)).unwrap_err();
        assert_eq!(err.problems[0].field, "worker.dataVolume", "{bad}: {err}");
    }
}

#[test]
fn task_files_name_data_sources_in_camel_case() {
    let task = Task::from_yaml_str(
        "name: load\nworker:\n  image: busybox\n  dataPath: /mnt/gluster/plans\nmaster:\n  image: busybox\n  dataVolume: results-in\n",
    )
    .unwrap();
    assert_eq!(DataSource::of(task.workers()), Some(DataSource::HostPath("/mnt/gluster/plans".into())));
    assert_eq!(DataSource::of(task.master()), Some(DataSource::Volume("results-in".into())));
}

#[tokio::test]
async fn on_the_fake_cluster_a_deployed_bundle_is_mounted_and_kept_until_its_service_goes() {
    let cluster = crate::FakeCluster::new();
    let id = nested_bundle().push(&cluster).await.unwrap();
    let mut spec =
        ServiceSpec { name: "load_master".into(), image: "busybox".into(), replicas: 1, ..ServiceSpec::default() };
    data_mounts(&cluster, &Service::new("busybox").data(&id)).await.unwrap().apply_to(&mut spec);
    cluster.create_service(&spec).await.unwrap();

    let err = remove_bundle(&cluster, &id).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::InUse { services, .. }) if services == &["load_master"]), "{err:?}");
    cluster.remove_service("load_master").await.unwrap();
    remove_bundle(&cluster, &id).await.unwrap();
    assert!(list_bundles(&cluster).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The central directory is checked before the zip crate parses it

/// Replaces every occurrence of `from` with `to` (same length) in `bytes`.
fn patched(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    let mut hits = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
        i += 1;
    }
    assert!(hits > 0, "nothing to patch");
    bytes
}

/// The offset of the end of central directory record in `bytes`.
fn eocd(bytes: &[u8]) -> usize {
    (0..bytes.len() - 3).rev().find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).unwrap()
}

#[test]
fn duplicate_entry_names_are_refused_naming_the_entry() {
    // The zip writer refuses duplicate names: write two, then rename the second as the first.
    let bytes = zip_of(&[("plan-a.jmx", b"first"), ("plan-b.jmx", b"second")], stored());
    let bytes = patched(bytes, b"plan-b.jmx", b"plan-a.jmx");
    match data_error(read_zip(bytes)) {
        DataError::Clash { entry, rule, .. } => {
            assert_eq!(entry, "plan-a.jmx");
            assert!(rule.contains("two entries of this name"), "{rule}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_entry_count_is_checked_before_the_directory_is_parsed() {
    let bytes = zip_of(&[("a", b"1"), ("b", b"2")], stored());
    // An end record claiming 60,000 entries (the zip crate would try to parse them all).
    let mut claimed = bytes.clone();
    let at = eocd(&claimed);
    claimed[at + 8..at + 12].copy_from_slice(&[0x60, 0xea, 0x60, 0xea]);
    assert!(matches!(data_error(read_zip(claimed)), DataError::TooManyEntries { limit: 1000, .. }));
    // A real archive one entry over the limit.
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let e = data_error(read_zip_with(zip_of(&files, stored()), &Limits::default().max_entries(10)));
    assert!(matches!(e, DataError::TooManyEntries { limit: 10, .. }), "{e:?}");
}

#[test]
fn a_central_directory_larger_than_the_entries_need_is_refused() {
    let bytes = zip_of(&[("a", b"1")], stored());
    let mut big = bytes.clone();
    let at = eocd(&big);
    big[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes()[..]);
    big[at + 16..at + 20].copy_from_slice(&0u32.to_le_bytes()[..]);
    // 0xFFFFFFFF means "see the zip64 record", which is missing: malformed, refused before parsing.
    assert!(data_error(read_zip(big)).to_string().contains("not a valid zip archive"));
    let mut big = bytes;
    let at = eocd(&big);
    big[at + 12..at + 16].copy_from_slice(&50_000_000u32.to_le_bytes()[..]);
    let e = data_error(read_zip_with(big, &Limits::default().max_entries(10)));
    assert!(e.to_string().contains("central directory is 50000000 bytes"), "{e}");
}

#[test]
fn garbage_and_truncated_archives_are_refused_without_a_panic() {
    let good = zip_of(&[("a/b.txt", b"hello"), ("c.txt", b"world")], deflated(6));
    for cut in [0, 1, 21, 22, good.len() / 2, good.len() - 1] {
        let _ = read_zip(good[..cut].to_vec());
        let _ = read_zip(good[cut..].to_vec());
    }
    let mut state = 0x2545_f491_u32;
    for _ in 0..300 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let i = state as usize % bytes.len();
            bytes[i] = (state >> 8) as u8;
        }
        let _ = read_zip(bytes);
    }
}

// Shards in tasks

fn sharded(shards: &[Shard]) -> Service {
    shards.iter().cloned().fold(Service::new("busybox").replicas(4).data("0123456789abcdef"), Service::shard)
}

fn fields(err: &crate::ValidationError) -> Vec<&str> {
    err.problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn workers_shard_files_of_their_bundle() {
    let task = build(sharded(&[Shard::new("users.csv"), Shard::new("data/ids.csv").split(SplitMode::Blocks)])).unwrap();
    let files: Vec<&str> = task.workers().shards.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files, ["users.csv", "data/ids.csv"]);
    // The builder replaces an earlier shard of the same file.
    let again = sharded(&[Shard::new("users.csv"), Shard::new("users.csv").split(SplitMode::Blocks)]);
    assert_eq!(again.shards, [Shard::new("users.csv").split(SplitMode::Blocks)]);
}

#[test]
fn shards_need_a_bundle_and_belong_to_the_workers() {
    let err = build(Service::new("busybox").data_volume("plans").shard(Shard::new("users.csv"))).unwrap_err();
    assert_eq!(fields(&err), ["worker.shards"], "{err}");
    assert!(err.to_string().contains("fileid"), "{err}");

    let err = Task::builder("load")
        .workers(Service::new("busybox"))
        .master(Service::new("busybox").data("0123456789abcdef").shard(Shard::new("users.csv")))
        .build()
        .unwrap_err();
    assert_eq!(fields(&err), ["master.shards"], "{err}");
    assert!(err.to_string().contains("whole file"), "{err}");
}

#[test]
fn shard_files_are_plain_relative_paths_named_once_with_a_usable_delimiter() {
    for bad in ["", "/etc/passwd", "../users.csv", "a//b.csv", "a\\b.csv", "./users.csv"] {
        let err = build(sharded(&[Shard::new(bad)])).unwrap_err();
        assert_eq!(fields(&err), ["worker.shards[0].file"], "{bad:?}: {err}");
    }
    let mut twice = sharded(&[Shard::new("users.csv")]);
    twice.shards.push(Shard::new("users.csv").split(SplitMode::Blocks));
    let err = build(twice).unwrap_err();
    assert_eq!(fields(&err), ["worker.shards[1].file"], "{err}");
    assert!(err.to_string().contains("already sharded by shards[0]"), "{err}");

    let err = build(sharded(&[Shard::new("a.csv"), Shard::new("b.csv").delimiter(b'\n')])).unwrap_err();
    assert_eq!(fields(&err), ["worker.shards[1].delimiter"], "{err}");

    let many: Vec<Shard> = (0..=MAX_SHARDS).map(|i| Shard::new(format!("f{i}.csv"))).collect();
    let err = build(sharded(&many)).unwrap_err();
    assert_eq!(fields(&err), ["worker.shards"], "{err}");
}

#[test]
fn task_files_declare_shards_with_their_options_and_lines() {
    let task = Task::from_yaml_str(
        "name: load\nworker:\n  image: busybox\n  replicas: 4\n  fileid: 0123456789abcdef\n  shards:\n    - file: users.csv\n    - file: ids.tsv\n      split: blocks\n      header: false\n      delimiter: \"\\t\"\nmaster:\n  image: busybox\n",
    )
    .unwrap();
    assert_eq!(
        task.workers().shards,
        [Shard::new("users.csv"), Shard::new("ids.tsv").split(SplitMode::Blocks).header(false).delimiter(b'\t')]
    );
    let err = Task::from_yaml_str(
        "name: load\nworker:\n  image: busybox\n  fileid: 0123456789abcdef\n  shards:\n    - file: users.csv\n    - file: ../x.csv\nmaster:\n  image: busybox\n",
    )
    .unwrap_err();
    assert_eq!(fields(&err), ["worker.shards[1].file"], "{err}");
    assert_eq!(err.problems[0].line, Some(7), "{err}");
    let err = Task::from_yaml_str(
        "name: load\nworker:\n  image: busybox\n  fileid: 0123456789abcdef\n  shards:\n    - file: users.csv\n      split: stripes\nmaster:\n  image: busybox\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("round-robin"), "{err}");
    assert_eq!(err.problems[0].line, Some(7), "{err}");
}

#[test]
fn atq_sets_the_worker_index_variables_itself() {
    for key in ["ATQ_WORKER_INDEX", "ATQ_WORKER_COUNT", "ATQ_WORKER_INDEXES"] {
        let err = build(Service::new("busybox").env(key, "1")).unwrap_err();
        assert_eq!(fields(&err), [format!("worker.environment.{key}").as_str()], "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Content verified before configs under an id are reused

/// The configs another bundle of the same id would have: `bundle`'s names and labels, with
/// `edit` applied to the labels of config `index`.
fn forged(bundle: &DataBundle, index: usize, edit: impl Fn(&mut BTreeMap<String, String>)) -> ConfigSpec {
    let (path, _) = bundle.files().iter().nth(index).unwrap();
    let mut labels = bundle.config_labels(path);
    edit(&mut labels);
    ConfigSpec {
        name: format!("atq-data-{}-{index}", bundle.id()),
        data: b"someone else's".to_vec(),
        labels,
        ..ConfigSpec::default()
    }
}

#[tokio::test]
async fn a_push_refuses_configs_of_its_id_that_hold_another_digest_and_stores_nothing() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    cluster.store(forged(&bundle, 1, |l| {
        l.insert(labels::BUNDLE_DIGEST.into(), "f".repeat(64));
    }));
    let err = bundle.push(&cluster).await.unwrap_err();
    match &err {
        Error::Data(DataError::Mismatch { id, config, reason }) => {
            assert_eq!(id, bundle.id());
            assert_eq!(*config, format!("atq-data-{}-1", bundle.id()));
            assert!(reason.contains(&"f".repeat(64)) && reason.contains(bundle.digest()), "{reason}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("atq data rm"), "{err}");
    assert_eq!(cluster.creates.load(Ordering::SeqCst), 0, "nothing created");
}

#[tokio::test]
async fn a_push_refuses_configs_without_a_digest_or_with_another_path_or_mode() {
    let bundle = nested_bundle();
    type Edit = fn(&mut BTreeMap<String, String>);
    let edits: [(&str, Edit); 3] = [
        ("no content digest", |l| {
            l.remove(labels::BUNDLE_DIGEST);
        }),
        ("does not hold", |l| {
            l.insert(labels::BUNDLE_PATH.into(), "elsewhere.txt".into());
        }),
        ("mode", |l| {
            l.insert(labels::BUNDLE_MODE.into(), "0555".into());
        }),
    ];
    for (words, edit) in edits {
        let cluster = MemCluster::new();
        cluster.store(forged(&bundle, 0, edit));
        let err = bundle.push(&cluster).await.unwrap_err();
        assert!(
            matches!(&err, Error::Data(DataError::Mismatch { reason, .. }) if reason.contains(words)),
            "{words}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_different_bundle_of_the_same_id_racing_a_push_is_detected_and_this_push_undone() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    // While this push creates file 0, another one stores its own file 2 under the same id.
    *cluster.racing.lock().unwrap() = Some(forged(&bundle, 2, |l| {
        l.insert(labels::BUNDLE_DIGEST.into(), "0".repeat(64));
    }));
    let err = bundle.push(&cluster).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Mismatch { config, .. }) if config.ends_with("-2")), "{err:?}");
    assert_eq!(cluster.config_names(), [format!("atq-data-{}-2", bundle.id())], "only the other push's config is left");
}

#[tokio::test]
async fn the_same_bundle_racing_a_push_is_fine() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    *cluster.racing.lock().unwrap() = Some(forged(&bundle, 1, |_| {}));
    assert_eq!(bundle.push(&cluster).await.unwrap(), bundle.id());
    assert_eq!(cluster.config_names().len(), 3);
    assert_eq!(bundle_mounts(&cluster, bundle.id()).await.unwrap().len(), 3);
}

#[tokio::test]
async fn every_config_carries_the_digest_and_mode_and_mounts_get_the_mode() {
    let cluster = MemCluster::new();
    let files: &[(&str, &[u8])] = &[("run.sh", b"#!/bin/sh\necho hi\n"), ("plan.jmx", b"<plan/>")];
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
        zip.start_file(*name, stored().unix_permissions(mode)).unwrap();
        zip.write_all(content).unwrap();
    }
    let bundle = read_zip(zip.finish().unwrap().into_inner()).unwrap();
    assert!(bundle.is_executable("run.sh") && !bundle.is_executable("plan.jmx"));
    assert_eq!(bundle.digest().len(), 64);
    assert!(bundle.digest().starts_with(bundle.id()));
    let id = bundle.push(&cluster).await.unwrap();
    for name in cluster.config_names() {
        let config = cluster.config(&name);
        assert_eq!(config.labels[labels::BUNDLE_DIGEST], bundle.digest());
        let want = if config.labels[labels::BUNDLE_PATH] == "run.sh" { "0555" } else { "0444" };
        assert_eq!(config.labels[labels::BUNDLE_MODE], want, "{name}");
    }
    let modes: Vec<(String, u32)> =
        bundle_mounts(&cluster, &id).await.unwrap().into_iter().map(|m| (m.target, m.mode)).collect();
    assert_eq!(
        modes,
        [
            ("/atq/data/plan.jmx".to_owned(), ConfigMount::READ_ONLY),
            ("/atq/data/run.sh".to_owned(), ConfigMount::EXECUTABLE)
        ]
    );
}

#[tokio::test]
async fn configs_of_one_id_with_two_digests_are_not_mounted() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    bundle.push(&cluster).await.unwrap();
    cluster.drop_config(&format!("atq-data-{}-1", bundle.id()));
    cluster.store(forged(&bundle, 1, |l| {
        l.insert(labels::BUNDLE_DIGEST.into(), "e".repeat(64));
    }));
    let err = bundle_mounts(&cluster, bundle.id()).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Mismatch { .. })), "{err:?}");
}

#[tokio::test]
async fn a_stored_mode_other_than_0444_or_0555_is_refused() {
    let cluster = MemCluster::new();
    let bundle = nested_bundle();
    cluster.store(forged(&bundle, 0, |l| {
        l.insert(labels::BUNDLE_MODE.into(), "4755".into());
    }));
    let err = bundle_mounts(&cluster, bundle.id()).await.unwrap_err();
    assert!(matches!(&err, Error::Data(DataError::Mismatch { reason, .. }) if reason.contains("4755")), "{err:?}");
}

/// A tar archive of `entries`: (path, type, content or link target).
fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_size(0);
            // Raw bytes: the builder's checked setters refuse `..`, which is the point here.
            header.as_old_mut().linkname[..content.len()].copy_from_slice(content.as_bytes());
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
        } else {
            header.set_size(content.len() as u64);
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, content.as_bytes()).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

#[test]
fn a_tar_archive_reads_like_a_zip_of_the_same_files() {
    let tar = tar_of(&[
        ("./", tar::EntryType::Directory, ""),
        ("./plans/", tar::EntryType::Directory, ""),
        ("./plans/plan.jmx", tar::EntryType::Regular, "<plan/>"),
        ("users.csv", tar::EntryType::Regular, "id\n1\n"),
    ]);
    assert!(is_tar(&tar) && !is_zip(&tar));
    let bundle = DataBundle::from_archive_bytes(&tar, "t.tar", &Limits::default()).unwrap();
    let names: Vec<&str> = bundle.files().keys().map(String::as_str).collect();
    assert_eq!(names, ["plans/plan.jmx", "users.csv"]);
    assert_eq!(bundle.files()["users.csv"], b"id\n1\n");
}

#[test]
fn a_tar_archive_with_an_escape_a_link_or_a_device_is_refused() {
    for entries in [
        vec![("../evil", tar::EntryType::Regular, "x")],
        vec![("/etc/evil", tar::EntryType::Regular, "x")],
        vec![("link", tar::EntryType::Symlink, "/var/run/docker.sock")],
        vec![("hard", tar::EntryType::Link, "../outside")],
        vec![("dev", tar::EntryType::Char, "")],
    ] {
        let tar = tar_of(&entries);
        let refused = DataBundle::from_archive_bytes(&tar, "t.tar", &Limits::default());
        assert!(matches!(refused, Err(Error::Data(_))), "{entries:?} accepted: {refused:?}");
    }
    let not_an_archive = DataBundle::from_archive_bytes(b"hello", "t", &Limits::default());
    assert!(matches!(not_an_archive, Err(Error::Data(DataError::Archive { .. }))));
}

#[test]
fn a_tar_archive_past_the_limits_is_refused_by_the_bytes_read() {
    let big = "x".repeat(4096);
    let tar = tar_of(&[("a", tar::EntryType::Regular, &big), ("b", tar::EntryType::Regular, &big)]);
    let limits = Limits::default().max_total_bytes(6000);
    assert!(DataBundle::from_archive_bytes(&tar, "t.tar", &limits).is_err());
    let limits = Limits::default().max_entries(1);
    assert!(DataBundle::from_archive_bytes(&tar, "t.tar", &limits).is_err());
}
