//! Waiting as a concept: one condition-driven wait over a service's replicas, with an explicit
//! deadline and one backoff, and the named conditions atq waits for.
//!
//! As kube-runtime's `await_condition`, a wait is "poll until this condition holds"; unlike it, the
//! engine has no watch for tasks (moby#37403), so [`poll_until`] asks again, spacing the asks by
//! [`PollInterval`]. Every wait in the crate goes through [`poll_until`] (directly, or through
//! [`replicas_until`] for a service's replicas), so this is the one place where engine events
//! could later wake a wait early.
//!
//! A condition returns a [`Check`]: done (with a value), still pending (saying what is missing, for
//! the timeout message), or failed (a replica that will never get there). The deadline is the
//! caller's: `None` waits as long as it takes.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{Cluster, Replica, ReplicaState};
use crate::error::{Error, Phase, Result};

/// How often to poll the engine: from `min`, growing by half each time, up to `max`; and never
/// sooner than [`POLL_COST_FACTOR`] times what the last poll took.
///
/// The engine has no task events (moby#37403), so readiness is polled; the docker CLI polls
/// every 200 ms. atq starts faster and backs off to 50 ms: a swarm replica takes about a second
/// to start, and a 200 ms ceiling made atq see it ~100 ms late on average per wait, 10–20 % of a
/// small deploy (BENCHMARKS.md). A cheap poll (one service's task list, a few ms) every 50 ms
/// costs the engine little; an expensive one (thousands of replicas) is spaced by its own cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollInterval {
    /// First interval.
    pub min: Duration,
    /// Largest interval.
    pub max: Duration,
}

impl Default for PollInterval {
    fn default() -> Self {
        PollInterval { min: Duration::from_millis(10), max: Duration::from_millis(50) }
    }
}

/// A waiter pauses at least this many times as long as its last poll took, so polling keeps
/// the engine busy at most 1 / (1 + factor) of the time (20 %), however large the answer.
pub const POLL_COST_FACTOR: u32 = 4;

impl PollInterval {
    /// The interval after `current`: half as long again, within `min..=max`.
    #[must_use]
    pub fn next(&self, current: Duration) -> Duration {
        (current + current / 2).clamp(self.min, self.max)
    }

    /// The pause before the next poll, given the current interval and how long the last poll took.
    #[must_use]
    pub fn pause(current: Duration, took: Duration) -> Duration {
        current.max(took * POLL_COST_FACTOR)
    }
}

/// What a condition says about what it saw.
#[derive(Debug)]
pub enum Check<T> {
    /// The condition holds; the wait returns this.
    Done(T),
    /// Not yet; what is still missing (for the timeout message).
    Pending(String),
    /// It never will: the wait fails with this error.
    Failed(Error),
}

/// A deadline `timeout` from now, as waits take it.
#[must_use]
pub fn deadline_in(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

/// Asks with `ask` and judges the answer with `check` until it is done or failed, or `deadline`
/// passes (then [`Error::Timeout`] for `phase`, with what the last check said is missing). Asks
/// are spaced by `poll` and by their own cost; the last pause is cut short at the deadline, and
/// the engine is asked once more then.
///
/// # Errors
/// The ask's own error (an engine call that failed), the check's [`Check::Failed`], or the timeout.
pub async fn poll_until<T, V, F, Fut>(
    poll: PollInterval,
    deadline: Option<Instant>,
    phase: Phase,
    mut ask: F,
    mut check: impl FnMut(V) -> Check<T>,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<V>>,
{
    let started = Instant::now();
    let mut interval = poll.min;
    loop {
        let asked = Instant::now();
        let missing = match check(ask().await?) {
            Check::Done(value) => return Ok(value),
            Check::Failed(error) => return Err(error),
            Check::Pending(missing) => missing,
        };
        let took = asked.elapsed();
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Error::Timeout { phase, waited: now.saturating_duration_since(started), missing });
        }
        let mut pause = PollInterval::pause(interval, took);
        if let Some(d) = deadline {
            pause = pause.min(d.saturating_duration_since(now));
        }
        tokio::time::sleep(pause).await;
        interval = poll.next(interval);
    }
}

/// Waits until `condition` holds for the replicas of `service` (addresses on `network`).
///
/// # Errors
/// As [`poll_until`]; an engine error listing the replicas ends the wait at once.
pub async fn replicas_until<T>(
    cluster: &dyn Cluster,
    service: &str,
    network: &str,
    poll: PollInterval,
    deadline: Option<Instant>,
    phase: Phase,
    mut condition: impl FnMut(&[Replica]) -> Check<T>,
) -> Result<T> {
    poll_until(poll, deadline, phase, || cluster.replicas(service, network), |replicas| condition(&replicas)).await
}

