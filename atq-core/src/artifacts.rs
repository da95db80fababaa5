//! Artifacts: the files a master writes under its task's `artifacts` directory, copied out of its
//! container (as a tar archive from the engine) into a local directory.
//!
//! The archive comes from a container, so nothing in it is trusted:
//! - it is **streamed to a temporary file**, counting bytes as they arrive, and refused past
//!   [`MAX_ARCHIVE_BYTES`]: memory stays small whatever the master wrote;
//! - every entry is **checked before anything is written**: an absolute path, a `..` component or
//!   a link (symbolic or hard) refuses the whole archive ([`Error::UnsafeArtifact`]);
//! - writing **never follows a link** already in the destination: every directory on the way to a
//!   file must be a real directory (a symlink there is refused), and a file is created fresh (an
//!   existing file or link of that name is replaced, never written through).
//!
//! Paths are relative to the artifacts directory: the archive names entries from its last
//! component (`results/sub/data.csv` for `/atq/results`), which is dropped, so the file lands in
//! `dest/sub/data.csv`; a leading `./` does not count as that component.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use crate::cluster::{ChunkStream, MAX_ARCHIVE_BYTES};
use crate::error::{Error, Result};

/// Writes the archive read from `chunks` into `dest` (created if needed) and returns the files
/// written, in archive order.
///
/// # Errors
/// [`Error::UnsafeArtifact`] for an entry that would escape `dest` or is a link, or a link in
/// `dest` on the way; [`Error::Engine`] for an archive over [`MAX_ARCHIVE_BYTES`] or one that is
/// not a tar archive; [`Error::Io`] when writing fails.
pub async fn save(chunks: ChunkStream, dest: &Path) -> Result<Vec<PathBuf>> {
    let spool = spool(chunks, dest).await?;
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || unpack(spool, &dest)).await.map_err(|e| {
        Error::engine("save artifacts to", "the destination", format!("the unpacking thread failed: {e}"))
    })?
}

