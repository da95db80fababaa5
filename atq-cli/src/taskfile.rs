//! Reading task files: YAML, or JSON (ATQ-Director's payload) for `.json` files and text
//! that starts with `{`.

use std::io::Read;
use std::path::Path;

use atq_core::Task;

use crate::error::CliError;

/// Reads and validates the task file at `path` (`-`: stdin), renamed to `name` if given.
pub fn load(path: &Path, name: Option<&str>) -> Result<Task, CliError> {
    let file = path.display().to_string();
    let text = read(path).map_err(|source| CliError::Read { file: file.clone(), source })?;
    let is_json =
        path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) || text.trim_start().starts_with('{');
    let task = if is_json { Task::from_json_str(&text) } else { Task::from_yaml_str(&text) };
    let task = task.map_err(|error| CliError::Invalid { file: file.clone(), error })?;
    match name {
        Some(name) => task.renamed(name).map_err(|error| CliError::Invalid { file: "--name".into(), error }),
        None => Ok(task),
    }
}

fn read(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}
