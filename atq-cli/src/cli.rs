//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use atq_core::data::{Shard, SplitMode};

use crate::exit;

/// `--split FILE[=MODE]`: a file of the bundle, split round-robin unless a mode is given.
fn parse_split(arg: &str) -> Result<Shard, String> {
    let (file, mode) = match arg.rsplit_once('=') {
        Some((file, mode)) => (file, mode.parse::<SplitMode>()?),
        None => (arg, SplitMode::RoundRobin),
    };
    if file.is_empty() {
        return Err("give the file's path inside the bundle, like users.csv or users.csv=blocks".into());
    }
    Ok(Shard::new(file).split(mode))
}

const ABOUT: &str = "Run a distributed load test (N workers + 1 master) on Docker from a task file";

const LONG_ABOUT: &str = "\
Run a distributed load test (N workers + 1 master) on Docker from a task file.

atq deploys the task's workers on a private network, tells the master where every worker is
(WORKER_CSV_VIPS, REMOTES), waits for the master to finish, and removes everything it created.
`atq run task.yaml` exits with the master's exit code.

On a swarm manager the task runs as swarm services on an overlay network (across every node);
on a plain engine (no `docker swarm init`) as containers on a bridge network of that machine.
--engine or ATQ_ENGINE picks one explicitly.

