//! Runnable examples of atq (`cargo run -p atq-examples --example hello`), and the example task
//! files and images under `examples/hello/`, `examples/jmeter/` and `examples/locust/`.

use std::path::PathBuf;

/// The directory holding the example task files.
#[must_use]
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
