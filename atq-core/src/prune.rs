//! Whether `prune` may remove a task: one pure decision ([`decide`]) from the task's labels, the
//! time, and whether its owner still runs.
//!
//! The rules, in order:
//! 1. A task whose owner is **alive** is never removed, expired or not.
//! 2. A task whose owner is **gone** is removed, unless it is **detached** (deployed to outlive
//!    its process: `atq up`, `--keep`, `keep()`; label [`labels::DETACHED`]).
//! 3. Otherwise (a detached task, or an owner that cannot be checked from here: another machine,
//!    another container, an older atq) the task is removed only once it has expired, by more than
//!    [`EXPIRY_MARGIN`] (clocks of different hosts disagree).
//! 4. A task without a readable expiry that rule 2 does not remove is kept: `atq down NAME` or
//!    `atq prune --all` removes it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::labels;
use crate::owner::{Liveness, Owner};

/// How long past its expiry a task of an unknown or detached owner is still kept, for clocks
/// of different hosts that disagree (the expiry was written by the deploying host's clock).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What `prune` does with one task, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneDecision {
    /// Whether `prune` removes the task.
    pub remove: bool,
    /// Why.
    pub why: PruneReason,
}

/// Why `prune` removes or keeps a task; its `Display` is a sentence for `atq ls` and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PruneReason {
    /// Kept: the process that deployed it still runs.
    OwnerAlive {
        /// The owner label's value.
        owner: String,
    },
    /// Removed: the process that deployed it is gone and the task was not detached.
    OwnerGone {
        /// The owner label's value.
        owner: String,
    },
    /// Removed: expired more than [`EXPIRY_MARGIN`] ago, and its owner is gone or unknown.
    Expired {
        /// Seconds since it expired.
        seconds_ago: u64,
        /// Whether the task is detached.
        detached: bool,
    },
    /// Kept: not expired yet (or within the margin), and its owner cannot be shown to be gone
    /// (or the task is detached).
    NotExpired {
        /// Seconds until `prune` may remove it (expiry plus the margin).
        seconds_left: u64,
        /// Whether the task is detached.
        detached: bool,
    },
    /// Kept: no readable expiry label, and nothing shows the task is abandoned.
    NoExpiry,
}

impl fmt::Display for PruneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneReason::OwnerAlive { owner } => write!(f, "its owner ({}) is still running", describe(owner)),
            PruneReason::OwnerGone { owner } => write!(f, "its owner ({}) is gone", describe(owner)),
            PruneReason::Expired { seconds_ago, detached } => {
                write!(f, "expired {} ago", human(*seconds_ago))?;
                if *detached {
                    write!(f, " (detached)")?;
                }
                Ok(())
            }
            PruneReason::NotExpired { seconds_left, detached: true } => {
                write!(f, "detached: kept until it expires, in {}", human(*seconds_left))
            }
            PruneReason::NotExpired { seconds_left, detached: false } => {
                write!(f, "its owner cannot be checked from here: kept until it expires, in {}", human(*seconds_left))
            }
            PruneReason::NoExpiry => {
                write!(f, "no expiry label and no owner known to be gone: remove it with `atq down`")
            }
        }
    }
}

/// `pid 123 on host ci-1` for an owner label, or the label itself if it does not parse.
fn describe(owner: &str) -> String {
    match Owner::parse(owner) {
        Some(o) => format!("pid {} on {}", o.pid, o.host),
        None => crate::document::clip(owner, 60),
    }
}

