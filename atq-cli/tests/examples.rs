//! The load-test examples, run for real: `atq run examples/jmeter/*.yaml` and
//! `examples/locust/*.yaml` on the real engine, their results judged by atq.
//!
//! Each test builds its example's image first (`examples/*/build-image.sh`: idempotent, a fraction
//! of a second when the image is up to date; a minute or two from nothing, as root, with the Debian
//! mirror and PyPI reachable — `scripts/build-example-images.sh` does it ahead of the tests in CI).
//! Then it runs the example's task file under a unique name, with `--artifacts` in a temporary
//! directory, and checks the exit code, that `summary.json`, `junit.xml` and `report.html` were
//! written beside the raw results, and that they agree with the raw results read independently
//! here (a JTL with the `csv` crate, Locust's own `*_stats.csv`). The runs go one at a time: each
//! starts three JVMs or Python processes, and the machines this runs on have two cores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One example run at a time (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn require_engine() {
    let info = Command::new("docker").args(["info", "--format", "{{.Swarm.ControlAvailable}}"]).output();
    let ok = info.as_ref().is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true");
    assert!(ok, "these tests need a Docker engine that is a swarm manager (`docker swarm init`): {info:?}");
}

/// Runs `examples/<example>/build-image.sh` once per test process.
fn build_image(example: &'static str) {
    static JMETER: OnceLock<()> = OnceLock::new();
    static LOCUST: OnceLock<()> = OnceLock::new();
    let once = if example == "jmeter" { &JMETER } else { &LOCUST };
    once.get_or_init(|| {
        let script = examples_dir().join(example).join("build-image.sh");
        let started = Instant::now();
        let out = Command::new("sh").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed (it needs root, the Debian mirror and PyPI the first time):\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{example} image ready in {:.1}s", started.elapsed().as_secs_f64());
    });
}

/// What one `atq run` of an example left.
struct Run {
    code: Option<i32>,
    stderr: String,
    /// The saved artifacts, plus summary.json, junit.xml and report.html.
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Run {
    fn summary(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("summary.json"))
            .unwrap_or_else(|e| panic!("summary.json: {e}\n{}", self.stderr));
        serde_json::from_str(&text).unwrap()
    }
}

/// `atq run examples/<file> --name <unique> --artifacts <tmp> [--data DIR]`; checks that nothing
/// is left on the engine afterwards.
fn run_example(file: &str, example: &'static str, data: Option<&Path>) -> Run {
    require_engine();
    build_image(example);
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
    let name = format!("ex-{stem}-{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("artifacts");
    let started = Instant::now();
    let out = assert_cmd::Command::cargo_bin("atq")
        .unwrap()
        .arg("run")
        .arg(examples_dir().join(file))
        .args(["--name", &name, "--artifacts"])
        .arg(&dir)
        .args(data.map(|d| [Path::new("--data"), d]).into_iter().flatten())
        .env_remove("ATQ_FAKE")
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("atq run {file}: exit {:?} in {:.1}s", out.status.code(), started.elapsed().as_secs_f64());
    assert_nothing_left(&name);
    Run { code: out.status.code(), stderr, dir, _tmp: tmp }
}

/// Services and configs must be gone; networks may linger a little (their removal is asynchronous).
fn assert_nothing_left(task: &str) {
    let left = |kind: &str| common::leftovers(kind, task).len();
    assert_eq!((left("service"), left("config")), (0, 0), "services or configs of {task} left");
    let deadline = Instant::now() + Duration::from_secs(30);
    while left("network") > 0 {
        assert!(Instant::now() < deadline, "network of {task} still there after 30 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The three outputs exist; junit.xml is well-formed with a case per threshold and per label;
/// report.html is one self-contained page.
fn check_outputs(run: &Run, summary: &Value) {
    for name in ["summary.json", "junit.xml", "report.html"] {
        let len = std::fs::metadata(run.dir.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{name} missing or empty in {}\n{}", run.dir.display(), run.stderr);
    }
    let junit = std::fs::read_to_string(run.dir.join("junit.xml")).unwrap();
    let (cases, failures) = junit_cases(&junit);
    let thresholds = summary["thresholds"].as_array().unwrap();
    let labels = summary["labels"].as_array().unwrap();
    assert_eq!(cases, thresholds.len() + labels.len(), "a test case per threshold and per label:\n{junit}");
    let failed = thresholds.iter().filter(|v| v["passed"] == false).count();
    assert_eq!(failures, failed, "a failure per failed threshold:\n{junit}");
    let html = std::fs::read_to_string(run.dir.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "report.html has inline charts");
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "report.html loads something from outside ({external})");
    }
    for label in labels {
        assert!(html.contains(label["name"].as_str().unwrap()), "report.html names label {}", label["name"]);
    }
}

/// Parses junit.xml with an XML parser: (test cases, failure elements). Panics if malformed.
fn junit_cases(xml: &str) -> (usize, usize) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("junit.xml is not well-formed: {e}\n{xml}")) {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => cases += 1,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"failure" => failures += 1,
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, failures)
}

/// One JTL sample, as read here.
struct Sample {
    ts: i64,
    elapsed: u64,
    label: String,
    success: bool,
    bytes: u64,
    hostname: String,
    user: Option<String>,
}

fn read_jtl(path: &Path) -> Vec<Sample> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col =
        |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column: {headers:?}"));
    let (ts, elapsed, label, success, bytes, host) =
        (col("timeStamp"), col("elapsed"), col("label"), col("success"), col("bytes"), col("Hostname"));
    let user = headers.iter().position(|h| h == "user");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Sample {
                ts: r[ts].parse().unwrap(),
                elapsed: r[elapsed].parse().unwrap(),
                label: r[label].to_owned(),
                success: &r[success] == "true",
                bytes: r[bytes].parse().unwrap(),
                hostname: r[host].to_owned(),
                user: user.map(|i| r[i].to_owned()),
            }
        })
        .collect()
}

