//! Service logs as [`LogLine`]s.
//!
//! The engine is asked for timestamps and details. Each message starts with a timestamp (RFC
//! 3339, nanoseconds) and then the details (`com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,
//! com.docker.swarm.task.id=…`); both are stripped from the text: the timestamp becomes
//! [`LogLine::time`] and, for a finished read, puts the lines of all replicas and both streams in
//! order (stable, so lines of equal time keep the engine's order); the task id becomes
//! [`LogLine::replica`] (the task's slot). Across stdout and stderr the order is only as exact as
//! those timestamps: the engine reads the two pipes separately, so lines written to different
//! streams within a millisecond or so can come out swapped. Within one stream the order is kept.
//! A TTY service has no stdout/stderr split: its output comes as one raw stream, reported as
//! stdout, in chunks that are re-assembled into lines here.
//!
//! A followed service log never ends on the engine's side, even after every replica exited
//! (measured on 20.10). [`follow`] therefore ends it itself: once the caller's `finished` future
//! says every replica is done, it drops the live stream, reads the whole log once more, and yields
//! the lines the live stream had not delivered yet (counted per replica and stream, in which order
//! is always kept), so nothing is lost and nothing is waited for.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use futures_util::{Stream, StreamExt};

use super::convert::unix_seconds;
use crate::cluster::engine_http::ByteStream;
use crate::cluster::{LogLine, LogSource, LogStream};
use crate::error::{Error, Result};

/// Task id to slot, for naming each line's replica; shared with whoever learns new tasks.
pub(super) type Slots = Arc<Mutex<HashMap<String, u32>>>;

/// The engine's raw frames, as bollard yields them.
pub(super) type Frames = Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;

/// A line as parsed, before its replica is looked up.
pub(in crate::cluster) struct Parsed {
    /// `(unix seconds, nanoseconds)` of its timestamp, for ordering.
    pub key: Option<(i64, u32)>,
    /// The swarm task that printed it (from the details).
    pub task: Option<String>,
    /// The line (its replica filled in later).
    pub line: LogLine,
}

/// Longest line kept whole: 1 MiB. Past it, a line is cut (between characters) and its rest
/// continues as the next line, so output without newlines cannot grow the buffer without bound.
pub(in crate::cluster) const MAX_LINE_BYTES: usize = 1 << 20;

/// Splits chunks into lines per source (also used for plain containers' logs).
#[derive(Default)]
pub(in crate::cluster) struct Lines {
    /// Unfinished stdout (and TTY) text.
    stdout: Vec<u8>,
    /// Unfinished stderr text.
    stderr: Vec<u8>,
}

impl Lines {
    /// Adds a chunk; returns the lines it completed.
    pub(in crate::cluster) fn push(&mut self, output: LogOutput) -> Vec<Parsed> {
        let (source, buf, bytes) = match output {
            LogOutput::StdErr { message } => (LogSource::Stderr, &mut self.stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogSource::Stdout, &mut self.stdout, message)
            }
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        let mut lines = Vec::new();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            buf.extend_from_slice(piece);
            if buf.last() == Some(&b'\n') {
                lines.push(line_of(source, &buf[..buf.len() - 1]));
                buf.clear();
            }
            while buf.len() >= MAX_LINE_BYTES {
                let cut = char_boundary_at_most(buf, MAX_LINE_BYTES);
                let line: Vec<u8> = buf.drain(..cut).collect();
                lines.push(line_of(source, &line));
            }
        }
        lines
    }

    /// What is left without a final newline.
    pub(in crate::cluster) fn finish(&mut self) -> Vec<Parsed> {
        let mut lines = Vec::new();
        for (source, buf) in [(LogSource::Stdout, &mut self.stdout), (LogSource::Stderr, &mut self.stderr)] {
            if !buf.is_empty() {
                lines.push(line_of(source, buf));
                buf.clear();
            }
        }
        lines
    }
}

/// The largest `n <= max` (and > 0) at which `bytes` does not cut a UTF-8 character in two
/// (a continuation byte is never a character's start); `max` when there is none near it.
fn char_boundary_at_most(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3).max(1)..=max)
        .rev()
        .find(|&n| bytes.get(n).is_none_or(|&b| (b & 0xC0) != 0x80))
        .unwrap_or(max)
}

