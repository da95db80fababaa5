//! Exit codes, in one place.
//!
//! `atq run` passes the master's exit code through, as `docker run` passes its container's; atq's
//! own failures use 125 (as `docker run` does) and an interrupt 130 (128 + SIGINT).

use crate::error::CliError;

/// Success.
pub const SUCCESS: u8 = 0;
/// atq itself failed: bad usage, invalid task file, engine unreachable, deploy failed, timeout…
pub const ATQ_ERROR: u8 = 125;
/// Interrupted (SIGINT or SIGTERM); what was deployed has been torn down.
pub const INTERRUPTED: u8 = 130;

/// The exit code table, for `--help`.
pub const HELP: &str = "\
Exit codes:
  0     success (for `run`: the master exited 0)
  N     `run`: the master's own exit code, passed through unchanged (1..=255)
  99    a threshold failed (`report`; `run` once the master exited 0 — a master's
        own non-zero code wins), or results were missing while thresholds are set
  125   atq's own error: bad usage, invalid task file, engine unreachable, deploy failed,
        timeout, or a master exit code outside 0..=255 (the real code is printed)
  130   interrupted by Ctrl-C (SIGINT) or SIGTERM; what was deployed was torn down
A master may itself exit 125 or 130: `run --json` tells them apart (the final
{\"event\":\"outcome\"} line carries the master's code).";

/// The exit code of `atq run` for a master that exited with `code`: the code itself, or
/// [`ATQ_ERROR`] when no process can exit with it (negative, or above 255).
#[must_use]
pub fn of_master(code: i64) -> u8 {
    u8::try_from(code).unwrap_or(ATQ_ERROR)
}

/// The exit code for a failed command.
#[must_use]
pub fn of_error(error: &CliError) -> u8 {
    match error {
        CliError::Interrupted => INTERRUPTED,
        CliError::Core(_)
        | CliError::Invalid { .. }
        | CliError::Read { .. }
        | CliError::Results(_)
        | CliError::Usage(_) => ATQ_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_codes_in_range_pass_through() {
        assert_eq!(of_master(0), 0);
        assert_eq!(of_master(3), 3);
        assert_eq!(of_master(255), 255);
    }

    #[test]
    fn master_codes_out_of_range_are_atq_errors() {
        assert_eq!(of_master(-1), ATQ_ERROR);
        assert_eq!(of_master(256), ATQ_ERROR);
    }
}
