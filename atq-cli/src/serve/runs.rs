//! v2's runs: submit (JSON or YAML, the task file's own validation and budgets), list (filters,
//! cursor pagination), inspect, abort (idempotent), artifacts, the results' report and summary.

use std::collections::BTreeMap;

use atq_core::records::{time_of, RunFilter, RunRecord, RunState};
use atq_core::runs::SubmitError;
use atq_core::task::{Format, ParseBudget};
use atq_core::Task;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Scope};
use super::problem::{FieldProblem, Problem};
use super::{AppState, TASK_BODY_LIMIT};

/// The default and the largest page of a listing.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// A step of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseView {
    /// The step (`queued`, `network_created`, `workers_ready`, `master_running`, `master_exited`,
    /// `torn_down`, then the final state).
    pub name: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A run, as the service sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// The run's id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// The task's name.
    pub task: String,
    /// Who submitted it.
    pub owner: String,
    /// `queued`, `deploying`, `running`, `succeeded`, `failed` or `aborted`.
    pub state: String,
    /// Its place in the queue (0: next), while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// The task's labels.
    pub labels: BTreeMap<String, String>,
    /// When it was submitted (RFC 3339).
    pub submitted: String,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Its steps, with their times.
    pub phases: Vec<PhaseView>,
    /// The workers' addresses.
    pub workers: Vec<String>,
    /// atq's exit code for it (the master's, or 98/99/125/130 by the one rule), once over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// How it ended: the run's report (`event: outcome`) or its error (`event: error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<serde_json::Value>,
    /// Whether every threshold held, when it had results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds_passed: Option<bool>,
    /// Its artifact files (and result reports), relative to its artifacts.
    pub artifacts: Vec<String>,
    /// What the service did with it on a restart, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(time_of(ms)).to_string()
}

/// The URL of run `id`.
pub fn run_url(id: &str) -> String {
    format!("/v2/runs/{id}")
}

impl RunView {
    /// The view of `record`, with its queue position.
    pub fn of(record: RunRecord, queue_position: Option<usize>) -> RunView {
        let thresholds_passed =
            record.outcome.as_ref().and_then(|o| o.get("thresholds_passed")).and_then(serde_json::Value::as_bool);
        RunView {
            url: run_url(&record.id),
            queue_position: queue_position.filter(|_| record.state == RunState::Queued),
            id: record.id,
            task: record.task_name,
            owner: record.owner,
            state: record.state.as_str().to_owned(),
            labels: record.labels,
            submitted: rfc3339(record.submitted_ms),
            finished: record.finished_ms.map(rfc3339),
            phases: record.phases.into_iter().map(|p| PhaseView { name: p.name, time: rfc3339(p.time_ms) }).collect(),
            workers: record.workers,
            exit_code: record.exit_code,
            outcome: record.outcome,
            thresholds_passed,
            artifacts: record.artifacts,
            note: record.note,
        }
    }
}

/// Reads a task from a request body: YAML or JSON by its Content-Type (else by its first
/// character), within the task parser's budgets. Shared with v1.
pub fn read_task(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Task, Problem> {
    let body = body.map_err(body_problem)?;
    let text =
        std::str::from_utf8(&body).map_err(|e| Problem::bad_request("body", format!("the body is not UTF-8: {e}")))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = if content_type.contains("yaml") {
        Format::Yaml
    } else if content_type.contains("json") {
        Format::Json
    } else {
        Format::guess(None, text)
    };
    let budget = ParseBudget { max_bytes: TASK_BODY_LIMIT, ..ParseBudget::default() };
    Task::from_str_with(text, format, &budget)
        .map_err(|e| Problem::invalid("invalid-task", "the task is not valid", &e.problems))
}

/// A body that could not be read: too large (413) or broken (400).
pub fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", rejection.body_text())
    } else {
        Problem::bad_request("body", rejection.body_text())
    }
}

