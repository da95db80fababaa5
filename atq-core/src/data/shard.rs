//! Sharded data: a CSV file of a bundle split across the workers, each worker seeing only its
//! own slice at the file's usual path.
//!
//! A [`Shard`] names a file of the workers' bundle and how to split it ([`SplitMode`]);
//! [`split_csv`] cuts the file into one slice per worker. The splitter
//! - keeps the header (everything before the first data row) at the top of every slice, so a
//!   JMeter CSV Data Set or a `csv.DictReader` reads each slice like the whole file;
//! - finds record boundaries with the `csv` crate, so a quoted field with embedded newlines
//!   (`"line 1\nline 2"`) stays in one record, and copies each record's *original bytes*: CRLF
//!   or LF endings, quoting, a byte-order mark, bytes that are not UTF-8 all come through as
//!   they were. Every row lands in exactly one slice: the header plus the slices' rows are the
//!   file's bytes, each once;
//! - gives every worker a share that differs from the others' by at most one row, in either
//!   mode; with fewer rows than workers, workers `1..=rows` get one row each and the rest only
//!   the header;
//! - reads the file twice (count, then cut) and holds only the file and the slices: memory and
//!   time grow with the file's size plus the number of workers, never with their product.
//!
//! Workers are numbered as `ATQ_WORKER_INDEX` numbers them: from 1 to the worker count.
//!
//! ```
//! use atq_core::data::{split_csv, Shard, SplitMode};
//!
//! let file = b"user,password\nann,1\nbob,2\ncid,3\n";
//! let slices = split_csv(file, 2, &Shard::new("users.csv"))?;
//! assert_eq!(slices.slice(1), b"user,password\nann,1\ncid,3\n");
//! assert_eq!(slices.slice(2), b"user,password\nbob,2\n");
//!
//! let blocks = split_csv(file, 2, &Shard::new("users.csv").split(SplitMode::Blocks))?;
//! assert_eq!(blocks.slice(1), b"user,password\nann,1\nbob,2\n");
//! assert_eq!(blocks.rows_per_worker(), [2, 1]);
//! # Ok::<(), atq_core::data::DataError>(())
//! ```

use super::{DataBundle, DataError, DataMounts, DATA_DIR};
use crate::cluster::Cluster;
use crate::error::Result;
use crate::service::Service;
use crate::service::MAX_WORKERS;
pub use crate::service::{Shard, SplitMode};

/// Most files one service may shard: each becomes one per-replica config on the engine.
pub const MAX_SHARDS: usize = 16;

/// A file cut into one slice per worker, by [`split_csv`].
///
/// Worker `i` (from 1, as `ATQ_WORKER_INDEX`) sees [`header`](Self::header) followed by
/// [`rows`](Self::rows)`(i)`; [`slice`](Self::slice) joins the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slices {
    /// Everything before the first data row: the header record (when the shard has one), with
    /// any blank lines before it.
    header: Vec<u8>,
    /// Each worker's rows, original bytes, in file order; index 0 is worker 1.
    rows: Vec<Vec<u8>>,
    /// Each worker's number of rows; index 0 is worker 1.
    counts: Vec<usize>,
}

impl Slices {
    /// The bytes every slice starts with: the header record (when there is one).
    #[must_use]
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The rows of worker `index` (1-based), without the header; empty for an index out of range.
    #[must_use]
    pub fn rows(&self, index: u32) -> &[u8] {
        index.checked_sub(1).and_then(|i| self.rows.get(i as usize)).map_or(&[], Vec::as_slice)
    }