/// How long the engine may send nothing while an archive streams before atq gives up on it.
pub const ARCHIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Streams the archive into an anonymous temporary file, at most [`MAX_ARCHIVE_BYTES`], giving
/// up when the engine sends nothing for [`ARCHIVE_IDLE_TIMEOUT`].
async fn spool(mut chunks: ChunkStream, dest: &Path) -> Result<File> {
    let io = |source: io::Error| Error::Io { path: "a temporary file for the artifacts".into(), source };
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut total: u64 = 0;
    loop {
        let Ok(next) = tokio::time::timeout(ARCHIVE_IDLE_TIMEOUT, chunks.next()).await else {
            return Err(Error::engine(
                "save artifacts to",
                dest.display().to_string(),
                format!("the engine sent nothing for {ARCHIVE_IDLE_TIMEOUT:?} while copying the archive"),
            ));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk?;
        total = total.saturating_add(chunk.len() as u64);
        if total > MAX_ARCHIVE_BYTES {
            return Err(Error::engine(
                "save artifacts to",
                dest.display().to_string(),
                format!(
                    "the archive is larger than {} MiB, the most atq copies: have the master compress its results",
                    MAX_ARCHIVE_BYTES >> 20
                ),
            ));
        }
        file.write_all(&chunk).map_err(io)?;
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(file)
}

/// What one archive entry becomes, at a path relative to the destination.
enum Planned {
    Dir(PathBuf),
    File(PathBuf),
}

/// Checks every entry, then writes them.
fn unpack(mut archive: File, dest: &Path) -> Result<Vec<PathBuf>> {
    let broken = |e: io::Error| {
        Error::engine("save artifacts to", dest.display().to_string(), format!("broken tar archive: {e}"))
    };
    let mut planned = Vec::new();
    {
        let mut tar = tar::Archive::new(&mut archive);
        for entry in tar.entries().map_err(broken)? {
            let entry = entry.map_err(broken)?;
            if let Some(item) = plan(&entry)? {
                planned.push(item);
            }
        }
    }
    check_shapes(&planned)?;
    archive.seek(SeekFrom::Start(0)).map_err(|e| Error::Io { path: "the artifacts archive".into(), source: e })?;
    create_dir(dest, dest)?;
    let mut written = Vec::new();
    let mut tar = tar::Archive::new(&mut archive);
    let mut planned = planned.into_iter();
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let kind = entry.header().entry_type();
        if !(kind.is_dir() || kind.is_file()) {
            continue;
        }
        match planned.next() {
            Some(Planned::Dir(relative)) => create_dir(dest, &dest.join(relative))?,
            Some(Planned::File(relative)) => {
                let path = dest.join(&relative);
                if let Some(parent) = path.parent() {
                    create_dir(dest, parent)?;
                }
                write_file(&path, &mut entry)?;
                written.push(path);
            }
            None => break,
        }
    }
    Ok(written)
}

/// Refuses, before anything is written, an archive that has a file and a directory at one path
/// (`sub/` and `sub`, or `a` and `a/b`): it cannot be saved as it is, and finding out while
/// writing would leave half of it behind.
fn check_shapes(planned: &[Planned]) -> Result<()> {
    let clash = |path: &Path| Error::UnsafeArtifact {
        entry: path.display().to_string(),
        reason: "the archive has both a file and a directory at this path; nothing was saved".into(),
    };
    let mut dirs: HashSet<&Path> = HashSet::new();
    let mut files: HashSet<&Path> = HashSet::new();
    for item in planned {
        let (path, is_dir) = match item {
            Planned::Dir(path) => (path.as_path(), true),
            Planned::File(path) => (path.as_path(), false),
        };
        for ancestor in path.ancestors().skip(1).take_while(|a| !a.as_os_str().is_empty()) {
            if files.contains(ancestor) {
                return Err(clash(ancestor));
            }
            dirs.insert(ancestor);
        }
        if path.as_os_str().is_empty() {
            continue;
        }
        if is_dir {
            if files.contains(path) {
                return Err(clash(path));
            }
            dirs.insert(path);
        } else {
            if dirs.contains(path) {
                return Err(clash(path));
            }
            files.insert(path);
        }
    }
    Ok(())
}

/// The entry's place in the destination, or None for entries atq skips (devices, fifos).
fn plan<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Option<Planned>> {
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let unsafe_entry = |reason: &str| Error::UnsafeArtifact { entry: raw.clone(), reason: reason.to_owned() };
    let kind = entry.header().entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(unsafe_entry("it is a link, and atq saves plain files only; nothing was saved"));
    }
    let mut relative = PathBuf::new();
    let mut seen_root = false;
    for component in Path::new(&raw).components() {
        match component {
            Component::CurDir => {}
            // The first real component is the artifacts directory's own name.
            Component::Normal(_) if !seen_root => seen_root = true,
            Component::Normal(part) => relative.push(part),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry("it points outside the artifacts directory; nothing was saved"));
            }
        }
    }
    if kind.is_dir() {
        Ok(Some(Planned::Dir(relative)))
    } else if kind.is_file() {
        if relative.as_os_str().is_empty() {
            // The artifacts path was a file: keep its name.
            relative = Path::new(&raw).file_name().map(PathBuf::from).unwrap_or_default();
        }
        if relative.as_os_str().is_empty() {
            return Err(unsafe_entry("it has no file name"));
        }
        Ok(Some(Planned::File(relative)))
    } else {
        Ok(None)
    }
}

/// Creates `dir` (under `dest`) and every directory on the way, refusing a link on the way.
fn create_dir(dest: &Path, dir: &Path) -> Result<()> {
    let io = |path: &Path, source: io::Error| Error::Io { path: path.display().to_string(), source };
    if dir == dest {
        return fs::create_dir_all(dest).map_err(|e| io(dest, e));
    }
    let relative = dir.strip_prefix(dest).unwrap_or(dir);
    let mut at = dest.to_path_buf();
    for part in relative.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::UnsafeArtifact {
                    entry: at.display().to_string(),
                    reason: "the destination has a link there, and atq never writes through one".into(),
                });
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::UnsafeArtifact {
                    entry: at.display().to_string(),
                    reason: "the destination has a file where the archive has a directory".into(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&at).map_err(|e| io(&at, e))?,
            Err(e) => return Err(io(&at, e)),
        }
    }
    Ok(())
}

