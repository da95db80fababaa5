//! What one `atq.Director` did: the deploys it made that may still be on the engine, so that a
//! test fixture removes exactly those (`Director.teardown_own`) and never another test's or
//! process's task; and, when asked (`Director(capture=N)`), the last log lines and the failed
//! results of its tasks (`Director.captured()`), for a failed test's report.
//!
//! Everything is bounded: at most [`MAX_DEPLOYS`] deploys and [`MAX_TASKS`] captured tasks (the
//! oldest go first), `capture` lines per role of a task.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use atq_core::event::LogRecord;
use atq_core::labels::Role;

/// How many deploys a journal remembers (a long-lived director forgets the oldest).
const MAX_DEPLOYS: usize = 1000;

/// How many tasks' logs a journal keeps.
const MAX_TASKS: usize = 32;

/// One deploy a director made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deploy {
    /// The task's name.
    pub(crate) task: String,
    /// Its deploy id (the `io.atq.deploy` label of everything it created).
    pub(crate) deploy_id: String,
}

/// What a director captured of one task.
#[derive(Debug, Default, Clone)]
pub(crate) struct Captured {
    /// The task's name.
    pub(crate) task: String,
    /// The master's last lines.
    pub(crate) master: VecDeque<String>,
    /// The workers' last lines, each prefixed with its replica (`worker.2 | …`).
    pub(crate) workers: VecDeque<String>,
    /// The results table of a run whose thresholds failed.
    pub(crate) results: Option<String>,
}

/// A director's journal (shared by its calls and the deployments it made).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// How many lines per role to keep; 0: capture nothing.
    capture: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    deploys: VecDeque<Deploy>,
    tasks: VecDeque<Captured>,
}

impl Journal {
    /// A journal keeping `capture` log lines per role of each task (0: none).
    pub(crate) fn new(capture: usize) -> Self {
        Journal { capture, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many log lines per role it keeps (0: none).
    pub(crate) fn capture(&self) -> usize {
        self.capture
    }

    /// A deploy started (its network exists).
    pub(crate) fn deployed(&self, task: &str, deploy_id: &str) {
        let mut state = self.state();
        if state.deploys.iter().any(|d| d.deploy_id == deploy_id) {
            return;
        }
        if state.deploys.len() == MAX_DEPLOYS {
            state.deploys.pop_front();
        }
        state.deploys.push_back(Deploy { task: task.to_owned(), deploy_id: deploy_id.to_owned() });
    }

    /// A deploy is known to be gone.
    pub(crate) fn forget(&self, deploy_id: &str) {
        self.state().deploys.retain(|d| d.deploy_id != deploy_id);
    }

    /// Every deploy of `task` is known to be gone (a teardown by name succeeded).
    pub(crate) fn forget_task(&self, task: &str) {
        self.state().deploys.retain(|d| d.task != task);
    }

    /// The deploys that may still be on the engine, oldest first.
    pub(crate) fn deploys(&self) -> Vec<Deploy> {
        self.state().deploys.iter().cloned().collect()
    }

    /// Notes a log line of a run.
    pub(crate) fn log(&self, record: &LogRecord) {
        if self.capture == 0 {
            return;
        }
        let line = match record.role {
            Role::Master => record.text.clone(),
            role => match record.replica {
                Some(replica) => format!("{role}.{replica} | {}", record.text),
                None => format!("{role} | {}", record.text),
            },
        };
        let keep = self.capture;
        let mut state = self.state();
        let captured = captured_mut(&mut state, &record.task);
        let lines = if record.role == Role::Master { &mut captured.master } else { &mut captured.workers };
        lines.push_back(line);
        while lines.len() > keep {
            lines.pop_front();
        }
    }

    /// Replaces a task's captured lines with the last ones read from the engine.
    pub(crate) fn replace_logs(&self, task: &str, master: Vec<String>, workers: Vec<String>) {
        if self.capture == 0 {
            return;
        }
        let keep = self.capture;
        let tail = |lines: Vec<String>| -> VecDeque<String> {
            let skip = lines.len().saturating_sub(keep);
            lines.into_iter().skip(skip).collect()
        };
        let mut state = self.state();
        let captured = captured_mut(&mut state, task);
        if !master.is_empty() {
            captured.master = tail(master);
        }
        if !workers.is_empty() {
            captured.workers = tail(workers);
        }
    }

    /// Notes the results table of a run whose thresholds failed.
    pub(crate) fn failed_results(&self, task: &str, table: String) {
        if self.capture == 0 {
            return;
        }
        captured_mut(&mut self.state(), task).results = Some(table);
    }

    /// What was captured, oldest task first.
    pub(crate) fn captured(&self) -> Vec<Captured> {
        self.state().tasks.iter().cloned().collect()
    }
}

fn captured_mut<'a>(state: &'a mut State, task: &str) -> &'a mut Captured {
    if let Some(i) = state.tasks.iter().position(|c| c.task == task) {
        return &mut state.tasks[i];
    }
    if state.tasks.len() == MAX_TASKS {
        state.tasks.pop_front();
    }
    state.tasks.push_back(Captured { task: task.to_owned(), ..Captured::default() });
    state.tasks.back_mut().expect("just pushed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use atq_core::cluster::LogSource;

    fn record(task: &str, role: Role, replica: Option<u32>, text: &str) -> LogRecord {
        LogRecord { task: task.into(), role, replica, source: LogSource::Stdout, text: text.into() }
    }

    #[test]
    fn deploys_are_remembered_once_and_forgotten_by_id_or_task() {
        let j = Journal::new(0);
        j.deployed("a", "1");
        j.deployed("a", "1");
        j.deployed("b", "2");
        j.deployed("b", "3");
        assert_eq!(j.deploys().len(), 3);
        j.forget("1");
        assert_eq!(j.deploys().iter().map(|d| d.deploy_id.as_str()).collect::<Vec<_>>(), ["2", "3"]);
        j.forget_task("b");
        assert!(j.deploys().is_empty());
    }

    #[test]
    fn the_journal_is_bounded() {
        let j = Journal::new(2);
        for i in 0..MAX_DEPLOYS + 5 {
            j.deployed("t", &i.to_string());
        }
        assert_eq!(j.deploys().len(), MAX_DEPLOYS);
        assert_eq!(j.deploys()[0].deploy_id, "5", "the oldest went first");
        for i in 0..5 {
            j.log(&record("t", Role::Master, Some(1), &format!("line {i}")));
        }
        assert_eq!(j.captured()[0].master, ["line 3", "line 4"]);
        for i in 0..MAX_TASKS + 1 {
            j.log(&record(&format!("task{i}"), Role::Master, None, "x"));
        }
        assert_eq!(j.captured().len(), MAX_TASKS);
    }

    #[test]
    fn worker_lines_name_their_replica_and_nothing_is_kept_without_capture() {
        let j = Journal::new(10);
        j.log(&record("t", Role::Worker, Some(2), "hello"));
        j.log(&record("t", Role::Master, Some(1), "boss"));
        let [c] = j.captured().try_into().unwrap();
        assert_eq!((c.workers[0].as_str(), c.master[0].as_str()), ("worker.2 | hello", "boss"));
        let off = Journal::new(0);
        off.log(&record("t", Role::Master, None, "x"));
        off.failed_results("t", "table".into());
        assert!(off.captured().is_empty());
    }
}