    /// What worker `index` (1-based) sees: the header, then its rows.
    #[must_use]
    pub fn slice(&self, index: u32) -> Vec<u8> {
        let rows = self.rows(index);
        let mut out = Vec::with_capacity(self.header.len() + rows.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(rows);
        out
    }

    /// The number of workers the file was split for.
    #[must_use]
    pub fn workers(&self) -> u32 {
        u32::try_from(self.rows.len()).unwrap_or(u32::MAX)
    }

    /// Each worker's number of data rows, worker 1 first.
    #[must_use]
    pub fn rows_per_worker(&self) -> &[usize] {
        &self.counts
    }

    /// Data rows in all (the header not counted).
    #[must_use]
    pub fn total_rows(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The header and each worker's rows (worker 1 first), for a backend to store.
    #[must_use]
    pub fn into_parts(self) -> (Vec<u8>, Vec<Vec<u8>>) {
        (self.header, self.rows)
    }
}

/// Splits the CSV `data` into `workers` slices as `shard` says (see the [module docs](self)).
///
/// # Errors
/// [`DataError::Shard`] when `workers` is 0 or above [`MAX_WORKERS`], or the delimiter is not
/// one ASCII character that can delimit fields.
pub fn split_csv(data: &[u8], workers: u32, shard: &Shard) -> Result<Slices, DataError> {
    let fail = |message: String| DataError::Shard { file: shard.file.clone(), message };
    if workers == 0 || workers > MAX_WORKERS {
        return Err(fail(format!("cannot split for {workers} workers: give 1 to {MAX_WORKERS}")));
    }
    let delimiter = shard.delimiter_byte().map_err(fail)?;
    let records = || Records::new(data, delimiter);
    let mut bodies = records();
    // The header: everything before the first data row.
    let header_end =
        if shard.header { bodies.nth(1).map_or(data.len(), |r| r.start) } else { first_start(data, delimiter) };
    let total = records().filter(|r| r.start >= header_end).count();
    let n = workers as usize;
    let mut rows: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut counts = vec![0usize; n];
    let (per, extra) = (total / n, total % n);
    // Blocks: worker w (from 0) gets `per` rows, one more for the first `extra` workers.
    let block = |w: usize| per + usize::from(w < extra);
    let mut worker = 0;
    for (k, range) in records().filter(|r| r.start >= header_end).enumerate() {
        let w = match shard.split {
            SplitMode::RoundRobin => k % n,
            SplitMode::Blocks => {
                while counts[worker] >= block(worker) {
                    worker += 1;
                }
                worker
            }
        };
        rows[w].extend_from_slice(&data[range]);
        counts[w] += 1;
    }
    Ok(Slices { header: data[..header_end].to_vec(), rows, counts })
}

/// The files a service's workers get slices of: the service's own `shards`, then the bundle's
/// marks ([`DataBundle::with_shard`]) for files the service does not shard itself.
#[must_use]
pub fn effective_shards<'a>(service: &'a Service, marks: &'a [Shard]) -> Vec<&'a Shard> {
    let mut out: Vec<&Shard> = service.shards.iter().collect();
    out.extend(marks.iter().filter(|m| service.shards.iter().all(|s| s.file != m.file)));
    out
}

/// One sharded file of a service, split for its replicas: what a per-replica config holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedFile {
    /// The shard as the task declared it.
    pub shard: Shard,
    /// Where every replica reads its slice: `/atq/data/<file>`.
    pub target: String,
    /// The slices.
    pub slices: Slices,
}

/// Splits each file a service shards, reading it back from the engine: the
/// [`Director`](crate::Director) calls it at deploy time with the service's bundle mounts (from
/// [`data_mounts`](super::data_mounts)), then stores each result as a per-replica config mounted
/// at [`ShardedFile::target`] in place of the whole file.
///
/// # Errors
/// [`DataError::Shard`] when a sharded file is not in the service's bundle; the engine's error
/// when reading a file back fails.
pub async fn split_service_shards(
    cluster: &dyn Cluster,
    service: &Service,
    mounts: &DataMounts,
) -> Result<Vec<ShardedFile>> {
    let shards = effective_shards(service, &mounts.shards);
    let mut out = Vec::with_capacity(shards.len());
    for shard in shards {
        let target = format!("{DATA_DIR}/{}", shard.file);
        let Some(bundle) = service.fileid.as_deref() else {
            return Err(DataError::Shard {
                file: shard.file.clone(),
                message: "the workers mount no data bundle: name one with worker.fileid (or `atq run --data PATH`)"
                    .into(),
            }
            .into());
        };
        let Some(mount) = mounts.configs.iter().find(|c| c.target == target) else {
            let files = mounts
                .configs
                .iter()
                .filter_map(|c| c.target.strip_prefix(DATA_DIR))
                .map(|t| t.trim_start_matches('/'));
            return Err(not_in_bundle(&shard.file, bundle, files).into());
        };
        let data = cluster.read_config(&mount.config_id).await?;
        let slices = split_csv(&data, service.replicas, shard)?;
        out.push(ShardedFile { shard: shard.clone(), target, slices });
    }
    Ok(out)
}

/// Splits each file a service shards from a bundle read locally (what `atq validate --data`
/// reports): the same slices a deploy would make, without an engine.
///
/// # Errors
/// [`DataError::Shard`] when a sharded file is not in `bundle`.
pub fn split_bundle_shards(service: &Service, bundle: &DataBundle) -> Result<Vec<ShardedFile>> {
    let marks: Vec<Shard> = bundle.shards().cloned().collect();
    let shards = effective_shards(service, &marks);
    let mut out = Vec::with_capacity(shards.len());
    for shard in shards {
        let Some(data) = bundle.files().get(&shard.file) else {
            return Err(not_in_bundle(&shard.file, bundle.id(), bundle.files().keys().map(String::as_str)).into());
        };
        let slices = split_csv(data, service.replicas, shard)?;
        out.push(ShardedFile { shard: shard.clone(), target: format!("{DATA_DIR}/{}", shard.file), slices });
    }
    Ok(out)
}

/// The error for a sharded `file` that bundle `id` does not have, naming some of its `files`.
pub(crate) fn not_in_bundle<'a>(file: &str, id: &str, files: impl Iterator<Item = &'a str>) -> DataError {
    let some: Vec<&str> = files.take(10).collect();
    DataError::Shard {
        file: file.to_owned(),
        message: format!(
            "bundle {id} has no such file (its files include: {}): give the file's path inside the bundle",
            some.join(", ")
        ),
    }
}

