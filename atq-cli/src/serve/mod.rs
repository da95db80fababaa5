//! `atq serve`: the HTTP service. It parses requests, calls atq-core's [`RunManager`] (the
//! queue, the policy, the records, the run flow) and renders the answers; nothing of what a run
//! does is decided here.
//!
//! One concept per module:
//! - [`auth`]: bearer tokens (hashed in a tokens file), scopes, the [`auth::Caller`] extractor;
//! - [`problem`]: errors as RFC 7807 problem documents;
//! - [`runs`]: v2's runs (submit, list, inspect, abort, artifacts, report, summary);
//! - [`events`]: a run's events as Server-Sent Events, and its logs;
//! - [`data`]: v2's data bundles;
//! - [`v1`]: ATQ-Director's API, for its clients;
//! - [`openapi`]: the OpenAPI 3 document, generated from the handlers.

// A problem document is the error of every handler; it is built once per failed request, where
// its size (about 130 bytes) costs nothing measurable, and boxing it would obscure every handler.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atq_core::records::Records;
use atq_core::runs::RunManager;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

pub mod auth;
pub mod data;
pub mod events;
pub mod openapi;
pub mod problem;
pub mod runs;
#[cfg(test)]
mod tests;
pub mod v1;

use auth::Auth;
use problem::Problem;

/// Largest task body (JSON or YAML), as the task parser's own budget.
pub const TASK_BODY_LIMIT: usize = 1024 * 1024;

/// Largest upload (a data bundle, parsed in memory).
pub const UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

/// How long a request that is not a stream may take, reading its body included (a slow client
/// gets 408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The runs: queue, policy, records, run flow.
    pub manager: RunManager,
    /// Who may call.
    pub auth: Auth,
}

/// The service's routes, with their limits.
pub fn router(state: AppState) -> Router {
    let upload_limit = DefaultBodyLimit::max(UPLOAD_LIMIT);
    let bounded = Router::new()
        .route("/v2/runs", post(runs::submit).get(runs::list))
        .route("/v2/runs/{id}", get(runs::inspect).delete(runs::abort))
        .route("/v2/runs/{id}/artifacts", get(runs::artifacts))
        .route("/v2/runs/{id}/artifacts/{*path}", get(runs::artifact))
        .route("/v2/runs/{id}/report", get(runs::report))
        .route("/v2/runs/{id}/summary", get(runs::summary))
        .route("/v2/data", post(data::upload).layer(upload_limit).get(data::list))
        .route("/v2/data/{id}", delete(data::remove))
        .route("/v2/health", get(health))
        .route("/v2/ready", get(ready))
        .route("/openapi.json", get(openapi::document))
        .merge(v1::routes(upload_limit))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT));
    // Streams last as long as their run: no request timeout.
    let streams =
        Router::new().route("/v2/runs/{id}/events", get(events::stream)).route("/v2/runs/{id}/logs", get(events::logs));
    bounded
        .merge(streams)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(TASK_BODY_LIMIT))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found("route", uri.path().to_owned())
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{} does not accept {method}", uri.path()),
    )
    .instance(uri.path().to_owned())
}

/// Liveness.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The service is up (no engine call).
#[utoipa::path(get, path = "/v2/health", tag = "service", responses((status = 200, body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness: the engine answered.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// The backend (`swarm`, `docker`, `fake`).
    pub backend: String,
    /// The engine's version.
    pub version: String,
    /// Runs queued or running.
    pub active_runs: usize,
}

/// The engine is reachable.
#[utoipa::path(get, path = "/v2/ready", tag = "service",
    responses((status = 200, body = Ready), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> Result<axum::Json<Ready>, Problem> {
    let manager = &state.manager;
    match manager.director().cluster().info().await {
        Ok(info) => Ok(axum::Json(Ready {
            status: "ready",
            backend: format!("{:?}", info.backend).to_lowercase(),
            version: info.version,
            active_runs: manager.active(),
        })),
        Err(e) => Err(Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "engine-unreachable",
            format!("the engine does not answer: {e}"),
        )),
    }
}

/// How `atq serve` was asked to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The tokens file (`atq token add` writes it).
    #[arg(long, value_name = "FILE", default_value = "atq-tokens.json")]
    pub tokens: PathBuf,
    /// At most this many runs at once; the others wait in submission order.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Where the run records (SQLite) and the runs' artifacts are kept.
    #[arg(long, value_name = "DIR", default_value = "atq-state")]
    pub state: PathBuf,
    /// Accept every request without a token (only on a loopback address).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// How callers are authenticated, from the arguments: checked before anything else (no engine