/// One line: its timestamp if it has one, the task named in its details, and its text without both.
pub(super) fn line_of(source: LogSource, raw: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(raw);
    let mut text: &str = text.strip_suffix('\r').unwrap_or(&text);
    let mut key = None;
    if let Some(k) = timestamp_key(text.split(' ').next().unwrap_or_default()) {
        key = Some(k);
        text = text.split_once(' ').map_or("", |(_, rest)| rest);
    }
    let mut task = None;
    if text.starts_with("com.docker.swarm.") {
        let (details, rest) = text.split_once(' ').unwrap_or((text, ""));
        task = details.split(',').find_map(|kv| kv.strip_prefix("com.docker.swarm.task.id=")).map(str::to_owned);
        text = rest;
    }
    let time = key.and_then(|(secs, nanos)| {
        let secs = u64::try_from(secs).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    });
    Parsed { key, task, line: LogLine { source, text: text.to_owned(), replica: None, time } }
}

/// `(unix seconds, nanoseconds)` of an engine timestamp.
fn timestamp_key(ts: &str) -> Option<(i64, u32)> {
    if !ts.starts_with(|c: char| c.is_ascii_digit()) || !ts.contains('T') {
        return None;
    }
    let seconds = unix_seconds(ts)?;
    let nanos = match ts.split_once('.') {
        Some((_, frac)) => {
            let digits: String = frac.chars().take_while(char::is_ascii_digit).take(9).collect();
            format!("{digits:0<9}").parse().ok()?
        }
        None => 0,
    };
    Some((seconds, nanos))
}

/// Gives a parsed line its replica.
fn named(parsed: Parsed, slots: &Slots) -> LogLine {
    let mut line = parsed.line;
    if let Some(task) = &parsed.task {
        line.replica = slots.lock().unwrap_or_else(PoisonError::into_inner).get(task).copied();
    }
    line
}

/// Reads the whole log into lines in time order.
async fn read_all<F>(mut stream: Frames, map: &F, slots: &Slots) -> Result<Vec<(Option<String>, LogLine)>>
where
    F: Fn(BollardError) -> Error,
{
    let mut lines = Lines::default();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(lines.push(chunk.map_err(map)?));
    }
    all.extend(lines.finish());
    all.sort_by_key(|p| p.key);
    Ok(all.into_iter().map(|p| (p.task.clone(), named(p, slots))).collect())
}

/// Reads the whole log and returns it in time order.
pub(super) async fn collect<F>(stream: Frames, map: F, slots: Slots) -> Result<LogStream>
where
    F: Fn(BollardError) -> Error,
{
    let all = read_all(stream, &map, &slots).await?;
    Ok(Box::pin(futures_util::stream::iter(all.into_iter().map(|(_, line)| Ok(line)))))
}

/// How [`follow`] ends: a future that resolves once every replica is done, and a way to read the
/// whole log again then.
pub(super) struct Ending {
    /// Resolves once every replica has exited (or the service is gone).
    pub finished: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Opens a fresh, non-following read of the whole log.
    pub reread: Box<dyn FnOnce() -> Frames + Send>,
}

/// The state of a followed log.
struct Follow<F> {
    live: Frames,
    lines: Lines,
    ready: VecDeque<LogLine>,
    /// Lines yielded so far per (task, source): skipped when the log is read again at the end.
    yielded: HashMap<(Option<String>, LogSource), usize>,
    ending: Option<Ending>,
    done: bool,
    map: Arc<F>,
    slots: Slots,
}

/// Streams the log as it comes, line by line, until `ending.finished`; then yields what the live
/// stream had not delivered yet (from one more full read) and ends. See the module docs.
pub(super) fn follow<F>(live: Frames, map: F, slots: Slots, ending: Ending) -> LogStream
where
    F: Fn(BollardError) -> Error + Send + Sync + 'static,
{
    let state = Follow {
        live,
        lines: Lines::default(),
        ready: VecDeque::new(),
        yielded: HashMap::new(),
        ending: Some(ending),
        done: false,
        map: Arc::new(map),
        slots,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                return Some((Ok(line), st));
            }
            if st.done {
                return None;
            }
            let finished = async {
                match st.ending.as_mut() {
                    Some(ending) => (&mut ending.finished).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = st.live.next() => match chunk {
                    Some(Ok(chunk)) => {
                        for parsed in st.lines.push(chunk) {
                            *st.yielded.entry((parsed.task.clone(), parsed.line.source)).or_default() += 1;
                            st.ready.push_back(named(parsed, &st.slots));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err((st.map)(e)), st));
                    }
                    None => {
                        st.done = true;
                        let rest = st.lines.finish();
                        st.ready.extend(rest.into_iter().map(|p| named(p, &st.slots)));
                    }
                },
                () = finished => {
                    st.done = true;
                    let ending = st.ending.take().expect("ending is set until it fires");
                    match read_all((ending.reread)(), &*st.map, &st.slots).await {
                        Ok(all) => {
                            for (task, line) in all {
                                match st.yielded.get_mut(&(task, line.source)) {
                                    Some(n) if *n > 0 => *n -= 1,
                                    _ => st.ready.push_back(line),
                                }
                            }
                        }
                        Err(e) => return Some((Err(e), st)),
                    }
                }
            }
        }
    }))
}

