//! Every example task file is a valid task.

use atq_core::Task;

fn task_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(atq_examples::examples_dir()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_example_task_file_parses_and_validates() {
    let files = task_files();
    assert!(!files.is_empty(), "no example task files found");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed = if f.extension().is_some_and(|e| e == "json") {
            Task::from_json_str(&text)
        } else {
            Task::from_yaml_str(&text)
        };
        if let Err(e) = parsed {
            panic!("{}: {e}", f.display());
        }
    }
}

#[test]
fn the_readmes_task_file_example_is_valid() {
    let readme = std::fs::read_to_string(atq_examples::examples_dir().join("../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .filter(|block| block.starts_with("name:"))
        .collect();
    assert!(!blocks.is_empty(), "README.md has a task file example");
    for block in blocks {
        if let Err(e) = Task::from_yaml_str(block) {
            panic!("README.md's task file example: {e}\n{block}");
        }
    }
}
