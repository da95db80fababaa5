//! Reading task files: YAML, or JSON (ATQ-Director's payload) for `.json` files and text
//! that starts with `{`; at most [`ParseBudget::max_bytes`] of them, within its budget.
//!
//! Reading and parsing run on a blocking thread raced against SIGINT/SIGTERM, so a file that is
//! slow to arrive (a pipe, a FIFO, a stalled network mount) or slow to parse never keeps the CLI
//! from exiting on a signal.

use std::io::Read;
use std::path::{Path, PathBuf};

use atq_core::task::{Format, ParseBudget};
use atq_core::{Task, ValidationError};

use crate::error::CliError;
use crate::signals::Signals;

/// Reads and validates the task file at `path` (`-`: stdin), renamed to `name` if given;
/// a signal meanwhile stops it with [`CliError::Interrupted`].
pub async fn load(path: &Path, name: Option<&str>, signals: &mut Signals) -> Result<Task, CliError> {
    let (path, name) = (path.to_owned(), name.map(str::to_owned));
    let work = tokio::task::spawn_blocking(move || load_now(&path, name.as_deref(), &ParseBudget::default()));
    tokio::select! {
        joined = work => joined.unwrap_or_else(|e| Err(CliError::Core(atq_core::Error::Io {
            path: "task file".into(),
            source: std::io::Error::other(format!("reading the task file failed: {e}")),
        }))),
        // The blocking thread is abandoned: the process exits without waiting for it.
        () = signals.recv() => Err(CliError::Interrupted { abandoned: false }),
    }
}

/// [`load`] on the current thread.
fn load_now(path: &PathBuf, name: Option<&str>, budget: &ParseBudget) -> Result<Task, CliError> {
    let file = path.display().to_string();
    let text = read(path, budget.max_bytes).map_err(|source| CliError::Read { file: file.clone(), source })?;
    let Some(text) = text else {
        let error = ValidationError::single(
            "task",
            format!(
                "the file is larger than the limit of {} bytes: a task file is small; keep data in a data bundle",
                budget.max_bytes
            ),
        );
        return Err(CliError::Invalid { file, error });
    };
    let format = Format::guess((path != Path::new("-")).then_some(path.as_path()), &text);
    let task =
        Task::from_str_with(&text, format, budget).map_err(|error| CliError::Invalid { file: file.clone(), error })?;
    match name {
        Some(name) => task.renamed(name).map_err(|error| CliError::Invalid { file: "--name".into(), error }),
        None => Ok(task),
    }
}

/// The file's text, or None when it holds more than `max_bytes` (never more is read).
fn read(path: &Path, max_bytes: usize) -> std::io::Result<Option<String>> {
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    }
    if bytes.len() > max_bytes {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text: a task file is YAML or JSON")
    })
}
