//! Load on `atq serve` (on FakeCluster, loopback only, bounded): C concurrent clients submit N
//! runs in all (`POST /v2/runs`), each then reads its run (`GET /v2/runs/{id}`); afterwards every
//! accepted run must have been executed exactly once, started in submission order, never more
//! than K at once. Each master runs `--master-ms` (default 20 ms), so that K is reached. Prints
//! the p50/p99 latency of both requests.
//!
//! `cargo build --release -p atq-cli && cargo run -p atq-benches --release --bin serve-load -- \
//!   --atq target/release/atq --clients 100 --runs 1000 --concurrency 10`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Options {
    atq: String,
    clients: usize,
    runs: usize,
    concurrency: usize,
    master_ms: u64,
}

fn options() -> Options {
    let mut o = Options { atq: "target/release/atq".into(), clients: 100, runs: 1000, concurrency: 10, master_ms: 20 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--atq" => o.atq = v,
            "--clients" => o.clients = v.parse().expect("--clients N"),
            "--runs" => o.runs = v.parse().expect("--runs N"),
            "--concurrency" => o.concurrency = v.parse().expect("--concurrency K"),
            "--master-ms" => o.master_ms = v.parse().expect("--master-ms MS"),
            _ => {
                eprintln!("serve-load [--atq PATH] [--clients C] [--runs N] [--concurrency K] [--master-ms MS]");
                std::process::exit(2);
            }
        }
    }
    o
}

async fn call(client: &HttpClient, method: &str, url: &str, body: String) -> (u16, serde_json::Value) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/yaml")
        .body(Full::new(Bytes::from(body)))
        .expect("a request");
    let response = client.request(request).await.expect("the service answers");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn time_of(view: &serde_json::Value, phase: &str) -> Option<SystemTime> {
    let phases = view["phases"].as_array()?;
    let found: Vec<_> = phases.iter().filter(|p| p["name"] == phase).collect();
    assert!(found.len() <= 1, "run {} has {} `{phase}` phases: executed more than once", view["id"], found.len());
    humantime::parse_rfc3339(found.first()?["time"].as_str()?).ok()
}

fn main() {
    let o = options();
    let state = tempfile::tempdir().expect("a state directory");
    let mut child = Command::new(&o.atq)
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-no-auth", "--concurrency", &o.concurrency.to_string()])
        .arg("--state")
        .arg(state.path())
        .env("ATQ_FAKE", "1")
        .env("ATQ_FAKE_MASTER_RUN_MS", o.master_ms.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start atq serve (build it first: cargo build --release -p atq-cli)");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read stderr") > 0, "atq serve exited");
        if let Some(rest) = line.trim().strip_prefix("atq: serving on ") {
            break rest.split_whitespace().next().expect("an address").to_owned();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let result = rt.block_on(async {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..o.clients {
            let (client, next, base) = (client.clone(), next.clone(), base.clone());
            let total = o.runs;
            workers.push(tokio::spawn(async move {
                let (mut posts, mut gets, mut ids) = (Vec::new(), Vec::new(), Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let task = format!("name: load-{i}\nworker: {{image: img, replicas: 2}}\nmaster: {{image: img}}\n");
                    let t = Instant::now();
                    let (status, view) = call(&client, "POST", &format!("{base}/v2/runs"), task).await;
                    posts.push(t.elapsed());
                    assert_eq!(status, 202, "{view}");
                    let id = view["id"].as_str().expect("an id").to_owned();
                    let t = Instant::now();
                    let (status, _) = call(&client, "GET", &format!("{base}/v2/runs/{id}"), String::new()).await;
                    gets.push(t.elapsed());
                    assert_eq!(status, 200);
                    ids.push(id);
                }
                (posts, gets, ids)
            }));
        }
        let (mut posts, mut gets, mut accepted) = (Vec::new(), Vec::new(), 0);
        for worker in workers {
            let (p, g, ids) = worker.await.expect("a client");
            posts.extend(p);
            gets.extend(g);
            accepted += ids.len();
        }
        let submitted_in = started.elapsed();

        // Wait for every run to end, then check each was executed once, in order, ≤ K at once.
        let deadline = Instant::now() + Duration::from_secs(120);
        let views = loop {
            let mut views = Vec::new();
            let mut cursor = String::new();
            loop {
                let (_, page) =
                    call(&client, "GET", &format!("{base}/v2/runs?limit=1000{cursor}"), String::new()).await;
                views.extend(page["runs"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
            }
            if views.iter().all(|v| v["state"] == "succeeded") && views.len() == accepted {
                break views;
            }
            assert!(Instant::now() < deadline, "runs still not over after 120 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let all_done = started.elapsed();
        let mut spans = Vec::new();
        for view in &views {
            let id = view["id"].as_str().expect("an id");
            let (_, full) = call(&client, "GET", &format!("{base}/v2/runs/{id}"), String::new()).await;
            let start = time_of(&full, "deploying").expect("admitted");
            assert!(time_of(&full, "network_created").is_some(), "deployed");
            let end = time_of(&full, "succeeded").expect("ended");
            spans.push((start, end));
        }
        let mut out_of_order = 0;
        for pair in spans.windows(2) {
            if pair[0].0 > pair[1].0 {
                out_of_order += 1;
            }
        }
        let max_overlap = spans
            .iter()
            .map(|(start, _)| spans.iter().filter(|(s, e)| s <= start && start < e).count())
            .max()
            .unwrap_or(0);
        posts.sort();
        gets.sort();
        (accepted, views.len(), out_of_order, max_overlap, posts, gets, submitted_in, all_done)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (accepted, executed, out_of_order, max_overlap, posts, gets, submitted_in, all_done) = result;
    println!(
        "clients {} runs {} concurrency {} master {} ms: accepted {accepted}, executed once each {executed}, started out of submission order {out_of_order}, most at once {max_overlap}",
        o.clients, o.runs, o.concurrency, o.master_ms
    );
    println!(
        "POST /v2/runs p50 {:.2} ms p99 {:.2} ms; GET /v2/runs/{{id}} p50 {:.2} ms p99 {:.2} ms; all submitted in {:.2} s, all over in {:.2} s",
        percentile(&posts, 0.5).as_secs_f64() * 1e3,
        percentile(&posts, 0.99).as_secs_f64() * 1e3,
        percentile(&gets, 0.5).as_secs_f64() * 1e3,
        percentile(&gets, 0.99).as_secs_f64() * 1e3,
        submitted_in.as_secs_f64(),
        all_done.as_secs_f64(),
    );
    assert_eq!(accepted, o.runs, "every run accepted");
    assert_eq!(executed, accepted, "every accepted run executed");
    assert_eq!(out_of_order, 0, "runs start in submission order");
    assert!(max_overlap <= o.concurrency, "at most K at once");
}
