//! atq tests crate.
