//! What can go wrong while reading, judging or writing results.

use std::path::PathBuf;

/// Why results could not be read or written. Every variant names the file (and the line, when
/// there is one) and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// The file (or a Locust file set) does not exist.
    #[error("results file {} not found: {hint}", path.display())]
    NotFound {
        /// The path that was looked for.
        path: PathBuf,
        /// What to check ("the master writes it under ATQ_RESULTS_DIR", …).
        hint: String,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JMeter results file in XML form: atq reads the CSV form only.
    #[error("{} is a JMeter JTL in XML form; atq reads JTL in CSV form: run JMeter with -Jjmeter.save.saveservice.output_format=csv (or set it in user.properties)", path.display())]
    XmlJtl {
        /// The file.
        path: PathBuf,
    },

    /// The file's format could not be recognised.
    #[error("{}: cannot tell its format ({reason}): name it with --format jtl|locust|k6 (or `results.format` in the task)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen.
        reason: String,
    },

    /// A row (or the header) is malformed and the options say to stop.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line where the row starts.
        line: u64,
        /// What is wrong, and what was expected.
        message: String,
    },

    /// The file holds no sample at all.
    #[error("{}: no samples (only a header, or every row was malformed): did the test run?", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// Files that cannot be merged into correct numbers (Locust summaries, mixed formats).
    #[error("cannot merge {}: {reason}", files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    CannotMerge {
        /// The files given.
        files: Vec<PathBuf>,
        /// Why not.
        reason: String,
    },

    /// A threshold that does not parse.
    #[error(transparent)]
    Threshold(#[from] crate::results::ThresholdError),
}

impl ResultsError {
    /// Shorthand for an [`ResultsError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ResultsError::Io { path: path.into(), source }
    }
}
