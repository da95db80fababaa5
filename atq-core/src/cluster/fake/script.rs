//! How a fake service's replicas behave: [`Script`], chosen by a [`Matcher`].

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{LogLine, LogSource, ServiceSpec};
use crate::labels;

/// How a replica starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// It goes from pending to running once the start latency has passed.
    AfterLatency,
    /// It stays pending for ever (as when no node fits, or a health check never passes).
    Never,
    /// The engine refuses it once the start latency has passed: state
    /// [`Rejected`](crate::cluster::ReplicaState::Rejected) with this message.
    Rejected(String),
    /// The engine cannot start its program once the start latency has passed (an entrypoint
    /// without the execute bit, a missing binary): state
    /// [`Failed`](crate::cluster::ReplicaState::Failed) with exit code `code` (126 or 127, as the
    /// engine reports) and the engine's `message`.
    CannotStart {
        /// The exit code the engine reports.
        code: i64,
        /// The engine's message ("starting container failed: …").
        message: String,
    },
}

/// What a replica does once it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// It runs until its service is removed (or [`kill_replica`](super::FakeCluster::kill_replica)).
    UntilRemoved,
    /// It exits with `code` once it has run for `after`: state
    /// [`Complete`](crate::cluster::ReplicaState::Complete) for 0,
    /// [`Failed`](crate::cluster::ReplicaState::Failed) otherwise.
    Exits {
        /// The exit code.
        code: i64,
        /// How long it runs before exiting.
        after: Duration,
    },
}

/// The behaviour of a service's replicas, as far as a fake engine can know it.
///
/// Every part is optional: a part a script leaves unset comes from an earlier matching rule,
/// and in the end from the defaults (start after the latency, run until removed, no logs).
/// So `never_starts` and `master_exits` on the same service compose.
///
/// ```
/// use std::time::Duration;
/// use atq_core::cluster::fake::{Matcher, Script};
/// use atq_core::FakeCluster;
///
/// let fake = FakeCluster::new();
/// fake.script(
///     Matcher::name("load_master"),
///     Script::exits_after(3, Duration::from_secs(10)).stdout(["summary = 100 in 10s"]).stderr(["2 errors"]),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Script {
    /// How the replicas start; None: inherited.
    pub(super) start: Option<Start>,
    /// What they do once running; None: inherited.
    pub(super) run: Option<Run>,
    /// Lines they print once running; None: inherited.
    pub(super) logs: Option<Vec<LogLine>>,
    /// Start latency overriding the cluster's; None: inherited.
    pub(super) latency: Option<Duration>,
    /// Files the replicas write (absolute path, content); None: inherited.
    pub(super) artifacts: Option<Vec<(String, Vec<u8>)>>,
    /// A raw archive returned for any path instead of one built from `artifacts`; None: inherited.
    pub(super) archive: Option<Vec<u8>>,
}

impl Script {
    /// A script that sets nothing: everything is inherited.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replicas that run until removed once started (how they start is inherited).
    pub fn runs_until_removed() -> Self {
        Self::new().run(Run::UntilRemoved)
    }

    /// Replicas that exit with `code` as soon as they have started (how they start is inherited).
    pub fn exits(code: i64) -> Self {
        Self::exits_after(code, Duration::ZERO)
    }

    /// Replicas that exit with `code` after running for `after` (how they start is inherited).
    pub fn exits_after(code: i64, after: Duration) -> Self {
        Self::new().run(Run::Exits { code, after })
    }

    /// Replicas that stay pending for ever.
    pub fn never_starts() -> Self {
        Self::new().start(Start::Never)
    }

    /// Replicas the engine rejects with `message`.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new().start(Start::Rejected(message.into()))
    }

    /// Replicas whose program the engine cannot start: failed with `code` and `message`.
    pub fn cannot_start(code: i64, message: impl Into<String>) -> Self {
        Self::new().start(Start::CannotStart { code, message: message.into() })
    }

    /// Sets how the replicas start.
    pub fn start(mut self, start: Start) -> Self {
        self.start = Some(start);
        self
    }

    /// Sets what the replicas do once running.
    pub fn run(mut self, run: Run) -> Self {
        self.run = Some(run);
        self
    }

    /// Sets the start latency of these replicas, overriding [`FakeCluster::with_latency`](super::FakeCluster::with_latency).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Appends lines to standard output. Each replica prints all its lines when it starts.
    pub fn stdout<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.log(LogSource::Stdout, lines)
    }

    /// Appends lines to standard error. Each replica prints all its lines when it starts.
    pub fn stderr<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.log(LogSource::Stderr, lines)
    }

    fn log<I, S>(mut self, source: LogSource, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.logs.get_or_insert_with(Vec::new).extend(lines.into_iter().map(|text| LogLine::new(source, text)));
        self
    }

    /// Adds a file the replicas write, at the absolute `path` in their container;
    /// [`Cluster::copy_from_replica`](crate::Cluster::copy_from_replica) returns it in a tar archive.
    ///
    /// ```
    /// use atq_core::cluster::fake::Script;
    ///
    /// let script = Script::exits(0).artifact("/atq/results/summary.txt", "ok\n").artifact("/atq/results/sub/a.csv", "1,2\n");
    /// ```
    pub fn artifact(mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.artifacts.get_or_insert_with(Vec::new).push((path.into(), content.into()));
        self
    }

    /// Makes [`Cluster::copy_from_replica`](crate::Cluster::copy_from_replica) return exactly
    /// `archive` (meant to be a tar) for any path: for testing what a caller does with a
    /// hostile or broken archive.
    pub fn artifact_archive(mut self, archive: impl Into<Vec<u8>>) -> Self {
        self.archive = Some(archive.into());
        self
    }

    /// Fills the parts this script leaves unset from `older`.
    fn inherit(&mut self, older: &Script) {
        if self.start.is_none() {
            self.start.clone_from(&older.start);
        }
        if self.run.is_none() {
            self.run.clone_from(&older.run);
        }
        if self.logs.is_none() {
            self.logs.clone_from(&older.logs);
        }
        if self.latency.is_none() {
            self.latency = older.latency;
        }
        if self.artifacts.is_none() {
            self.artifacts.clone_from(&older.artifacts);
        }
        if self.archive.is_none() {
            self.archive.clone_from(&older.archive);
        }
    }
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Any,
    Name(String),
    Image(String),
    Label(String, String),
}