/// The conditions atq waits for, as small named predicates (kube-runtime's `conditions`).
pub mod conditions {
    use super::{Check, Duration, Error, Instant, IpAddr, Replica, ReplicaState};

    /// Every one of `total` replicas runs (healthy, with a health check) with an address; done
    /// with `(slot, address)` in slot order. A replica that stopped for good fails the wait with
    /// the engine's reason. `on_count` hears the number running whenever it changes.
    pub fn all_running_with_addresses(
        service: &str,
        total: u32,
        mut on_count: impl FnMut(u32),
    ) -> impl FnMut(&[Replica]) -> Check<Vec<(u32, IpAddr)>> {
        let service = service.to_owned();
        let mut last = None;
        move |replicas| {
            if let Some(failed) = replicas.iter().find(|r| r.state.is_terminal()) {
                return Check::Failed(replica_failed(&service, failed));
            }
            let mut ready: Vec<(u32, IpAddr)> = replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Running)
                .filter_map(|r| r.address.map(|a| (r.slot, a)))
                .collect();
            let running = u32::try_from(ready.len()).unwrap_or(u32::MAX);
            if last != Some(running) {
                last = Some(running);
                on_count(running);
            }
            if running >= total {
                ready.sort_unstable();
                Check::Done(ready)
            } else {
                Check::Pending(describe_missing(replicas, total))
            }
        }
    }

    /// The service's one replica has started: it runs, or has already exited with a code (a fast
    /// master is no failure). A replica that never ran fails the wait.
    pub fn started(service: &str) -> impl FnMut(&[Replica]) -> Check<Replica> {
        let service = service.to_owned();
        move |replicas| match replicas.first() {
            None => Check::Pending("the replica is not scheduled yet".into()),
            Some(r) => match r.state {
                ReplicaState::Pending => {
                    Check::Pending("the replica is still pending (no node can run it yet?)".into())
                }
                ReplicaState::Running | ReplicaState::Complete => Check::Done(r.clone()),
                ReplicaState::Failed if r.exit_code.is_some() => Check::Done(r.clone()),
                _ => Check::Failed(replica_failed(&service, r)),
            },
        }
    }

    /// How long a just-created service may show no replica before it counts as gone: swarm's
    /// orchestrator lists a new service's task a moment after the create returns.
    pub const SCHEDULE_GRACE: Duration = Duration::from_secs(10);

    /// The service's one replica has exited (or stopped for good); done with it. No replica at
    /// all fails with `gone` — once `grace` has passed since the first check without one (a
    /// service created just before may not list its replica yet), at once after one was seen.
    pub fn exited(gone: impl Fn() -> Error, grace: Duration) -> impl FnMut(&[Replica]) -> Check<Replica> {
        let first_check = Instant::now();
        let mut seen = false;
        move |replicas| match replicas.first() {
            Some(r) if r.state.is_terminal() => Check::Done(r.clone()),
            Some(_) => {
                seen = true;
                Check::Pending("it is still running".into())
            }
            None if !seen && first_check.elapsed() < grace => Check::Pending("the replica is not listed yet".into()),
            None => Check::Failed(gone()),
        }
    }

    /// The error for a replica that stopped for good: the engine's message, else its exit code.
    #[must_use]
    pub fn replica_failed(service: &str, r: &Replica) -> Error {
        let message = match (&r.error, r.exit_code) {
            (Some(e), _) if !e.is_empty() => e.clone(),
            (_, Some(code)) => format!("exited with code {code}"),
            _ => format!("is {}", r.state),
        };
        Error::ReplicaFailed {
            service: service.to_owned(),
            replica: r.name.clone(),
            state: r.state.to_string(),
            message,
        }
    }

    /// `2/3 running; still pending: s.3`, for timeout messages.
    fn describe_missing(replicas: &[Replica], total: u32) -> String {
        let running = replicas.iter().filter(|r| r.state == ReplicaState::Running && r.address.is_some()).count();
        let pending: Vec<&str> =
            replicas.iter().filter(|r| r.state == ReplicaState::Pending).map(|r| r.name.as_str()).take(5).collect();
        let mut text = format!("{running}/{total} running");
        if !pending.is_empty() {
            text.push_str(&format!("; still pending: {}", pending.join(", ")));
            if replicas.len() > 5 {
                text.push_str(", …");
            }
        }
        if replicas.len() < total as usize {
            text.push_str(&format!("; {} not scheduled yet", total as usize - replicas.len()));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-off service created a moment ago may list no replica yet (swarm's orchestrator adds
    /// its task after the create returns): within the grace that is pending, not gone; after a
    /// replica was seen, or past the grace, it is gone.
    #[tokio::test(start_paused = true)]
    async fn a_service_not_listing_its_replica_yet_is_pending_until_the_grace_passes() {
        let gone = || Error::NotFound { kind: "probe", name: "t_probe".into() };
        let mut exited = conditions::exited(gone, Duration::from_secs(10));
        assert!(matches!(exited(&[]), Check::Pending(_)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(matches!(exited(&[]), Check::Failed(Error::NotFound { .. })));

        let mut exited = conditions::exited(gone, Duration::from_secs(10));
        let running = Replica {
            id: "r1".into(),
            name: "t_probe.1".into(),
            slot: 1,
            state: ReplicaState::Running,
            address: None,
            exit_code: None,
            error: None,
            node_id: None,
            node: None,
            container_id: None,
        };
        assert!(matches!(exited(std::slice::from_ref(&running)), Check::Pending(_)));
        assert!(matches!(exited(&[]), Check::Failed(Error::NotFound { .. })), "seen, then gone");
    }

    #[test]
    fn polling_backs_off_from_min_to_max() {
        let poll = PollInterval { min: Duration::from_millis(10), max: Duration::from_millis(40) };
        let mut d = poll.min;
        let mut seen = vec![d];
        for _ in 0..5 {
            d = poll.next(d);
            seen.push(d);
        }
        assert_eq!(seen.iter().map(|d| d.as_millis()).collect::<Vec<_>>(), vec![10, 15, 22, 33, 40, 40]);
    }

    /// The deadline is honoured to the poll: the wait asks once more at the deadline and then
    /// reports what was missing, with the phase and how long it waited.
    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_at_its_deadline_with_what_is_missing() {
        let started = Instant::now();
        let mut asks = 0;
        let ask = || {
            asks += 1;
            async { Ok(()) }
        };
        let pending = |()| Check::<()>::Pending("1/3 running".into());
        let err = poll_until(
            PollInterval::default(),
            Some(deadline_in(Duration::from_secs(1))),
            Phase::Workers,
            ask,
            pending,
        )
        .await
        .unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100), "{waited:?}");
        match err {
            Error::Timeout { phase: Phase::Workers, missing, .. } => assert_eq!(missing, "1/3 running"),
            other => panic!("{other:?}"),
        }
        // 10, 15, 22, 33 and then 50 ms apart: about 22 asks in a second, never a busy loop.
        assert!((15..=30).contains(&asks), "{asks} asks");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_ends_the_wait_at_once() {
        let failed = |()| Check::<()>::Failed(Error::TaskNotFound { name: "t".into() });
        let err =
            poll_until(PollInterval::default(), None, Phase::Master, || async { Ok(()) }, failed).await.unwrap_err();
        assert!(matches!(err, Error::TaskNotFound { .. }));
    }

    fn replica(slot: u32, state: ReplicaState, address: Option<&str>) -> Replica {
        Replica {
            id: format!("id{slot}"),
            name: format!("s.{slot}"),
            slot,
            state,
            address: address.map(|a| a.parse().unwrap()),
            exit_code: None,
            error: None,
            node_id: None,
            node: None,
            container_id: None,
        }
    }

    #[test]
    fn all_running_reports_each_new_count_and_is_done_in_slot_order() {
        let mut counts = Vec::new();
        let mut cond = conditions::all_running_with_addresses("s", 2, |n| counts.push(n));
        let pending = [replica(2, ReplicaState::Running, Some("10.0.0.3")), replica(1, ReplicaState::Pending, None)];
        assert!(matches!(cond(&pending), Check::Pending(m) if m.contains("1/2 running") && m.contains("s.1")));
        assert!(matches!(cond(&pending), Check::Pending(_)));
        let ready =
            [replica(2, ReplicaState::Running, Some("10.0.0.3")), replica(1, ReplicaState::Running, Some("10.0.0.2"))];
        match cond(&ready) {
            Check::Done(v) => assert_eq!(v, [(1, "10.0.0.2".parse().unwrap()), (2, "10.0.0.3".parse().unwrap())]),
            other => panic!("{other:?}"),
        }
        drop(cond);
        assert_eq!(counts, [1, 2], "each count once");
    }

    #[test]
    fn a_stopped_worker_fails_the_wait_with_the_engines_reason() {
        let mut rejected = replica(1, ReplicaState::Rejected, None);
        rejected.error = Some("No such image: x:1".into());
        let mut cond = conditions::all_running_with_addresses("s", 1, |_| {});
        match cond(&[rejected]) {
            Check::Failed(Error::ReplicaFailed { message, state, .. }) => {
                assert_eq!((message.as_str(), state.as_str()), ("No such image: x:1", "rejected"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_master_that_already_exited_has_started() {
        let mut done = replica(1, ReplicaState::Failed, None);
        done.exit_code = Some(3);
        assert!(matches!(conditions::started("m")(&[done]), Check::Done(_)));
        let never = replica(1, ReplicaState::Rejected, None);
        assert!(matches!(conditions::started("m")(&[never]), Check::Failed(_)));
    }
}
