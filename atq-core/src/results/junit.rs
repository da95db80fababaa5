//! `junit.xml`: one `<testsuite>` with a `<testcase>` per threshold (classname
//! `atq.thresholds`) and one per label (classname `atq.labels`; it fails when a threshold on that
//! label failed, and its `<system-out>` holds the label's numbers). Without results, one failing
//! case `atq.results` says why. Written with quick-xml; characters XML 1.0 cannot hold are
//! replaced with U+FFFD.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::results::report::{format_ms, Report};
use crate::results::summary::Summary;
use crate::results::threshold::Scope;

/// Replaces what XML 1.0 cannot carry (most control characters, U+FFFE, U+FFFF).
pub(crate) fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

struct Case {
    class: &'static str,
    name: String,
    failure: Option<String>,
    out: Option<String>,
}

fn numbers(s: &Summary) -> String {
    let p = |q: f64| s.percentile(q).map_or_else(|| "-".into(), format_ms);
    format!(
        "count={} errors={} error_rate={} p50={} p95={} p99={} throughput={}/s",
        s.count,
        s.errors,
        s.error_rate().map_or_else(|| "-".into(), |r| format!("{:.3}%", r * 100.0)),
        p(50.0),
        p(95.0),
        p(99.0),
        s.throughput().map_or_else(|| "-".into(), |t| format!("{t:.2}")),
    )
}

pub(crate) fn write(report: &Report) -> String {
    let mut cases = Vec::new();
    for v in &report.verdicts {
        cases.push(Case {
            class: "atq.thresholds",
            name: v.threshold.text().to_owned(),
            failure: (!v.passed).then(|| v.message.clone()),
            out: Some(v.message.clone()),
        });
    }
    match &report.results {
        Some(r) => {
            for (name, s) in &r.labels {
                let failed: Vec<&str> = report
                    .verdicts
                    .iter()
                    .filter(|v| !v.passed && matches!(v.threshold.scope(), Scope::Label(l) if l == name))
                    .map(|v| v.threshold.text())
                    .collect();
                cases.push(Case {
                    class: "atq.labels",
                    name: name.clone(),
                    failure: (!failed.is_empty()).then(|| format!("failed: {}", failed.join("; "))),
                    out: Some(numbers(s)),
                });
            }
        }
        None => cases.push(Case {
            class: "atq.results",
            name: "results".into(),
            failure: Some(report.problem.clone().unwrap_or_default()),
            out: None,
        }),
    }
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let duration = report.results.as_ref().and_then(|r| r.total.duration_s()).unwrap_or(0.0);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let result: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let title = xml_text(&report.title);
        let (tests, failures_s, time) = (cases.len().to_string(), failures.to_string(), format!("{duration:.3}"));
        w.create_element("testsuites")
            .with_attributes([("name", title.as_str()), ("tests", tests.as_str()), ("failures", failures_s.as_str())])
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attributes([
                        ("name", title.as_str()),
                        ("tests", tests.as_str()),
                        ("failures", failures_s.as_str()),
                        ("errors", "0"),
                        ("time", time.as_str()),
                    ])
                    .write_inner_content(|w| {
                        for case in &cases {
                            let name = xml_text(&case.name);
                            w.create_element("testcase")
                                .with_attributes([("classname", case.class), ("name", name.as_str()), ("time", "0")])
                                .write_inner_content(|w| {
                                    if let Some(f) = &case.failure {
                                        let f = xml_text(f);
                                        w.create_element("failure")
                                            .with_attributes([("message", f.as_str()), ("type", "threshold")])
                                            .write_text_content(BytesText::new(&f))?;
                                    }
                                    if let Some(out) = &case.out {
                                        w.create_element("system-out")
                                            .write_text_content(BytesText::new(&xml_text(out)))?;
                                    }
                                    Ok(())
                                })?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })();
    result.expect("writing XML into a Vec cannot fail");
    let mut text = String::from_utf8(w.into_inner()).expect("quick-xml writes UTF-8 from UTF-8 input");
    text.push('\n');
    text
}
