//! The commands other than `run` and `up`: each calls the core once and prints the result.

use std::io::Write;

use atq_core::data::Shard;
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
        Command::Validate { file, data, split } => {
            let data = data.as_deref().map(|path| (path, split.as_slice()));
            validate(&taskfile::load(&file, None, signals).await?, &file.display().to_string(), data)?;
        }
        Command::Token(command) => crate::serve::token_command(command).map_err(CliError::Usage)?,
        Command::Serve(args) => {
            let auth = crate::serve::auth_of(&args).map_err(CliError::Usage)?;
            let director = engine::director().await?;
            let mut stop = crate::signals::Signals::listen()
                .map_err(|e| CliError::Core(atq_core::Error::Io { path: "signal handlers".into(), source: e }))?;
            let shutdown = async move { stop.recv().await };
            crate::serve::serve(args, auth, director, shutdown).await.map_err(CliError::Usage)?;
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "atq", &mut std::io::stdout());
        }
        // The rest need an engine and hold nothing to clean up: a signal just stops them.
        command => {
            tokio::select! {
                result = engine_command(command) => result?,
                () = signals.recv() => return Err(CliError::Interrupted { abandoned: false }),
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
        Command::Prune { all, dry_run } => prune(&director, all, dry_run).await?,
        Command::Info { json } => cluster_info::info(&director, json).await?,
        Command::Data(DataCommand::Push { path, quiet, split }) => {
            data::push_command(&director, &path, quiet, &split).await?;
        }
        Command::Data(DataCommand::Ls { json }) => data::ls(&director, json).await?,
        Command::Data(DataCommand::Rm { id }) => data::rm(&director, &id).await?,
        Command::Run(_)
        | Command::Up(_)
        | Command::Validate { .. }
        | Command::Completions { .. }
        | Command::Serve(_)
        | Command::Token(_)
        | Command::Report(_) => {
            unreachable!("dispatched before")
        }
    }
    Ok(())
}

fn validate(task: &Task, file: &str, data: Option<(&std::path::Path, &[Shard])>) -> Result<(), CliError> {
    let (w, m) = (task.workers(), task.master());
    let probe = if task.wait_command().is_some() { ", a wait command" } else { "" };
    let thresholds = match task.thresholds().len() {
        0 => String::new(),
        n => format!(", {n} threshold(s)"),
    };
    out(&format!(
        "{file}: valid: task '{}': {} worker(s) of {}, master {}{probe}{thresholds}",
        task.name(),
        w.replicas,
        w.image,
        m.image
    ));
    let Some((path, split)) = data else {
        for (i, shard) in w.shards.iter().enumerate() {
            out(&format!(
                "  worker.shards[{i}]: {} split {} across {} workers (rows are counted at deploy; --data PATH counts them now)",
                shard.file, shard.split, w.replicas
            ));
        }
        return Ok(());
    };
    let mut bundle = atq_core::DataBundle::from_path(path, &atq_core::data::Limits::default())?;
    for shard in split {
        bundle = bundle.with_shard(shard.clone())?;
    }
    if let Some(named) = w.fileid.as_deref().filter(|id| *id != bundle.id()) {
        err(&format!(
            "atq: note: worker.fileid names bundle {named}, and {} is bundle {}: counting rows in {}",
            path.display(),
            bundle.id(),
            path.display()
        ));
    }
    for (i, sharded) in atq_core::data::split_bundle_shards(w, &bundle)?.iter().enumerate() {
        out(&format!(
            "  worker.shards[{i}]: {} split {} across {} workers: {} rows, {}",
            sharded.shard.file,
            sharded.shard.split,
            w.replicas,
            sharded.slices.total_rows(),
            rows_per_worker(sharded.slices.rows_per_worker())
        ));
    }
    Ok(())
}

