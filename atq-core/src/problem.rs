//! [`Problem`] and [`ValidationError`]: what is wrong with a task (or any input atq checks),
//! field by field. A leaf module: every module that checks input can use it, and the crate's
//! [`Error`](crate::Error) wraps it.

use std::fmt;

/// One broken rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, as written in a task file (`worker.replicas`, `waitCommand.timeout`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// Line in the task file, when the parser knows it.
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A task that breaks one or more rules. It lists every problem, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Every problem found, in field order.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    /// A validation error with a single problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { problems: vec![Problem { field: field.into(), message: message.into(), line: None }] }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid task: {one}"),
            many => {
                write!(f, "invalid task ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ValidationError {}
