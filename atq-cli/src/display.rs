//! What the user sees: progress bars on a terminal, plain lines elsewhere, or JSON lines.
//!
//! Progress and summaries go to stderr; the master's logs go to stdout (its stderr lines to
//! stderr), so `atq run task.yaml > out.txt` captures what the master printed. In JSON mode
//! everything goes to stdout, one object per line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atq_core::cluster::{LogLine, LogSource};
use atq_core::{Event, Outcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// How to display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars and spinners (stderr is a terminal, `NO_COLOR` unset).
    Human,
    /// Plain lines, no escape codes.
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

impl Mode {
    /// JSON when asked; bars on a terminal unless `NO_COLOR` is set; plain lines otherwise.
    #[must_use]
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && !no_color() {
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
    /// The bar or spinner of the current phase (human mode).
    bar: Option<ProgressBar>,
    /// The delay being counted down: when it started and how long it is.
    delay: Option<(Instant, Duration)>,
    /// Master log lines printed so far (to print the rest from the outcome if the stream stalled).
    log_lines: usize,
}

impl Display {
    /// A display for `task`.
    #[must_use]
    pub fn new(mode: Mode, task: &str) -> Self {
        Display { mode, task: task.to_owned(), bar: None, delay: None, log_lines: 0 }
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

    /// Shows one event.
    pub fn event(&mut self, event: &Event) {
        if event.task() != self.task {
            return;
        }
        match self.mode {
            Mode::Json => out(&event.to_json().to_string()),
            Mode::Plain => {
                if let Some(line) = describe(event) {
                    err(&format!("atq: {line}"));
                }
            }
            Mode::Human => self.human_event(event),
        }
        if let Event::Delay { duration, .. } = event {
            self.delay = Some((Instant::now(), *duration));
        } else if matches!(event, Event::MasterCreated { .. } | Event::RollingBack { .. }) {
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
            Event::ProbeAttempt { attempt, result, .. } => {
                if self.bar.is_none() {
                    self.phase("probe");
                }
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("probe: attempt {attempt} did not pass: {}", one_line(result)));
                }
            }
            Event::ProbePassed { attempts, .. } => {
                if self.bar.is_none() {
                    self.phase("probe");
                }
                self.finish_bar(Some(format!("probe passed after {attempts} attempt(s)")));
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
                self.finish_bar(Some(format!("master exited with code {exit_code}")))
            }
            Event::RollingBack { .. } => {
                self.finish_bar(None);
                self.phase("deploy failed: rolling back");
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

    /// Shows one line of the master's logs.
    pub fn log(&mut self, line: &LogLine) {
        self.log_lines += 1;
        match self.mode {
            Mode::Json => {
                out(&json!({"event": "log", "task": self.task, "source": line.source, "text": line.text}).to_string());
            }
            _ => {
                let print = || match line.source {
                    LogSource::Stdout => out(&line.text),
                    LogSource::Stderr => err(&line.text),
                };
                match &self.bar {
                    Some(bar) => bar.suspend(print),
                    None => print(),
                }
            }
        }
    }

    /// Prints the lines of `outcome.logs` beyond those already streamed (when following the
    /// log stream missed the end).
    pub fn rest_of_logs(&mut self, outcome: &Outcome) {
        let rest: Vec<&str> = outcome.logs.lines().skip(self.log_lines).collect();
        for text in rest {
            self.log(&LogLine::new(LogSource::Stdout, text));
        }
    }

    /// The one-line summary after a run; `torn_down` false means the task was kept.
    pub fn outcome(&mut self, outcome: &Outcome, workers: usize, duration: Duration, torn_down: bool) {
        self.finish_bar(None);
        if self.mode == Mode::Json {
            let mut value = json!({
                "event": "outcome",
                "task": outcome.task,
                "exit_code": outcome.exit_code,
                "state": outcome.state,
                "error": outcome.error,
                "workers": workers,
                "failed_workers": outcome.failed_workers,
                "duration_secs": duration.as_secs_f64(),
                "torn_down": torn_down,
            });
            if !torn_down {
                value["kept"] = json!(true);
            }
            out(&value.to_string());
            return;
        }
        for w in &outcome.failed_workers {
            let why = w.error.clone().or_else(|| w.exit_code.map(|c| format!("exit code {c}"))).unwrap_or_default();
            err(&format!("atq: warning: worker {} stopped while the master ran ({}): {why}", w.name, w.state));
        }
        let mark = if outcome.exit_code == 0 { "✓" } else { "✗" };
        let prefix = if self.mode == Mode::Human { mark } else { "atq:" };
        err(&format!(
            "{prefix} task {}: {workers} workers, {:.1}s, exit code {}{}",
            outcome.task,
            duration.as_secs_f64(),
            outcome.exit_code,
            if torn_down { String::new() } else { format!(" (kept: `atq down {}` removes it)", outcome.task) },
        ));
    }

    /// The artifacts saved after a run.
    pub fn artifacts(&mut self, task: &str, dir: &Path, files: &[PathBuf]) {
        if self.mode == Mode::Json {
            let value = json!({"event": "artifacts", "task": task, "dir": dir, "files": files});
            out(&value.to_string());
        } else {
            err(&format!("atq: artifacts: {} file(s) in {}", files.len(), dir.display()));
        }
    }

    /// Interrupted: clears the bars and says cleanup is under way.
    pub fn interrupted(&mut self) {
        self.finish_bar(None);
        match self.mode {
            Mode::Json => out(&json!({"event": "interrupted", "task": self.task}).to_string()),
            _ => err("atq: interrupted: tearing down what was deployed (Ctrl-C again to abandon cleanup)"),
        }
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

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("valid template").tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
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
        Event::ProbeAttempt { attempt, result, .. } => {
            format!("probe: attempt {attempt} did not pass: {}", one_line(result))
        }
        Event::ProbePassed { attempts, .. } => format!("probe passed after {attempts} attempt(s)"),
        Event::Delay { duration, .. } => format!("delay: waiting {:.1}s", duration.as_secs_f64()),
        Event::MasterCreated { service, .. } => format!("master {service} created"),
        Event::MasterRunning { .. } => "master running".into(),
        Event::MasterExited { exit_code, .. } => format!("master exited with code {exit_code}"),
        Event::RollingBack { reason, .. } => format!("deploy failed, rolling back: {reason}"),
        Event::TornDown { task } => format!("task {task} torn down"),
        _ => return None,
    })
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
