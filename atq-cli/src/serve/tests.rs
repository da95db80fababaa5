//! The service in process, on FakeCluster: each request goes through the whole router
//! (`tower::ServiceExt::oneshot`), auth and limits included.

use std::sync::Arc;
use std::time::Duration;

use atq_core::cluster::fake::{Matcher, Script};
use atq_core::labels::Role;
use atq_core::policy::Policy;
use atq_core::records::Records;
use atq_core::runs::RunManager;
use atq_core::{Director, FakeCluster};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use super::auth::{hash_token, Auth, Scope, TokenEntry, TokensFile};
use super::{router, AppState};

const ALICE: &str = "atq_alice";
const BOB: &str = "atq_bob";
const READER: &str = "atq_reader";
const ADMIN: &str = "atq_admin";
const LOADER: &str = "atq_loader";

struct Service {
    app: Router,
    fake: FakeCluster,
}

fn entry(name: &str, token: &str, scopes: &[Scope]) -> TokenEntry {
    TokenEntry { name: name.into(), sha256: hash_token(token), scopes: scopes.to_vec(), policy: None }
}

/// A service on a fake engine, whose master runs `master_runs`, at most `concurrency` runs at
/// once, images `img*` allowed.
fn service_with(concurrency: usize, master_runs: Duration) -> Service {
    let fake = FakeCluster::new();
    fake.script(Matcher::role(Role::Master), Script::exits_after(0, master_runs));
    let director = Director::new(fake.clone());
    let manager = RunManager::new(director, concurrency, Records::in_memory().unwrap(), None).unwrap();
    let tokens = TokensFile {
        policy: Policy { images: vec!["img*".into()], ..Policy::default() },
        tokens: vec![
            entry("alice", ALICE, &[Scope::RunsRead, Scope::RunsWrite]),
            entry("bob", BOB, &[Scope::RunsRead, Scope::RunsWrite]),
            entry("reader", READER, &[Scope::RunsRead]),
            entry("admin", ADMIN, &[Scope::Admin]),
            entry("loader", LOADER, &[Scope::RunsRead, Scope::DataWrite]),
        ],
    };
    let app = router(AppState { manager, auth: Auth::Tokens(Arc::new(tokens)) });
    Service { app, fake }
}

fn service() -> Service {
    service_with(4, Duration::ZERO)
}

fn task_yaml(name: &str, image: &str) -> String {
    format!("name: {name}\nworker: {{image: {image}, replicas: 2}}\nmaster: {{image: img}}\n")
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(app: &Router, method: Method, uri: &str, token: Option<&str>, body: impl Into<Body>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(body.into()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    Answer { status, content_type, body }
}

async fn submit(app: &Router, token: &str, name: &str) -> String {
    let answer = call(app, Method::POST, "/v2/runs", Some(token), task_yaml(name, "img")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["id"].as_str().unwrap().to_owned()
}

/// Polls the run until it is over; returns its view.
async fn finished(app: &Router, token: &str, id: &str) -> Value {
    for _ in 0..500 {
        let view = call(app, Method::GET, &format!("/v2/runs/{id}"), Some(token), Body::empty()).await.json();
        if matches!(view["state"].as_str(), Some("succeeded" | "failed" | "aborted")) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {id} did not finish");
}

#[tokio::test]
async fn a_request_without_a_token_or_with_a_wrong_one_is_401_and_creates_nothing() {
    let s = service();
    for token in [None, Some("atq_wrong")] {
        let answer = call(&s.app, Method::POST, "/v2/runs", token, task_yaml("t", "img")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.json()["status"], 401);
    }
    let answer = call(&s.app, Method::PUT, "/task", None, r#"{"name":"t"}"#).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.fake.total_calls(), 0);
    assert!(s.fake.is_empty());
}

#[tokio::test]
async fn a_token_without_the_scope_is_403_and_creates_nothing() {
    let s = service();
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(READER), task_yaml("t", "img")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.json()["detail"].as_str().unwrap().contains("runs:write"));
    let page = call(&s.app, Method::GET, "/v2/runs", Some(ADMIN), Body::empty()).await.json();
    assert_eq!(page["runs"].as_array().unwrap().len(), 0);
    assert_eq!(s.fake.total_calls(), 0);
}

#[tokio::test]
async fn the_allow_list_refuses_an_image_naming_the_field() {
    let s = service();
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), task_yaml("t", "evil/miner")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["errors"][0]["field"], "worker.image");
    assert_eq!(s.fake.total_calls(), 0);
}

#[tokio::test]
async fn host_paths_are_refused_by_default() {
    let s = service();
    let body = "name: t\nworker: {image: img, dataPath: /var/run}\nmaster: {image: img}\n";
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), body).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["errors"][0]["field"], "worker.dataPath");
}

