//! Safe intake: reading a zip file or a directory into a [`DataBundle`], in memory, with limits.
//!
//! Nothing is ever written to disk. Every entry is checked before its content is read; content is
//! read through `Read::take`, so the bytes counted are the bytes actually produced, whatever sizes
//! the archive declares.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

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
                let executable = file.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
                intake.add_file(path, file, executable).map_err(|e| match e {
                    ReadError::Limit(e) => e,
                    ReadError::Io(e) => archive_error(Some(name.clone()), zip::result::ZipError::Io(e)),
                })?;
            }
        }
        intake.finish()
    }

    /// Reads a bundle from a tar archive (an upload in memory, say): regular files and
    /// directories only — links, devices, FIFOs and sparse files are refused, as are paths that
    /// escape the bundle; a leading `./` is dropped. `source_name` names it in error messages.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_tar_reader<R: Read>(reader: R, source_name: &str, limits: &Limits) -> Result<Self> {
        let archive_error = |entry: Option<String>, e: io::Error| -> Error {
            DataError::Archive { source_name: source_name.to_owned(), entry, message: e.to_string() }.into()
        };
        let mut intake = Intake::new(source_name, limits);
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| archive_error(None, e))?;
        for (index, entry) in entries.enumerate() {
            let entry = entry.map_err(|e| archive_error(Some(format!("#{index}")), e))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = raw.strip_prefix("./").unwrap_or(&raw).to_owned();
            if name.is_empty() {
                continue;
            }
            intake.count_entry()?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(intake.symlink(&name));
            }
            if kind.is_dir() {
                let path = intake.check_path(&name, true)?;
                intake.add_dir(path)?;
            } else if kind.is_file() {
                let path = intake.check_path(&name, false)?;
                let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
                intake.add_file(path, entry, executable).map_err(|e| match e {
                    ReadError::Limit(e) => e,
                    ReadError::Io(e) => archive_error(Some(name.clone()), e),
                })?;
            } else {
                return Err(intake.special(&name));
            }
        }
        intake.finish()
    }

    /// Reads a bundle from an archive in memory: a zip, or a tar (told apart by their magic).
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`]; an archive that is neither is [`DataError::Archive`].
    pub fn from_archive_bytes(bytes: &[u8], source_name: &str, limits: &Limits) -> Result<Self> {
        if is_zip(bytes) {
            Self::from_zip_reader(io::Cursor::new(bytes), source_name, limits)
        } else if is_tar(bytes) {
            Self::from_tar_reader(bytes, source_name, limits)
        } else {
            Err(DataError::Archive {
                source_name: source_name.to_owned(),
                entry: None,
                message: "neither a zip nor a tar archive".to_owned(),
            }
            .into())
        }
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
    /// The walk holds each directory open and names its entries relative to that handle
    /// (`openat` with `O_NOFOLLOW`), never by a path from the root: a subdirectory swapped for a
    /// symbolic link while it is read is refused as a link, and an entry replaced by another
    /// object between its listing and its opening is refused as changed.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`]; [`DataError::Changed`] when an entry is replaced while read.
    pub fn from_dir_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let root = path.as_ref();
        // The root itself may be reached through a symbolic link: that one is followed.
        let fd = fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            if e == Errno::NOTDIR {
                io_error(root, io::Error::new(io::ErrorKind::NotADirectory, "not a directory"))
            } else {
                io_error(root, e.into())
            }
        })?;
        let mut intake = Intake::new(&root.display().to_string(), limits);
        walk(&mut intake, &fd, root, "")?;
        intake.finish()
    }

    /// Reads a bundle from a directory or a zip file, whichever `path` is, with the given limits.
    /// This is what `atq data push PATH` calls.
    ///
    /// # Errors
    /// As [`DataBundle::from_zip`].
    pub fn from_path(path: impl AsRef<Path>, limits: &Limits) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        if meta.is_dir() {
            Self::from_dir_with(path, limits)
        } else {
            Self::from_zip_with(path, limits)
        }
    }
}