/// Which services (and optionally which replica slot) a [`Script`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Matcher {
    /// The service condition.
    target: Target,
    /// Only this slot (from 1), when set.
    slot: Option<u32>,
}

impl Matcher {
    /// Every service.
    pub fn any() -> Self {
        Matcher { target: Target::Any, slot: None }
    }

    /// The service of this exact name.
    pub fn name(name: impl Into<String>) -> Self {
        Matcher { target: Target::Name(name.into()), slot: None }
    }

    /// Services of this exact image reference.
    pub fn image(image: impl Into<String>) -> Self {
        Matcher { target: Target::Image(image.into()), slot: None }
    }

    /// Services with the label `key=value` (on the service or on its containers).
    pub fn label(key: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { target: Target::Label(key.into(), value.into()), slot: None }
    }

    /// Services with atq's role label ([`labels::ROLE`]) set to `role`.
    pub fn role(role: labels::Role) -> Self {
        Self::label(labels::ROLE, role.as_str())
    }

    /// Narrows the matcher to one replica slot (from 1) of the matching services.
    pub fn slot(mut self, slot: u32) -> Self {
        self.slot = Some(slot);
        self
    }

    /// Whether the service condition holds for `spec` (the slot is not looked at).
    fn matches_service(&self, spec: &ServiceSpec) -> bool {
        match &self.target {
            Target::Any => true,
            Target::Name(name) => spec.name == *name,
            Target::Image(image) => spec.image == *image,
            Target::Label(k, v) => {
                spec.labels.get(k).is_some_and(|have| have == v)
                    || spec.container_labels.get(k).is_some_and(|have| have == v)
            }
        }
    }
}

/// A fully resolved behaviour, shared by the replicas it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Behaviour {
    pub(super) start: Start,
    pub(super) run: Run,
    pub(super) logs: Arc<[LogLine]>,
    pub(super) latency: Duration,
    pub(super) artifacts: Arc<[(String, Vec<u8>)]>,
    pub(super) archive: Option<Arc<[u8]>>,
}

/// The ordered rules of a fake engine; later rules take precedence.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    rules: Vec<(Matcher, Script)>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            rules: vec![
                (Matcher::role(labels::Role::Master), Script::exits(0)),
                (Matcher::role(labels::Role::Probe), Script::exits(0)),
            ],
        }
    }
}

impl Rules {
    pub(super) fn push(&mut self, matcher: Matcher, script: Script) {
        self.rules.push((matcher, script));
    }

    /// The behaviour of every replica of `spec`, and the slots that differ from it.
    pub(super) fn resolve(&self, spec: &ServiceSpec, latency: Duration) -> (Behaviour, Vec<(u32, Behaviour)>) {
        let matching: Vec<&(Matcher, Script)> = self.rules.iter().filter(|(m, _)| m.matches_service(spec)).collect();
        let service_wide = Self::merge(matching.iter().filter(|(m, _)| m.slot.is_none()).map(|(_, s)| s), latency);
        let mut slots: Vec<u32> = matching.iter().filter_map(|(m, _)| m.slot).filter(|s| *s <= spec.replicas).collect();
        slots.sort_unstable();
        slots.dedup();
        let overrides = slots
            .into_iter()
            .map(|slot| {
                let scripts = matching.iter().filter(|(m, _)| m.slot.is_none_or(|s| s == slot)).map(|(_, s)| s);
                (slot, Self::merge(scripts, latency))
            })
            .collect();
        (service_wide, overrides)
    }

    /// Merges scripts given oldest first: the newest script that sets a part wins.
    fn merge<'a>(scripts: impl DoubleEndedIterator<Item = &'a Script>, latency: Duration) -> Behaviour {
        let mut merged = Script::new();
        for script in scripts.rev() {
            merged.inherit(script);
        }
        Behaviour {
            start: merged.start.unwrap_or(Start::AfterLatency),
            run: merged.run.unwrap_or(Run::UntilRemoved),
            logs: merged.logs.unwrap_or_default().into(),
            latency: merged.latency.unwrap_or(latency),
            artifacts: merged.artifacts.unwrap_or_default().into(),
            archive: merged.archive.map(Into::into),
        }
    }
}
