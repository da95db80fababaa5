//! Run records that survive a restart: every run a service accepted — its task, owner, state,
//! phases with their times, outcome, results summary, artifact paths, and what reconciliation
//! did with it — in an embedded SQLite database (`runs.sqlite3` under the service's state
//! directory).
//!
//! The engine stays the truth for live objects; the records are the truth for what the service
//! promised its clients. One connection behind a mutex: every statement is short and local, and
//! the database runs in WAL mode so that readers never wait for a writer's fsync.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// The state of a run, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a slot in the queue.
    Queued,
    /// Being deployed.
    Deploying,
    /// Its master runs.
    Running,
    /// Over: the run's exit code (by [`RunReport::exit_code`](crate::RunReport::exit_code)) is 0.
    Succeeded,
    /// Over: the deploy failed, or the exit code is not 0.
    Failed,
    /// Over: stopped by a client (or by reconciliation after a restart).
    Aborted,
}

impl RunState {
    /// Its name in records and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Deploying => "deploying",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
        }
    }

    /// The state named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<RunState> {
        [
            RunState::Queued,
            RunState::Deploying,
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the run is over.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed | RunState::Aborted)
    }
}

/// A step of a run and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseRecord {
    /// The step (a run event's name: `queued`, `network_created`, `master_running`, …).
    pub name: String,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
}

/// Everything recorded about one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The order of submission (1, 2, …): the cursor of listings.
    pub seq: i64,
    /// The run's id.
    pub id: String,
    /// The task's name.
    pub task_name: String,
    /// The task as JSON ([`Task::to_json`](crate::Task::to_json)).
    pub task: String,
    /// Who submitted it (a token's name).
    pub owner: String,
    /// The task's labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its state.
    pub state: RunState,
    /// When it was submitted (ms since the epoch).
    pub submitted_ms: i64,
    /// When it ended.
    pub finished_ms: Option<i64>,
    /// The workers' addresses, once deployed.
    pub workers: Vec<String>,
    /// The run's exit code (by the one rule), once over.
    pub exit_code: Option<i64>,
    /// The run's report (`RunReport::to_json`) or error (`error_json`), once over.
    pub outcome: Option<serde_json::Value>,
    /// `summary.json` of its results, when it had results.
    pub summary: Option<serde_json::Value>,
    /// Artifact files, relative to the run's artifacts directory.
    pub artifacts: Vec<String>,
    /// What the service did with it on a restart, and why.
    pub note: Option<String>,
    /// The id of its deploy on the engine (every object it created carries it), once deploying.
    pub deploy_id: Option<String>,
    /// Its steps, in order.
    pub phases: Vec<PhaseRecord>,
}

/// Which runs a listing returns.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this owner (None: everyone's).
    pub owner: Option<String>,
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs with this label (key, value).
    pub label: Option<(String, String)>,
    /// Only runs submitted after this one (by [`RunRecord::seq`]): the cursor.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// A failure of the records database.
#[derive(Debug, thiserror::Error)]
#[error("run records at {path}: {source}; check that the state directory is writable and not used by another service")]
pub struct RecordsError {
    /// The database file.
    pub path: PathBuf,
    /// What SQLite said.
    #[source]
    pub source: rusqlite::Error,
}

/// The records database.
#[derive(Debug)]
pub struct Records {
    /// The one connection.
    connection: Mutex<Connection>,
    /// Its file (for errors).
    path: PathBuf,
}

