//! What the user sees: progress bars on a terminal, plain lines elsewhere, or JSON lines.
//!
//! Progress and summaries go to stderr; the master's logs go to stdout (its stderr lines to
//! stderr), so `atq run task.yaml > out.txt` captures what the master printed. In JSON mode
//! everything goes to stdout, one object per line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use atq_core::cluster::LogSource;
use atq_core::event::{LogRecord, RunEvent};
use atq_core::labels::Role;
use atq_core::{Event, RunReport};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars and spinners (stderr is a terminal); in colour unless `NO_COLOR` is set.
    Human,
    /// Plain lines, no escape codes.
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

impl Mode {
    /// JSON when asked; bars on a terminal (`NO_COLOR` turns off colour only, as no-color.org
    /// says); plain lines otherwise.
    #[must_use]
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Human
        } else {
            Mode::Plain
        }
    }
}

/// Whether `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
#[must_use]
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Writes a line to stdout; a closed pipe is not an error worth dying for.
pub fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Writes a line to stderr.
pub fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The display of one task's progress.
pub struct Display {
    /// How to show things.
    mode: Mode,
    /// The task shown (events of other tasks are ignored).
    task: String,
    /// Whether master lines get a `[master]` prefix too (when worker logs are shown).
    prefix_master: bool,
    /// The bar or spinner of the current phase (human mode).
    bar: Option<ProgressBar>,
    /// The delay being counted down: when it started and how long it is.
    delay: Option<(Instant, Duration)>,
    /// Whether log lines go to a terminal (their control characters are neutralised then).
    terminal: (bool, bool),
}

impl Display {
    /// A display for `task`; `all_logs`: worker lines are shown too.
    #[must_use]
    pub fn new(mode: Mode, task: &str, all_logs: bool) -> Self {
        Display {
            mode,
            task: task.to_owned(),
            prefix_master: all_logs,
            bar: None,
            delay: None,
            terminal: (std::io::stdout().is_terminal(), std::io::stderr().is_terminal()),
        }
    }

    /// The deploy begins.
    pub fn start(&mut self) {
        match self.mode {
            Mode::Human => self.phase("creating network"),
            Mode::Plain => err(&format!("atq: deploying task {}", self.task)),
            Mode::Json => {}
        }
    }

