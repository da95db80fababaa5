//! v2's data bundles: upload a zip or a tar (read in memory within the core's limits, stored on the
//! engine), list them, remove one (refused while a task uses it).

use atq_core::data::BundleInfo;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::runs::{body_problem, path_problem};
use super::AppState;

/// A bundle stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleView {
    /// Its id: what a task's `fileid` names.
    pub id: String,
    /// How many files it has.
    pub files: usize,
    /// Their total size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Whether every file is stored (false: an interrupted upload).
    pub complete: bool,
}

impl From<BundleInfo> for BundleView {
    fn from(info: BundleInfo) -> Self {
        BundleView { complete: info.is_complete(), id: info.id, files: info.files, bytes: info.bytes }
    }
}

/// Stores an archive's bytes (zip or tar) as a data bundle.
pub async fn store_archive(state: &AppState, bytes: &[u8]) -> Result<atq_core::DataBundle, Problem> {
    Ok(state.manager.director().push_data_archive(bytes, "the upload").await?)
}

/// Uploads a data bundle: the body is a zip or a tar archive.
#[utoipa::path(post, path = "/v2/data", tag = "data",
    request_body(content = Vec<u8>, description = "A zip or tar archive (sent as `application/zip`, `application/x-tar` or `application/octet-stream`)", content_type = "application/octet-stream"),
    responses(
        (status = 201, body = BundleView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::DataWrite)?;
    let body = body.map_err(body_problem)?;
    if !atq_core::data::is_zip(&body) && !atq_core::data::is_tar(&body) {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-an-archive",
            format!("a data bundle is uploaded as a zip or tar archive; this body is neither (Content-Type: {content_type})"),
        ));
    }
    let bundle = store_archive(&state, &body).await?;
    let view = BundleView {
        id: bundle.id().to_owned(),
        files: bundle.len(),
        bytes: Some(bundle.total_bytes()),
        complete: true,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The data bundles stored on the engine.
#[utoipa::path(get, path = "/v2/data", tag = "data",
    responses(
        (status = 200, body = Vec<BundleView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<BundleView>>, Problem> {
    caller.require(Scope::RunsRead)?;
    let bundles = state.manager.director().data_bundles().await?;
    Ok(Json(bundles.into_iter().map(BundleView::from).collect()))
}

/// Removes a data bundle; refused (409) while a task uses it.
#[utoipa::path(delete, path = "/v2/data/{id}", tag = "data", params(("id" = String, Path, description = "The bundle's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    caller.require(Scope::DataWrite)?;
    let Path(id) = id.map_err(path_problem)?;
    if !atq_core::data::is_bundle_id(&id) {
        return Err(Problem::not_found("data bundle", format!("/v2/data/{id}")));
    }
    state.manager.director().remove_data(&id).await.map_err(|e| Problem::from(e).instance(format!("/v2/data/{id}")))?;
    Ok(StatusCode::NO_CONTENT)
}
