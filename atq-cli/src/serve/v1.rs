//! ATQ-Director's API (its `swagger/swagger.yaml`, Goa, basePath `/api`), for its clients: the
//! same paths (under `/api` and at the root), methods, payloads and status codes, on the same
//! runs as v2. Differences, each for a reason (the README's table lists them): a bearer token is
//! required (ATQ-Director had no authentication); `GET /swarm` returns the cluster's facts as JSON
//! and never its join tokens; errors carry a problem document.

use atq_core::records::{RunRecord, RunState};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Scope};
use super::data::store_archive;
use super::problem::Problem;
use super::runs::{path_problem, read_task, submit_problem, visible_run};
use super::AppState;

/// v1's routes, at the root and under ATQ-Director's basePath `/api`, with and without its
/// trailing slashes.
pub fn routes(upload_limit: DefaultBodyLimit) -> Router<AppState> {
    let mut router = Router::new();
    for base in ["", "/api"] {
        router = router
            .route(&format!("{base}/task"), put(create_task))
            .route(&format!("{base}/task/"), put(create_task))
            .route(&format!("{base}/task/{{id}}"), get(inspect_task).delete(delete_task))
            .route(&format!("{base}/databind/upload"), post(upload).layer(upload_limit))
            .route(&format!("{base}/databind/list"), get(list_uploads))
            .route(&format!("{base}/swarm"), get(swarm))
            .route(&format!("{base}/swarm/"), get(swarm))
            .route(&format!("{base}/monitoring/ping"), get(ping));
    }
    router
}

/// ATQ-Director's task media type (`application/atq.task+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AtqTask {
    /// The task's id (atq's run id).
    pub id: String,
    /// `initializing`, `started`, `stopped`, `finished` or `errored`.
    pub status: &'static str,
}

/// ATQ-Director's status of a run in atq's state.
pub fn v1_status(state: RunState) -> &'static str {
    match state {
        RunState::Queued | RunState::Deploying => "initializing",
        RunState::Running => "started",
        RunState::Succeeded => "finished",
        RunState::Failed => "errored",
        RunState::Aborted => "stopped",
    }
}

fn atq_task(record: &RunRecord) -> AtqTask {
    AtqTask { id: record.id.clone(), status: v1_status(record.state) }
}

/// `PUT /task`: creates a task from ATQ-Director's TaskPayload (200 with its id; 417 when the
/// definition has errors).
#[utoipa::path(put, path = "/task", tag = "v1",
    request_body(content = Object, description = "ATQ-Director's TaskPayload", content_type = "application/json"),
    responses(
        (status = 200, description = "Task creation in progress", body = AtqTask),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 417, description = "The task definition has errors", body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_task(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AtqTask>, Problem> {
    caller.require(Scope::RunsWrite)?;
    let task = read_task(&headers, body).map_err(|mut problem| {
        // ATQ-Director answers an incomplete or wrong definition with 417.
        if problem.code == StatusCode::UNPROCESSABLE_ENTITY || problem.code == StatusCode::BAD_REQUEST {
            problem.code = StatusCode::EXPECTATION_FAILED;
            problem.status = 417;
            problem.title = "Expectation Failed".into();
        }
        problem
    })?;
    let record = state.manager.submit(&task, &caller.client).map_err(submit_problem)?;
    Ok(Json(atq_task(&record)))
}

/// `GET /task/{id}`: the task's status.
#[utoipa::path(get, path = "/task/{id}", tag = "v1", params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, body = AtqTask),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The given ID does not exist", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn inspect_task(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AtqTask>, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    Ok(Json(atq_task(&visible_run(&state, &caller, &id)?)))
}

/// `DELETE /task/{id}`: stops the task and removes everything it created (204).
#[utoipa::path(delete, path = "/task/{id}", tag = "v1", params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 204, description = "Deleted (its teardown may still be finishing)"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The given ID does not exist", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_task(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::RunsWrite)?;
    let Path(id) = id.map_err(path_problem)?;
    match state.manager.abort(&id, &caller.client)? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Problem::not_found("task", format!("/task/{id}"))),
    }
}

/// ATQ-Director's upload media type.
#[derive(Debug, Serialize, ToSchema)]
pub struct AtqUpload {
    /// The bundle's id (a task's `fileid`).
    pub id: String,
}

fn upload_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /databind/upload`: a multipart form whose `file` is a zip (200 with its id; 415 when it
/// is not a zip).
#[utoipa::path(post, path = "/databind/upload", tag = "v1",
    request_body(content = Vec<u8>, description = "multipart/form-data with a `file` part: a zip", content_type = "multipart/form-data"),
    responses(
        (status = 200, body = AtqUpload),
        (status = 400, description = "No `file` part", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a zip", body = Object),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    caller: Caller,
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::DataWrite)?;
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return Ok(upload_error(StatusCode::BAD_REQUEST, e.body_text())),
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(upload_error(StatusCode::BAD_REQUEST, "the form has no `file` part".into())),
            Err(e) => return Ok(upload_error(e.status(), e.body_text())),
        };
        if field.name() != Some("file") {
            continue;
        }
        let bytes = match field.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Ok(upload_error(e.status(), e.body_text())),
        };
        if !atq_core::data::is_zip(&bytes) {
            return Ok(upload_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the file is not a zip archive".into()));
        }
        let bundle = store_archive(&state, &bytes).await?;
        return Ok(Json(AtqUpload { id: bundle.id().to_owned() }).into_response());
    }
}

/// `GET /databind/list`: the uploaded bundles (204 when there are none).
#[utoipa::path(get, path = "/databind/list", tag = "v1",
    responses(
        (status = 200, body = Vec<AtqUpload>),
        (status = 204, description = "No bundles"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_uploads(caller: Caller, State(state): State<AppState>) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let bundles = state.manager.director().data_bundles().await?;
    if bundles.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(bundles.into_iter().map(|b| AtqUpload { id: b.id }).collect::<Vec<_>>()).into_response())
}

/// The cluster's facts (never its join tokens).
#[derive(Debug, Serialize, ToSchema)]
pub struct SwarmFacts {
    /// `swarm` or `docker` (or `fake`).
    pub backend: String,
    /// The engine's version.
    pub version: String,
    /// Nodes that can run replicas.
    pub nodes_ready: u32,
    /// Nodes the engine knows.
    pub nodes_total: u32,
    /// Backend facts, by name (`swarm`: `active, manager`).
    pub details: std::collections::BTreeMap<String, String>,
}

/// `GET /swarm`: the cluster's facts, as JSON; unlike ATQ-Director, never its join tokens.
#[utoipa::path(get, path = "/swarm", tag = "v1",
    responses(
        (status = 200, body = SwarmFacts),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn swarm(caller: Caller, State(state): State<AppState>) -> Result<Json<SwarmFacts>, Problem> {
    caller.require(Scope::RunsRead)?;
    let info = state.manager.director().cluster().info().await?;
    let details = info.details.into_iter().filter(|(name, _)| !name.to_lowercase().contains("token")).collect();
    Ok(Json(SwarmFacts {
        backend: format!("{:?}", info.backend).to_lowercase(),
        version: info.version,
        nodes_ready: info.nodes_ready,
        nodes_total: info.nodes_total,
        details,
    }))
}

/// `GET /monitoring/ping`: `pong` (no token needed: a liveness probe).
#[utoipa::path(get, path = "/monitoring/ping", tag = "v1", responses((status = 200, description = "Pong", content_type = "text/plain")))]
pub async fn ping() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "pong")
}