/// A path that could not be read.
pub fn path_problem(rejection: PathRejection) -> Problem {
    Problem::bad_request("path", rejection.body_text())
}

/// A refused submission as a problem.
pub fn submit_problem(e: SubmitError) -> Problem {
    match e {
        SubmitError::Policy(refusal) => Problem::new(StatusCode::FORBIDDEN, "policy", refusal.to_string()).errors(
            refusal.problems.into_iter().map(|p| FieldProblem { field: p.field, message: p.message, line: p.line }),
        ),
        e @ SubmitError::TooManyRuns { .. } => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-runs", e.to_string())
        }
        e @ SubmitError::NameInUse { .. } => Problem::new(StatusCode::CONFLICT, "name-in-use", e.to_string())
            .errors([FieldProblem { field: "name".into(), message: e.to_string(), line: None }]),
        SubmitError::Records(e) => Problem::internal(e),
        e => Problem::internal(e),
    }
}

/// Submits a run: the task as JSON (`application/json`) or YAML (`application/yaml`).
#[utoipa::path(post, path = "/v2/runs", tag = "runs",
    request_body(content = Object, description = "A task, as in a task file", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted and queued", body = RunView, headers(("Location" = String, description = "The run's URL"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn submit(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsWrite)?;
    let task = read_task(&headers, body)?;
    let record = state.manager.submit(&task, &caller.client).map_err(submit_problem)?;
    let position = state.manager.queue_position(&record.id);
    let view = RunView::of(record, position);
    let location = view.url.clone();
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
}

/// The filters and the page of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only runs in this state.
    pub state: Option<String>,
    /// Only runs with this label, `key=value`.
    pub label: Option<String>,
    /// At most this many (1 to 1000, default 50).
    pub limit: Option<String>,
    /// Where the previous page ended (its `next`).
    pub cursor: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs, oldest first.
    pub runs: Vec<RunView>,
    /// The cursor of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Lists the caller's runs (everyone's for `admin`), oldest first.
#[utoipa::path(get, path = "/v2/runs", tag = "runs", params(ListQuery),
    responses(
        (status = 200, body = RunPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RunPage>, Problem> {
    caller.require(Scope::RunsRead)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let state_filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(RunState::parse(name).ok_or_else(|| {
            Problem::bad_request(
                "state",
                format!("unknown state `{name}`: one of queued, deploying, running, succeeded, failed, aborted"),
            )
        })?),
    };
    let label = match query.label.as_deref() {
        None | Some("") => None,
        Some(pair) => {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| Problem::bad_request("label", "a label filter is `key=value`"))?;
            Some((key.to_owned(), value.to_owned()))
        }
    };
    let limit =
        match query.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                Problem::bad_request("limit", format!("limit is a whole number from 1 to {MAX_LIMIT}"))
            })?,
        };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Problem::bad_request("cursor", "not a cursor this service handed out"))?,
        ),
    };
    let filter = RunFilter { owner: None, state: state_filter, label, after, limit };
    let records = state.manager.list(&filter, &caller.client)?;
    let next = (records.len() == limit).then(|| records.last().map(|r| r.seq.to_string())).flatten();
    let runs = records
        .into_iter()
        .map(|r| {
            let position = state.manager.queue_position(&r.id);
            RunView::of(r, position)
        })
        .collect();
    Ok(Json(RunPage { runs, next }))
}

/// The record of run `id` the caller may see, or 404.
pub fn visible_run(state: &AppState, caller: &Caller, id: &str) -> Result<RunRecord, Problem> {
    state.manager.get(id, &caller.client)?.ok_or_else(|| Problem::not_found("run", run_url(id)))
}

/// A run: its state, phases with their times, workers, outcome, thresholds.
#[utoipa::path(get, path = "/v2/runs/{id}", tag = "runs", params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, body = RunView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn inspect(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<RunView>, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let record = visible_run(&state, &caller, &id)?;
    let position = state.manager.queue_position(&id);
    Ok(Json(RunView::of(record, position)))
}