    /// Starts a spinner for a new phase (human mode), finishing the previous one as it stands.
    fn phase(&mut self, message: &str) {
        self.finish_bar(None);
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style("{spinner:.cyan} {msg} {elapsed:.dim}"));
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bar = Some(bar);
    }

    /// Finishes the current bar with a check mark and `message`, or clears it with `None`.
    fn finish_bar(&mut self, message: Option<String>) {
        // A finished bar's line would be overwritten by the next bar: clear it, print the line.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(m) = message {
            err(&format!("✓ {m}"));
        }
    }

    /// Shows one progress event (`stamped` is it with its time, for JSON).
    pub fn event(&mut self, event: &Event, stamped: &RunEvent) {
        if event.task() != self.task {
            return;
        }
        match self.mode {
            Mode::Json => out(&stamped.to_json().to_string()),
            Mode::Plain => {
                if let Some(line) = describe(event) {
                    err(&format!("atq: {line}"));
                }
            }
            Mode::Human => self.human_event(event),
        }
        if let Event::Delay { duration, .. } = event {
            self.delay = Some((Instant::now(), *duration));
        } else if matches!(event, Event::MasterCreated { .. } | Event::RollingBack { .. } | Event::Interrupted { .. }) {
            self.delay = None;
        }
    }

    fn human_event(&mut self, event: &Event) {
        match event {
            Event::Queued { .. } => self.phase("queued: waiting for a free slot"),
            Event::NetworkCreated { network, .. } => {
                self.finish_bar(Some(format!("network {network}")));
                self.phase("creating workers");
            }
            Event::WorkersCreated { replicas, .. } => {
                self.finish_bar(None);
                let bar = ProgressBar::with_draw_target(Some(u64::from(*replicas)), ProgressDrawTarget::stderr());
                bar.set_style(style("{spinner:.cyan} workers {pos}/{len} running {bar:20.cyan/blue} {elapsed:.dim}"));
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bar = Some(bar);
            }
            Event::WorkersRunning { running, total, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(u64::from(*total));
                    bar.set_position(u64::from(*running));
                }
            }
            Event::WorkersReady { addresses, .. } => {
                self.finish_bar(Some(format!("{} workers running: {}", addresses.len(), short_list(addresses))));
            }
            Event::ProbeStarted { .. } => self.phase("wait command: probing the workers"),
            Event::ProbeAttempt { attempt, result, .. } => {
                if self.bar.is_none() {
                    self.phase("wait command");
                }
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("wait command: try {attempt} did not pass: {}", one_line(result)));
                }
            }
            Event::ProbePassed { attempts, .. } => {
                self.finish_bar(Some(format!("wait command passed after {attempts} try(s)")));
            }
            Event::Delay { duration, .. } => {
                self.phase(&format!("delay: {}s left", duration.as_secs_f64().ceil()));
            }
            Event::MasterCreated { .. } => {
                if self.delay.is_some() {
                    self.finish_bar(Some("delay done".into()));
                }
                self.phase("starting master");
            }
            Event::MasterRunning { .. } => {
                self.finish_bar(Some("master running".into()));
                self.phase("master running");
            }
            Event::MasterExited { exit_code, .. } => {
                self.finish_bar(Some(format!("master exited with code {exit_code}")));
            }
            Event::ArtifactsSaved { dir, files, .. } => {
                self.finish_bar(Some(format!("artifacts: {files} file(s) in {dir}")));
            }
            Event::RollingBack { .. } => {
                self.finish_bar(None);
                self.phase("deploy failed: removing what it created");
            }
            Event::TeardownStarted { .. } => self.phase(&format!("tearing down task {}", self.task)),
            Event::Interrupted { .. } => {
                self.finish_bar(None);
                err("atq: interrupted: removing what was deployed (interrupt again to stop waiting)");
            }
            Event::CleanupAbandoned { .. } => {
                self.finish_bar(None);
                err("atq: cleanup abandoned: `atq prune` removes what is left");
            }
            Event::Kept { reason, .. } => self.finish_bar(Some(format!("task {} kept: {reason}", self.task))),
            Event::LeftOnLostNodes { .. } => {
                self.finish_bar(None);
                if let Some(line) = describe(event) {
                    err(&format!("atq: warning: {line}"));
                }
            }
            Event::TornDown { .. } => self.finish_bar(Some(format!("task {} torn down", self.task))),
            _ => {}
        }
    }

    /// Updates what moves with time (the delay countdown).
    pub fn tick(&mut self) {
        if let (Mode::Human, Some((start, duration)), Some(bar)) = (self.mode, self.delay, &self.bar) {
            let left = duration.saturating_sub(start.elapsed());
            bar.set_message(format!("delay: {}s left", left.as_secs_f64().ceil()));
        }
    }

    /// Shows one log line: the master's as printed, a worker's prefixed with its replica. On a
    /// terminal, control characters are shown, not obeyed (a container cannot drive the
    /// terminal); `--json` keeps the text as it came.
    pub fn log(&mut self, line: &LogRecord, stamped: &RunEvent) {
        if line.task != self.task {
            return;
        }
        if self.mode == Mode::Json {
            out(&stamped.to_json().to_string());
            return;
        }
        let prefix = match (line.role, line.replica) {
            (Role::Master, _) if !self.prefix_master => String::new(),
            (role, Some(n)) => format!("[{role}.{n}] "),
            (role, None) => format!("[{role}] "),
        };
        let to_terminal = match line.source {
            LogSource::Stdout => self.terminal.0,
            LogSource::Stderr => self.terminal.1,
        };
        let text = if to_terminal { neutralised(&line.text) } else { line.text.clone() };
        let text = format!("{prefix}{text}");
        let print = || match line.source {
            LogSource::Stdout => out(&text),
            LogSource::Stderr => err(&text),
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// The end of a run: a line saying what happened (or, in JSON, the report).
    pub fn report(&mut self, report: &RunReport) {
        self.finish_bar(None);
        if self.mode == Mode::Json {
            out(&report.to_json().to_string());
            return;
        }
        let outcome = &report.outcome;
        for w in &outcome.failed_workers {
            let why = w.error.clone().or_else(|| w.exit_code.map(|c| format!("exit code {c}"))).unwrap_or_default();
            let node = w.node.as_deref().or(w.node_id.as_deref()).map(|n| format!(" on node {n}")).unwrap_or_default();
            let what = if w.state == atq_core::cluster::ReplicaState::Lost { "was lost" } else { "stopped" };
            err(&format!("atq: warning: worker {}{node} {what} while the master ran ({}): {why}", w.name, w.state));
        }
        if outcome.failed_to_start {
            err(&format!(
                "atq: the master could not start: {}",
                outcome.error.as_deref().unwrap_or("the engine gave no reason")
            ));
        }
        if let Some(e) = &report.artifacts_error {
            err(&format!("atq: error: {e}"));
        }
        if let Some(results) = &report.results {
            err(results.summary_table().trim_end());
            if !report.result_files.is_empty() {
                let names: Vec<String> = report
                    .result_files
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                let dir = report.artifacts_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default();
                err(&format!("atq: results: {} in {dir}", names.join(", ")));
            }
            let failed = results.verdicts().iter().filter(|v| !v.passed).count();
            if failed > 0 {
                err(&format!("atq: {failed} of {} threshold(s) failed", results.verdicts().len()));
            }
        }
        if let Some(e) = &report.teardown_error {
            err(&format!("atq: error: {e}"));
        }
        let code = report.exit_code();
        let mark = if code == 0 { "✓" } else { "✗" };
        let prefix = if self.mode == Mode::Human { mark } else { "atq:" };
        let kept = if report.kept { format!(" (kept: `atq down {}` removes it)", report.task) } else { String::new() };
        err(&format!(
            "{prefix} task {}: {} workers, {:.1}s, master exit code {}{kept}{}",
            report.task,
            report.workers.len(),
            report.duration.as_secs_f64(),
            outcome.exit_code,
            if u64::from(code) == u64::try_from(outcome.exit_code).unwrap_or(u64::MAX) {
                String::new()
            } else {
                format!("; atq exits {code}")
            },
        ));
    }

    /// Clears any bar left (before an error is printed).
    pub fn clear(&mut self) {
        self.finish_bar(None);
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish_bar(None);
    }
}

/// A bar style, in colour unless `NO_COLOR` is set.
fn style(template: &str) -> ProgressStyle {
    let template = if no_color() { strip_colours(template) } else { template.to_owned() };
    ProgressStyle::with_template(&template).expect("valid template").tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

/// `{spinner:.cyan}` → `{spinner}`, `{bar:20.cyan/blue}` → `{bar:20}`: indicatif's style parts dropped.
fn strip_colours(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let field = &rest[start + 1..start + end];
        let plain = match field.split_once(':') {
            Some((name, spec)) => match spec.split_once('.') {
                Some((width, _)) if !width.is_empty() => format!("{name}:{width}"),
                _ => name.to_owned(),
            },
            None => field.to_owned(),
        };
        out.push('{');
        out.push_str(&plain);
        out.push('}');
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The text with control characters shown instead of obeyed: C0 controls (but tab) in caret
/// notation (`ESC` → `^[`), DEL as `^?`, C1 controls as U+FFFD.
fn neutralised(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from_u32(c as u32 ^ 0x40).unwrap_or('?'));
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One plain line per event (`None` for events not worth a line).
fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Queued { .. } => "queued: waiting for a free slot".into(),
        Event::NetworkCreated { network, .. } => format!("network {network} created"),
        Event::WorkersCreated { service, replicas, .. } => {
            format!("worker service {service} created ({replicas} replicas)")
        }
        Event::WorkersRunning { running, total, .. } => format!("workers: {running}/{total} running"),
        Event::WorkersReady { addresses, .. } => {
            format!("{} workers running: {}", addresses.len(), short_list(addresses))
        }
        Event::ProbeStarted { image, .. } => format!("wait command: probing the workers (image {image})"),
        Event::ProbeAttempt { attempt, result, .. } => {
            format!("wait command: try {attempt} did not pass: {}", one_line(result))
        }
        Event::ProbePassed { attempts, .. } => format!("wait command passed after {attempts} try(s)"),
        Event::Delay { duration, .. } => format!("delay: waiting {:.1}s", duration.as_secs_f64()),
        Event::MasterCreated { service, .. } => format!("master {service} created"),
        Event::MasterRunning { .. } => "master running".into(),
        Event::MasterExited { exit_code, .. } => format!("master exited with code {exit_code}"),
        Event::ArtifactsSaved { dir, files, .. } => format!("artifacts: {files} file(s) in {dir}"),
        Event::ResultsJudged { thresholds, failed, problem, .. } => match problem {
            Some(problem) => format!("results: none ({problem}); {failed} of {thresholds} threshold(s) failed"),
            None => format!("results judged: {failed} of {thresholds} threshold(s) failed"),
        },
        Event::RollingBack { reason, .. } => format!("deploy failed, removing what it created: {reason}"),
        Event::TeardownStarted { task } => format!("tearing down task {task}"),
        Event::Interrupted { .. } => "interrupted: removing what was deployed (interrupt again to stop waiting)".into(),
        Event::CleanupAbandoned { .. } => "cleanup abandoned: `atq prune` removes what is left".into(),
        Event::Kept { task, reason } => format!("task {task} kept: {reason}"),
        Event::LeftOnLostNodes { replicas, nodes, .. } => format!(
            "{} replica(s) on {} (down) not waited for: {}; the engine removes their containers once the node is back",
            replicas.len(),
            nodes.join(", "),
            short_names(replicas)
        ),
        Event::TornDown { task } => format!("task {task} torn down"),
        _ => return None,
    })
}

/// At most 5 names, then how many more.
fn short_names(names: &[String]) -> String {
    let mut s: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = names.len().saturating_sub(5);
    let more = format!("… ({more} more)");
    if names.len() > 5 {
        s.push(&more);
    }
    s.join(", ")
}

/// At most 5 addresses, then how many more.
fn short_list(addresses: &[std::net::IpAddr]) -> String {
    let mut s: Vec<String> = addresses.iter().take(5).map(ToString::to_string).collect();
    if addresses.len() > 5 {
        s.push(format!("… ({} more)", addresses.len() - 5));
    }
    s.join(", ")
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(neutralised("plain\ttext"), "plain\ttext");
        assert_eq!(neutralised("\u{1b}[2J\u{1b}]0;owned\u{7}"), "^[[2J^[]0;owned^G");
        assert_eq!(neutralised("a\u{7f}b\u{9b}c"), "a^?b\u{fffd}c");
    }

    #[test]
    fn no_color_templates_keep_their_fields_and_widths() {
        assert_eq!(
            strip_colours("{spinner:.cyan} workers {pos}/{len} {bar:20.cyan/blue} {elapsed:.dim}"),
            "{spinner} workers {pos}/{len} {bar:20} {elapsed}"
        );
    }
}