/// is contacted for a refused `--insecure-no-auth`).
pub fn auth_of(args: &ServeArgs) -> Result<Auth, String> {
    if args.insecure_no_auth {
        if !args.listen.ip().is_loopback() {
            return Err(format!(
                "--insecure-no-auth is only allowed on a loopback address, not {}: use a tokens file (`atq token add`)",
                args.listen
            ));
        }
        crate::display::err(&format!(
            "atq: warning: --insecure-no-auth: every caller on {} is an admin; never expose this port",
            args.listen
        ));
        return Ok(Auth::Disabled);
    }
    let file = auth::TokensFile::load(&args.tokens)?;
    if file.tokens.is_empty() {
        return Err(format!(
            "no tokens in {}: create one with `atq token add NAME --scopes runs:read,runs:write --tokens {}`",
            args.tokens.display(),
            args.tokens.display()
        ));
    }
    Ok(Auth::Tokens(Arc::new(file)))
}

/// How long, once stopping, the service waits for its runs' teardown and its streams to end.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// How long a client may take to send a request's headers (a slow client holds a connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `signal` resolves, then lets open connections finish (at
/// most [`STOP_WAIT`]). HTTP/1 with a header-read timeout; the body's is the router's.
async fn accept(listener: tokio::net::TcpListener, app: Router, signal: impl std::future::Future<Output = ()>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(signal);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_WAIT, graceful.shutdown()).await.is_err() {
        crate::display::err("atq: streams still open 60 s after the stop: closing them");
    }
}

/// Runs the service until `shutdown` resolves; then stops accepting, aborts its runs (tearing
/// them down: their event streams end with them) and waits a bounded while for that.
pub async fn serve(
    args: ServeArgs,
    auth: Auth,
    director: atq_core::Director,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let records = Records::open(&args.state).map_err(|e| e.to_string())?;
    let manager = RunManager::new(director, usize::from(args.concurrency), records, Some(&args.state))
        .map_err(|e| format!("cannot prepare the state directory: {e}"))?;
    for settled in manager.reconcile().await.map_err(|e| e.to_string())? {
        crate::display::err(&format!("atq: run {} ({}): {}", settled.id, settled.task, settled.note));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    crate::display::err(&format!("atq: serving on http://{address} (concurrency {})", args.concurrency));
    let app = router(AppState { manager: manager.clone(), auth });
    let stopper = manager.clone();
    // On the signal the runs are aborted at once: open event streams end only with their runs.
    let signal = async move {
        shutdown.await;
        crate::display::err("atq: stopping: aborting the runs still queued or running");
        tokio::spawn(async move { stopper.shutdown().await });
    };
    accept(listener, app, signal).await;
    if tokio::time::timeout(STOP_WAIT, manager.shutdown()).await.is_err() {
        crate::display::err("atq: some runs were still being torn down after 60 s: `atq prune` removes what is left");
    }
    Ok(())
}

/// `atq token add | ls | rm`.
pub fn token_command(command: crate::cli::TokenCommand) -> Result<(), String> {
    use crate::cli::TokenCommand;
    match command {
        TokenCommand::Add { name, scopes, tokens } => {
            let scopes = scopes
                .iter()
                .map(|s| {
                    auth::Scope::parse(s.trim())
                        .ok_or_else(|| format!("unknown scope `{s}`: runs:read, runs:write, data:write or admin"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if name.is_empty() {
                return Err("a token needs a name".into());
            }
            let mut file = auth::TokensFile::load(&tokens)?;
            if file.tokens.iter().any(|t| t.name == name) {
                return Err(format!(
                    "{} already has a token named `{name}`: `atq token rm {name}` first",
                    tokens.display()
                ));
            }
            let token = auth::new_token()?;
            file.tokens.push(auth::TokenEntry {
                name: name.clone(),
                sha256: auth::hash_token(&token),
                scopes,
                policy: None,
            });
            file.save(&tokens)?;
            crate::display::out(&token);
            crate::display::err(&format!(
                "atq: token `{name}` added to {} (only its hash is stored: this is the one time it is shown)",
                tokens.display()
            ));
        }
        TokenCommand::Ls { tokens } => {
            for entry in auth::TokensFile::load(&tokens)?.tokens {
                let scopes: Vec<_> = entry.scopes.iter().map(|s| s.as_str()).collect();
                crate::display::out(&format!("{}\t{}", entry.name, scopes.join(",")));
            }
        }
        TokenCommand::Rm { name, tokens } => {
            let mut file = auth::TokensFile::load(&tokens)?;
            let before = file.tokens.len();
            file.tokens.retain(|t| t.name != name);
            if file.tokens.len() == before {
                return Err(format!("no token named `{name}` in {}", tokens.display()));
            }
            file.save(&tokens)?;
            crate::display::err(&format!("atq: token `{name}` removed"));
        }
    }
    Ok(())
}