/// `3, 3, 2, 2 rows per worker`, or for many workers `2 to 3 rows per worker (5000 with 3)`.
fn rows_per_worker(counts: &[usize]) -> String {
    const LISTED: usize = 16;
    if counts.len() <= LISTED {
        let list: Vec<String> = counts.iter().map(usize::to_string).collect();
        return format!("{} rows per worker (worker 1 first)", list.join(", "));
    }
    let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
    if min == max {
        return format!("{min} rows per worker");
    }
    let at_max = counts.iter().filter(|&&c| c == max).count();
    format!("{min} to {max} rows per worker ({at_max} with {max}, from worker 1)")
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

/// `NAME  STATE  WORKERS  AGE  OWNER  PRUNE`, columns padded to their widest cell; PRUNE says
/// whether `atq prune` would remove the task, and why.
fn table(tasks: &[TaskInfo], now: i64) -> String {
    let mut rows =
        vec![["NAME".to_owned(), "STATE".into(), "WORKERS".into(), "AGE".into(), "OWNER".into(), "PRUNE".into()]];
    for t in tasks {
        rows.push([
            t.name.clone(),
            t.state.to_string(),
            format!("{}/{}", t.workers_running, t.workers_total),
            t.created.map_or_else(|| "-".into(), |c| age(now - c)),
            t.owner.as_deref().map_or_else(|| "-".into(), short_owner),
            if t.prune.remove { format!("yes: {}", t.prune.why) } else { "no".into() },
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
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

/// `atq prune [--all] [--dry-run]`: what was (or would be) removed, a task per line on stdout
/// with why, failures on stderr; exits 125 when a removal failed.
async fn prune(director: &Director, all: bool, dry_run: bool) -> Result<(), CliError> {
    if dry_run {
        let plan = director.prune_plan().await?;
        let chosen: Vec<_> = plan.iter().filter(|(_, d)| all || d.remove).collect();
        if chosen.is_empty() {
            err("atq: nothing would be pruned");
        }
        for (name, decision) in chosen {
            let why = if all { "--all".to_owned() } else { decision.why.to_string() };
            out(&format!("{name}\twould be removed: {why}"));
        }
        return Ok(());
    }
    let report = if all { director.prune_all().await? } else { director.prune().await? };
    if report.tasks.is_empty() {
        err("atq: nothing to prune");
        return Ok(());
    }
    for task in &report.tasks {
        match &task.error {
            None => out(&format!("{}\tremoved ({} objects): {}", task.name, task.resources, task.why)),
            Some(e) => err(&format!("atq: could not remove task {} ({}): {e}", task.name, task.why)),
        }
    }
    let removed = report.removed().len();
    err(&format!("atq: removed {removed} task(s), {} engine object(s)", report.resources()));
    if report.has_failures() {
        return Err(CliError::Core(atq_core::Error::Cancelled(format!(
            "{} task(s) could not be removed; run `atq prune` again",
            report.tasks.len() - removed
        ))));
    }
    Ok(())
}

/// `atq logs NAME [--role R] [-f] [--tail N] [--since D] [-t]`: every replica of the role, in
/// time order; worker lines are prefixed with their replica.
async fn logs(director: &Director, args: LogsArgs) -> Result<(), CliError> {
    let role: atq_core::labels::Role = args.role.into();
    let options = atq_core::cluster::LogOptions {
        follow: args.follow,
        tail: args.tail,
        since: args.since.map(|d| std::time::SystemTime::now() - d),
    };
    let mut stream = director.logs(&args.name, role, &options).await?;
    while let Some(line) = stream.next().await {
        let line = line?;
        let mut text = String::new();
        if args.timestamps {
            if let Some(time) = line.time {
                text.push_str(&humantime::format_rfc3339_nanos(time).to_string());
                text.push(' ');
            }
        }
        if role != atq_core::labels::Role::Master {
            if let Some(n) = line.replica {
                text.push_str(&format!("[{role}.{n}] "));
            }
        }
        text.push_str(&line.text);
        match line.source {
            atq_core::cluster::LogSource::Stdout => out(&text),
            atq_core::cluster::LogSource::Stderr => err(&text),
        }
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

/// `host:pid` of an owner label (its boot id and namespaces are for prune, not for reading).
fn short_owner(owner: &str) -> String {
    match atq_core::Owner::parse(owner) {
        Some(o) => format!("{}:{}", o.host, o.pid),
        None => owner.to_owned(),
    }
}

/// The error as JSON, for commands run with `--json` (the run stream's own `error` object).
#[must_use]
pub fn error_json(error: &CliError) -> String {
    let mut value = match error {
        CliError::Core(e) => atq_core::run::error_json("", e),
        _ => {
            let mut v = json!({"event": "error", "kind": "usage", "message": error.to_string()});
            atq_core::event::stamp(&mut v, std::time::SystemTime::now());
            v
        }
    };
    value["exit_code"] = exit::of_error(error).into();
    if let Some(object) = value.as_object_mut() {
        if object.get("task").and_then(|t| t.as_str()) == Some("") {
            object.remove("task");
        }
    }
    value.to_string()
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
    fn rows_per_worker_are_listed_for_few_workers_and_summed_up_for_many() {
        assert_eq!(rows_per_worker(&[3, 3, 2, 2]), "3, 3, 2, 2 rows per worker (worker 1 first)");
        let mut many = vec![3; 5000];
        many.extend(vec![2; 5000]);
        assert_eq!(rows_per_worker(&many), "2 to 3 rows per worker (5000 with 3, from worker 1)");
        assert_eq!(rows_per_worker(&[0; 20]), "0 rows per worker");
    }

    #[test]
    fn an_empty_table_has_its_header() {
        assert_eq!(table(&[], 0), "NAME  STATE  WORKERS  AGE  OWNER  PRUNE");
    }
}
