//! Errors as RFC 7807 problem documents (`application/problem+json`), naming the field or the
//! resource at fault.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem of a refused request, naming its field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field's path (`worker.replicas`, `waitCommand.timeout`, `limit`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// Its line in the body, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:atq:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong here, and what to do.
    pub detail: String,
    /// The resource at fault (`/v2/runs/1f2e…`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every problem with a field of the request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The status, kept out of the JSON.
    #[serde(skip)]
    #[schema(ignore)]
    pub code: StatusCode,
}

impl Problem {
    /// A problem of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:atq:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            errors: Vec::new(),
            code: status,
        }
    }

    /// The resource at fault.
    #[must_use]
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The problems with the request's fields.
    #[must_use]
    pub fn errors(mut self, errors: impl IntoIterator<Item = FieldProblem>) -> Self {
        self.errors.extend(errors);
        self
    }

    /// 400: the request cannot be read (bad query, bad header).
    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail.clone()).errors([FieldProblem {
            field: field.to_owned(),
            message: detail,
            line: None,
        }])
    }

    /// 404: no such resource (or one the caller may not see).
    pub fn not_found(what: &str, instance: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", format!("no such {what}")).instance(instance)
    }

    /// 500: the service failed (the detail is safe to show; the cause is logged).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail.to_string())
    }

    /// From the core's validation problems (422).
    pub fn invalid(kind: &str, detail: &str, problems: &[atq_core::Problem]) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, detail).errors(problems.iter().map(|p| FieldProblem {
            field: p.field.clone(),
            message: p.message.clone(),
            line: p.line,
        }))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (self.code, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

impl From<atq_core::records::RecordsError> for Problem {
    fn from(e: atq_core::records::RecordsError) -> Self {
        Problem::internal(e)
    }
}

/// A core error as a problem: its kind names the status.
impl From<atq_core::Error> for Problem {
    fn from(e: atq_core::Error) -> Self {
        use atq_core::Error;
        let kind = atq_core::run::error_kind(&e).replace('_', "-");
        let status = match &e {
            Error::Validation(v) => return Problem::invalid(&kind, &e.to_string(), &v.problems),
            Error::NotFound { .. } | Error::TaskNotFound { .. } => StatusCode::NOT_FOUND,
            Error::TaskExists { .. } | Error::Conflict { .. } | Error::InUse { .. } => StatusCode::CONFLICT,
            Error::Data(atq_core::error::DataError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Error::Data(atq_core::error::DataError::InUse { .. }) => StatusCode::CONFLICT,
            Error::Data(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::EngineUnreachable { .. } | Error::EngineUnsuitable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
        }
        Problem::new(status, &kind, e.to_string())
    }
}
