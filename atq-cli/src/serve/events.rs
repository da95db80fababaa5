//! A run's events as Server-Sent Events (resumable with `Last-Event-ID`), and its log lines as
//! text (`?follow=true` keeps the stream open until the run ends).

use std::convert::Infallible;
use std::time::Duration;

use atq_core::runs::{BufferedEvent, EventCursor};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Caller, Scope};
use super::problem::Problem;
use super::runs::{path_problem, run_url};
use super::AppState;

/// The events of one cursor, as a stream that ends with the run.
fn cursor_stream(cursor: EventCursor) -> impl Stream<Item = BufferedEvent> {
    futures_util::stream::unfold(cursor, |mut cursor| async move { cursor.next().await.map(|e| (e, cursor)) })
}

fn cursor_of(state: &AppState, caller: &Caller, id: &str, after: u64) -> Result<EventCursor, Problem> {
    state.manager.events(id, after, &caller.client)?.ok_or_else(|| Problem::not_found("run", run_url(id)))
}

/// Where an event stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Start after this event id (as `Last-Event-ID`, which wins when both are given).
    pub after: Option<u64>,
}

/// The run's events as they happen (Server-Sent Events): progress (`event:` the event's name,
/// `data:` its JSON) and log lines (`event: log`, with `role`, `replica`, `stream`, `text`),
/// ending with `outcome` or `error`. Each has an `id`; reconnect with `Last-Event-ID` to resume.
#[utoipa::path(get, path = "/v2/runs/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "The run's id"), EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn stream(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let last = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Last-Event-ID", "an event id this stream handed out"))?,
        ),
        None => None,
    };
    let cursor = cursor_of(&state, &caller, &id, last.or(query.after).unwrap_or(0))?;
    let events = futures_util::StreamExt::map(cursor_stream(cursor), |event| {
        Ok::<_, Infallible>(Event::default().id(event.id.to_string()).event(event.name()).data(event.data.to_string()))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// Which log lines.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only this role's lines: `master`, `worker` or `probe`.
    pub role: Option<String>,
    /// Keep the stream open until the run ends (`true`), or return what there is now.
    pub follow: Option<bool>,
}

/// One log event as a text line, if it is a log line of `role`.
fn log_line(event: &BufferedEvent, role: Option<&str>) -> Option<String> {
    let data = &event.data;
    if event.name() != "log" {
        return None;
    }
    let line_role = data.get("role").and_then(serde_json::Value::as_str).unwrap_or("?");
    if role.is_some_and(|r| r != line_role) {
        return None;
    }
    let replica = data.get("replica").and_then(serde_json::Value::as_u64).map(|r| format!(".{r}")).unwrap_or_default();
    let text = data.get("text").and_then(serde_json::Value::as_str).unwrap_or("");
    Some(format!("{line_role}{replica} | {text}\n"))
}

/// The run's log lines as text, each `role.replica | line`.
#[utoipa::path(get, path = "/v2/runs/{id}/logs", tag = "runs",
    params(("id" = String, Path, description = "The run's id"), LogsQuery),
    responses(
        (status = 200, description = "Log lines", content_type = "text/plain"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn logs(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::RunsRead)?;
    let Path(id) = id.map_err(path_problem)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let role = match query.role.as_deref() {
        None | Some("") => None,
        Some(r @ ("master" | "worker" | "probe")) => Some(r.to_owned()),
        Some(other) => {
            return Err(Problem::bad_request("role", format!("unknown role `{other}`: master, worker or probe")))
        }
    };
    let mut cursor = cursor_of(&state, &caller, &id, 0)?;
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if query.follow != Some(true) {
        let mut text = String::new();
        while let Some(event) = cursor.next_now() {
            text.extend(log_line(&event, role.as_deref()));
        }
        return Ok((text_plain, text).into_response());
    }
    let lines = futures_util::StreamExt::filter_map(cursor_stream(cursor), move |event| {
        let line = log_line(&event, role.as_deref());
        async move { line.map(Ok::<_, Infallible>) }
    });
    Ok((text_plain, Body::from_stream(lines)).into_response())
}
