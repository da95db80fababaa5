//! Splitting a CSV stream into rows: a fast path for rows without quotes (most of a JTL: find
//! the row end and the commas with SIMD), and the `csv` crate for any row holding a quote
//! (quoted commas, quotes and newlines), so quoting follows RFC 4180 exactly where it matters.
//!
//! A row is complete at a newline once it holds an even number of quote characters (`""` is an
//! escaped quote inside a quoted field). A row longer than [`MAX_ROW_BYTES`] is refused: the
//! buffer stays bounded whatever the input.

use std::io::Read;

use memchr::{memchr, memchr2, memchr_iter};

use crate::results::read::MAX_ROW_BYTES;

/// The fields of one row, as byte slices.
pub(crate) trait Fields {
    /// How many fields.
    fn len(&self) -> usize;
    /// Field `i`, if there is one.
    fn get(&self, i: usize) -> Option<&[u8]>;
    /// Every field.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// A row split on commas (no quotes in it).
pub(crate) struct Plain<'a> {
    line: &'a [u8],
    /// Start and end of each field in `line`.
    bounds: &'a [(u32, u32)],
}

impl Fields for Plain<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.bounds.len()
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        self.bounds.get(i).map(|&(a, b)| &self.line[a as usize..b as usize])
    }
}

impl Fields for csv::ByteRecord {
    fn len(&self) -> usize {
        csv::ByteRecord::len(self)
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        csv::ByteRecord::get(self, i)
    }
}

/// One row, as the caller sees it.
pub(crate) enum Row<'a> {
    /// Split on commas.
    Plain(Plain<'a>),
    /// Parsed by the csv crate (the row held quotes).
    Quoted(&'a csv::ByteRecord),
}

/// What went wrong reading rows.
pub(crate) enum RowError {
    /// The underlying reader failed.
    Io(std::io::Error),
    /// A row longer than [`MAX_ROW_BYTES`] starts at this line.
    TooLong(u64),
    /// The csv crate refused a quoted row (at this line).
    Csv(u64, String),
}

/// Reads rows from `R`, one at a time, with their 1-based starting line.
pub(crate) struct Rows<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The line the next row starts on.
    line: u64,
    bounds: Vec<(u32, u32)>,
    record: csv::ByteRecord,
}

const CHUNK: usize = 1 << 20;

impl<R: Read> Rows<R> {
    pub(crate) fn new(reader: R) -> Self {
        Rows {
            reader,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            line: 1,
            bounds: Vec::with_capacity(32),
            record: csv::ByteRecord::new(),
        }
    }

    /// Calls `each(line, row)` for every row; stops at the first error `each` returns.
    pub(crate) fn for_each<E>(
        &mut self,
        mut each: impl FnMut(u64, Row<'_>) -> Result<(), E>,
        convert: impl Fn(RowError) -> E,
    ) -> Result<(), E> {
        loop {
            let Some((len, newlines, quoted)) = self.next_row().map_err(&convert)? else {
                return Ok(());
            };
            let line = self.line;
            self.line += newlines;
            let raw = &self.buf[self.start..self.start + len];
            self.start += len;
            // The row without its line end.
            let mut row = raw.strip_suffix(b"\n").unwrap_or(raw);
            row = row.strip_suffix(b"\r").unwrap_or(row);
            if quoted {
                let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(row);
                match csv.read_byte_record(&mut self.record) {
                    Ok(true) => each(line, Row::Quoted(&self.record))?,
                    Ok(false) => {}
                    Err(e) => return Err(convert(RowError::Csv(line, e.to_string()))),
                }
            } else {
                split_commas(row, &mut self.bounds);
                each(line, Row::Plain(Plain { line: row, bounds: &self.bounds }))?;
            }
        }
    }

    /// The length of the next row (line end included), its newline count and whether it holds a
    /// quote; None at the end.
    fn next_row(&mut self) -> Result<Option<(usize, u64, bool)>, RowError> {
        loop {
            if let Some(found) = scan(&self.buf[self.start..self.end]) {
                return Ok(Some(found));
            }
            let pending = self.end - self.start;
            if self.eof {
                if pending == 0 {
                    return Ok(None);
                }
                let rest = &self.buf[self.start..self.end];
                let quoted = memchr(b'"', rest).is_some();
                #[allow(clippy::naive_bytecount)]
                let newlines = rest.iter().filter(|&&b| b == b'\n').count() as u64;
                return Ok(Some((pending, newlines, quoted)));
            }
            if pending as u64 > MAX_ROW_BYTES {
                return Err(RowError::TooLong(self.line));
            }
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, pending);
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RowError::Io(e)),
            }
        }
    }
}

