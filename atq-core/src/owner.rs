//! [`Owner`]: which process created an engine object, so `prune` can tell a live task from a
//! leftover of a killed one.

use std::fmt;

/// The process that created an engine object, stored as `host:pid:start` under
/// [`labels::OWNER`](crate::labels::OWNER).
///
/// `start` is the process's start time (clock ticks since boot, from `/proc/<pid>/stat`), so a
/// reused pid is not mistaken for the owner. On systems without `/proc`, `start` is 0 and
/// [`Owner::is_gone`] answers `false`: such tasks are pruned by expiry only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Host name of the machine the process runs on.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Process start time, to tell a reused pid apart.
    pub start: u64,
}

impl Owner {
    /// The current process.
    #[must_use]
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner { host: this_host(), pid, start: process_start(pid).unwrap_or(0) }
    }

    /// Parses the label value `host:pid:start`.
    #[must_use]
    pub fn parse(value: &str) -> Option<Owner> {
        let mut parts = value.rsplitn(3, ':');
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_owned();
        Some(Owner { host, pid, start })
    }

    /// Whether this owner ran on this host and is no longer running. An owner on another host
    /// is never known to be gone (atq cannot see its processes).
    #[must_use]
    pub fn is_gone(&self) -> bool {
        if self.host != this_host() || self.start == 0 {
            return false;
        }
        process_start(self.pid) != Some(self.start)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.pid, self.start)
    }
}

fn this_host() -> String {
    hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_owned())
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_not_gone() {
        let me = Owner::current();
        assert!(me.start > 0, "reads /proc on Linux");
        assert!(!me.is_gone());
    }

    #[test]
    fn owner_round_trips_through_its_label_value() {
        let me = Owner::current();
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_gone() {
        let mut me = Owner::current();
        me.start += 1;
        assert!(me.is_gone());
    }

    #[test]
    fn an_owner_on_another_host_is_never_gone() {
        let other = Owner { host: "elsewhere.invalid".into(), pid: 1, start: 1 };
        assert!(!other.is_gone());
    }
}
