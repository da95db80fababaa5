//! The calls a fake engine receives: counting, logging, and injected faults.

use crate::error::Error;

/// The kinds of [`Cluster`](crate::Cluster) calls, for counting and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallKind {
    /// [`Cluster::create_network`](crate::Cluster::create_network).
    CreateNetwork,
    /// [`Cluster::remove_network`](crate::Cluster::remove_network).
    RemoveNetwork,
    /// [`Cluster::create_service`](crate::Cluster::create_service).
    CreateService,
    /// [`Cluster::remove_service`](crate::Cluster::remove_service).
    RemoveService,
    /// [`Cluster::replicas`](crate::Cluster::replicas).
    Replicas,
    /// [`Cluster::logs`](crate::Cluster::logs).
    Logs,
    /// [`Cluster::create_config`](crate::Cluster::create_config).
    CreateConfig,
    /// [`Cluster::remove_config`](crate::Cluster::remove_config).
    RemoveConfig,
    /// [`Cluster::list_resources`](crate::Cluster::list_resources).
    ListResources,
    /// [`Cluster::info`](crate::Cluster::info).
    Info,
    /// [`Cluster::copy_from_replica`](crate::Cluster::copy_from_replica).
    CopyFromReplica,
    /// [`Cluster::read_config`](crate::Cluster::read_config).
    ReadConfig,
}

impl CallKind {
    /// Every kind, in declaration order.
    pub const ALL: [CallKind; 12] = [
        CallKind::CreateNetwork,
        CallKind::RemoveNetwork,
        CallKind::CreateService,
        CallKind::RemoveService,
        CallKind::Replicas,
        CallKind::Logs,
        CallKind::CreateConfig,
        CallKind::RemoveConfig,
        CallKind::ListResources,
        CallKind::Info,
        CallKind::CopyFromReplica,
        CallKind::ReadConfig,
    ];

    /// The trait method's name (`create_service`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::CreateNetwork => "create_network",
            CallKind::RemoveNetwork => "remove_network",
            CallKind::CreateService => "create_service",
            CallKind::RemoveService => "remove_service",
            CallKind::Replicas => "replicas",
            CallKind::Logs => "logs",
            CallKind::CreateConfig => "create_config",
            CallKind::RemoveConfig => "remove_config",
            CallKind::ListResources => "list_resources",
            CallKind::Info => "info",
            CallKind::CopyFromReplica => "copy_from_replica",
            CallKind::ReadConfig => "read_config",
        }
    }

    /// The operation, as [`Error::Engine`] words it.
    pub(super) fn operation(self) -> &'static str {
        match self {
            CallKind::CreateNetwork => "create network",
            CallKind::RemoveNetwork => "remove network",
            CallKind::CreateService => "create service",
            CallKind::RemoveService => "remove service",
            CallKind::Replicas => "list replicas of service",
            CallKind::Logs => "read logs of service",
            CallKind::CreateConfig => "create config",
            CallKind::RemoveConfig => "remove config",
            CallKind::ListResources => "list",
            CallKind::Info => "read info of",
            CallKind::CopyFromReplica => "copy files from",
            CallKind::ReadConfig => "read config",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for CallKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call a fake engine received, in [`FakeCluster::call_log`](super::FakeCluster::call_log).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// Which method.
    pub kind: CallKind,
    /// What it was about: the network, service or config name (or id) passed; for
    /// `list_resources` the resource kind; for `copy_from_replica` the container id; empty for `info`.
    pub target: String,
    /// Whether the call failed because of an injected fault.
    pub faulted: bool,
}

/// When an injected fault strikes, relative to the call's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultPoint {
    /// The call fails without doing anything.
    Before,
    /// The call takes effect, then reports failure (a lost response).
    After,
}

/// Counters, call log and pending faults.
#[derive(Debug, Default)]
pub(super) struct Calls {
    /// Calls per kind.
    counts: [u64; CallKind::ALL.len()],
    /// Calls of every kind.
    total: u64,
    log: Vec<Call>,
    /// (kind, or None for any kind; the call number that fails, counted in that kind; when).
    faults: Vec<(Option<CallKind>, u64, FaultPoint)>,
}

impl Calls {
    pub(super) fn count(&self, kind: CallKind) -> u64 {
        self.counts[kind.index()]
    }

    pub(super) fn total(&self) -> u64 {
        self.total
    }

    pub(super) fn log(&self) -> Vec<Call> {
        self.log.clone()
    }

    pub(super) fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Arms a fault on the `nth` call of `kind` (of any kind, for None) from now (1: the next one).
    pub(super) fn arm(&mut self, kind: Option<CallKind>, nth: u64, point: FaultPoint) {
        let done = kind.map_or(self.total, |k| self.count(k));
        self.faults.push((kind, done + nth.max(1), point));
    }

    /// Records a call and says whether (and when) it must fail.
    pub(super) fn record(&mut self, kind: CallKind, target: &str) -> Option<Fault> {
        self.counts[kind.index()] += 1;
        self.total += 1;
        let (number, total) = (self.count(kind), self.total);
        let found = self.faults.iter().position(|(k, at, _)| match k {
            Some(k) => *k == kind && *at == number,
            None => *at == total,
        });
        let fault = found.map(|i| {
            let (_, _, point) = self.faults.swap_remove(i);
            Fault { kind, number, point, target: target.to_owned() }
        });
        self.log.push(Call { kind, target: target.to_owned(), faulted: fault.is_some() });
        fault
    }
}

/// A fault to inject into the current call.
#[derive(Debug)]
pub(super) struct Fault {
    kind: CallKind,
    number: u64,
    pub(super) point: FaultPoint,
    target: String,
}

impl Fault {
    pub(super) fn into_error(self) -> Error {
        Error::engine(
            self.kind.operation(),
            self.target,
            format!("injected fault (call #{} of {})", self.number, self.kind.as_str()),
        )
    }
}