/// Aborts a run and tears it down (a queued one never runs). Idempotent: 202 while it is being
/// stopped, 200 once it is over.
#[utoipa::path(delete, path = "/v2/runs/{id}", tag = "runs", params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Already over", body = RunView),
        (status = 202, description = "Being stopped", body = RunView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn abort(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsWrite)?;
    let Path(id) = id.map_err(path_problem)?;
    let record = state.manager.abort(&id, &caller.client)?.ok_or_else(|| Problem::not_found("run", run_url(&id)))?;
    let status = if record.state.is_final() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(RunView::of(record, None))).into_response())
}

/// A run's artifact files.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactList {
    /// The files, relative to the run's artifacts; each is at `/v2/runs/{id}/artifacts/{file}`.
    pub files: Vec<String>,
}

/// How the artifacts are listed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactsQuery {
    /// `tar`: every file in one tar archive instead of the list.
    pub format: Option<String>,
}

/// Lists a run's artifacts, or (`?format=tar`) hands them all over as a tar archive.
#[utoipa::path(get, path = "/v2/runs/{id}/artifacts", tag = "runs",
    params(("id" = String, Path, description = "The run's id"), ArtifactsQuery),
    responses(
        (status = 200, body = ArtifactList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn artifacts(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<ArtifactsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let record = visible_run(&state, &caller, &id)?;
    match query.format.as_deref() {
        None | Some("") | Some("json") => Ok(Json(ArtifactList { files: record.artifacts }).into_response()),
        Some("tar") => {
            let dir = state.manager.artifacts_dir(&id);
            let files = record.artifacts.clone();
            let tar = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let mut builder = tar::Builder::new(Vec::new());
                for file in &files {
                    builder.append_path_with_name(dir.join(file), file)?;
                }
                builder.into_inner()
            })
            .await
            .map_err(Problem::internal)?
            .map_err(Problem::internal)?;
            Ok(([(header::CONTENT_TYPE, "application/x-tar")], tar).into_response())
        }
        Some(other) => Err(Problem::bad_request("format", format!("unknown format `{other}`: `tar` or `json`"))),
    }
}

/// Reads file `name` of run `record`'s artifacts, if the run lists it (no other path is served).
async fn artifact_bytes(state: &AppState, record: &RunRecord, name: &str) -> Result<Vec<u8>, Problem> {
    let instance = format!("{}/artifacts/{name}", run_url(&record.id));
    if !record.artifacts.iter().any(|f| f == name) {
        return Err(Problem::not_found("artifact", instance));
    }
    tokio::fs::read(state.manager.artifacts_dir(&record.id).join(name))
        .await
        .map_err(|_| Problem::not_found("artifact", instance))
}

/// One artifact file of a run.
#[utoipa::path(get, path = "/v2/runs/{id}/artifacts/{path}", tag = "runs",
    params(("id" = String, Path, description = "The run's id"), ("path" = String, Path, description = "The file, as listed")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn artifact(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path((id, name)) = path.map_err(path_problem)?;
    let record = visible_run(&state, &caller, &id)?;
    let bytes = artifact_bytes(&state, &record, &name).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The results' self-contained HTML report (`report.html`), when the run had results.
#[utoipa::path(get, path = "/v2/runs/{id}/report", tag = "runs", params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "report.html", content_type = "text/html"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn report(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let record = visible_run(&state, &caller, &id)?;
    let bytes = artifact_bytes(&state, &record, "report.html").await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response())
}

/// The results' summary (`summary.json`: per label and worker, thresholds' verdicts).
#[utoipa::path(get, path = "/v2/runs/{id}/summary", tag = "runs", params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "summary.json", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn summary(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let record = visible_run(&state, &caller, &id)?;
    record.summary.map(Json).ok_or_else(|| Problem::not_found("results summary", format!("{}/summary", run_url(&id))))
}