/// Where the first record starts (after any blank lines), or the end of `data` if it has none.
fn first_start(data: &[u8], delimiter: u8) -> usize {
    Records::new(data, delimiter).next().map_or(data.len(), |r| r.start)
}

/// The byte ranges of the records of a CSV text, in order. Each range runs from where its
/// record starts to where the next one starts (so it holds its line terminator and any blank
/// lines after it); the last runs to the end. Bytes before the first record belong to none.
struct Records<'a> {
    data: &'a [u8],
    reader: csv::Reader<&'a [u8]>,
    record: csv::ByteRecord,
    /// Start of the record read ahead, if any.
    next: Option<usize>,
    len: usize,
}

impl<'a> Records<'a> {
    fn new(data: &'a [u8], delimiter: u8) -> Self {
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(data);
        let mut records = Records { data, reader, record: csv::ByteRecord::new(), next: None, len: data.len() };
        records.next = records.read_start();
        records
    }

    /// Reads one record and returns where it started.
    ///
    /// The reader may report a position on the line terminator before the record (the `\n` of
    /// a `\r\n`, or blank lines it skipped): a record never starts with `\r` or `\n` (an empty
    /// first field starts with the delimiter or a quote), so those bytes are stepped over and
    /// stay with the record before.
    fn read_start(&mut self) -> Option<usize> {
        // Reading from a byte slice cannot fail with I/O, and flexible byte records accept
        // any field count and any bytes: the reader's only errors here would be bugs.
        let reported = match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => self.record.position().map(|p| usize::try_from(p.byte()).unwrap_or(self.len))?,
            Ok(false) | Err(_) => return None,
        };
        let skip = self.data.get(reported..)?.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        Some(reported + skip)
    }
}

