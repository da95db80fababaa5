//! Property tests: every decoder of an engine answer (timestamps, the `GET /tasks` JSON, log
//! lines, the log frame demuxer) answers any input, quickly, without panicking — and the ones
//! with a structure to keep keep it (a log split anywhere gives the same lines and frames).

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::Value;

use super::convert::unix_seconds;
use super::logs::{self, Lines};
use super::tasks::{self, RawTask};
use crate::cluster::engine_http::ByteStream;
use crate::cluster::LogSource;

/// Most time one case may take: the decoders are linear, so anything near this is a bug.
const BOUND: Duration = Duration::from_secs(2);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < BOUND, "{what} took {:?}", start.elapsed());
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// The field names of a `GET /tasks` answer, so that random JSON often has the right shape.
const TASK_KEYS: &[&str] = &[
    "ID",
    "Version",
    "Index",
    "ServiceID",
    "Slot",
    "NodeID",
    "DesiredState",
    "Status",
    "State",
    "Err",
    "ContainerStatus",
    "ExitCode",
    "ContainerID",
    "NetworksAttachments",
    "Network",
    "Spec",
    "Name",
    "Addresses",
];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(TASK_KEYS).prop_map(str::to_owned), 1 => "\\PC{0,8}"]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec!["running", "shutdown", "failed", "complete", "rejected", "net", "10.0.1.4/24"])
            .prop_map(Value::from),
        prop::sample::select(vec!["10.0.1.4/99", "::1/128", "/", "x/y/z", "10.0.1.4"]).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A well-formed task with some of its values replaced by random JSON.
fn edited_task() -> impl Strategy<Value = Value> {
    let paths: Vec<Vec<&'static str>> = vec![
        vec!["ID"],
        vec!["Version", "Index"],
        vec!["Slot"],
        vec!["DesiredState"],
        vec!["Status", "State"],
        vec!["Status", "ContainerStatus", "ExitCode"],
        vec!["Status", "ContainerStatus"],
        vec!["NetworksAttachments"],
        vec!["Status"],
    ];
    (prop::collection::vec((prop::sample::select(paths), json()), 0..4), 0u32..4).prop_map(|(edits, slot)| {
        let mut task = serde_json::json!({
            "ID": "t1", "Version": {"Index": 3}, "ServiceID": "s", "Slot": slot, "NodeID": "n",
            "DesiredState": "running",
            "Status": {"State": "running", "Err": "", "ContainerStatus": {"ExitCode": 0, "ContainerID": "c"}},
            "NetworksAttachments": [{"Network": {"ID": "nid", "Spec": {"Name": "net"}}, "Addresses": ["10.0.1.4/24"]}]
        });
        for (path, value) in edits {
            // An earlier edit may have replaced a parent: then this one has nowhere to go.
            if let Some(at) = task.pointer_mut(&format!("/{}", path.join("/"))) {
                *at = value;
            }
        }
        task
    })
}

/// Decodes a `GET /tasks` body as the swarm backend does, and checks what it makes of it.
fn decode_tasks(body: &[u8]) {
    timed("decoding GET /tasks", || {
        let Ok(decoded) = serde_json::from_slice::<Vec<RawTask>>(body) else { return };
        let count = decoded.len();
        let replicas = tasks::current_replicas("svc", "net", decoded);
        assert!(replicas.len() <= count);
        let mut slots: Vec<u32> = replicas.iter().map(|r| r.slot).collect();
        slots.dedup();
        assert_eq!(slots.len(), replicas.len(), "one replica per slot, in slot order");
        for r in &replicas {
            assert_eq!(r.name, format!("svc.{}", r.slot));
            assert!(r.exit_code.is_none() || r.state.is_terminal());
        }
    });
}

/// A multiplexed log body: each frame an 8-byte header then its bytes.
fn multiplexed(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, payload) in frames {
        body.extend_from_slice(&[*kind, 0, 0, 0]);
        body.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
        body.extend_from_slice(payload);
    }
    body
}

/// `bytes` cut at `cuts` (positions taken modulo the length), as a response body.
fn chunked(bytes: &[u8], cuts: &[usize]) -> ByteStream {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    let chunks: Vec<_> = at.windows(2).map(|w| Ok(hyper::body::Bytes::copy_from_slice(&bytes[w[0]..w[1]]))).collect();
    Box::pin(futures_util::stream::iter(chunks))
}

fn demuxed(body: ByteStream) -> Vec<LogOutput> {
    block_on(logs::demux(body).map(|f| f.expect("no transport error in these bodies")).collect())
}

/// A parsed line as compared here: its time key, its task, its text.
type Seen = (Option<(i64, u32)>, Option<String>, String);

/// The lines `chunks` make, one stream.
fn lines_of(chunks: &[Vec<u8>]) -> Vec<Seen> {
    let mut lines = Lines::default();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(lines.push(LogOutput::StdOut { message: chunk.clone().into() }));
    }
    out.extend(lines.finish());
    out.into_iter().map(|p| (p.key, p.task, p.line.text)).collect()
}

