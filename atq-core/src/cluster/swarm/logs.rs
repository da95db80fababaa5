//! Service logs as [`LogLine`]s.
//!
//! The engine is asked for timestamps. Each message starts with one (RFC 3339, nanoseconds);
//! it is stripped from the text and, for a finished read, used to put the lines of all
//! replicas and both streams in order (stable, so lines of equal time keep the engine's order).
//! Across stdout and stderr the order is only as exact as those timestamps: the engine reads
//! the two pipes separately, so lines written to different streams within a millisecond or so
//! can come out swapped. Within one stream the order is always kept.
//! A TTY service has no stdout/stderr split: its output comes as one raw stream, reported as
//! stdout, in chunks that are re-assembled into lines here.

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use futures_util::{Stream, StreamExt};

use super::convert::unix_seconds;
use crate::cluster::{LogLine, LogSource, LogStream};
use crate::error::{Error, Result};

/// Splits chunks into lines per source.
#[derive(Default)]
struct Lines {
    /// Unfinished stdout (and TTY) text.
    stdout: Vec<u8>,
    /// Unfinished stderr text.
    stderr: Vec<u8>,
}

impl Lines {
    /// Adds a chunk; returns the lines it completed, each with its timestamp key.
    fn push(&mut self, output: LogOutput) -> Vec<(Option<(i64, u32)>, LogLine)> {
        let (source, buf, bytes) = match output {
            LogOutput::StdErr { message } => (LogSource::Stderr, &mut self.stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogSource::Stdout, &mut self.stdout, message)
            }
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        buf.extend_from_slice(&bytes);
        let mut lines = Vec::new();
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            lines.push(line_of(source, &line[..line.len() - 1]));
        }
        lines
    }

    /// What is left without a final newline.
    fn finish(&mut self) -> Vec<(Option<(i64, u32)>, LogLine)> {
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

/// One line: its timestamp (seconds, nanoseconds) if it has one, and its text without it.
fn line_of(source: LogSource, raw: &[u8]) -> (Option<(i64, u32)>, LogLine) {
    let text = String::from_utf8_lossy(raw);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let (key, text) = match text.split_once(' ') {
        Some((ts, rest)) => match timestamp_key(ts) {
            Some(key) => (Some(key), rest),
            None => (None, text),
        },
        None => match timestamp_key(text) {
            Some(key) => (Some(key), ""),
            None => (None, text),
        },
    };
    (key, LogLine { source, text: text.to_string() })
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

/// Reads the whole log and returns it in time order.
pub(super) async fn collect<S, F>(mut stream: S, map: F) -> Result<LogStream>
where
    S: Stream<Item = Result<LogOutput, BollardError>> + Unpin,
    F: Fn(BollardError) -> Error,
{
    let mut lines = Lines::default();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(lines.push(chunk.map_err(&map)?));
    }
    all.extend(lines.finish());
    all.sort_by_key(|(key, _)| *key);
    Ok(Box::pin(futures_util::stream::iter(all.into_iter().map(|(_, line)| Ok(line)))))
}

/// Streams the log as it comes, line by line.
pub(super) fn follow<S, F>(stream: S, map: F) -> LogStream
where
    S: Stream<Item = Result<LogOutput, BollardError>> + Send + Unpin + 'static,
    F: Fn(BollardError) -> Error + Send + Sync + 'static,
{
    let map = std::sync::Arc::new(map);
    let state = (stream, Lines::default(), std::collections::VecDeque::<LogLine>::new(), false);
    Box::pin(futures_util::stream::unfold(state, move |(mut stream, mut lines, mut ready, mut done)| {
        let map = std::sync::Arc::clone(&map);
        async move {
            loop {
                if let Some(line) = ready.pop_front() {
                    return Some((Ok(line), (stream, lines, ready, done)));
                }
                if done {
                    return None;
                }
                match stream.next().await {
                    Some(Ok(chunk)) => ready.extend(lines.push(chunk).into_iter().map(|(_, l)| l)),
                    Some(Err(e)) => {
                        done = true;
                        return Some((Err(map(e)), (stream, lines, ready, done)));
                    }
                    None => {
                        done = true;
                        ready.extend(lines.finish().into_iter().map(|(_, l)| l));
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let stream = futures_util::stream::iter(chunks);
        let lines: Vec<LogLine> =
            collect(stream, |e| Error::engine("x", "y", e)).await.unwrap().map(|l| l.unwrap()).collect().await;
        let texts: Vec<_> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [(LogSource::Stderr, "first err"), (LogSource::Stdout, "second"), (LogSource::Stdout, "third")]
        );
    }

    #[tokio::test]
    async fn follow_yields_lines_and_the_unfinished_tail() {
        let chunks = vec![Ok(out("2026-01-01T00:00:01Z a\n2026-01-01T00:00:01Z b")), Ok(out("c"))];
        let lines: Vec<String> = follow(futures_util::stream::iter(chunks), |e| Error::engine("x", "y", e))
            .map(|l| l.unwrap().text)
            .collect()
            .await;
        assert_eq!(lines, ["a", "bc"]);
    }
}
