//! Safe intake: reading a zip file or a directory into a [`DataBundle`], in memory, with limits.
//!
//! Nothing is ever written to disk. Every entry is checked before its content is read; content is
//! read through `Read::take`, so the bytes counted are the bytes actually produced, whatever sizes
//! the archive declares.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use zip::ZipArchive;

use super::central_directory::{self, Refusal};
use super::{DataBundle, DataError, Limits, MAX_NAME_BYTES, MAX_PATH_BYTES};
use crate::error::{Error, Result};

/// File-type bits of a unix mode, and the types atq cares about.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

impl DataBundle {
    /// Reads a bundle from a zip file, with the default [`Limits`].
    ///
    /// # Errors
    /// [`DataError`] (inside [`Error::Data`]) for an unsafe or too-large archive, naming the entry
    /// and the rule; [`Error::Io`] when the file cannot be read.
    pub fn from_zip(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_zip_with(path, &Limits::default())
    }

    /// Reads a bundle from a zip file, with the given limits.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_zip_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        Self::from_zip_reader(file, &path.display().to_string(), limits)
    }

    /// Reads a bundle from a zip archive held by any seekable reader (an upload in memory, say).
    /// `source_name` names it in error messages.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_zip_reader<R: Read + Seek>(mut reader: R, source_name: &str, limits: &Limits) -> Result<Self> {
        let io = |e| io_error(Path::new(source_name), e);
        // A zip holds at most about its content plus headers; anything much larger is refused before
        // the central directory is parsed.
        let archive_bytes = reader.seek(SeekFrom::End(0)).map_err(io)?;
        reader.rewind().map_err(io)?;
        let max_archive_bytes = limits.max_total_bytes.saturating_mul(2).saturating_add(1 << 20);
        if archive_bytes > max_archive_bytes {
            return Err(DataError::Archive {
                source_name: source_name.to_owned(),
                entry: None,
                message: format!(
                    "the archive is {archive_bytes} bytes, more than a bundle of at most {} bytes can need; ship large data with a host path (dataPath) or a volume (dataVolume)",
                    limits.max_total_bytes
                ),
            }
            .into());
        }
        let archive_error = |entry: Option<String>, e: zip::result::ZipError| -> Error {
            DataError::Archive { source_name: source_name.to_owned(), entry, message: e.to_string() }.into()
        };
        let mut intake = Intake::new(source_name, limits);
        central_directory::check(&mut reader, limits).map_err(|refusal| {
            let message = match refusal {
                Refusal::TooManyEntries => return intake.too_many_entries(),
                Refusal::Duplicate(name) => {
                    return intake.clash(&name, "the archive has two entries of this name".to_owned())
                }
                Refusal::DirectoryTooLarge { size, limit } => format!(
                    "its central directory is {size} bytes, more than the {limit} bytes {} entries can need",
                    limits.max_entries
                ),
                Refusal::Malformed(what) => format!("not a valid zip archive: {what}"),
                Refusal::Io(e) => return io(e),
            };
            DataError::Archive { source_name: source_name.to_owned(), entry: None, message }.into()
        })?;
        let mut archive = ZipArchive::new(reader).map_err(|e| archive_error(None, e))?;
        if archive.len() > limits.max_entries {
            return Err(intake.too_many_entries());
        }
        for index in 0..archive.len() {
            let file = archive.by_index(index).map_err(|e| archive_error(Some(format!("#{index}")), e))?;
            let name = file.name().map_err(|e| archive_error(Some(format!("#{index}")), e))?.into_owned();
            intake.count_entry()?;
            if name.contains('\0') {
                return Err(intake.unsafe_path(&name, "its name contains a NUL byte"));
            }
            let Some(enclosed) = file.enclosed_name() else {
                return Err(
                    intake.unsafe_path(&name, "it escapes the bundle (a '..' above the root, or an absolute path)")
                );
            };
            let is_dir = file.is_dir();
            let path = intake.check_path(&name, is_dir)?;
            // The strict checks above must agree with the zip reader's own view of the name.
            if enclosed.as_path() != Path::new(&path) {
                return Err(intake.unsafe_path(&name, "its path does not resolve to itself inside the bundle"));
            }
            match file.unix_mode().map(|mode| mode & S_IFMT) {
                Some(S_IFLNK) => return Err(intake.symlink(&name)),
                _ if file.is_symlink() => return Err(intake.symlink(&name)),
                None | Some(0 | S_IFREG | S_IFDIR) => {}
                Some(_) => return Err(intake.special(&name)),
            }
            if file.encrypted() {
                return Err(archive_error(
                    Some(name),
                    zip::result::ZipError::UnsupportedArchive("encrypted entries are not supported"),
                ));
            }
            if is_dir {
                intake.add_dir(path)?;
            } else {
                intake.add_file(path, file).map_err(|e| match e {
                    ReadError::Limit(e) => e,
                    ReadError::Io(e) => archive_error(Some(name.clone()), zip::result::ZipError::Io(e)),
                })?;
            }
        }
        intake.finish()
    }

    /// Reads a bundle from a directory, with the default [`Limits`].
    ///
    /// The directory itself may be reached through a symbolic link; inside it, symbolic links are
    /// refused, never followed.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_dir(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_dir_with(path, &Limits::default())
    }

    /// Reads a bundle from a directory, with the given limits.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_dir_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let root = path.as_ref();
        let meta = fs::metadata(root).map_err(|e| io_error(root, e))?;
        if !meta.is_dir() {
            return Err(io_error(root, io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
        }
        let mut intake = Intake::new(&root.display().to_string(), limits);
        walk(&mut intake, root, "")?;
        intake.finish()
    }

    /// Reads a bundle from a directory or a zip file, whichever `path` is, with the given limits.
    /// This is what `atq data push PATH` calls.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_path(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
        if meta.is_dir() {
            Self::from_dir_with(path, limits)
        } else {
            Self::from_zip_with(path, limits)
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Adds the entries under `dir` (whose path in the bundle is `rel`, "" for the root).
fn walk(intake: &mut Intake<'_>, dir: &Path, rel: &str) -> Result<()> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        intake.count_entry()?;
        entries.push(entry);
    }
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let full = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            let shown = join(rel, &name.to_string_lossy());
            return Err(intake.unsafe_path(&shown, "its name is not valid UTF-8"));
        };
        let shown = join(rel, name);
        // `DirEntry::file_type` does not follow symbolic links.
        let kind = entry.file_type().map_err(|e| io_error(&full, e))?;
        if kind.is_symlink() {
            return Err(intake.symlink(&shown));
        }
        let path = intake.check_path(&shown, kind.is_dir())?;
        if kind.is_dir() {
            intake.add_dir(path.clone())?;
            walk(intake, &full, &path)?;
        } else if kind.is_file() {
            let file = open_regular(&full).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidInput => intake.special(&shown),
                _ if is_symlink_error(&e) => intake.symlink(&shown),
                _ => io_error(&full, e),
            })?;
            intake.add_file(path, file).map_err(|e| match e {
                ReadError::Limit(e) => e,
                ReadError::Io(e) => io_error(&full, e),
            })?;
        } else {
            return Err(intake.special(&shown));
        }
    }
    Ok(())
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// Opens a file that was a regular file when listed, refusing it if it was swapped for a symbolic
/// link (ELOOP, with `O_NOFOLLOW`) or something else (InvalidInput) in between; `O_NONBLOCK` keeps
/// a swapped-in FIFO from blocking the open.
fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

