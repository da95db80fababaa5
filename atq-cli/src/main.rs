//! `atq`: run a distributed load test on Docker (Swarm, or a plain engine) from a task file.
//!
//! Thin on purpose: parsing ([`cli`]), display ([`display`]) and exit codes ([`exit`]); every
//! behaviour lives in `atq-core`.
//!
//! ## Layout
//! - [`cli`]: the command line (clap derive), with the exit codes in `--help`.
//! - [`run`]: `atq run` and `atq up`: progress, the master's logs, cleanup on interrupt.
//! - [`commands`]: the other commands, one core call each.
//! - [`data`]: `atq data push | ls | rm`.
//! - [`serve`]: `atq serve`, the HTTP service (v1 and v2, tokens, SSE, OpenAPI), and `atq token`.
//! - [`report`]: `atq report FILE...`: results summarised, judged and written offline.
//! - [`display`]: progress bars, plain lines or JSON lines.
//! - [`exit`]: every exit code, in one place.
//! - [`error`]: what a command can fail with, and its one-line message.
//! - [`engine`]: which backend (swarm, plain Docker, or the in-memory fake under `ATQ_FAKE=1`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod cli;
mod cluster_info;
mod commands;
mod data;
mod display;
mod engine;
mod error;
mod exit;
mod report;
mod run;
mod serve;
mod signals;
mod taskfile;

/// How long atq waits at exit for background cleanups (of dropped handles) to finish.
const EXIT_CLEANUP_WAIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; bad usage is atq's own error (not the master's 2).
            let code = if e.use_stderr() { exit::ATQ_ERROR } else { exit::SUCCESS };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    engine::choose(cli.engine.map(Into::into));
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            display::err(&format!("atq: error: cannot start the async runtime: {e}"));
            return ExitCode::from(exit::ATQ_ERROR);
        }
    };
    let result = runtime.block_on(async {
        let mut signals = signals::Signals::listen()
            .map_err(|e| error::CliError::Core(atq_core::Error::Io { path: "signal handlers".into(), source: e }))?;
        commands::dispatch(cli.command, &mut signals).await
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    // Cleanups of dropped handles run on atq's cleanup thread: give them a bounded while to end.
    if !atq_core::cleanup::wait_idle(EXIT_CLEANUP_WAIT) {
        display::err(&format!(
            "atq: {} cleanup(s) still running after {EXIT_CLEANUP_WAIT:?}: `atq prune` removes what is left",
            atq_core::cleanup::pending()
        ));
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                display::out(&commands::error_json(&e));
            }
            display::err(&format!("atq: error: {e}"));
            ExitCode::from(exit::of_error(&e))
        }
    }
}

/// `RUST_LOG` turns on tracing output (stderr); without it, only the core's warnings show.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("atq_core=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !display::no_color();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}
