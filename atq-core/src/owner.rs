//! [`Owner`]: which process created an engine object, so `prune` can tell a live task from a
//! leftover of a killed one.
//!
//! A process is identified by its kernel boot, its pid namespace, its pid and its start time.
//! The host name is kept for people to read, never trusted: containers share host names, cloned
//! CI machines and the `localhost` fallback too. Only a process of this boot and this pid
//! namespace can be checked ([`Liveness::Alive`] or [`Liveness::Gone`]); any other owner is
//! [`Liveness::Unknown`], which `prune` treats as possibly alive.

use std::fmt;

/// The process that created an engine object, stored as `host:pid:start:boot:pidns` under
/// [`labels::OWNER`](crate::labels::OWNER).
///
/// - `start` is the process's start time (clock ticks since boot, from `/proc/<pid>/stat`), so a
///   reused pid is not mistaken for the owner;
/// - `boot` is the kernel's boot id (`/proc/sys/kernel/random/boot_id`): a pid and a start time
///   mean something only within one boot of one machine;
/// - `pid_namespace` is the inode of the process's pid namespace (`/proc/self/ns/pid`): two
///   containers on one kernel share the boot id but not their pids.
///
/// Owners written by older atq versions (`host:pid:start`) have neither and are never checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Host name of the machine the process runs on (for display only).
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Process start time, to tell a reused pid apart; 0: unknown.
    pub start: u64,
    /// Kernel boot id; None: unknown.
    pub boot: Option<String>,
    /// Pid namespace inode; None: unknown.
    pub pid_namespace: Option<u64>,
}

/// Whether an [`Owner`] is still running, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The owner runs (same boot, same pid namespace, same pid and start time).
    Alive,
    /// The owner ran in this boot and pid namespace and no longer runs.
    Gone,
    /// The owner cannot be checked from here: another machine, boot or container, or an owner
    /// label without the identity (older atq, no `/proc`).
    Unknown,
}

impl Owner {
    /// The current process.
    #[must_use]
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: this_host(),
            pid,
            start: process_start(pid).unwrap_or(0),
            boot: boot_id(),
            pid_namespace: pid_namespace(),
        }
    }

    /// Parses the label value `host:pid:start:boot:pidns` (or the older `host:pid:start`).
    #[must_use]
    pub fn parse(value: &str) -> Option<Owner> {
        if value.len() > 512 {
            return None;
        }
        let parts: Vec<&str> = value.split(':').collect();
        let (host, pid, start, boot, pid_namespace) = match parts.as_slice() {
            [host, pid, start] => (host, pid, start, None, None),
            [host, pid, start, boot, ns] => {
                let boot = (!boot.is_empty()).then(|| (*boot).to_owned());
                (host, pid, start, boot, ns.parse().ok())
            }
            _ => return None,
        };
        Some(Owner {
            host: (*host).to_owned(),
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
            boot,
            pid_namespace,
        })
    }

    /// Whether this owner is still running, checked on this machine.
    #[must_use]
    pub fn liveness(&self) -> Liveness {
        self.liveness_from(boot_id().as_deref(), pid_namespace(), process_start)
    }

    /// [`liveness`](Self::liveness), given this process's boot id and pid namespace and a way to
    /// read a pid's start time (for tests).
    fn liveness_from(
        &self,
        boot: Option<&str>,
        pid_namespace: Option<u64>,
        start_of: impl Fn(u32) -> Option<u64>,
    ) -> Liveness {
        let same_boot = self.boot.is_some() && self.boot.as_deref() == boot;
        let same_namespace = self.pid_namespace.is_some() && self.pid_namespace == pid_namespace;
        if !(same_boot && same_namespace) || self.start == 0 {
            return Liveness::Unknown;
        }
        if start_of(self.pid) == Some(self.start) {
            Liveness::Alive
        } else {
            Liveness::Gone
        }
    }

    /// Whether this owner is known to be gone (see [`liveness`](Self::liveness)).
    #[must_use]
    pub fn is_gone(&self) -> bool {
        self.liveness() == Liveness::Gone
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host.replace(':', "_"), self.pid, self.start)?;
        match (&self.boot, self.pid_namespace) {
            (None, None) => Ok(()),
            (boot, ns) => {
                write!(f, ":{}:{}", boot.as_deref().unwrap_or(""), ns.map(|n| n.to_string()).unwrap_or_default())
            }
        }
    }
}

fn this_host() -> String {
    hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_owned())
}

/// The kernel's boot id: a UUID, new at every boot.
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then(|| id.to_owned())
}

/// The inode of this process's pid namespace (`/proc/self/ns/pid` links to `pid:[4026531836]`).
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner { host: "h".into(), pid: 42, start: 1000, boot: Some("b-1".into()), pid_namespace: Some(7) }
    }

    #[test]
    fn current_process_is_alive() {
        let me = Owner::current();
        assert!(me.start > 0 && me.boot.is_some() && me.pid_namespace.is_some(), "reads /proc on Linux: {me:?}");
        assert_eq!(me.liveness(), Liveness::Alive);
        assert!(!me.is_gone());
    }

    #[test]
    fn owner_round_trips_through_its_label_value() {
        let me = Owner::current();
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
        assert_eq!(Owner::parse(&owner().to_string()), Some(owner()));
    }

    #[test]
    fn an_older_label_parses_and_is_never_checked() {
        let old = Owner::parse("ci-runner:4242:99").unwrap();
        assert_eq!((old.boot, old.pid_namespace), (None, None));
        let old = Owner { boot: None, pid_namespace: None, ..owner() };
        assert_eq!(old.liveness_from(Some("b-1"), Some(7), |_| None), Liveness::Unknown);
    }

    #[test]
    fn nonsense_labels_are_not_owners() {
        for bad in ["", "h", "h:x:1", "h:1:x", "h:1:2:3", &"a".repeat(600)] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_gone() {
        assert_eq!(owner().liveness_from(Some("b-1"), Some(7), |_| Some(1001)), Liveness::Gone);
        assert_eq!(owner().liveness_from(Some("b-1"), Some(7), |_| None), Liveness::Gone);
        assert_eq!(owner().liveness_from(Some("b-1"), Some(7), |_| Some(1000)), Liveness::Alive);
        let mut me = Owner::current();
        me.start += 1;
        assert!(me.is_gone());
    }

    #[test]
    fn another_container_on_the_same_kernel_is_unknown_not_gone() {
        // Same boot id and host name, another pid namespace: its pids are not ours to read.
        assert_eq!(owner().liveness_from(Some("b-1"), Some(8), |_| None), Liveness::Unknown);
    }

    #[test]
    fn another_boot_or_machine_is_unknown_whatever_the_host_name() {
        assert_eq!(owner().liveness_from(Some("b-2"), Some(7), |_| None), Liveness::Unknown);
        assert_eq!(owner().liveness_from(None, None, |_| None), Liveness::Unknown);
        let other = Owner { host: this_host(), ..owner() };
        assert_eq!(other.liveness(), Liveness::Unknown, "a cloned machine with our host name");
    }
}