fn is_symlink_error(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Why adding a file failed: a broken rule, or the reader failing.
enum ReadError {
    Limit(Error),
    Io(io::Error),
}

/// The bundle being read, with its running counts.
struct Intake<'a> {
    /// The zip file or directory, for messages.
    source_name: String,
    /// The bounds in force.
    limits: &'a Limits,
    /// Files read so far.
    files: BTreeMap<String, Vec<u8>>,
    /// Every directory seen, explicit or implied by a file's path.
    dirs: BTreeSet<String>,
    /// Entries seen so far (files and directories).
    entries: usize,
    /// Bytes read so far.
    total_bytes: u64,
}

impl<'a> Intake<'a> {
    fn new(source_name: &str, limits: &'a Limits) -> Self {
        Intake {
            source_name: source_name.to_owned(),
            limits,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            entries: 0,
            total_bytes: 0,
        }
    }

    fn too_many_entries(&self) -> Error {
        DataError::TooManyEntries { source_name: self.source_name.clone(), limit: self.limits.max_entries }.into()
    }

    fn unsafe_path(&self, entry: &str, rule: &'static str) -> Error {
        DataError::UnsafePath { source_name: self.source_name.clone(), entry: entry.to_owned(), rule }.into()
    }

    fn symlink(&self, entry: &str) -> Error {
        DataError::Symlink { source_name: self.source_name.clone(), entry: entry.to_owned() }.into()
    }