#[tokio::test]
async fn an_invalid_task_is_422_naming_every_field() {
    let s = service();
    let body = "name: t\nworker: {image: img, replicas: -2}\n";
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), body).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> =
        answer.json()["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect();
    assert!(fields.contains(&"worker.replicas".to_owned()) && fields.contains(&"master".to_owned()), "{fields:?}");
}

#[tokio::test]
async fn oversized_and_hostile_bodies_are_refused() {
    let s = service();
    let huge = format!("name: t\nworker: {{image: img}}\nmaster: {{image: img}}\n#{}\n", "x".repeat(2 * 1024 * 1024));
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), huge).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.content_type, "application/problem+json");

    // A billion laughs: aliases past the parser's budget.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 { "a".to_owned() } else { format!("b{}", i - 1) };
        bomb.push_str(&format!("b{i}: &b{i} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
    }
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), bomb).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);

    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), vec![0xff, 0xfe, 0x00]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), deep).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.fake.total_calls(), 0);
}

#[tokio::test]
async fn a_run_goes_through_its_phases_and_its_events_end_with_the_outcome() {
    let s = service();
    let id = submit(&s.app, ALICE, "t").await;
    let view = finished(&s.app, ALICE, &id).await;
    assert_eq!(view["state"], "succeeded");
    assert_eq!(view["exitCode"], 0);
    assert_eq!(view["workers"].as_array().unwrap().len(), 2);
    let phases: Vec<&str> = view["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases.first(), Some(&"queued"));
    assert!(phases.contains(&"master_running") && phases.contains(&"torn_down"), "{phases:?}");
    let events = call(&s.app, Method::GET, &format!("/v2/runs/{id}/events"), Some(ALICE), Body::empty()).await;
    assert_eq!(events.content_type, "text/event-stream");
    let text = String::from_utf8(events.body).unwrap();
    assert!(text.starts_with("id: 1\nevent: queued\n"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.contains("event: outcome"), "{last}");
    assert!(s.fake.is_empty(), "the run was torn down");
}

#[tokio::test]
async fn events_resume_after_the_last_event_id() {
    let s = service();
    let id = submit(&s.app, ALICE, "t").await;
    finished(&s.app, ALICE, &id).await;
    let request = Request::get(format!("/v2/runs/{id}/events"))
        .header("authorization", format!("Bearer {ALICE}"))
        .header("last-event-id", "3")
        .body(Body::empty())
        .unwrap();
    let response = s.app.clone().oneshot(request).await.unwrap();
    let text =
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    assert!(text.starts_with("id: 4\n"), "{text}");
}

#[tokio::test]
async fn a_client_sees_and_aborts_only_its_own_runs_unless_admin() {
    let s = service_with(1, Duration::from_secs(30));
    let id = submit(&s.app, ALICE, "mine").await;
    let answer = call(&s.app, Method::GET, &format!("/v2/runs/{id}"), Some(BOB), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = call(&s.app, Method::DELETE, &format!("/v2/runs/{id}"), Some(BOB), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let bobs = call(&s.app, Method::GET, "/v2/runs", Some(BOB), Body::empty()).await.json();
    assert_eq!(bobs["runs"].as_array().unwrap().len(), 0);
    let all = call(&s.app, Method::GET, "/v2/runs", Some(ADMIN), Body::empty()).await.json();
    assert_eq!(all["runs"].as_array().unwrap().len(), 1);
    let answer = call(&s.app, Method::DELETE, &format!("/v2/runs/{id}"), Some(ADMIN), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(finished(&s.app, ALICE, &id).await["state"], "aborted");
}

#[tokio::test]
async fn delete_is_idempotent_and_a_queued_run_never_runs() {
    let s = service_with(1, Duration::from_secs(30));
    let first = submit(&s.app, ALICE, "first").await;
    let queued = submit(&s.app, ALICE, "second").await;
    let view = call(&s.app, Method::GET, &format!("/v2/runs/{queued}"), Some(ALICE), Body::empty()).await.json();
    assert_eq!(view["state"], "queued");
    assert_eq!(view["queuePosition"], 0);
    let answer = call(&s.app, Method::DELETE, &format!("/v2/runs/{queued}"), Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let view = finished(&s.app, ALICE, &queued).await;
    assert_eq!(view["state"], "aborted");
    let phases: Vec<&str> = view["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["queued", "aborted"]);
    let again = call(&s.app, Method::DELETE, &format!("/v2/runs/{queued}"), Some(ALICE), Body::empty()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["state"], "aborted");

    call(&s.app, Method::DELETE, &format!("/v2/runs/{first}"), Some(ALICE), Body::empty()).await;
    assert_eq!(finished(&s.app, ALICE, &first).await["state"], "aborted");
    let again = call(&s.app, Method::DELETE, &format!("/v2/runs/{first}"), Some(ALICE), Body::empty()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(s.fake.is_empty(), "the aborted run was torn down");
}

#[tokio::test]
async fn runs_start_in_submission_order_within_the_concurrency_limit() {
    let s = service_with(2, Duration::from_millis(20));
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(submit(&s.app, ALICE, &format!("t{i}")).await);
    }
    let mut spans = Vec::new();
    for id in &ids {
        let view = finished(&s.app, ALICE, id).await;
        assert_eq!(view["state"], "succeeded");
        let time = |name: &str| {
            let phase = view["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
            humantime::parse_rfc3339(phase["time"].as_str().unwrap()).unwrap()
        };
        spans.push((time("deploying"), time("succeeded")));
    }
    for pair in spans.windows(2) {
        assert!(pair[0].0 <= pair[1].0, "started in submission order");
    }
    for (i, (start, _)) in spans.iter().enumerate() {
        let overlapping = spans.iter().filter(|(s, e)| s <= start && start < e).count();
        assert!(overlapping <= 2, "run {i} started while {overlapping} ran");
    }
}

#[tokio::test]
async fn listings_page_by_cursor_without_losing_or_repeating_a_run() {
    let s = service();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(submit(&s.app, ALICE, &format!("p{i}")).await);
    }
    let mut seen = Vec::new();
    let mut uri = "/v2/runs?limit=2".to_owned();
    loop {
        let page = call(&s.app, Method::GET, &uri, Some(ALICE), Body::empty()).await.json();
        seen.extend(page["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => uri = format!("/v2/runs?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let answer = call(&s.app, Method::GET, "/v2/runs?limit=0", Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["errors"][0]["field"], "limit");
    let answer = call(&s.app, Method::GET, "/v2/runs?state=sleeping", Some(ALICE), Body::empty()).await;
    assert_eq!(answer.json()["errors"][0]["field"], "state");
}

#[tokio::test]
async fn a_second_run_of_a_name_in_use_is_409() {
    let s = service_with(1, Duration::from_secs(30));
    let id = submit(&s.app, ALICE, "same").await;
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(BOB), task_yaml("same", "img")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.json()["errors"][0]["field"], "name");
    call(&s.app, Method::DELETE, &format!("/v2/runs/{id}"), Some(ALICE), Body::empty()).await;
    finished(&s.app, ALICE, &id).await;
}

#[tokio::test]
async fn v1_put_task_takes_atq_directors_payload_and_reports_its_status() {
    let s = service();
    let payload = r#"{"name":"v1task","delay":0,
        "waitCommand":{"command":"echo ready","expectedResult":"ready","timeout":10},
        "worker":{"image":"img","alias":"worker","replicas":2,"args":[],"tty":false},
        "master":{"image":"img","alias":"master","replicas":1,"args":[],"tty":false}}"#;
    s.fake.probe_output(0, "ready");
    let answer = call(&s.app, Method::PUT, "/api/task/", Some(ALICE), payload).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.json()["status"], "initializing");
    finished(&s.app, ALICE, &id).await;
    let answer = call(&s.app, Method::GET, &format!("/task/{id}"), Some(ALICE), Body::empty()).await;
    assert_eq!(answer.json(), serde_json::json!({"id": id, "status": "finished"}));
    let answer = call(&s.app, Method::DELETE, &format!("/task/{id}"), Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = call(&s.app, Method::GET, "/task/nope", Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = call(&s.app, Method::PUT, "/task", Some(ALICE), r#"{"name":"x"}"#).await;
    assert_eq!(answer.status, StatusCode::EXPECTATION_FAILED);
}

#[tokio::test]
async fn v1_ping_swarm_and_databind_list() {
    let s = service();
    let answer = call(&s.app, Method::GET, "/monitoring/ping", None, Body::empty()).await;
    assert_eq!((answer.status, answer.body.as_slice()), (StatusCode::OK, b"pong".as_slice()));
    let answer = call(&s.app, Method::GET, "/swarm", Some(READER), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&answer.body).to_lowercase().contains("token"));
    let answer = call(&s.app, Method::GET, "/databind/list", Some(READER), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_problem_documents() {
    let s = service();
    let answer = call(&s.app, Method::GET, "/v3/nothing", Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.content_type, "application/problem+json");
    let answer = call(&s.app, Method::PATCH, "/v2/runs", Some(ALICE), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.content_type, "application/problem+json");
}

#[tokio::test]
async fn the_openapi_document_names_every_route() {
    let s = service();
    let doc = call(&s.app, Method::GET, "/openapi.json", None, Body::empty()).await.json();
    let paths = doc["paths"].as_object().unwrap();
    for path in ["/v2/runs", "/v2/runs/{id}", "/v2/runs/{id}/events", "/v2/data", "/task", "/task/{id}", "/swarm"] {
        assert!(paths.contains_key(path), "{path} missing");
    }
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn v2_data_bundles_are_uploaded_listed_and_removed() {
    let s = service();
    let bundle = zip_of(&[("plan.jmx", "<jmeterTestPlan/>"), ("users.csv", "id\n1\n")]);
    let answer = call(&s.app, Method::POST, "/v2/data", Some(ALICE), bundle.clone()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "runs:write is not data:write");
    let answer = call(&s.app, Method::POST, "/v2/data", Some(LOADER), b"not a zip".to_vec()).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = call(&s.app, Method::POST, "/v2/data", Some(LOADER), bundle).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.json()["files"], 2);
    let list = call(&s.app, Method::GET, "/v2/data", Some(READER), Body::empty()).await.json();
    assert_eq!(list[0]["id"], id.as_str());
    let answer = call(&s.app, Method::DELETE, &format!("/v2/data/{id}"), Some(LOADER), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = call(&s.app, Method::DELETE, &format!("/v2/data/{id}"), Some(LOADER), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn v1_databind_upload_takes_a_multipart_zip() {
    let s = service();
    let multipart = |content: &[u8]| {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plan.zip\"\r\nContent-Type: application/zip\r\n\r\n".to_vec();
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    };
    let upload = |body: Vec<u8>| {
        Request::post("/api/databind/upload")
            .header("authorization", format!("Bearer {LOADER}"))
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(Body::from(body))
            .unwrap()
    };
    let response = s.app.clone().oneshot(upload(multipart(&zip_of(&[("a.txt", "a")])))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let list = call(&s.app, Method::GET, "/databind/list", Some(READER), Body::empty()).await.json();
    assert_eq!(list, serde_json::json!([{"id": id}]));
    let response = s.app.clone().oneshot(upload(multipart(b"plain text"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn v2_data_takes_a_tar_archive_too() {
    let s = service();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "plan.jmx", b"<p/>\n".as_slice()).unwrap();
    let answer = call(&s.app, Method::POST, "/v2/data", Some(LOADER), builder.into_inner().unwrap()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["files"], 1);
}

#[tokio::test]
async fn a_run_with_results_serves_its_artifacts_summary_and_report() {
    let s = service();
    // JMeter 2.13's headerless JTL: two samples, one failed.
    let jtl = "1700000000000,120,login,200,OK,users 1-1,text,true,512,1,1,100\n\
               1700000000100,340,login,500,ERR,users 1-1,text,false,128,1,1,300\n";
    s.fake.script(Matcher::role(Role::Master), Script::exits(0).artifact("/atq/results/results.jtl", jtl));
    let task = "name: judged\nartifacts: /atq/results\nresults: {format: jtl, path: results.jtl}\n\
                thresholds: [\"error_rate < 1%\"]\nworker: {image: img}\nmaster: {image: img}\n";
    let answer = call(&s.app, Method::POST, "/v2/runs", Some(ALICE), task).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let view = finished(&s.app, ALICE, &id).await;
    assert_eq!(view["state"], "failed", "a threshold failed: {view}");
    assert_eq!(view["exitCode"], 99);
    assert_eq!(view["thresholdsPassed"], false);
    let files = call(&s.app, Method::GET, &format!("/v2/runs/{id}/artifacts"), Some(ALICE), Body::empty()).await.json();
    let files: Vec<&str> = files["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.contains(&"results.jtl") && files.contains(&"report.html"), "{files:?}");
    let raw =
        call(&s.app, Method::GET, &format!("/v2/runs/{id}/artifacts/results.jtl"), Some(ALICE), Body::empty()).await;
    assert_eq!(raw.body, jtl.as_bytes());
    let escape = call(
        &s.app,
        Method::GET,
        &format!("/v2/runs/{id}/artifacts/..%2F..%2Fetc%2Fpasswd"),
        Some(ALICE),
        Body::empty(),
    )
    .await;
    assert_eq!(escape.status, StatusCode::NOT_FOUND, "only listed files are served");
    let summary = call(&s.app, Method::GET, &format!("/v2/runs/{id}/summary"), Some(ALICE), Body::empty()).await;
    assert_eq!(summary.status, StatusCode::OK);
    assert!(summary.json().to_string().contains("error_rate"), "{}", summary.json());
    let report = call(&s.app, Method::GET, &format!("/v2/runs/{id}/report"), Some(ALICE), Body::empty()).await;
    assert!(report.content_type.starts_with("text/html") && String::from_utf8_lossy(&report.body).contains("<html"));
    let tar =
        call(&s.app, Method::GET, &format!("/v2/runs/{id}/artifacts?format=tar"), Some(ALICE), Body::empty()).await;
    let mut archive = tar::Archive::new(tar.body.as_slice());
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names.len(), files.len());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let s = service();
    let stalled = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let request = Request::post("/v2/runs")
        .header("authorization", format!("Bearer {ALICE}"))
        .body(Body::from_stream(stalled))
        .unwrap();
    let response = s.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(s.fake.total_calls(), 0);
}