/// Whether `bytes` start like a zip archive (a local file header, or the end record of an empty one).
#[must_use]
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Whether `bytes` look like a tar archive (POSIX `ustar` or GNU magic at offset 257).
#[must_use]
pub fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar".as_slice())
}

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Adds the entries of the open directory `dir`, whose path in the bundle is `rel` ("" for the
/// root); `root` is the directory read, for messages.
fn walk(intake: &mut Intake<'_>, dir: &OwnedFd, root: &Path, rel: &str) -> Result<()> {
    let here = root.join(rel);
    let listing_error = |e: Errno| io_error(&here, e.into());
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dir).map_err(listing_error)? {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        intake.count_entry()?;
        names.push(name.to_owned());
    }
    names.sort();
    for name in names {
        let Ok(name_str) = name.to_str() else {
            let shown = join(rel, &name.to_string_lossy());
            return Err(intake.unsafe_path(&shown, "its name is not valid UTF-8"));
        };
        let shown = join(rel, name_str);
        let full = here.join(name_str);
        // What the entry is, without following a link.
        let listed =
            fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_error(&full, e.into()))?;
        match FileType::from_raw_mode(listed.st_mode) {
            FileType::Symlink => return Err(intake.symlink(&shown)),
            FileType::Directory => {
                let path = intake.check_path(&shown, true)?;
                let sub = open_entry(intake, dir, &name, &shown, &full, &listed)?;
                intake.add_dir(path.clone())?;
                walk(intake, &sub, root, &path)?;
            }
            FileType::RegularFile => {
                let path = intake.check_path(&shown, false)?;
                let fd = open_entry(intake, dir, &name, &shown, &full, &listed)?;
                let executable = listed.st_mode & 0o111 != 0;
                intake.add_file(path, std::fs::File::from(fd), executable).map_err(|e| match e {
                    ReadError::Limit(e) => e,
                    ReadError::Io(e) => io_error(&full, e),
                })?;
            }
            _ => return Err(intake.special(&shown)),
        }
    }
    Ok(())
}

/// Opens the entry `name` of `dir`, listed as `listed`: never through a symbolic link
/// (`O_NOFOLLOW`), never blocking (`O_NONBLOCK`, should a FIFO have been swapped in), and only
/// if it is still the object that was listed (same device, inode and type).
fn open_entry(
    intake: &Intake<'_>,
    dir: &OwnedFd,
    name: &CStr,
    shown: &str,
    full: &Path,
    listed: &fs::Stat,
) -> Result<OwnedFd> {
    #[cfg(test)]
    hooks::before_open(shown);
    let kind = FileType::from_raw_mode(listed.st_mode);
    let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if kind == FileType::Directory {
        flags |= OFlags::DIRECTORY;
    }
    let fd = match fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        // ELOOP: O_NOFOLLOW met a link; ENOTDIR: O_DIRECTORY met something else; ENXIO: a
        // socket. The entry was swapped since it was listed: for a link, say so.
        Err(Errno::LOOP | Errno::NOTDIR | Errno::NXIO) => {
            let now = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|s| FileType::from_raw_mode(s.st_mode));
            return Err(if matches!(now, Ok(FileType::Symlink)) {
                intake.symlink(shown)
            } else {
                intake.changed(shown)
            });
        }
        Err(e) => return Err(io_error(full, e.into())),
    };
    let opened = fs::fstat(&fd).map_err(|e| io_error(full, e.into()))?;
    if (opened.st_dev, opened.st_ino) != (listed.st_dev, listed.st_ino)
        || FileType::from_raw_mode(opened.st_mode) != kind
    {
        return Err(intake.changed(shown));
    }
    Ok(fd)
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
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
    /// The files among them whose mode lets anyone execute them.
    executables: BTreeSet<String>,
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
            executables: BTreeSet::new(),
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

    fn changed(&self, entry: &str) -> Error {
        DataError::Changed { source_name: self.source_name.clone(), entry: entry.to_owned() }.into()
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

    /// Adds a file, read through `reader` within the limits; `executable` when its mode lets
    /// anyone execute it.
    fn add_file(&mut self, path: String, reader: impl Read, executable: bool) -> std::result::Result<(), ReadError> {
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
        if executable {
            self.executables.insert(path.clone());
        }
        self.files.insert(path, content);
        Ok(())
    }

    fn finish(self) -> Result<DataBundle> {
        if self.files.is_empty() {
            return Err(DataError::NoFiles { source_name: self.source_name }.into());
        }
        Ok(DataBundle::new(self.files, self.executables))
    }
}

/// Test hooks: let a test act between a directory's listing and the opening of an entry (to
/// swap it for a symbolic link, say), deterministically.
#[cfg(test)]
pub(super) mod hooks {
    use std::cell::RefCell;

    /// A hook: called with the entry's path in the bundle.
    pub(in crate::data) type Hook = Box<dyn FnMut(&str)>;

    thread_local! {
        static BEFORE_OPEN: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Runs `f` with `hook` called before each entry of a directory is opened (this thread only).
    pub(in crate::data) fn with_before_open<T>(hook: Hook, f: impl FnOnce() -> T) -> T {
        BEFORE_OPEN.with(|h| *h.borrow_mut() = Some(hook));
        let out = f();
        BEFORE_OPEN.with(|h| *h.borrow_mut() = None);
        out
    }

    pub(super) fn before_open(path: &str) {
        BEFORE_OPEN.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(path);
            }
        });
    }
}