/// Most bytes one multiplexed frame may announce: a log line is far smaller; a larger header
/// means the stream is not what it claims, and is read as raw text instead.
const MAX_FRAME_BYTES: usize = 1 << 20;

/// Decodes the engine's log body into frames. A non-TTY service's log is multiplexed (each frame
/// an 8-byte header `[stream, 0, 0, 0, size as u32 big-endian]` then its bytes); a TTY service's
/// is raw text (reported as [`LogOutput::Console`]). Which one is decided from the first bytes: a
/// multiplexed stream starts with 0, 1 or 2 then three zeros, raw log text with a timestamp digit.
pub(super) fn demux(body: ByteStream) -> Frames {
    struct State {
        body: ByteStream,
        buf: Vec<u8>,
        raw: Option<bool>,
        done: bool,
    }
    let state = State { body, buf: Vec::new(), raw: None, done: false };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.raw.is_none() && (st.buf.len() >= 4 || (st.done && !st.buf.is_empty())) {
                let multiplexed = st.buf.len() >= 4 && st.buf[0] <= 2 && st.buf[1..4] == [0, 0, 0];
                st.raw = Some(!multiplexed);
            }
            match st.raw {
                Some(true) if !st.buf.is_empty() => {
                    let message = std::mem::take(&mut st.buf).into();
                    return Some((Ok(LogOutput::Console { message }), st));
                }
                Some(false) if st.buf.len() >= 8 => {
                    let size = u32::from_be_bytes([st.buf[4], st.buf[5], st.buf[6], st.buf[7]]) as usize;
                    if size > MAX_FRAME_BYTES {
                        st.raw = Some(true);
                        continue;
                    }
                    if st.buf.len() >= 8 + size {
                        let kind = st.buf[0];
                        let message: hyper::body::Bytes = st.buf[8..8 + size].to_vec().into();
                        st.buf.drain(..8 + size);
                        let frame = match kind {
                            2 => LogOutput::StdErr { message },
                            0 => LogOutput::StdIn { message },
                            _ => LogOutput::StdOut { message },
                        };
                        return Some((Ok(frame), st));
                    }
                }
                _ => {}
            }
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.done = true;
                    st.buf.clear();
                    return Some((Err(e), st));
                }
                None => st.done = true,
            }
        }
    }))
}

