//! The engine's rules for object names, enforced the same way by every backend (and the fake),
//! so a task valid on one is valid on the other.
//!
//! Swarm's rule for service and network names is `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most
//! 63 characters; config names may also hold `.`, at most 64. A plain engine is more lenient
//! (container and volume names allow `.` anywhere after the first character, networks almost
//! anything), but the plain backend applies the swarm rule too: names stay portable.

use crate::error::{Error, Result};

/// Longest service or network name the engine accepts.
pub const MAX_NAME: usize = 63;

/// Longest config name the engine accepts.
pub const MAX_CONFIG_NAME: usize = 64;

/// Letters and digits, with `-` and `_` (and `.` for configs, `dots`) inside, at most `max`.
///
/// # Errors
/// An [`Error::Engine`] for `operation` on `name` saying what is allowed.
pub(crate) fn check(operation: &'static str, name: &str, dots: bool, max: usize) -> Result<()> {
    let inner_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (dots && c == '.');
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(inner_ok);
    if ok {
        Ok(())
    } else {
        let allowed = if dots { "letters, digits, '-', '_' and '.'" } else { "letters, digits, '-' and '_'" };
        Err(Error::engine(
            operation,
            name,
            format!("invalid name: use {allowed}, start and end with a letter or digit, at most {max} characters"),
        ))
    }
}

/// [`check`] for a service or network name.
pub(crate) fn check_object(operation: &'static str, name: &str) -> Result<()> {
    check(operation, name, false, MAX_NAME)
}

/// [`check`] for a config name.
pub(crate) fn check_config(operation: &'static str, name: &str) -> Result<()> {
    check(operation, name, true, MAX_CONFIG_NAME)
}