/// `2h 5m`, `40s`.
fn human(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Decides whether `prune` removes the task with these labels (those of any one of its objects,
/// or merged), at `now` (unix seconds), with `liveness` telling whether an owner still runs
/// (normally [`Owner::liveness`]). See the module docs for the rules.
///
/// ```
/// use std::collections::BTreeMap;
/// use atq_core::owner::Liveness;
/// use atq_core::prune::decide;
///
/// let labels = BTreeMap::from([
///     ("io.atq.owner".to_owned(), "ci-1:4242:99:boot:7".to_owned()),
///     ("io.atq.expires".to_owned(), "1000".to_owned()),
/// ]);
/// // Expired long ago, but its owner still runs: kept.
/// assert!(!decide(&labels, 1_000_000, |_| Liveness::Alive).remove);
/// assert!(decide(&labels, 1_000_000, |_| Liveness::Gone).remove);
/// ```
pub fn decide(labels: &BTreeMap<String, String>, now: i64, liveness: impl Fn(&Owner) -> Liveness) -> PruneDecision {
    let owner_label = labels.get(labels::OWNER);
    let state = owner_label.and_then(|o| Owner::parse(o)).map_or(Liveness::Unknown, |o| liveness(&o));
    let detached = labels.get(labels::DETACHED).is_some_and(|v| v == "true");
    let expires = labels.get(labels::EXPIRES).and_then(|e| e.trim().parse::<i64>().ok());
    let owner = || owner_label.cloned().unwrap_or_default();
    let decision = |remove, why| PruneDecision { remove, why };
    match state {
        Liveness::Alive => return decision(false, PruneReason::OwnerAlive { owner: owner() }),
        Liveness::Gone if !detached => return decision(true, PruneReason::OwnerGone { owner: owner() }),
        Liveness::Gone | Liveness::Unknown => {}
    }
    let Some(expires) = expires else { return decision(false, PruneReason::NoExpiry) };
    let margin = i64::try_from(EXPIRY_MARGIN.as_secs()).unwrap_or(i64::MAX);
    let removable_at = expires.saturating_add(margin);
    if now > removable_at {
        let seconds_ago = u64::try_from(now.saturating_sub(expires)).unwrap_or(u64::MAX);
        decision(true, PruneReason::Expired { seconds_ago, detached })
    } else {
        let seconds_left = u64::try_from(removable_at.saturating_sub(now)).unwrap_or(u64::MAX);
        decision(false, PruneReason::NotExpired { seconds_left, detached })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const OWNER: &str = "ci-1:4242:99:b-1:7";

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn expired(by: i64) -> String {
        (NOW - by).to_string()
    }

    #[test]
    fn a_live_owner_keeps_even_an_expired_task() {
        let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(86_400))]);
        let d = decide(&l, NOW, |_| Liveness::Alive);
        assert!(!d.remove);
        assert_eq!(d.why.to_string(), "its owner (pid 4242 on ci-1) is still running");
        let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(86_400)), (labels::DETACHED, "true")]);
        assert!(!decide(&l, NOW, |_| Liveness::Alive).remove);
    }

    #[test]
    fn a_gone_owner_frees_a_task_before_it_expires() {
        let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(-86_400))]);
        let d = decide(&l, NOW, |_| Liveness::Gone);
        assert_eq!(d, PruneDecision { remove: true, why: PruneReason::OwnerGone { owner: OWNER.into() } });
        assert_eq!(d.why.to_string(), "its owner (pid 4242 on ci-1) is gone");
    }

    #[test]
    fn a_detached_task_outlives_its_gone_owner_until_it_expires() {
        let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(-3600)), (labels::DETACHED, "true")]);
        let d = decide(&l, NOW, |_| Liveness::Gone);
        assert!(!d.remove, "{d:?}");
        assert!(d.why.to_string().starts_with("detached: kept until it expires, in 1h 5m"), "{}", d.why);
        let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(3600)), (labels::DETACHED, "true")]);
        let d = decide(&l, NOW, |_| Liveness::Gone);
        assert_eq!(d, PruneDecision { remove: true, why: PruneReason::Expired { seconds_ago: 3600, detached: true } });
    }

    #[test]
    fn an_unknown_owner_is_removed_only_past_expiry_and_the_margin() {
        let margin = i64::try_from(EXPIRY_MARGIN.as_secs()).unwrap();
        for (by, remove) in [(-10, false), (0, false), (margin, false), (margin + 1, true), (86_400, true)] {
            let l = labels(&[(labels::OWNER, OWNER), (labels::EXPIRES, &expired(by))]);
            assert_eq!(decide(&l, NOW, |_| Liveness::Unknown).remove, remove, "expired by {by}s");
        }
    }

    #[test]
    fn an_unreadable_owner_counts_as_unknown() {
        for owner in ["", "garbage", "h:notapid:1"] {
            let l = labels(&[(labels::OWNER, owner), (labels::EXPIRES, &expired(-60))]);
            let d = decide(&l, NOW, |_| panic!("an unparsable owner is not asked about"));
            assert!(!d.remove, "{owner:?}");
        }
        let l = labels(&[(labels::EXPIRES, &expired(3600))]);
        assert!(decide(&l, NOW, |_| Liveness::Gone).remove, "no owner label: expiry decides");
    }

    #[test]
    fn no_readable_expiry_keeps_a_task_no_owner_abandoned() {
        for expires in [None, Some(""), Some("soon"), Some("99999999999999999999999")] {
            let mut l = labels(&[(labels::OWNER, OWNER)]);
            if let Some(e) = expires {
                l.insert(labels::EXPIRES.into(), e.into());
            }
            assert_eq!(decide(&l, NOW, |_| Liveness::Unknown).why, PruneReason::NoExpiry, "{expires:?}");
            assert!(decide(&l, NOW, |_| Liveness::Gone).remove, "{expires:?}");
        }
    }

    #[test]
    fn extreme_label_values_do_not_overflow() {
        for (expires, now) in [(i64::MAX, i64::MIN), (i64::MIN, i64::MAX), (i64::MAX, i64::MAX), (i64::MIN, i64::MIN)] {
            let l = labels(&[(labels::EXPIRES, &expires.to_string())]);
            let d = decide(&l, now, |_| Liveness::Unknown);
            let _ = d.why.to_string();
        }
    }

    #[test]
    fn the_real_check_keeps_a_task_of_this_process() {
        let l = labels(&[(labels::OWNER, &Owner::current().to_string()), (labels::EXPIRES, &expired(86_400))]);
        assert!(!decide(&l, NOW, Owner::liveness).remove, "a long run in progress is never pruned");
    }
}