impl Iterator for Records<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        self.next = self.read_start();
        Some(start..self.next.unwrap_or(self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr() -> Shard {
        Shard::new("users.csv")
    }

    fn blocks() -> Shard {
        Shard::new("users.csv").split(SplitMode::Blocks)
    }

    /// A file of `n` rows `rK,valueK` under a header, with `\n` or `\r\n` endings.
    fn rows_file(n: usize, crlf: bool) -> Vec<u8> {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut s = format!("id,value{eol}");
        for k in 1..=n {
            s.push_str(&format!("r{k},value{k}{eol}"));
        }
        s.into_bytes()
    }

    /// The records of a slice body (split on the known row shape `rK,…`).
    fn lines(b: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(b).lines().map(str::to_owned).collect()
    }

    /// The header plus every worker's rows, re-sorted into file order, give back the file byte
    /// for byte, each row once.
    fn assert_union_is_the_file(file: &[u8], slices: &Slices) {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for w in 1..=slices.workers() {
            let body = slices.rows(w);
            let mut recs: Vec<Vec<u8>> = Records::new(body, b',').map(|r| body[r].to_vec()).collect();
            assert_eq!(recs.len(), slices.rows_per_worker()[(w - 1) as usize], "worker {w}");
            all.append(&mut recs);
        }
        let original: Vec<Vec<u8>> =
            Records::new(file, b',').filter(|r| r.start >= slices.header().len()).map(|r| file[r].to_vec()).collect();
        let mut sorted = all.clone();
        sorted.sort();
        let mut expected = original.clone();
        expected.sort();
        assert_eq!(sorted, expected, "the slices hold every row exactly once");
        let mut joined = slices.header().to_vec();
        for row in original {
            joined.extend_from_slice(&row);
        }
        assert_eq!(joined, file, "header plus rows are the file's bytes");
    }

    #[test]
    fn every_slice_starts_with_the_header() {
        let file = rows_file(10, false);
        let slices = split_csv(&file, 3, &rr()).unwrap();
        for w in 1..=3 {
            assert!(slices.slice(w).starts_with(b"id,value\n"), "worker {w}");
        }
        assert_eq!(slices.header(), b"id,value\n");
    }

    #[test]
    fn round_robin_deals_rows_in_turn() {
        let slices = split_csv(&rows_file(7, false), 3, &rr()).unwrap();
        assert_eq!(lines(slices.rows(1)), ["r1,value1", "r4,value4", "r7,value7"]);
        assert_eq!(lines(slices.rows(2)), ["r2,value2", "r5,value5"]);
        assert_eq!(lines(slices.rows(3)), ["r3,value3", "r6,value6"]);
        assert_eq!(slices.rows_per_worker(), [3, 2, 2]);
    }

    #[test]
    fn blocks_are_contiguous_and_differ_by_at_most_one_row() {
        let slices = split_csv(&rows_file(7, false), 3, &blocks()).unwrap();
        assert_eq!(lines(slices.rows(1)), ["r1,value1", "r2,value2", "r3,value3"]);
        assert_eq!(lines(slices.rows(2)), ["r4,value4", "r5,value5"]);
        assert_eq!(lines(slices.rows(3)), ["r6,value6", "r7,value7"]);
        assert_eq!(slices.rows_per_worker(), [3, 2, 2]);
    }

    #[test]
    fn both_modes_keep_every_row_once() {
        for n in [0, 1, 2, 3, 7, 100, 101] {
            for workers in [1, 2, 3, 4, 7, 64] {
                let file = rows_file(n, n % 2 == 1);
                for shard in [rr(), blocks()] {
                    let slices = split_csv(&file, workers, &shard).unwrap();
                    assert_eq!(slices.workers(), workers);
                    assert_eq!(slices.total_rows(), n, "{n} rows, {workers} workers, {:?}", shard.split);
                    let (min, max) = (
                        slices.rows_per_worker().iter().min().unwrap(),
                        slices.rows_per_worker().iter().max().unwrap(),
                    );
                    assert!(max - min <= 1, "{n} rows, {workers} workers: shares {min}..{max}");
                    assert_union_is_the_file(&file, &slices);
                }
            }
        }
    }

    #[test]
    fn quoted_fields_with_newlines_stay_whole() {
        let file = b"id,note\n1,\"line one\nline two\"\n2,plain\n3,\"a \"\"quote\"\" and\r\na CRLF\"\n4,x\n";
        let slices = split_csv(file, 2, &rr()).unwrap();
        assert_eq!(slices.rows(1), b"1,\"line one\nline two\"\n3,\"a \"\"quote\"\" and\r\na CRLF\"\n");
        assert_eq!(slices.rows(2), b"2,plain\n4,x\n");
        assert_union_is_the_file(file, &slices);
    }

    #[test]
    fn crlf_endings_and_odd_bytes_are_kept_as_they_were() {
        let file = b"\xef\xbb\xbfid,name\r\n1,Jos\xe9\r\n2,\x00nul\r\n3,last-without-newline";
        let slices = split_csv(file, 2, &blocks()).unwrap();
        assert_eq!(slices.header(), b"\xef\xbb\xbfid,name\r\n");
        assert_eq!(slices.rows(1), b"1,Jos\xe9\r\n2,\x00nul\r\n");
        assert_eq!(slices.rows(2), b"3,last-without-newline");
    }

    #[test]
    fn an_empty_file_gives_empty_slices() {
        for shard in [rr(), blocks(), rr().header(false)] {
            let slices = split_csv(b"", 3, &shard).unwrap();
            assert_eq!(slices.workers(), 3);
            assert!((1..=3).all(|w| slices.slice(w).is_empty()));
            assert_eq!(slices.total_rows(), 0);
        }
    }

    #[test]
    fn a_header_only_file_gives_the_header_to_everyone() {
        let slices = split_csv(b"id,value\n", 4, &rr()).unwrap();
        assert!((1..=4).all(|w| slices.slice(w) == b"id,value\n"));
        assert_eq!(slices.rows_per_worker(), [0, 0, 0, 0]);
    }

    #[test]
    fn with_fewer_rows_than_workers_the_first_workers_get_one_each() {
        for shard in [rr(), blocks()] {
            let slices = split_csv(&rows_file(2, false), 5, &shard).unwrap();
            assert_eq!(slices.rows_per_worker(), [1, 1, 0, 0, 0]);
            assert_eq!(lines(&slices.slice(2)), ["id,value", "r2,value2"]);
            assert_eq!(slices.slice(5), b"id,value\n");
        }
    }

    #[test]
    fn without_a_header_every_record_is_a_row() {
        let slices = split_csv(b"a,1\nb,2\nc,3\n", 2, &rr().header(false)).unwrap();
        assert_eq!(slices.header(), b"");
        assert_eq!(slices.slice(1), b"a,1\nc,3\n");
        assert_eq!(slices.slice(2), b"b,2\n");
    }

    #[test]
    fn blank_lines_stay_with_the_record_before_them() {
        let file = b"\nid\n\n1\n2\n\n\n3\n";
        let slices = split_csv(file, 2, &blocks()).unwrap();
        assert_eq!(slices.header(), b"\nid\n\n");
        assert_eq!(slices.rows(1), b"1\n2\n\n\n");
        assert_eq!(slices.rows(2), b"3\n");
        assert_eq!(slices.total_rows(), 3);
    }

    #[test]
    fn the_delimiter_decides_where_a_quoted_field_starts() {
        // With ';' the quote opens a field holding a newline; with ',' it would not.
        let file = b"id;note\n1;\"two\nlines\"\n2;x\n";
        let slices = split_csv(file, 2, &rr().delimiter(b';')).unwrap();
        assert_eq!(slices.rows(1), b"1;\"two\nlines\"\n");
        assert_eq!(slices.rows(2), b"2;x\n");
        let comma = split_csv(file, 2, &rr()).unwrap();
        assert_eq!(comma.total_rows(), 3, "on commas the quote is literal and the newline ends a record");
    }

    #[test]
    fn ten_thousand_workers_each_get_their_rows() {
        let file = rows_file(25_000, false);
        for shard in [rr(), blocks()] {
            let slices = split_csv(&file, MAX_WORKERS, &shard).unwrap();
            assert_eq!(slices.workers(), MAX_WORKERS);
            assert!(slices.rows_per_worker().iter().all(|&c| c == 2 || c == 3));
            assert_eq!(slices.rows_per_worker().iter().filter(|&&c| c == 3).count(), 5_000);
            assert_union_is_the_file(&file, &slices);
        }
        let slices = split_csv(&file, MAX_WORKERS, &rr()).unwrap();
        assert_eq!(lines(slices.rows(MAX_WORKERS)), ["r10000,value10000", "r20000,value20000"]);
        let slices = split_csv(&file, MAX_WORKERS, &blocks()).unwrap();
        assert_eq!(lines(slices.rows(MAX_WORKERS)), ["r24999,value24999", "r25000,value25000"]);
    }

    #[test]
    fn out_of_range_worker_counts_and_bad_delimiters_are_refused() {
        let message = |r: Result<Slices, DataError>| r.unwrap_err().to_string();
        assert!(message(split_csv(b"a\n", 0, &rr())).contains("users.csv"));
        assert!(message(split_csv(b"a\n", MAX_WORKERS + 1, &rr())).contains("1 to 10000"));
        assert!(message(split_csv(b"a\n", 2, &rr().delimiter(b'"'))).contains("cannot be a delimiter"));
        let mut shard = rr();
        shard.delimiter = 'é';
        assert!(message(split_csv(b"a\n", 2, &shard)).contains("not an ASCII character"));
    }

    #[test]
    fn an_index_out_of_range_sees_only_the_header() {
        let slices = split_csv(&rows_file(3, false), 2, &rr()).unwrap();
        assert_eq!(slices.rows(0), b"");
        assert_eq!(slices.slice(3), b"id,value\n");
    }

    #[test]
    fn split_modes_read_and_print_their_task_file_names() {
        for mode in [SplitMode::RoundRobin, SplitMode::Blocks] {
            assert_eq!(mode.as_str().parse::<SplitMode>(), Ok(mode));
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{mode}\""));
        }
        assert!("stripes".parse::<SplitMode>().unwrap_err().contains("round-robin or blocks"));
    }
}