/// Asserts that a reported percentile `got` (ms) is what `q` of these elapsed times is: between
/// the nearest-rank values one rank either side, plus `precision` (the histogram's relative
/// error: 0.1% for summaries, 1% for the time series' buckets).
fn assert_percentile(what: &str, got: &Value, elapsed: &[u64], q: f64, precision: f64) {
    let mut sorted = elapsed.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = (q * n as f64).ceil() as usize;
    let lo = sorted[rank.saturating_sub(2).min(n - 1)];
    let hi = sorted[rank.min(n - 1)];
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: no value"));
    #[allow(clippy::cast_precision_loss)]
    let (lo, hi) = (lo as f64 * (1.0 - precision) - 1.0, hi as f64 * (1.0 + precision) + 1.0);
    assert!(got >= lo && got <= hi, "{what}: {got} ms, but the raw samples put it in [{lo}, {hi}]");
}

/// summary.json against the raw JTL: counts, errors, bytes, min/max and percentiles, in total,
/// per label and per worker (the `Hostname` column), and the time series.
fn check_against_jtl(summary: &Value, samples: &[Sample]) {
    type Group<'a> = BTreeMap<&'a str, Vec<&'a Sample>>;
    let check = |what: &str, got: &Value, group: &[&Sample]| {
        let errors = group.iter().filter(|s| !s.success).count();
        assert_eq!(got["count"], group.len(), "{what}: count");
        assert_eq!(got["errors"], errors, "{what}: errors");
        assert_eq!(got["bytes"], group.iter().map(|s| s.bytes).sum::<u64>(), "{what}: bytes");
        let elapsed: Vec<u64> = group.iter().map(|s| s.elapsed).collect();
        #[allow(clippy::cast_precision_loss)]
        let (min, max) = (*elapsed.iter().min().unwrap() as f64, *elapsed.iter().max().unwrap() as f64);
        assert_eq!(got["min_ms"].as_f64(), Some(min), "{what}: min");
        assert_eq!(got["max_ms"].as_f64(), Some(max), "{what}: max");
        for (key, q) in [("p50_ms", 0.50), ("p90_ms", 0.90), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            assert_percentile(&format!("{what} {key}"), &got[key], &elapsed, q, 0.001);
        }
    };
    let all: Vec<&Sample> = samples.iter().collect();
    check("total", &summary["total"], &all);
    let mut labels = Group::new();
    let mut workers = Group::new();
    for s in samples {
        labels.entry(&s.label).or_default().push(s);
        workers.entry(&s.hostname).or_default().push(s);
    }
    for (key, groups) in [("labels", &labels), ("workers", &workers)] {
        let reported: BTreeMap<&str, &Value> =
            summary[key].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap(), v)).collect();
        assert_eq!(reported.keys().collect::<Vec<_>>(), groups.keys().collect::<Vec<_>>(), "{key}");
        for (name, group) in groups {
            check(&format!("{key} {name}"), reported[name], group);
        }
    }
    // The series: every sample in one bucket (by its start time), each bucket's numbers its own.
    let series = &summary["series"];
    #[allow(clippy::cast_possible_truncation)]
    let width = (series["bucket_seconds"].as_f64().unwrap() * 1000.0) as i64;
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.iter().map(|p| p["count"].as_u64().unwrap()).sum::<u64>(), samples.len() as u64, "series count");
    for p in points {
        let t = p["t_ms"].as_i64().unwrap();
        let elapsed: Vec<u64> =
            samples.iter().filter(|s| s.ts.div_euclid(width) * width == t).map(|s| s.elapsed).collect();
        assert_eq!(p["count"], elapsed.len(), "series bucket {t}: count");
        if !elapsed.is_empty() {
            assert_percentile(&format!("series bucket {t} p50"), &p["p50_ms"], &elapsed, 0.50, 0.01);
            assert_percentile(&format!("series bucket {t} p99"), &p["p99_ms"], &elapsed, 0.99, 0.01);
        }
    }
}

