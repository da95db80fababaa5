//! The CLI's errors: the core's, plus reading task files and interrupts.

use std::fmt;

use atq_core::{Error, ValidationError};

/// Why a command failed. [`crate::exit::of_error`] maps each to an exit code.
#[derive(Debug)]
pub enum CliError {
    /// The core failed; its message says what to do.
    Core(Error),
    /// A task file breaks rules; every problem names its field (and line, when known).
    Invalid {
        /// The file, as given on the command line.
        file: String,
        /// Every problem.
        error: ValidationError,
    },
    /// A task file could not be read.
    Read {
        /// The file, as given on the command line.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM arrived; cleanup has run.
    Interrupted,
    /// Results files could not be read or merged (`atq report`).
    Results(atq_core::results::ResultsError),
    /// A bad argument that clap cannot check (a threshold that does not parse).
    Usage(String),
}

impl From<atq_core::results::ResultsError> for CliError {
    fn from(e: atq_core::results::ResultsError) -> Self {
        CliError::Results(e)
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Core(e)
    }
}

impl fmt::Display for CliError {
    /// One line saying what failed and what to do; for an invalid file, one more line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Core(Error::Validation(error)) => write_problems(f, "the task", error),
            CliError::Core(e @ Error::EngineUnreachable { host, .. }) => {
                write!(f, "{e}")?;
                match std::env::var("DOCKER_HOST") {
                    Ok(tried) if !host.contains(&tried) => write!(f, " (DOCKER_HOST={tried})"),
                    Ok(_) => Ok(()),
                    Err(_) => write!(f, " (DOCKER_HOST is not set: the default socket was tried)"),
                }
            }
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Invalid { file, error } => write_problems(f, file, error),
            CliError::Read { file, source } => write!(f, "cannot read task file {file}: {source}"),
            CliError::Interrupted => write!(f, "interrupted; what was deployed has been torn down"),
            CliError::Results(e) => write!(f, "{e}"),
            CliError::Usage(message) => f.write_str(message),
        }
    }
}

/// `FILE is not a valid task (N problems):` then `  FILE:LINE: field: message` per problem.
fn write_problems(f: &mut fmt::Formatter<'_>, file: &str, error: &ValidationError) -> fmt::Result {
    let n = error.problems.len();
    write!(f, "{file} is not a valid task ({n} problem{}):", if n == 1 { "" } else { "s" })?;
    for p in &error.problems {
        match p.line {
            Some(line) => write!(f, "\n  {file}:{line}: {}: {}", p.field, p.message)?,
            None => write!(f, "\n  {file}: {}: {}", p.field, p.message)?,
        }
    }
    Ok(())
}