Task files are YAML or JSON (ATQ-Director's payload format; `.json` files are read as JSON).";

const AFTER_HELP: &str = "\
Environment:
  DOCKER_HOST   the Docker engine to use (default: the local socket): unix:///path,
                tcp://HOST:PORT or https://HOST:PORT; plain tcp:// only to this machine
                (ATQ_ALLOW_PLAIN_TCP=1 accepts another machine on a network you trust)
  DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
                TLS as the docker CLI does it: ca.pem, cert.pem, key.pem in DOCKER_CERT_PATH
                (default ~/.docker); the engine's certificate is always verified
  ATQ_ENGINE    swarm | docker: the backend (default: swarm on a swarm manager, docker otherwise);
                --engine wins over it
  ATQ_SUBNET_POOL  where task networks' subnets come from (default: 10.208.0.0/13 for swarm,
                10.216.0.0/13 for docker)
  RUST_LOG      tracing output on stderr, e.g. RUST_LOG=atq_core=debug
  NO_COLOR      plain lines instead of progress bars
  ATQ_FAKE=1    for testing the CLI: use an in-memory fake engine instead of Docker
                (nothing is deployed; ATQ_FAKE_MASTER_EXIT=N scripts the master's exit code)";

/// `atq`: the command line.
#[derive(Debug, Parser)]
#[command(name = "atq", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(after_help = format!("{}\n\n{AFTER_HELP}", exit::HELP))]
pub struct Cli {
    /// The backend: `swarm` (Docker Swarm services, many nodes) or `docker` (containers on a
    /// plain engine); default: swarm on a swarm manager, docker otherwise (or ATQ_ENGINE).
    #[arg(long, global = true, value_enum, value_name = "BACKEND")]
    pub engine: Option<EngineArg>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The backends `--engine` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Choose by the engine: swarm on a swarm manager, docker otherwise.
    Auto,
    /// Docker Swarm: services on an overlay network, across every node.
    Swarm,
    /// A plain Docker engine: containers on a bridge network of one machine.
    Docker,
}

impl From<EngineArg> for atq_core::cluster::select::EngineChoice {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Auto => Self::Auto,
            EngineArg::Swarm => Self::Swarm,
            EngineArg::Docker => Self::Docker,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a task, stream its master's logs, tear it down, exit with the master's exit code.
    #[command(after_help = exit::HELP)]
    Run(RunArgs),
    /// Deploy a task and leave it running; print its name and worker addresses.
    Up(UpArgs),
    /// Remove every engine object of a task.
    Down {
        /// The task's name.
        name: String,
    },
    /// List the atq tasks on the engine, whoever deployed them.
    Ls {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print what the engine holds of one task, as JSON.
    Inspect {
        /// The task's name.
        name: String,
    },
    /// Print the logs of one role of a task.
    Logs(LogsArgs),
    /// Remove tasks left behind: never one whose deploying process still runs; one whose process
    /// is gone unless it was deployed to stay (`up`, `--keep`); otherwise only past its expiry.
    Prune {
        /// Remove every object atq created, running tasks included.
        #[arg(long)]
        all: bool,
        /// Only say what would be removed, and why; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check a task file without an engine; print every problem with its field and line, and
    /// how sharded files split across the workers.
    Validate {
        /// The task file (YAML or JSON; `-` reads stdin).
        file: PathBuf,
        /// Read this zip file or directory as the workers' data bundle (as `atq run --data`
        /// would push it) and count the rows each worker gets of every sharded file.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
        /// With --data: mark a file of it for sharding, as `atq data push --split` does.
        #[arg(long, value_name = "FILE[=MODE]", value_parser = parse_split, requires = "data")]
        split: Vec<Shard>,
    },
    /// Show the engine: version, which backend drives it and why, nodes, atq tasks.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Data bundles: test plans and data files shipped to every container under /atq/data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run the HTTP service: ATQ-Director's v1 API and atq's v2 (bearer tokens, Server-Sent
    /// Events, OpenAPI at /openapi.json), one queue shared by every client.
    Serve(crate::serve::ServeArgs),
    /// The bearer tokens of `atq serve`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Summarise results files offline (JMeter JTL, Locust --csv, k6 csv): merge them, judge
    /// thresholds, print a table, write summary.json / junit.xml / report.html.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
}

const REPORT_HELP: &str = "\
Thresholds: [label=NAME: | worker=NAME: | total:] METRIC OP LIMIT
  METRIC  p50 .. p99.9 (or p(95)), median, mean, min, max   LIMIT in ms or s
          error_rate                                       LIMIT in %
          throughput (or rps)                              LIMIT in /s
          errors, count                                    a plain number
  OP      <  <=  >  >=
  e.g. --threshold 'p95 < 500ms' --threshold 'error_rate < 1%'
       --threshold 'throughput > 50/s' --threshold 'label=login: p99 < 1s'
A threshold about a label or worker without samples fails.

Exit codes:
  0     every threshold held (or none was given)
  99    a threshold failed (as `atq run` when the master exited 0; a master's own
        non-zero code wins there)
  125   atq's own error: bad usage, a bad threshold, a file missing, unreadable,
        in XML form, or of mixed formats";

/// Arguments of `atq report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results files: JTL (CSV), Locust `--csv` files (any of the set, or the prefix), k6 CSV.
    /// Several JTL or k6 files (runs, or one per worker) merge into one summary.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A pass/fail threshold (repeatable), e.g. 'p95 < 500ms'.
    #[arg(long, short = 't', value_name = "THRESHOLD")]
    pub threshold: Vec<String>,
    /// The files' format (default: told from each file).
    #[arg(long, value_name = "FORMAT", default_value = "auto", value_parser = parse_format)]
    pub format: atq_core::results::Format,
    /// Print summary.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write report.html here.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Write junit.xml here.
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
    /// Write summary.json, junit.xml and report.html into DIR.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Stop at the first malformed row (default: skip malformed rows, count them, quote the first few).
    #[arg(long)]
    pub strict: bool,
    /// Title of the report (default: the first file's name).
    #[arg(long)]
    pub title: Option<String>,
}

fn parse_format(s: &str) -> Result<atq_core::results::Format, String> {
    s.parse()
}

/// `atq token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token: print it once on stdout, store only its SHA-256 in the tokens file.
    Add {
        /// Its name: the owner of the runs it submits.
        name: String,
        /// What it allows, comma-separated: runs:read, runs:write, data:write, admin.
        #[arg(long, value_delimiter = ',', default_value = "runs:read,runs:write")]
        scopes: Vec<String>,
        /// The tokens file.
        #[arg(long, value_name = "FILE", default_value = "atq-tokens.json")]
        tokens: PathBuf,
    },
    /// List the tokens' names and scopes (never the tokens).
    Ls {
        /// The tokens file.
        #[arg(long, value_name = "FILE", default_value = "atq-tokens.json")]
        tokens: PathBuf,
    },
    /// Remove a token by name.
    Rm {
        /// Its name.
        name: String,
        /// The tokens file.
        #[arg(long, value_name = "FILE", default_value = "atq-tokens.json")]
        tokens: PathBuf,
    },
}

/// `atq data …`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Store a zip file or a directory on the engine; print its id (a task's `fileid`) alone on
    /// stdout, so that `ID=$(atq data push DIR)` works; messages go to stderr.
    Push {
        /// A .zip file or a directory.
        path: PathBuf,
        /// No message on stderr: only the id, on stdout.
        #[arg(long, short)]
        quiet: bool,
        /// Mark a CSV file of the bundle (its path inside it) to be split across the workers of
        /// every task that mounts the bundle: `users.csv` (round-robin) or `users.csv=blocks`.
        /// Repeatable. The bundle stores the whole file; each deploy splits it for its workers.
        #[arg(long, value_name = "FILE[=MODE]", value_parser = parse_split)]
        split: Vec<Shard>,
    },
    /// List the bundles on the engine.
    Ls {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a bundle (refused while a task uses it).
    Rm {
        /// The bundle's id.
        id: String,
    },
}

impl Command {
    /// Whether the command prints JSON (so its error is printed as JSON too).
    #[must_use]
    pub fn json(&self) -> bool {
        match self {
            Command::Run(a) => a.json,
            Command::Up(a) => a.json,
            Command::Ls { json } | Command::Info { json } | Command::Data(DataCommand::Ls { json }) => *json,
            Command::Report(a) => a.json,
            _ => false,
        }
    }
}

/// Arguments of `atq run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task file (YAML or JSON; `-` reads stdin).
    pub file: PathBuf,
    /// Leave the task on the engine after the master exits (`atq down NAME` removes it).
    #[arg(long, conflicts_with = "keep_on_failure")]
    pub keep: bool,
    /// Leave the task on the engine only if the run failed (the deploy, the master's exit code,
    /// a worker, the artifacts), to look at it; tear it down otherwise.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Also stream every worker's log lines (prefixed with `[worker.N]`), not only the master's.
    #[arg(long)]
    pub worker_logs: bool,
    /// Give the master at most this many seconds to exit (default: the task's runTimeout).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Print one JSON object per line: events, log lines, and a final outcome.
    #[arg(long)]
    pub json: bool,
    /// Use this task name instead of the file's.
    #[arg(long)]
    pub name: Option<String>,
    /// Push this zip file or directory as a data bundle and mount it at /atq/data in every
    /// role that names no data of its own.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// With --data: mark a file of it to be split across the workers, as `atq data push --split`
    /// does (`users.csv` round-robin, or `users.csv=blocks`). Repeatable.
    #[arg(long, value_name = "FILE[=MODE]", value_parser = parse_split, requires = "data")]
    pub split: Vec<Shard>,
    /// Save the master's artifacts (the files it wrote in the task's `artifacts` directory)
    /// into DIR after it exits (default: ./atq-artifacts/TASK/ when the task sets artifacts).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
}

