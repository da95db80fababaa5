//! What the CLI's real-engine tests share.

/// Engine objects still labelled with the task, of one kind (`service`, `config`, `network`,
/// `container`, `volume`), by id.
pub fn leftovers(kind: &str, task: &str) -> Vec<String> {
    let filter = format!("label=io.atq.task={task}");
    let args = if kind == "container" {
        vec!["ps", "-aq", "--filter", &filter]
    } else {
        vec![kind, "ls", "-q", "--filter", &filter]
    };
    let out = std::process::Command::new("docker").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}
