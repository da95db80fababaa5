//! atq benches crate.
