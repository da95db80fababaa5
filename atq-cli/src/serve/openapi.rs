//! The OpenAPI 3 document of the service, generated from the handlers' annotations and the
//! types they return (utoipa), served at `/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{data, events, problem, runs, v1};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "atq serve", description = "Disposable distributed load-test clusters as a service: ATQ-Director's v1 and atq's v2."),
    paths(
        runs::submit, runs::list, runs::inspect, runs::abort, runs::artifacts, runs::artifact, runs::report, runs::summary,
        events::stream, events::logs,
        data::upload, data::list, data::remove,
        super::health, super::ready,
        v1::create_task, v1::inspect_task, v1::delete_task, v1::upload, v1::list_uploads, v1::swarm, v1::ping,
    ),
    components(schemas(
        problem::Problem, problem::FieldProblem, runs::RunView, runs::PhaseView, runs::RunPage, runs::ArtifactList,
        data::BundleView, super::Health, super::Ready, v1::AtqTask, v1::AtqUpload, v1::SwarmFacts,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