/// The fields of a row without quotes, as (start, end) pairs: eight bytes at a time.
///
/// Fields are a few bytes long, so memchr's searches (SIMD or word-wise) spend more setting up
/// per comma than they save; this finds every comma of a word at once. For each byte `b` of
/// `x = word ^ ",,,,,,,,"`, `!(((b & 0x7F) + 0x7F) | b | 0x7F)` has its high bit set exactly when
/// `b == 0` (no carry crosses bytes), i.e. where the word held a comma.
#[inline]
fn split_commas(row: &[u8], bounds: &mut Vec<(u32, u32)>) {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const COMMAS: u64 = 0x2C2C_2C2C_2C2C_2C2C;
    bounds.clear();
    // A row is at most 2 * MAX_ROW_BYTES long: offsets fit in u32.
    #[allow(clippy::cast_possible_truncation)]
    let push = |bounds: &mut Vec<(u32, u32)>, from: &mut u32, comma: usize| {
        bounds.push((*from, comma as u32));
        *from = comma as u32 + 1;
    };
    let mut from = 0u32;
    let mut chunks = row.chunks_exact(8);
    let mut base = 0usize;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("chunks of eight")) ^ COMMAS;
        let mut found = !(((x & LOW7) + LOW7) | x | LOW7);
        while found != 0 {
            push(bounds, &mut from, base + (found.trailing_zeros() / 8) as usize);
            found &= found - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b',' {
            push(bounds, &mut from, base + i);
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    bounds.push((from, row.len() as u32));
}

/// The first complete row in `buf`: (length with its newline, newlines, holds a quote).
#[inline]
fn scan(buf: &[u8]) -> Option<(usize, u64, bool)> {
    let first = memchr2(b'\n', b'"', buf)?;
    if buf[first] == b'\n' {
        return Some((first + 1, 1, false));
    }
    // A row with quotes ends at the first newline after an even number of quotes.
    let mut quotes = 0usize;
    let mut newlines = 0u64;
    let mut from = 0;
    loop {
        let nl = from + memchr(b'\n', &buf[from..])?;
        quotes += memchr_iter(b'"', &buf[from..nl]).count();
        newlines += 1;
        if quotes % 2 == 0 {
            return Some((nl + 1, newlines, true));
        }
        from = nl + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        Rows::new(text)
            .for_each(
                |line, row| {
                    let fields: Vec<String> = match &row {
                        Row::Plain(p) => p.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect(),
                        Row::Quoted(r) => r.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect(),
                    };
                    out.push((line, fields));
                    Ok::<_, ()>(())
                },
                |_| (),
            )
            .unwrap();
        out
    }

    #[test]
    fn commas_are_found_in_every_position_of_a_word() {
        for len in 0..40 {
            for at in 0..len {
                let mut row = vec![b'a'; len];
                row[at] = b',';
                if at + 1 < len {
                    row[at + 1] = 0x2D; // the byte after a comma is not one
                }
                let mut bounds = Vec::new();
                split_commas(&row, &mut bounds);
                assert_eq!(bounds, [(0, at as u32), (at as u32 + 1, len as u32)], "len {len}, comma at {at}");
            }
        }
        let mut bounds = Vec::new();
        split_commas(b",,\x2c\xac\x00,", &mut bounds);
        assert_eq!(bounds.len(), 5);
    }

    #[test]
    fn plain_and_quoted_rows_split_like_csv() {
        let got = rows(b"a,b,c\r\n1,\"x,\"\"y\"\"\nz\",3\n\n4,,6");
        assert_eq!(got[0], (1, vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(got[1], (2, vec!["1".into(), "x,\"y\"\nz".into(), "3".into()]));
        assert_eq!(got[2], (4, vec![String::new()]));
        assert_eq!(got[3], (5, vec!["4".into(), String::new(), "6".into()]));
    }

    proptest::proptest! {
        /// Whatever the fields hold (commas, quotes, newlines), the rows read back are the rows
        /// the csv crate wrote.
        #[test]
        fn rows_read_back_what_the_csv_crate_wrote(
            records in proptest::collection::vec(proptest::collection::vec("[a,\"\n\r x]{0,6}", 1..5), 1..20)
        ) {
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
            for r in &records {
                w.write_record(r).unwrap();
            }
            let text = w.into_inner().unwrap();
            let got: Vec<Vec<String>> = rows(&text).into_iter().map(|(_, f)| f).collect();
            proptest::prop_assert_eq!(got, records);
        }
    }

    #[test]
    fn a_row_longer_than_the_bound_is_refused_with_its_line() {
        let mut text = b"a,b\n\"open".to_vec();
        text.resize(3 * 1024 * 1024, b'x');
        let mut seen = 0;
        let err = Rows::new(&text[..]).for_each(
            |_, _| {
                seen += 1;
                Ok(())
            },
            |e| match e {
                RowError::TooLong(line) => line,
                _ => 0,
            },
        );
        assert_eq!(err, Err(2));
        assert_eq!(seen, 1);
    }
}
