//! `report.html`: one self-contained page — no script, no external URL, works offline.
//!
//! Verdicts at the top, then headline numbers, two inline SVG charts (latency percentiles over
//! time; throughput and errors over time), the per-label and per-worker tables, the error table
//! and notes. Every piece of text from the input is escaped ([`esc`]).

use std::fmt::Write as _;

use crate::results::json::SCHEMA;
use crate::results::report::{format_ms, Report};
use crate::results::summary::{Point, Results, Summary};
use crate::results::threshold::{readable, round3, trim_float, Scope};

/// HTML-escapes text (also quotes, for attributes) and drops control characters.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ok:#1a7f37; --bad:#cf222e; --ink:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 30px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); font-size: 13px; }
.banner { display: flex; align-items: center; gap: 18px; padding: 16px 20px; border-radius: 10px; margin: 16px 0 8px; color: #fff; }
.banner.ok { background: var(--ok); } .banner.bad { background: var(--bad); } .banner.none { background: #57606a; }
.banner .big { font-size: 26px; font-weight: 700; letter-spacing: .5px; }
.banner .why { font-size: 14px; opacity: .95; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13px; }
.scroll { overflow-x: auto; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--bg); font-weight: 600; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .3px; }
th:first-child, td:first-child { text-align: left; }
td.name { white-space: normal; overflow-wrap: anywhere; min-width: 140px; max-width: 360px; text-align: left; }
td.msg { white-space: normal; text-align: left; word-break: break-word; }
tr.failed td { background: #ffebe9; }
.pill { display: inline-block; min-width: 44px; text-align: center; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700; color: #fff; }
.pill.ok { background: var(--ok); } .pill.bad { background: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; margin-top: 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--bg); }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .3px; }
.card .v { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .v.bad { color: var(--bad); }
.card .v small { font-size: 13px; font-weight: 500; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 8px 8px 2px; margin-bottom: 14px; }
.chart h3 { font-size: 13px; margin: 2px 6px 0; color: var(--muted); font-weight: 600; }
svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
.empty { color: var(--muted); font-style: italic; padding: 8px 0; }
ul.notes { color: var(--muted); margin: 6px 0; padding-left: 20px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
"#;

pub(crate) fn write(report: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = esc(&report.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · atq report</title><style>{STYLE}</style></head><body><main>\n"
    );
    let _ = write!(h, "<h1>{title}</h1>");
    if let Some(r) = &report.results {
        let files: Vec<String> = r.source.files.iter().map(|f| esc(&f.display().to_string())).collect();
        let _ = write!(
            h,
            "<div class=\"sub\">{} results from <code>{}</code>",
            esc(&r.source.format.to_string()).to_uppercase(),
            files.join("</code>, <code>")
        );
        if let (Some(a), Some(b)) = (r.total.first_ms, r.total.last_ms) {
            let _ = write!(
                h,
                " · {} → {} UTC ({})",
                utc(a),
                utc(b).get(11..).unwrap_or(""),
                duration_text(r.total.duration_s().unwrap_or(0.0))
            );
        }
        h.push_str("</div>\n");
    }
    banner(&mut h, report);
    verdicts(&mut h, report);
    match &report.results {
        Some(r) => body(&mut h, report, r),
        None => {
            let _ = write!(
                h,
                "<h2>Results</h2><p class=\"empty\">No results: {}</p>",
                esc(report.problem.as_deref().unwrap_or(""))
            );
        }
    }
    let _ = writeln!(h, "<footer>Written by atq {} · summary schema <code>{SCHEMA}</code> · percentiles from HDR histograms of every sample (3 significant digits), never averaged across workers.</footer>\n</main></body></html>", env!("CARGO_PKG_VERSION"));
    h
}

fn banner(h: &mut String, report: &Report) {
    let total = report.verdicts.len();
    let failed = report.verdicts.iter().filter(|v| !v.passed).count();
    let (class, big, why) = if total == 0 {
        ("none", "NO THRESHOLDS".to_owned(), "nothing to judge: add thresholds such as p95 &lt; 500ms".to_owned())
    } else if failed == 0 {
        ("ok", "PASSED".to_owned(), format!("all {total} threshold{} held", plural(total)))
    } else {
        ("bad", "FAILED".to_owned(), format!("{failed} of {total} threshold{} failed", plural(total)))
    };
    let _ = writeln!(
        h,
        "<div class=\"banner {class}\"><span class=\"big\">{big}</span><span class=\"why\">{why}</span></div>"
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn verdicts(h: &mut String, report: &Report) {
    if report.verdicts.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>Verdict</th><th style=\"text-align:left\">Threshold</th><th>Observed</th><th>Limit</th><th style=\"text-align:left\">Detail</th></tr>\n");
    for v in &report.verdicts {
        let t = &v.threshold;
        let (class, word) = if v.passed { ("ok", "PASS") } else { ("bad", "FAIL") };
        let observed =
            v.observed_in_unit().map_or_else(|| "—".to_owned(), |o| format!("{}{}", readable(o), t.unit().suffix()));
        let _ = writeln!(
            h,
            "<tr{}><td><span class=\"pill {class}\">{word}</span></td><td class=\"msg\"><code>{}</code></td><td>{}</td><td>{} {}{}</td><td class=\"msg\">{}</td></tr>",
            if v.passed { "" } else { " class=\"failed\"" },
            esc(t.text()),
            esc(&observed),
            esc(t.op().symbol()),
            trim_float(t.value()),
            t.unit().suffix(),
            esc(&v.message)
        );
    }
    h.push_str("</table>\n");
}

fn body(h: &mut String, report: &Report, r: &Results) {
    let t = &r.total;
    let p = |q: f64| t.percentile(q).map_or_else(|| "—".into(), format_ms);
    let rate = t.error_rate().unwrap_or(0.0);
    let cards: [(&str, String, bool); 8] = [
        ("Samples", thousands(t.count), false),
        ("Errors", thousands(t.errors), t.errors > 0),
        ("Throughput", t.throughput().map_or_else(|| "—".into(), |v| format!("{v:.1}/s")), false),
        ("Mean", t.mean_ms.map_or_else(|| "—".into(), format_ms), false),
        ("p50", p(50.0), false),
        ("p95", p(95.0), false),
        ("p99", p(99.0), false),
        ("Max", t.max_ms.map_or_else(|| "—".into(), format_ms), false),
    ];
    h.push_str("<div class=\"cards\">");
    for (k, v, bad) in cards {
        let extra = if k == "Errors" { format!(" <small>{:.2}%</small>", rate * 100.0) } else { String::new() };
        let _ = write!(
            h,
            "<div class=\"card\"><div class=\"k\">{k}</div><div class=\"v{}\">{}{extra}</div></div>",
            if bad { " bad" } else { "" },
            esc(&v)
        );
    }
    h.push_str("</div>\n");

    h.push_str("<h2>Over time</h2>\n");
    if r.series.points.is_empty() {
        h.push_str("<p class=\"empty\">No time series in these results.</p>\n");
    } else {
        let bucket = r.series.bucket_seconds;
        let per = if (bucket - 1.0).abs() < f64::EPSILON {
            "per second".to_owned()
        } else {
            format!("per {} s bucket", trim_float(bucket))
        };
        let pts = &r.series.points;
        let t0 = pts[0].t_ms;
        let xs = |p: &Point| (p.t_ms - t0) as f64 / 1000.0;
        let line =
            |f: fn(&Point) -> Option<f64>| pts.iter().filter_map(|p| f(p).map(|y| (xs(p), y))).collect::<Vec<_>>();
        let latency = Chart {
            title: format!("Latency percentiles ({per}), ms"),
            series: vec![
                Line { name: "p50", color: "#2f81f7", points: line(|p| p.p50_ms), area: false },
                Line { name: "p90", color: "#8250df", points: line(|p| p.p90_ms), area: false },
                Line { name: "p95", color: "#d4a72c", points: line(|p| p.p95_ms), area: false },
                Line { name: "p99", color: "#cf222e", points: line(|p| p.p99_ms), area: false },
            ],
            bars: None,
            x_span: xs(pts.last().expect("not empty")) + bucket,
            height: H,
        };
        h.push_str(&latency.svg());
        let span = xs(pts.last().expect("not empty")) + bucket;
        let traffic = Chart {
            title: format!("Throughput ({per}), requests/s"),
            series: vec![Line {
                name: "throughput",
                color: "#2f81f7",
                points: pts.iter().map(|p| (xs(p), p.throughput)).collect(),
                area: true,
            }],
            bars: None,
            x_span: span,
            height: H,
        };
        h.push_str(&traffic.svg());
        let errors = Chart {
            title: format!("Errors ({per}), failed requests/s"),
            series: vec![],
            bars: Some(Line {
                name: "errors/s",
                color: "#cf222e",
                points: pts.iter().map(|p| (xs(p), p.errors as f64 / bucket)).collect(),
                area: false,
            }),
            x_span: span,
            height: 170.0,
        };
        h.push_str(&errors.svg());
    }

    let failed_labels = report.failed_scopes(|s| match s {
        Scope::Label(l) => Some(l),
        _ => None,
    });
    let _ = writeln!(h, "<h2>Per label ({})</h2>", r.labels.len());
    table(h, "Label", r.labels.iter().map(|(n, s)| (n.as_str(), s)), Some(t), &failed_labels);
    let _ = writeln!(h, "<h2>Per worker ({})</h2>", r.workers.len());
    if r.workers.is_empty() {
        h.push_str("<p class=\"empty\">These results name no workers.</p>\n");
    } else {
        let failed_workers = report.failed_scopes(|s| match s {
            Scope::Worker(w) => Some(w),
            _ => None,
        });
        table(h, "Worker", r.workers.iter().map(|(n, s)| (n.as_str(), s)), None, &failed_workers);
    }
    if !r.errors.is_empty() {
        let _ = writeln!(h, "<h2>Errors</h2>\n<table><tr><th>Label</th><th>Code</th><th style=\"text-align:left\">Message</th><th>Count</th></tr>");
        for e in r.errors.iter().take(50) {
            let _ = writeln!(
                h,
                "<tr><td class=\"name\">{}</td><td>{}</td><td class=\"msg\">{}</td><td>{}</td></tr>",
                esc(&e.label),
                esc(&e.code),
                esc(&e.message),
                thousands(e.count)
            );
        }
        h.push_str("</table>\n");
    }
    let mut notes: Vec<String> = r.source.notes.iter().map(|n| esc(n)).collect();
    if r.source.skipped_rows > 0 {
        notes.push(format!(
            "{} malformed row(s) skipped; first: {}",
            r.source.skipped_rows,
            r.source.skipped_examples.iter().map(|e| format!("<code>{}</code>", esc(e))).collect::<Vec<_>>().join(", ")
        ));
    }
    if !notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul class=\"notes\">");
        for n in notes {
            let _ = write!(h, "<li>{n}</li>");
        }
        h.push_str("</ul>\n");
    }
}

fn table<'a>(
    h: &mut String,
    first: &str,
    rows: impl Iterator<Item = (&'a str, &'a Summary)>,
    total: Option<&Summary>,
    failed: &[&str],
) {
    let _ = writeln!(
        h,
        "<div class=\"scroll\"><table><tr><th>{first}</th><th>Samples</th><th>Errors</th><th>Error %</th><th>Req/s</th><th>Min</th><th>Mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>Max</th><th>KB recv</th></tr>"
    );
    let row = |h: &mut String, name: &str, s: &Summary, class: &str| {
        let ms = |v: Option<f64>| v.map_or_else(|| "—".into(), format_ms);
        let [p50, p90, p95, p99, p999] = s.percentiles();
        let _ = writeln!(
            h,
            "<tr{class}><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            thousands(s.count),
            thousands(s.errors),
            s.error_rate().map_or_else(|| "—".into(), |r| format!("{:.2}%", r * 100.0)),
            s.throughput().map_or_else(|| "—".into(), |t| format!("{t:.1}")),
            ms(s.min_ms),
            ms(s.mean_ms),
            ms(p50),
            ms(p90),
            ms(p95),
            ms(p99),
            ms(p999),
            ms(s.max_ms),
            thousands(s.bytes / 1024),
        );
    };
    for (name, s) in rows {
        let class = if failed.contains(&name) { " class=\"failed\"" } else { "" };
        row(h, name, s, class);
    }
    if let Some(t) = total {
        row(h, "Total", t, " style=\"font-weight:600\"");
    }
    h.push_str("</table></div>\n");
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration_text(s: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = s.round() as u64;
    if s < 60.0 {
        format!("{}s", trim_float((s * 10.0).round() / 10.0))
    } else if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for ms since the epoch (Howard Hinnant's civil-from-days).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

struct Line {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
    area: bool,
}

struct Chart {
    title: String,
    series: Vec<Line>,
    bars: Option<Line>,
    x_span: f64,
    height: f64,
}

const W: f64 = 1120.0;
const H: f64 = 260.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 28.0;

/// A round step for about `target` ticks up to `max`: 1, 2 or 5 times a power of ten.
fn nice_step(max: f64, target: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / target;
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let f = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

fn axis_number(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", trim_float(round3(v / 1000.0)))
    } else {
        trim_float(round3(v))
    }
}

fn time_label(s: f64, span: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = s.round().max(0.0) as u64;
    if span <= 120.0 {
        format!("{whole}s")
    } else if span <= 7200.0 {
        format!("{}:{:02}", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}", whole / 3600, (whole % 3600) / 60)
    }
}

impl Chart {
    fn svg(&self) -> String {
        let mut s = String::new();
        let ymax_data = self
            .series
            .iter()
            .chain(self.bars.iter())
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let step = nice_step(ymax_data * 1.05, 4.0);
        let ymax = ((ymax_data * 1.05) / step).ceil().max(1.0) * step;
        let span = self.x_span.max(1.0);
        let h = self.height;
        let (pw, ph) = (W - LEFT - RIGHT, h - TOP - BOTTOM);
        let x = |t: f64| LEFT + t / span * pw;
        let y = |v: f64| TOP + ph - (v / ymax).clamp(0.0, 1.0) * ph;
        let _ = write!(s, "<div class=\"chart\"><h3>{}</h3><svg viewBox=\"0 0 {W} {h}\" width=\"100%\" role=\"img\" aria-label=\"{}\">", esc(&self.title), esc(&self.title));
        // Grid and y axis.
        let mut v = 0.0;
        while v <= ymax + step / 2.0 {
            let yy = y(v);
            let _ = write!(s, "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eaeef2\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", W - RIGHT, LEFT - 6.0, yy + 4.0, axis_number(v));
            v += step;
        }
        // X axis ticks.
        let xstep = nice_step(span, 8.0).max(1.0);
        let xstep = if span > 120.0 { (xstep / 30.0).ceil() * 30.0 } else { xstep };
        let mut t = 0.0;
        while t <= span + 1e-9 {
            let xx = x(t);
            let _ = write!(s, "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d0d7de\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", TOP + ph, TOP + ph + 4.0, h - 10.0, time_label(t, span));
            t += xstep;
        }
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>",
            W - RIGHT,
            TOP + ph,
            TOP + ph
        );
        // Bars (errors) first, under the lines.
        if let Some(b) = &self.bars {
            let n = b.points.len().max(1) as f64;
            let bw = (pw / n * 0.8).clamp(1.0, 24.0);
            for &(t, v) in b.points.iter().filter(|p| p.1 > 0.0) {
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\" opacity=\"0.85\"/>",
                    x(t),
                    y(v),
                    (TOP + ph - y(v)).max(1.0),
                    b.color
                );
            }
        }
        for l in &self.series {
            if l.points.is_empty() {
                continue;
            }
            let path: Vec<String> = l.points.iter().map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect();
            if l.area {
                let first = x(l.points[0].0);
                let last = x(l.points[l.points.len() - 1].0);
                let _ = write!(
                    s,
                    "<polygon points=\"{first:.1},{:.1} {} {last:.1},{:.1}\" fill=\"{}\" opacity=\"0.12\"/>",
                    TOP + ph,
                    path.join(" "),
                    TOP + ph,
                    l.color
                );
            }
            if l.points.len() == 1 {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                    x(l.points[0].0),
                    y(l.points[0].1),
                    l.color
                );
            } else {
                let _ = write!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>", path.join(" "), l.color);
            }
        }
        // Legend.
        let mut lx = LEFT + 8.0;
        for l in self.series.iter().chain(self.bars.iter()) {
            let _ = write!(s, "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", TOP + 2.0, l.color, lx + 16.0, TOP + 7.0, l.name);
            lx += 30.0 + 7.0 * l.name.len() as f64;
        }
        s.push_str("</svg></div>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn thousands_and_steps() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(9.0, 4.0), 5.0);
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc("<a href='x'>\"&\u{7}"), "&lt;a href=&#39;x&#39;&gt;&quot;&amp;\u{FFFD}");
    }
}
