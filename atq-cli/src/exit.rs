//! Exit codes, in one place: the core's rule ([`atq_core::RunReport::exit_code`]) for a run, and
//! the codes of atq's own errors.
//!
//! `atq run` passes the master's exit code through, as `docker run` passes its container's; atq's
//! own failures use 125 (as `docker run` does) and an interrupt 130 (128 + SIGINT).

use crate::error::CliError;

/// Success.
pub const SUCCESS: u8 = 0;
/// atq itself failed: bad usage, invalid task file, engine unreachable, deploy failed, timeout…
pub const ATQ_ERROR: u8 = atq_core::run::EXIT_ATQ_ERROR;
/// Interrupted (SIGINT, SIGTERM or SIGHUP).
pub const INTERRUPTED: u8 = atq_core::run::EXIT_INTERRUPTED;

/// The exit code table, for `--help`.
pub const HELP: &str = "\
Exit codes (the first that applies):
  N     `run`: the master's own non-zero exit code, passed through unchanged (1..=255);
        126/127 when the engine could not start its program (the reason is printed)
  125   atq's own error: bad usage, invalid task file, engine unreachable, deploy failed,
        timeout, artifacts not saved, teardown incomplete, or a master exit code outside
        0..=255 (the real code is printed)
  99    a threshold failed (`report`, and `run` once the master exited 0), or the results
        were missing or unreadable while thresholds are set
  98    `run`: the master exited 0 but workers stopped while it ran (less load than asked)
  0     success (for `run`: the master exited 0, every worker stayed up)
  130   interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP: what was deployed is removed
        first; a second signal stops waiting for that (`atq prune` removes what is left)
A master may itself exit 125 or 130: `run --json` tells them apart (the final
{\"event\":\"outcome\"} line carries the master's code).";

/// The exit code for a failed command.
#[must_use]
pub fn of_error(error: &CliError) -> u8 {
    match error {
        CliError::Interrupted { .. } => INTERRUPTED,
        CliError::Core(_)
        | CliError::Invalid { .. }
        | CliError::Read { .. }
        | CliError::Results(_)
        | CliError::Usage(_) => ATQ_ERROR,
    }
}
