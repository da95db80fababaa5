//! atq examples crate.