/// Writes a fresh file at `path`: whatever had that name (a file, a link) is replaced, never
/// written through.
fn write_file(path: &Path, data: &mut impl Read) -> Result<()> {
    let io = |source: io::Error| Error::Io { path: path.display().to_string(), source };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::UnsafeArtifact {
                entry: path.display().to_string(),
                reason: "the destination has a directory where the archive has a file".into(),
            })
        }
        Ok(_) => fs::remove_file(path).map_err(io)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io)?;
    io::copy(data, &mut file).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            if kind.is_symlink() {
                header.set_size(0);
                builder.append_link(&mut header, name, "/etc/passwd").unwrap();
            } else {
                // `append_data` refuses `..`; write the name into the header directly.
                header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, *data).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    fn stream(bytes: Vec<u8>) -> ChunkStream {
        let chunks: Vec<Result<Vec<u8>>> = bytes.chunks(7).map(|c| Ok(c.to_vec())).collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn files_land_relative_to_the_artifacts_directory_and_a_leading_dot_is_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[
            ("./results/", tar::EntryType::Directory, b""),
            ("./results/a.txt", tar::EntryType::Regular, b"a"),
            ("./results/sub/b.txt", tar::EntryType::Regular, b"bb"),
        ]);
        let written = save(stream(tar), dir.path()).await.unwrap();
        assert_eq!(written, [dir.path().join("a.txt"), dir.path().join("sub/b.txt")]);
        assert_eq!(fs::read(dir.path().join("sub/b.txt")).unwrap(), b"bb");
    }

    #[tokio::test]
    async fn an_entry_escaping_the_directory_refuses_the_whole_archive_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[
            ("results/ok.txt", tar::EntryType::Regular, b"x"),
            ("results/../../evil", tar::EntryType::Regular, b"x"),
        ]);
        let err = save(stream(tar), &dir.path().join("out")).await.unwrap_err();
        assert!(matches!(err, Error::UnsafeArtifact { .. }), "{err}");
        assert!(!dir.path().join("out").exists(), "nothing written");
    }

    #[tokio::test]
    async fn a_link_in_the_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("results/passwd", tar::EntryType::Symlink, b"")]);
        assert!(matches!(save(stream(tar), dir.path()).await.unwrap_err(), Error::UnsafeArtifact { .. }));
    }

    /// `dest/sub -> outside` must not let `sub/evil.txt` land in `outside`.
    #[tokio::test]
    async fn writing_never_follows_a_link_already_in_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (dest, outside) = (dir.path().join("dest"), dir.path().join("outside"));
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("sub")).unwrap();
        let tar = archive(&[("results/sub/evil.txt", tar::EntryType::Regular, b"x")]);
        let err = save(stream(tar), &dest).await.unwrap_err();
        assert!(matches!(err, Error::UnsafeArtifact { .. }), "{err}");
        assert!(!outside.join("evil.txt").exists());
        // A link where a file goes is replaced, not written through.
        std::os::unix::fs::symlink(outside.join("target.txt"), dest.join("f.txt")).unwrap();
        let tar = archive(&[("results/f.txt", tar::EntryType::Regular, b"new")]);
        save(stream(tar), &dest).await.unwrap();
        assert!(!outside.join("target.txt").exists());
        assert_eq!(fs::read(dest.join("f.txt")).unwrap(), b"new");
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_that_stops_sending_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let stalled: ChunkStream =
            Box::pin(futures_util::stream::iter([Ok(vec![0u8; 10])]).chain(futures_util::stream::pending()));
        let err = save(stalled, dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("sent nothing"), "{err}");
    }

    #[tokio::test]
    async fn an_archive_over_the_limit_is_refused_while_it_streams() {
        let dir = tempfile::tempdir().unwrap();
        // An endless stream of zeros: refused once the limit is passed, without holding it.
        let endless: ChunkStream = Box::pin(futures_util::stream::repeat_with(|| Ok(vec![0u8; 1 << 20])));
        let err = save(endless, dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("larger than 256 MiB"), "{err}");
    }
}