/// Arguments of `atq up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The task file (YAML or JSON; `-` reads stdin).
    pub file: PathBuf,
    /// Print one JSON object per line: events, then `{"event":"up",...}`.
    #[arg(long)]
    pub json: bool,
    /// Use this task name instead of the file's.
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `atq logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task's name.
    pub name: String,
    /// Whose logs.
    #[arg(long, value_enum, default_value_t = RoleArg::Master)]
    pub role: RoleArg,
    /// Keep printing new lines until every replica of the role has exited.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each replica.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines written in the last DURATION (`90s`, `10m`, `2h`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Prefix each line with the time the engine received it (RFC 3339).
    #[arg(short, long)]
    pub timestamps: bool,
}

/// The roles whose logs can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// The master service.
    Master,
    /// The worker service (every replica).
    Worker,
    /// The wait-command probe.
    Probe,
}

impl From<RoleArg> for atq_core::labels::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Master => Self::Master,
            RoleArg::Worker => Self::Worker,
            RoleArg::Probe => Self::Probe,
        }
    }
}

/// A duration as `90s`, `10m`, `2h`, `1h30m` (humantime's format).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}: write a duration like 90s, 10m or 2h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_arguments_name_a_file_and_maybe_a_mode() {
        assert_eq!(parse_split("users.csv"), Ok(Shard::new("users.csv")));
        assert_eq!(parse_split("data/ids.csv=blocks"), Ok(Shard::new("data/ids.csv").split(SplitMode::Blocks)));
        assert!(parse_split("users.csv=stripes").unwrap_err().contains("round-robin or blocks"));
        assert!(parse_split("=blocks").is_err());
    }
}