    fn special(&self, entry: &str) -> Error {
        DataError::SpecialFile { source_name: self.source_name.clone(), entry: entry.to_owned() }.into()
    }

    fn clash(&self, entry: &str, rule: String) -> Error {
        DataError::Clash { source_name: self.source_name.clone(), entry: entry.to_owned(), rule }.into()
    }

    fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.too_many_entries());
        }
        Ok(())
    }

    /// Checks a `/`-separated relative path (a trailing `/` allowed for a directory) and returns it
    /// without the trailing `/`.
    fn check_path(&self, name: &str, is_dir: bool) -> Result<String> {
        let path = if is_dir { name.strip_suffix('/').unwrap_or(name) } else { name };
        let bad = |rule| Err(self.unsafe_path(name, rule));
        if path.is_empty() {
            return bad("its path is empty");
        }
        if path.contains('\0') {
            return bad("its name contains a NUL byte");
        }
        if path.starts_with('/')
            || path.starts_with('\\')
            || (path.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && path.as_bytes().get(1) == Some(&b':'))
        {
            return bad("it is an absolute path");
        }
        if path.contains('\\') {
            return bad("its path contains a backslash; use '/' between directories");
        }
        if path.chars().any(char::is_control) {
            return bad("its path contains a control character");
        }
        if path.len() > MAX_PATH_BYTES {
            return bad("its path is longer than 1024 bytes");
        }
        for component in path.split('/') {
            match component {
                "" => return bad("its path has an empty component ('//')"),
                "." | ".." => return bad("its path has a '.' or '..' component"),
                c if c.len() > MAX_NAME_BYTES => return bad("a name in its path is longer than 255 bytes"),
                _ => {}
            }
        }
        Ok(path.to_owned())
    }

    /// Records the directories `path` implies (its ancestors, and itself when `and_self`).
    fn add_parents(&mut self, path: &str, and_self: bool) -> Result<()> {
        let mut ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        if and_self {
            ends.push(path.len());
        }
        for end in ends {
            let dir = &path[..end];
            if self.files.contains_key(dir) {
                return Err(
                    self.clash(path, format!("'{dir}' is a file in the bundle, so it cannot also be a directory"))
                );
            }
            self.dirs.insert(dir.to_owned());
        }
        Ok(())
    }

    fn add_dir(&mut self, path: String) -> Result<()> {
        self.add_parents(&path, true)
    }

    fn add_file(&mut self, path: String, reader: impl Read) -> std::result::Result<(), ReadError> {
        if self.files.contains_key(&path) {
            return Err(ReadError::Limit(self.clash(&path, "the bundle already has a file of this path".to_owned())));
        }
        if self.dirs.contains(&path) {
            return Err(ReadError::Limit(
                self.clash(&path, "it is also a directory in the bundle, so it cannot be a file".to_owned()),
            ));
        }
        self.add_parents(&path, false).map_err(ReadError::Limit)?;
        let limits = self.limits;
        let remaining = limits.max_total_bytes.saturating_sub(self.total_bytes);
        let cap = limits.max_file_bytes.saturating_sub(1).min(remaining).saturating_add(1);
        let mut content = Vec::new();
        reader.take(cap).read_to_end(&mut content).map_err(ReadError::Io)?;
        let size = content.len() as u64;
        if size >= limits.max_file_bytes {
            return Err(ReadError::Limit(
                DataError::FileTooLarge {
                    source_name: self.source_name.clone(),
                    entry: path,
                    size,
                    limit: limits.max_file_bytes,
                }
                .into(),
            ));
        }
        if size > remaining {
            return Err(ReadError::Limit(
                DataError::TooLarge {
                    source_name: self.source_name.clone(),
                    entry: path,
                    limit: limits.max_total_bytes,
                }
                .into(),
            ));
        }
        if size == 0 {
            return Err(ReadError::Limit(
                DataError::EmptyFile { source_name: self.source_name.clone(), entry: path }.into(),
            ));
        }
        self.total_bytes += size;
        self.files.insert(path, content);
        Ok(())
    }

    fn finish(self) -> Result<DataBundle> {
        if self.files.is_empty() {
            return Err(DataError::NoFiles { source_name: self.source_name }.into());
        }
        Ok(DataBundle::new(self.files))
    }
}