/// The name of the database file inside the state directory.
pub const DATABASE_FILE: &str = "runs.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    task_name TEXT NOT NULL,
    task TEXT NOT NULL,
    owner TEXT NOT NULL,
    labels TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    workers TEXT NOT NULL DEFAULT '[]',
    exit_code INTEGER,
    outcome TEXT,
    summary TEXT,
    artifacts TEXT NOT NULL DEFAULT '[]',
    note TEXT,
    deploy_id TEXT
);
CREATE TABLE IF NOT EXISTS phases (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS phases_by_run ON phases(run_id);
";

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
#[must_use]
pub fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl Records {
    /// Opens (creating if needed) the records under `dir`.
    ///
    /// # Errors
    /// The directory or the database cannot be opened.
    pub fn open(dir: &Path) -> Result<Records, RecordsError> {
        let path = dir.join(DATABASE_FILE);
        let fail = |source| RecordsError { path: path.clone(), source };
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: {e}", dir.display())))))?;
        let connection = Connection::open(&path).map_err(fail)?;
        connection
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
            .map_err(fail)?;
        connection.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Records { connection: Mutex::new(connection), path })
    }

    /// Records in memory only (tests, benches).
    ///
    /// # Errors
    /// SQLite cannot open an in-memory database.
    pub fn in_memory() -> Result<Records, RecordsError> {
        let path = PathBuf::from(":memory:");
        let connection = Connection::open_in_memory().map_err(|source| RecordsError { path: path.clone(), source })?;
        connection.execute_batch(SCHEMA).map_err(|source| RecordsError { path: path.clone(), source })?;
        Ok(Records { connection: Mutex::new(connection), path })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail(&self, source: rusqlite::Error) -> RecordsError {
        RecordsError { path: self.path.clone(), source }
    }

    /// The error of a run that should be recorded and is not.
    pub(crate) fn missing(&self, id: &str) -> RecordsError {
        tracing::error!(run = %id, "a run just recorded cannot be read back");
        self.fail(rusqlite::Error::QueryReturnedNoRows)
    }

    /// Records a newly submitted run (state queued, with its `queued` phase); returns its seq.
    ///
    /// # Errors
    /// The database refused the write (a duplicate id, a full disk).
    pub fn insert(
        &self,
        id: &str,
        task_name: &str,
        task_json: &str,
        owner: &str,
        labels: &std::collections::BTreeMap<String, String>,
        submitted: SystemTime,
    ) -> Result<i64, RecordsError> {
        let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
        let now = millis(submitted);
        let connection = self.lock();
        connection
            .execute(
                "INSERT INTO runs (id, task_name, task, owner, labels, state, submitted_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6)",
                params![id, task_name, task_json, owner, labels, now],
            )
            .map_err(|e| self.fail(e))?;
        let seq = connection.last_insert_rowid();
        connection
            .execute("INSERT INTO phases (run_id, name, time_ms) VALUES (?1, 'queued', ?2)", params![id, now])
            .map_err(|e| self.fail(e))?;
        Ok(seq)
    }

    /// Sets the state of run `id`.
    ///
    /// # Errors
    /// The database refused the write.
    pub fn set_state(&self, id: &str, state: RunState) -> Result<(), RecordsError> {
        self.lock()
            .execute("UPDATE runs SET state = ?2 WHERE id = ?1", params![id, state.as_str()])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Appends a phase to run `id`.
    ///
    /// # Errors
    /// The database refused the write.
    pub fn add_phase(&self, id: &str, name: &str, time: SystemTime) -> Result<(), RecordsError> {
        self.lock()
            .execute("INSERT INTO phases (run_id, name, time_ms) VALUES (?1, ?2, ?3)", params![id, name, millis(time)])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Records the workers' addresses of run `id`.
    ///
    /// # Errors
    /// The database refused the write.
    pub fn set_workers(&self, id: &str, workers: &[String]) -> Result<(), RecordsError> {
        let workers = serde_json::to_string(workers).unwrap_or_else(|_| "[]".into());
        self.lock()
            .execute("UPDATE runs SET workers = ?2 WHERE id = ?1", params![id, workers])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Records how run `id` ended.
    ///
    /// # Errors
    /// The database refused the write.
    pub fn finish(&self, id: &str, end: &RunEnd) -> Result<(), RecordsError> {
        let outcome = end.outcome.as_ref().map(ToString::to_string);
        let summary = end.summary.as_ref().map(ToString::to_string);
        let artifacts = serde_json::to_string(&end.artifacts).unwrap_or_else(|_| "[]".into());
        let time = millis(end.time);
        let connection = self.lock();
        connection
            .execute(
                "UPDATE runs SET state = ?2, finished_ms = ?3, exit_code = ?4, outcome = ?5, summary = ?6, artifacts = ?7,
                 note = COALESCE(?8, note) WHERE id = ?1",
                params![id, end.state.as_str(), time, end.exit_code, outcome, summary, artifacts, end.note],
            )
            .map_err(|e| self.fail(e))?;
        connection
            .execute(
                "INSERT INTO phases (run_id, name, time_ms) VALUES (?1, ?2, ?3)",
                params![id, end.state.as_str(), time],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Records the deploy id of run `id` (to remove exactly its objects after a restart).
    ///
    /// # Errors
    /// The database refused the write.
    pub fn set_deploy_id(&self, id: &str, deploy_id: &str) -> Result<(), RecordsError> {
        self.lock()
            .execute("UPDATE runs SET deploy_id = ?2 WHERE id = ?1", params![id, deploy_id])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Sets the note of run `id` (what reconciliation did, and why).
    ///
    /// # Errors
    /// The database refused the write.
    pub fn set_note(&self, id: &str, note: &str) -> Result<(), RecordsError> {
        self.lock()
            .execute("UPDATE runs SET note = ?2 WHERE id = ?1", params![id, note])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// The record of run `id`.
    ///
    /// # Errors
    /// The database could not be read.
    pub fn get(&self, id: &str) -> Result<Option<RunRecord>, RecordsError> {
        let connection = self.lock();
        let record = connection
            .query_row(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"), params![id], row_to_record)
            .optional()
            .map_err(|e| self.fail(e))?;
        match record {
            Some(mut record) => {
                record.phases = phases(&connection, id).map_err(|e| self.fail(e))?;
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    /// The runs matching `filter`, oldest first (without their phases).
    ///
    /// # Errors
    /// The database could not be read.
    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, RecordsError> {
        let (label_key, label_value) = match &filter.label {
            Some((k, v)) => (Some(format!("$.\"{}\"", k.replace('"', ""))), Some(v.clone())),
            None => (None, None),
        };
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM runs WHERE seq > ?1 AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR state = ?3)
                 AND (?4 IS NULL OR json_extract(labels, ?4) = ?5) ORDER BY seq LIMIT ?6"
            ))
            .map_err(|e| self.fail(e))?;
        let rows = statement
            .query_map(
                params![
                    filter.after.unwrap_or(0),
                    filter.owner,
                    filter.state.map(RunState::as_str),
                    label_key,
                    label_value,
                    i64::try_from(filter.limit).unwrap_or(i64::MAX),
                ],
                row_to_record,
            )
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(e))
    }

    /// The runs not over yet (queued, deploying, running), oldest first: what a restart must
    /// reconcile.
    ///
    /// # Errors
    /// The database could not be read.
    pub fn unfinished(&self) -> Result<Vec<RunRecord>, RecordsError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {COLUMNS} FROM runs WHERE state IN ('queued', 'deploying', 'running') ORDER BY seq"
            ))
            .map_err(|e| self.fail(e))?;
        let rows = statement.query_map([], row_to_record).map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(e))
    }
}

/// How a run ended, for [`Records::finish`].
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Its final state.
    pub state: RunState,
    /// When.
    pub time: SystemTime,
    /// The exit code by the one rule.
    pub exit_code: Option<i64>,
    /// The report or the error, as JSON.
    pub outcome: Option<serde_json::Value>,
    /// `summary.json` of its results.
    pub summary: Option<serde_json::Value>,
    /// Artifact files, relative to the run's artifacts directory.
    pub artifacts: Vec<String>,
    /// A note (what reconciliation did).
    pub note: Option<String>,
}

const COLUMNS: &str =
    "seq, id, task_name, task, owner, labels, state, submitted_ms, finished_ms, workers, exit_code, outcome, summary, artifacts, note, deploy_id";

fn json_column<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let state: String = row.get(6)?;
    Ok(RunRecord {
        seq: row.get(0)?,
        id: row.get(1)?,
        task_name: row.get(2)?,
        task: row.get(3)?,
        owner: row.get(4)?,
        labels: json_column(row.get(5)?),
        state: RunState::parse(&state).unwrap_or(RunState::Failed),
        submitted_ms: row.get(7)?,
        finished_ms: row.get(8)?,
        workers: json_column(row.get(9)?),
        exit_code: row.get(10)?,
        outcome: row.get::<_, Option<String>>(11)?.and_then(|t| serde_json::from_str(&t).ok()),
        summary: row.get::<_, Option<String>>(12)?.and_then(|t| serde_json::from_str(&t).ok()),
        artifacts: json_column(row.get(13)?),
        note: row.get(14)?,
        deploy_id: row.get(15)?,
        phases: Vec::new(),
    })
}

fn phases(connection: &Connection, id: &str) -> rusqlite::Result<Vec<PhaseRecord>> {
    let mut statement =
        connection.prepare_cached("SELECT name, time_ms FROM phases WHERE run_id = ?1 ORDER BY rowid")?;
    let rows = statement.query_map(params![id], |row| Ok(PhaseRecord { name: row.get(0)?, time_ms: row.get(1)? }))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(records: &Records, id: &str, owner: &str, label: &str) -> i64 {
        let labels = [("team".to_owned(), label.to_owned())].into_iter().collect();
        records.insert(id, "t", "{}", owner, &labels, SystemTime::now()).unwrap()
    }

    #[test]
    fn records_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        {
            let records = Records::open(dir.path()).unwrap();
            insert(&records, "a", "alice", "perf");
            records.set_state("a", RunState::Running).unwrap();
            records.add_phase("a", "master_running", SystemTime::now()).unwrap();
        }
        let records = Records::open(dir.path()).unwrap();
        let record = records.get("a").unwrap().unwrap();
        assert_eq!(record.state, RunState::Running);
        let names: Vec<_> = record.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["queued", "master_running"]);
        assert_eq!(records.unfinished().unwrap().len(), 1);
    }

    #[test]
    fn listings_filter_by_owner_state_and_label_and_page_by_cursor() {
        let records = Records::in_memory().unwrap();
        for (i, owner) in ["alice", "bob", "alice", "alice"].iter().enumerate() {
            insert(&records, &format!("r{i}"), owner, if i == 3 { "other" } else { "perf" });
        }
        records
            .finish(
                "r0",
                &RunEnd {
                    state: RunState::Succeeded,
                    time: SystemTime::now(),
                    exit_code: Some(0),
                    outcome: None,
                    summary: None,
                    artifacts: vec![],
                    note: None,
                },
            )
            .unwrap();
        let alice = RunFilter { owner: Some("alice".into()), limit: 2, ..RunFilter::default() };
        let page: Vec<_> = records.list(&alice).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(page, ["r0", "r2"]);
        let next = RunFilter { after: Some(3), ..alice.clone() };
        let page: Vec<_> = records.list(&next).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(page, ["r3"]);
        let queued = RunFilter { state: Some(RunState::Queued), limit: 10, ..RunFilter::default() };
        assert_eq!(records.list(&queued).unwrap().len(), 3);
        let labelled = RunFilter { label: Some(("team".into(), "other".into())), limit: 10, ..RunFilter::default() };
        let page: Vec<_> = records.list(&labelled).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(page, ["r3"]);
    }
}