/// The engine's `since` parameter: unix seconds (the engine takes whole seconds).
pub(in crate::cluster) fn since_param(since: Option<SystemTime>) -> i32 {
    since.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(hyper::body::Bytes::from_static(c)))))
    }

    #[tokio::test]
    async fn multiplexed_frames_are_split_by_their_headers_across_chunks() {
        let frames: Vec<LogOutput> =
            demux(body(vec![b"\x01\0\0\0\0\0\0\x03ab", b"c\x02\0\0\0\0\0\0\x01e"])).map(|f| f.unwrap()).collect().await;
        assert_eq!(frames, [LogOutput::StdOut { message: "abc".into() }, LogOutput::StdErr { message: "e".into() }]);
    }

    #[tokio::test]
    async fn a_raw_tty_log_is_console_text() {
        let frames: Vec<LogOutput> =
            demux(body(vec![b"2026-01-01T00:00:01Z hi\n"])).map(|f| f.unwrap()).collect().await;
        assert_eq!(frames, [LogOutput::Console { message: "2026-01-01T00:00:01Z hi\n".into() }]);
    }

    fn out(s: &str) -> LogOutput {
        LogOutput::StdOut { message: s.to_string().into_bytes().into() }
    }
    fn err(s: &str) -> LogOutput {
        LogOutput::StdErr { message: s.to_string().into_bytes().into() }
    }

    #[tokio::test]
    async fn lines_are_split_stripped_and_ordered_by_time() {
        let chunks = vec![
            Ok(out("2026-01-01T00:00:01.5Z second\n")),
            Ok(err("2026-01-01T00:00:01.25Z first err\n")),
            Ok(out("2026-01-01T00:00:02.000000000Z thi")),
            Ok(out("rd\n")),
        ];
        let stream: Frames = Box::pin(futures_util::stream::iter(chunks));
        let lines: Vec<LogLine> = collect(stream, |e| Error::engine("x", "y", e), Slots::default())
            .await
            .unwrap()
            .map(|l| l.unwrap())
            .collect()
            .await;
        let texts: Vec<_> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [(LogSource::Stderr, "first err"), (LogSource::Stdout, "second"), (LogSource::Stdout, "third")]
        );
    }

    /// A replica that never writes a newline cannot grow the line buffer without bound: its
    /// output comes out in pieces of at most [`MAX_LINE_BYTES`], cut between characters.
    #[test]
    fn a_line_without_end_comes_out_in_bounded_pieces() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        // 3.5 MiB of two-byte characters, 64 KiB at a time, and never a newline.
        let chunk = "é".repeat(32 * 1024);
        for _ in 0..56 {
            out.extend(lines.push(LogOutput::StdOut { message: chunk.clone().into_bytes().into() }));
            assert!(lines.stdout.len() < MAX_LINE_BYTES, "buffer at {} bytes", lines.stdout.len());
        }
        out.extend(lines.finish());
        assert!(out.len() >= 4, "{} pieces", out.len());
        assert!(out.iter().all(|p| p.line.text.len() <= MAX_LINE_BYTES));
        let total: usize = out.iter().map(|p| p.line.text.len()).sum();
        assert_eq!(total, 56 * chunk.len(), "nothing lost");
        assert!(out.iter().all(|p| !p.line.text.contains('\u{fffd}')), "a character was cut in two");
    }

    fn frames(chunks: Vec<Result<LogOutput, BollardError>>) -> Frames {
        Box::pin(futures_util::stream::iter(chunks))
    }

    const DETAILS: &str = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=";

    #[test]
    fn details_name_the_task_and_are_stripped() {
        let p = line_of(LogSource::Stdout, format!("2026-01-01T00:00:01.5Z {DETAILS}t2 hello world").as_bytes());
        assert_eq!(p.task.as_deref(), Some("t2"));
        assert_eq!(p.line.text, "hello world");
        assert_eq!(p.line.time, Some(UNIX_EPOCH + Duration::new(1_767_225_601, 500_000_000)));
        let slots: Slots = Arc::new(Mutex::new([("t2".to_string(), 2)].into()));
        assert_eq!(named(p, &slots).replica, Some(2));
    }

    #[tokio::test]
    async fn follow_yields_lines_and_the_unfinished_tail() {
        let chunks = vec![Ok(out("2026-01-01T00:00:01Z a\n2026-01-01T00:00:01Z b")), Ok(out("c"))];
        let ending = Ending { finished: Box::pin(std::future::pending()), reread: Box::new(|| frames(Vec::new())) };
        let lines: Vec<String> = follow(frames(chunks), |e| Error::engine("x", "y", e), Slots::default(), ending)
            .map(|l| l.unwrap().text)
            .collect()
            .await;
        assert_eq!(lines, ["a", "bc"]);
    }

    /// The engine never ends a followed service log: once the replicas are done, the follower
    /// reads the log again and yields only what the live stream had not delivered.
    #[tokio::test]
    async fn a_followed_log_ends_when_the_replicas_are_done_without_losing_or_repeating_lines() {
        let live = format!("2026-01-01T00:00:01Z {DETAILS}t1 one\n");
        let live: Frames =
            Box::pin(futures_util::stream::iter(vec![Ok(out(&live))]).chain(futures_util::stream::pending()));
        let full = vec![
            Ok(out(&format!("2026-01-01T00:00:01Z {DETAILS}t1 one\n"))),
            Ok(err(&format!("2026-01-01T00:00:02Z {DETAILS}t1 two\n"))),
            Ok(out(&format!("2026-01-01T00:00:03Z {DETAILS}t1 three\n"))),
        ];
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let ending = Ending {
            finished: Box::pin(async move {
                let _ = done_rx.await;
            }),
            reread: Box::new(move || frames(full)),
        };
        let mut stream = follow(live, |e| Error::engine("x", "y", e), Slots::default(), ending);
        assert_eq!(stream.next().await.unwrap().unwrap().text, "one");
        done_tx.send(()).unwrap();
        let rest: Vec<String> = stream.map(|l| l.unwrap().text).collect().await;
        assert_eq!(rest, ["two", "three"]);
    }
}