fn log_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "\\PC{0,30}".prop_map(String::into_bytes),
        ("(19|20|99)[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?",
         "\\PC{0,20}")
            .prop_map(|(ts, text)| format!("{ts} com.docker.swarm.task.id=t{} {text}", text.len()).into_bytes()),
        prop::collection::vec(any::<u8>(), 0..30),
    ];
    prop::collection::vec(line, 0..8).prop_map(|lines| lines.join(&b'\n'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_timestamp_text_is_a_time_or_none(text in "\\PC{0,40}") {
        timed("unix_seconds", || unix_seconds(&text));
    }

    #[test]
    fn timestamp_shaped_text_never_overflows(
        year in "-?[0-9]{1,20}", month in "[0-9]{1,3}", day in "[0-9]{1,3}",
        time in "[0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}", fraction in "(\\.[0-9]{0,30})?",
        zone in "(Z|z|[+-][0-9]{1,20}:[0-9]{1,20}|[+-]|)",
    ) {
        let text = format!("{year}-{month}-{day}T{time}{fraction}{zone}");
        if let Some(seconds) = unix_seconds(&text) {
            // Only 4-digit years are read: the answer lies between year 0 and 9999 (± a day).
            prop_assert!((-62_167_305_600..=253_402_387_199).contains(&seconds), "{text} -> {seconds}");
        }
    }

    #[test]
    fn valid_timestamps_count_seconds_one_by_one(
        year in 1i64..=9999, month in 1i64..=12, day in 1i64..=28, hour in 0i64..24, minute in 0i64..60,
        second in 0i64..59,
    ) {
        let at = |s: i64| unix_seconds(&format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{s:02}Z"));
        let now = at(second).expect("a valid timestamp");
        prop_assert_eq!(at(second + 1), Some(now + 1));
        let shifted = unix_seconds(&format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.5+01:30"));
        prop_assert_eq!(shifted, Some(now - 5400));
    }

    #[test]
    fn random_json_never_breaks_the_task_decoder(value in json()) {
        decode_tasks(&serde_json::to_vec(&value).expect("json"));
        decode_tasks(&serde_json::to_vec(&Value::Array(vec![value])).expect("json"));
    }

    #[test]
    fn edited_tasks_never_break_the_task_decoder(tasks in prop::collection::vec(edited_task(), 0..6)) {
        decode_tasks(&serde_json::to_vec(&tasks).expect("json"));
    }

    #[test]
    fn random_bytes_never_break_the_task_decoder(body in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_tasks(&body);
    }

    #[test]
    fn any_log_line_parses(raw in prop::collection::vec(any::<u8>(), 0..200), text in log_text()) {
        timed("line_of", || {
            let _ = logs::line_of(LogSource::Stdout, &raw);
            let _ = logs::line_of(LogSource::Stderr, &text);
        });
    }

    #[test]
    fn a_log_gives_the_same_lines_however_it_is_chunked(
        text in log_text(), cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let whole = lines_of(std::slice::from_ref(&text));
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
        at.extend([0, text.len()]);
        at.sort_unstable();
        at.dedup();
        let chunks: Vec<Vec<u8>> = at.windows(2).map(|w| text[w[0]..w[1]].to_vec()).collect();
        prop_assert_eq!(timed("splitting lines", || lines_of(&chunks)), whole);
    }

    #[test]
    fn random_log_bodies_never_break_the_demuxer(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        header in prop::option::of((0u8..4, any::<u32>())),
    ) {
        let mut chunks = chunks;
        if let Some((kind, size)) = header {
            // A multiplexed-looking start, with any announced size (up to 4 GiB).
            let mut first = vec![kind, 0, 0, 0];
            first.extend_from_slice(&size.to_be_bytes());
            chunks.insert(0, first);
        }
        let total: usize = chunks.iter().map(Vec::len).sum();
        let body: ByteStream =
            Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(hyper::body::Bytes::from(c)))));
        let frames = timed("demux", || demuxed(body));
        let produced: usize = frames.iter().map(|f| f.as_ref().len()).sum();
        prop_assert!(produced <= total, "{produced} bytes out of {total} in");
    }

    #[test]
    fn multiplexed_frames_survive_any_chunking(
        frames in prop::collection::vec((1u8..=2, prop::collection::vec(any::<u8>(), 0..40)), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let body = multiplexed(&frames);
        let got = timed("demux", || demuxed(chunked(&body, &cuts)));
        let want: Vec<LogOutput> = frames
            .into_iter()
            .map(|(kind, payload)| match kind {
                2 => LogOutput::StdErr { message: payload.into() },
                _ => LogOutput::StdOut { message: payload.into() },
            })
            .collect();
        prop_assert_eq!(got, want);
    }
}
