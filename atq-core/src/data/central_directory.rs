//! A zip's central directory, read *before* the zip crate parses it: the entry count and the
//! directory's size are checked against the [`Limits`] first (a 132 MB archive of 2.5 M entries
//! would otherwise be parsed in full, ~531 MB, before its count is refused), and every entry name
//! must be unique (the zip crate keys entries by name and keeps the last of a duplicate).
//!
//! Only the fixed-size records the format defines are read (APPNOTE 4.3.12, 4.3.14–16): the end
//! of central directory record, its zip64 locator and record, and each central header's three
//! length fields and name. Everything else is left to the zip crate.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

use super::{Limits, MAX_PATH_BYTES};

/// What the checks found wrong; the caller turns it into a `DataError` naming the archive.
#[derive(Debug)]
pub(super) enum Refusal {
    /// More entries than the limit.
    TooManyEntries,
    /// A central directory larger than `limit` bytes (`size`).
    DirectoryTooLarge { size: u64, limit: u64 },
    /// Two entries of the same name.
    Duplicate(String),
    /// The records are not where or what they should be.
    Malformed(&'static str),
    /// The reader failed.
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Self {
        Refusal::Io(e)
    }
}

const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const EOCD_LEN: u64 = 22;
const CENTRAL_HEADER_LEN: usize = 46;
/// Room per entry in the central directory: its header, a name of the longest allowed path, and
/// up to 2 KiB of extra fields and comment (real archives use well under 100 bytes).
const DIRECTORY_BYTES_PER_ENTRY: u64 = CENTRAL_HEADER_LEN as u64 + MAX_PATH_BYTES as u64 + 2048;

/// Checks the central directory of the archive in `reader` (which is left at its start).
pub(super) fn check<R: Read + Seek>(reader: &mut R, limits: &Limits) -> Result<(), Refusal> {
    let (entries, size, offset, end) = locate(reader)?;
    let max_entries = u64::try_from(limits.max_entries).unwrap_or(u64::MAX);
    if entries > max_entries {
        return Err(Refusal::TooManyEntries);
    }
    let limit = max_entries.saturating_mul(DIRECTORY_BYTES_PER_ENTRY);
    if size > limit {
        return Err(Refusal::DirectoryTooLarge { size, limit });
    }
    if offset.checked_add(size).is_none_or(|directory_end| directory_end > end) {
        return Err(Refusal::Malformed("the central directory lies outside the archive"));
    }
    reader.seek(SeekFrom::Start(offset))?;
    let mut directory = Vec::new();
    reader.by_ref().take(size).read_to_end(&mut directory)?;
    if directory.len() as u64 != size {
        return Err(Refusal::Malformed("the central directory ends before its declared size"));
    }
    let mut names = HashSet::new();
    let mut at = 0usize;
    let mut seen = 0u64;
    while at < directory.len() {
        let header =
            directory.get(at..at + CENTRAL_HEADER_LEN).ok_or(Refusal::Malformed("a truncated central header"))?;
        if u32_at(header, 0) != CENTRAL_HEADER_SIGNATURE {
            return Err(Refusal::Malformed("a central header without its signature"));
        }
        let (name_len, extra_len, comment_len) =
            (usize::from(u16_at(header, 28)), usize::from(u16_at(header, 30)), usize::from(u16_at(header, 32)));
        let name_start = at + CENTRAL_HEADER_LEN;
        let name =
            directory.get(name_start..name_start + name_len).ok_or(Refusal::Malformed("a truncated entry name"))?;
        seen += 1;
        if seen > max_entries {
            return Err(Refusal::TooManyEntries);
        }
        if !names.insert(name) {
            return Err(Refusal::Duplicate(String::from_utf8_lossy(name).into_owned()));
        }
        at = name_start + name_len + extra_len + comment_len;
    }
    if seen != entries {
        return Err(Refusal::Malformed("the entry count does not match the central directory"));
    }
    reader.rewind()?;
    Ok(())
}

/// `(entries, directory size, directory offset, end record offset)` from the end records.
fn locate<R: Read + Seek>(reader: &mut R) -> Result<(u64, u64, u64, u64), Refusal> {
    let len = reader.seek(SeekFrom::End(0))?;
    if len < EOCD_LEN {
        return Err(Refusal::Malformed("too short to be a zip archive"));
    }
    // The end record is the last 22 bytes, followed by a comment of at most 65,535 bytes.
    let tail_len = len.min(EOCD_LEN + u64::from(u16::MAX));
    reader.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    reader.by_ref().take(tail_len).read_to_end(&mut tail)?;
    let eocd_at = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD_SIGNATURE)
        .ok_or(Refusal::Malformed("no end of central directory record"))?;
    let eocd = &tail[eocd_at..];
    let mut entries = u64::from(u16_at(eocd, 10));
    let mut size = u64::from(u32_at(eocd, 12));
    let mut offset = u64::from(u32_at(eocd, 16));
    let eocd_pos = len - tail_len + eocd_at as u64;
    if entries == u64::from(u16::MAX) || size == u64::from(u32::MAX) || offset == u64::from(u32::MAX) {
        // Zip64: a 20-byte locator right before the end record points at the zip64 record.
        let locator_pos = eocd_pos.checked_sub(20).ok_or(Refusal::Malformed("no zip64 locator"))?;
        let locator = read_at(reader, locator_pos, 20)?;
        if u32_at(&locator, 0) != ZIP64_LOCATOR_SIGNATURE {
            return Err(Refusal::Malformed("no zip64 locator"));
        }
        let record = read_at(reader, u64_at(&locator, 8), 56)?;
        if u32_at(&record, 0) != ZIP64_EOCD_SIGNATURE {
            return Err(Refusal::Malformed("no zip64 end of central directory record"));
        }
        entries = u64_at(&record, 32);
        size = u64_at(&record, 40);
        offset = u64_at(&record, 48);
    }
    Ok((entries, size, offset, eocd_pos))
}

fn read_at<R: Read + Seek>(reader: &mut R, pos: u64, len: usize) -> Result<Vec<u8>, Refusal> {
    reader.seek(SeekFrom::Start(pos))?;
    let mut buf = vec![0; len];
    reader.read_exact(&mut buf).map_err(|_| Refusal::Malformed("a truncated end record"))?;
    Ok(buf)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    b.get(i..i + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}