/// The verdict of one threshold in summary.json.
fn verdict<'a>(summary: &'a Value, threshold: &str) -> &'a Value {
    summary["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["threshold"] == threshold)
        .unwrap_or_else(|| panic!("no verdict for {threshold:?}: {}", summary["thresholds"]))
}

#[test]
fn jmeter_example_passes_and_its_outputs_agree_with_the_jtl() {
    let run = run_example("jmeter/jmeter.yaml", "jmeter", None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = run.summary();
    check_outputs(&run, &summary);
    assert_eq!(summary["passed"], true);
    let samples = read_jtl(&run.dir.join("results.jtl"));
    check_against_jtl(&summary, &samples);
    // JMeter 2.13, distributed: the Hostname column names the remote engine that took each
    // sample (threadName carries no engine prefix). 2 workers x 5 threads x 20 loops x 2 samplers.
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &samples {
        *per_worker.entry(&s.hostname).or_default() += 1;
    }
    assert_eq!(per_worker.values().copied().collect::<Vec<_>>(), vec![200, 200], "samples per worker: {per_worker:?}");
}

#[test]
fn jmeter_failing_variant_exits_99_and_names_the_broken_threshold() {
    let run = run_example("jmeter/jmeter-fails.yaml", "jmeter", None);
    assert_eq!(run.code, Some(99), "the master exits 0 and a threshold fails: 99\n{}", run.stderr);
    assert!(run.stderr.contains("master exited with code 0"), "{}", run.stderr);
    let summary = run.summary();
    check_outputs(&run, &summary);
    assert_eq!(summary["passed"], false);
    let samples = read_jtl(&run.dir.join("results.jtl"));
    check_against_jtl(&summary, &samples);
    let missing: Vec<&Sample> = samples.iter().filter(|s| s.label == "missing").collect();
    assert_eq!(missing.len(), 100);
    assert!(missing.iter().all(|s| !s.success), "every GET /missing failed");
    assert_eq!(verdict(&summary, "error_rate < 1%")["passed"], false);
    assert_eq!(verdict(&summary, "label=home: error_rate < 1%")["passed"], true);
    assert_eq!(verdict(&summary, "count >= 200")["passed"], true);
}

#[test]
fn jmeter_users_variant_uses_each_row_of_users_csv_once_per_worker_or_once_in_all() {
    // Without sharding every worker gets the whole users.csv (the data bundle) and uses every
    // row once. With `shards:` in the task file (issue 15: each worker sees only its slice at
    // the same path), the workers' users are disjoint and their union is the file.
    let task_file = std::fs::read_to_string(examples_dir().join("jmeter/jmeter-users.yaml")).unwrap();
    let sharded = task_file.lines().any(|l| l.trim_start().starts_with("shards:"));
    let users_dir = examples_dir().join("jmeter/users");
    let file: BTreeSet<String> = std::fs::read_to_string(users_dir.join("users.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    let run = run_example("jmeter/jmeter-users.yaml", "jmeter", Some(&users_dir));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = run.summary();
    check_outputs(&run, &summary);
    let samples = read_jtl(&run.dir.join("results.jtl"));
    check_against_jtl(&summary, &samples);
    let mut per_worker: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &samples {
        per_worker.entry(&s.hostname).or_default().push(s.user.as_deref().expect("a user column"));
    }
    assert_eq!(per_worker.len(), 2, "both workers took part");
    let mut union = BTreeSet::new();
    for (worker, users) in &per_worker {
        let distinct: BTreeSet<String> = users.iter().map(|u| (*u).to_owned()).collect();
        assert_eq!(distinct.len(), users.len(), "worker {worker} used a row twice");
        if sharded {
            assert!(distinct.is_disjoint(&union), "worker {worker} used rows of another worker's slice");
            assert_eq!(distinct.len(), file.len() / 2, "worker {worker}: half the rows");
        } else {
            assert_eq!(distinct, file, "worker {worker} used every row of users.csv");
        }
        union.extend(distinct);
    }
    assert_eq!(union, file, "the workers' users are the file's");
}

/// Locust's `locust_stats.csv`, by request name ("Aggregated" for the total).
fn read_locust_stats(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let row: BTreeMap<String, String> =
                headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect();
            (row["Name"].clone(), row)
        })
        .collect()
}

/// summary.json against Locust's own merged stats: counts, failures and its percentiles.
fn check_against_locust(summary: &Value, stats: &BTreeMap<String, BTreeMap<String, String>>) {
    let check = |what: &str, got: &Value, row: &BTreeMap<String, String>| {
        assert_eq!(got["count"].as_u64().unwrap().to_string(), row["Request Count"], "{what}: count");
        assert_eq!(got["errors"].as_u64().unwrap().to_string(), row["Failure Count"], "{what}: errors");
        for (key, column) in [("p50_ms", "50%"), ("p90_ms", "90%"), ("p95_ms", "95%"), ("p99_ms", "99%")] {
            let want: f64 = row[column].parse().unwrap();
            assert_eq!(got[key].as_f64(), Some(want), "{what}: {key} is Locust's {column}");
        }
    };
    check("total", &summary["total"], &stats["Aggregated"]);
    let labels = summary["labels"].as_array().unwrap();
    assert_eq!(labels.len(), stats.len() - 1, "a label per request name");
    for label in labels {
        let name = label["name"].as_str().unwrap();
        check(&format!("label {name}"), label, &stats[name]);
    }
}

#[test]
fn locust_example_passes_and_its_outputs_agree_with_locusts_stats() {
    let run = run_example("locust/locust.yaml", "locust", None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = run.summary();
    check_outputs(&run, &summary);
    assert_eq!(summary["passed"], true);
    let stats = read_locust_stats(&run.dir.join("locust_stats.csv"));
    check_against_locust(&summary, &stats);
    assert_eq!(stats.keys().collect::<Vec<_>>(), vec!["Aggregated", "home", "static"]);
    // Both workers took part: the master waited for 2 (--expect-workers) before it started.
    assert!(run.stderr.contains("2 workers connected"), "{}", run.stderr);
}

#[test]
fn locust_failing_variant_exits_99() {
    let run = run_example("locust/locust-fails.yaml", "locust", None);
    assert_eq!(run.code, Some(99), "Locust exits 0 and a threshold fails: 99\n{}", run.stderr);
    let summary = run.summary();
    check_outputs(&run, &summary);
    let stats = read_locust_stats(&run.dir.join("locust_stats.csv"));
    check_against_locust(&summary, &stats);
    assert_eq!(stats["missing"]["Request Count"], stats["missing"]["Failure Count"], "every GET /missing failed");
    assert_eq!(verdict(&summary, "error_rate < 1%")["passed"], false);
    assert_eq!(verdict(&summary, "label=home: error_rate < 1%")["passed"], true);
}
