//! The commands other than `run` and `up`: each calls the core once and prints the result.

use std::io::Write;

use atq_core::{Director, Task, TaskInfo};
use clap::CommandFactory;
use futures_util::StreamExt;
use serde_json::json;

use crate::cli::{Cli, Command, DataCommand, LogsArgs};
use crate::cluster_info;
use crate::display::{err, out};
use crate::error::CliError;
use crate::signals::Signals;
use crate::{data, engine, exit, run, taskfile};

/// Runs the command; returns the exit code on success.
pub async fn dispatch(command: Command, signals: &mut Signals) -> Result<u8, CliError> {
    match command {
        Command::Run(args) => return run::run(args, signals).await,
        Command::Up(args) => return run::up(args, signals).await,
        Command::Report(args) => return crate::report::report(args),
        Command::Validate { file } => validate(&taskfile::load(&file, None)?, &file.display().to_string())?,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "atq", &mut std::io::stdout());
        }
        // The rest need an engine and hold nothing to clean up: a signal just stops them.
        command => {
            tokio::select! {
                result = engine_command(command) => result?,
                () = signals.recv() => return Err(CliError::Interrupted),
            }
        }
    }
    Ok(exit::SUCCESS)
}

async fn engine_command(command: Command) -> Result<(), CliError> {
    let director = engine::director().await?;
    match command {
        Command::Down { name } => {
            director.teardown(&name).await?;
            err(&format!("atq: task {name} removed"));
        }
        Command::Ls { json } => ls(&director, json).await?,
        Command::Inspect { name } => {
            let info = director.inspect(&name).await?;
            out(&serde_json::to_string_pretty(&info).expect("task info serialises"));
        }
        Command::Logs(args) => logs(&director, args).await?,
        Command::Prune { all } => {
            let report = if all { director.prune_all().await? } else { director.prune().await? };
            if report.tasks.is_empty() && report.resources == 0 {
                err("atq: nothing to prune");
            } else {
                err(&format!("atq: removed {} task(s), {} engine object(s)", report.tasks.len(), report.resources));
                for task in &report.tasks {
                    out(task);
                }
            }
        }
        Command::Info { json } => cluster_info::info(&director, json).await?,
        Command::Data(DataCommand::Push { path }) => data::push_command(&director, &path).await?,
        Command::Data(DataCommand::Ls { json }) => data::ls(&director, json).await?,
        Command::Data(DataCommand::Rm { id }) => data::rm(&director, &id).await?,
        Command::Run(_)
        | Command::Up(_)
        | Command::Validate { .. }
        | Command::Completions { .. }
        | Command::Report(_) => {
            unreachable!("dispatched before")
        }
    }
    Ok(())
}

fn validate(task: &Task, file: &str) -> Result<(), CliError> {
    let (w, m) = (task.workers(), task.master());
    let probe = if task.wait_command().is_some() { ", a wait command" } else { "" };
    out(&format!(
        "{file}: valid: task '{}': {} worker(s) of {}, master {}{probe}",
        task.name(),
        w.replicas,
        w.image,
        m.image
    ));
    Ok(())
}

async fn ls(director: &Director, json: bool) -> Result<(), CliError> {
    let tasks = director.list().await?;
    if json {
        out(&serde_json::to_string(&tasks).expect("task info serialises"));
        return Ok(());
    }
    out(&table(&tasks, atq_core_now()));
    Ok(())
}

pub(crate) fn atq_core_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `NAME  STATE  WORKERS  AGE  OWNER`, columns padded to their widest cell.
fn table(tasks: &[TaskInfo], now: i64) -> String {
    let mut rows = vec![["NAME".to_owned(), "STATE".into(), "WORKERS".into(), "AGE".into(), "OWNER".into()]];
    for t in tasks {
        rows.push([
            t.name.clone(),
            t.state.to_string(),
            format!("{}/{}", t.workers_running, t.workers_total),
            t.created.map_or_else(|| "-".into(), |c| age(now - c)),
            t.owner.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

async fn logs(director: &Director, args: LogsArgs) -> Result<(), CliError> {
    let mut stream = director.logs(&args.name, args.role.into(), args.follow).await?;
    while let Some(line) = stream.next().await {
        let line = line?;
        match line.source {
            atq_core::cluster::LogSource::Stdout => out(&line.text),
            atq_core::cluster::LogSource::Stderr => err(&line.text),
        }
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The error as JSON, for commands run with `--json`.
#[must_use]
pub fn error_json(error: &CliError) -> String {
    json!({"event": "error", "message": error.to_string(), "exit_code": exit::of_error(error)}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m");
        assert_eq!(age(7300), "2h");
        assert_eq!(age(200_000), "2d");
    }

    #[test]
    fn an_empty_table_has_its_header() {
        assert_eq!(table(&[], 0), "NAME  STATE  WORKERS  AGE  OWNER");
    }
}
