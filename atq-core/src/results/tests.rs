//! Unit tests of the results layer, on hand-made files.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn read(path: &Path) -> Results {
    read_file(path, ReadOptions::default()).unwrap()
}

fn thresholds(texts: &[&str]) -> Vec<Threshold> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

/// The nearest-rank percentile of raw values, computed independently of any histogram.
fn nearest_rank(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

/// A JMeter 2.13 default row (12 columns, no header).
fn row_2_13(ts: u64, elapsed: u64, label: &str, ok: bool, bytes: u64) -> String {
    let code = if ok { "200" } else { "500" };
    format!("{ts},{elapsed},{label},{code},OK,users 1-1,text,{ok},{bytes},1,1,{}\n", elapsed / 2)
}

// ---------- JTL ----------

#[test]
fn jmeter_2_13_headerless_rows_are_read_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..10 {
        text += &row_2_13(1_700_000_000_000 + i * 100, 10 + i, if i % 2 == 0 { "home" } else { "login" }, i != 3, 100);
    }
    let r = read(&write(&dir, "a.jtl", &text));
    assert_eq!(r.source.format, Format::Jtl);
    assert_eq!(r.total.count, 10);
    assert_eq!(r.total.errors, 1);
    assert_eq!(r.total.bytes, 1000);
    assert_eq!(r.labels["home"].count, 5);
    assert_eq!(r.labels["login"].errors, 1);
    assert_eq!(r.total.min_ms, Some(10.0));
    assert_eq!(r.total.max_ms, Some(19.0));
    assert_eq!(r.total.mean_ms, Some(14.5));
    assert_eq!(r.total.first_ms, Some(1_700_000_000_000));
    assert_eq!(r.total.last_ms, Some(1_700_000_000_900 + 19));
    assert!(r.workers.is_empty(), "2.13 without Hostname names no worker");
    assert!(r.source.notes.iter().any(|n| n.contains("saveservice.hostname=true")), "{:?}", r.source.notes);
}

#[test]
fn jmeter_2_13_with_hostname_names_each_sample_s_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, host) in ["w1", "w2", "w3", "w1"].iter().enumerate() {
        text +=
            &format!("{},{},req,200,OK,users 1-1,text,true,10,1,1,5,{host}\n", 1_700_000_000_000 + i as u64, 20 + i);
    }
    let r = read(&write(&dir, "a.jtl", &text));
    assert_eq!(r.workers.len(), 3);
    assert_eq!(r.workers["w1"].count, 2);
    assert_eq!(r.workers["w3"].max_ms, Some(22.0));
}

#[test]
fn jmeter_3_header_is_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,grpThreads,allThreads,Latency,IdleTime\n\
                1700000000000,100,a,200,OK,tg 1-1,text,true,,300,1,1,50,0\n\
                1700000001000,300,a,404,Not Found,tg 1-1,text,false,Not found: /x,20,1,1,50,0\n";
    let r = read(&write(&dir, "r.jtl", text));
    assert_eq!(r.total.count, 2);
    assert_eq!(r.total.errors, 1);
    assert_eq!(r.total.bytes, 320);
    assert_eq!(r.errors.len(), 1);
    assert_eq!((r.errors[0].code.as_str(), r.errors[0].message.as_str()), ("404", "Not found: /x"));
}

#[test]
fn jmeter_5_header_with_reordered_columns_sent_bytes_and_hostname() {
    let dir = tempfile::tempdir().unwrap();
    let text = "label,timeStamp,success,elapsed,bytes,sentBytes,URL,Hostname,threadName\n\
                login,1700000000000,true,42,1000,200,http://127.0.0.1/login,engine-a,tg 1-1\n\
                login,1700000000010,true,58,1000,200,http://127.0.0.1/login,engine-b,tg 1-2\n";
    let r = read(&write(&dir, "r.csv", text));
    assert_eq!(r.labels["login"].count, 2);
    assert_eq!(r.total.sent_bytes, 400);
    assert_eq!(r.workers.keys().collect::<Vec<_>>(), ["engine-a", "engine-b"]);
    assert_eq!(r.total.mean_ms, Some(50.0));
}

#[test]
fn a_remote_engine_address_prefix_in_thread_name_names_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let text = "timeStamp,elapsed,label,success,threadName\n\
                1700000000000,5,a,true,10.0.0.3-Thread Group 1-1\n\
                1700000000000,6,a,true,10.0.0.4-Thread Group 1-1\n";
    let r = read(&write(&dir, "r.jtl", text));
    assert_eq!(r.workers.keys().collect::<Vec<_>>(), ["10.0.0.3", "10.0.0.4"]);
}

#[test]
fn quoted_fields_with_commas_quotes_and_newlines_are_one_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = "timeStamp,elapsed,label,responseCode,responseMessage,success\n\
                1700000000000,7,\"GET /a, then /b\",200,\"line one\nline \"\"two\"\"\",true\n\
                1700000000001,9,plain,200,OK,true\n";
    let r = read(&write(&dir, "q.jtl", text));
    assert_eq!(r.total.count, 2);
    assert_eq!(r.labels["GET /a, then /b"].count, 1);
    assert_eq!(r.source.skipped_rows, 0);
}

#[test]
fn malformed_rows_are_counted_and_skipped_by_default_naming_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "timeStamp,elapsed,label,success\n\
                1700000000000,7,a,true\n\
                1700000000001,seven,a,true\n\
                1700000000002,7,a,maybe\n\
                1700000000003,8\n\
                1700000000004,9,a,true\n";
    let path = write(&dir, "m.jtl", text);
    let r = read(&path);
    assert_eq!(r.total.count, 2);
    assert_eq!(r.source.skipped_rows, 3);
    assert!(
        r.source.skipped_examples[0].ends_with(":3: elapsed \"seven\" is not a number of milliseconds (0 to one day)"),
        "{:?}",
        r.source.skipped_examples
    );
    assert!(r.source.skipped_examples[1].contains(":4: success \"maybe\""));
    assert!(r.source.skipped_examples[2].contains(":5: 2 fields"));
}

#[test]
fn malformed_rows_fail_the_read_with_the_fail_option() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write(&dir, "m.jtl", "timeStamp,elapsed,label,success\n1700000000000,7,a,true\n1700000000001,-3,a,true\n");
    let err = read_file(&path, ReadOptions::default().on_malformed(OnMalformed::Fail)).unwrap_err();
    match &err {
        ResultsError::Malformed { line, message, .. } => {
            assert_eq!(*line, 3);
            assert!(message.contains("elapsed \"-3\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with(&format!("{}:3: ", path.display())), "{err}");
}

#[test]
fn xml_jtl_is_refused_with_the_property_that_switches_jmeter_to_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "x.jtl", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testResults version=\"1.2\">\n<httpSample t=\"5\"/>\n</testResults>\n");
    let err = read_file(&path, ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ResultsError::XmlJtl { .. }), "{err:?}");
    assert!(err.to_string().contains("-Jjmeter.save.saveservice.output_format=csv"), "{err}");
    let err = read_file(&path, ReadOptions::default().format(Format::Jtl)).unwrap_err();
    assert!(matches!(err, ResultsError::XmlJtl { .. }));
}

#[test]
fn a_date_formatted_timestamp_says_how_to_save_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "d.jtl", "timeStamp,elapsed,label,success\n2024/01/02 10:00:00.000,7,a,true\n");
    let err = read_file(&path, ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("timestamp_format=ms"), "{err}");
}

#[test]
fn a_headerless_file_of_unknown_layout_asks_for_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "u.jtl", "1700000000000,7,a,true\n");
    let err = read_file(&path, ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("print_field_names=true"), "{err}");
}

#[test]
fn a_header_without_a_required_column_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "h.jtl", "timeStamp,label,success\n1700000000000,a,true\n");
    let err = read_file(&path, ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no `elapsed` column"), "{err}");
}

#[test]
fn an_unclosed_quote_stops_at_the_row_bound_instead_of_reading_the_file_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success\n1700000000000,7,\"never closed,true\n");
    let line = "1700000000000,7,a,true\n";
    while text.len() < 3 * 1024 * 1024 {
        text += line;
    }
    let err = read_file(write(&dir, "big.jtl", &text), ReadOptions::default()).unwrap_err();
    match err {
        ResultsError::Malformed { line, message, .. } => {
            assert!(message.contains("unclosed quote"), "{message}");
            assert!(line <= 3, "{line}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_file_or_a_header_only_is_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "timeStamp,elapsed,label,success\n"] {
        let err = read_file(write(&dir, "e.jtl", text), ReadOptions::default()).unwrap_err();
        assert!(matches!(err, ResultsError::Empty { .. }), "{err:?}");
    }
}

#[test]
fn a_missing_file_is_not_found_naming_it() {
    let err = read_file("/nonexistent/r.jtl", ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ResultsError::NotFound { .. }));
    assert!(err.to_string().contains("/nonexistent/r.jtl"));
}

// ---------- percentiles ----------

/// Latencies spread over four decades, from a fixed LCG (deterministic, no dependency).
fn spread(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) % 10_000;
            match r % 4 {
                0 => r % 50,
                1 => 50 + r % 500,
                2 => 500 + r % 5_000,
                _ => r * 3,
            }
        })
        .collect()
}

#[test]
fn percentiles_match_nearest_rank_on_the_raw_values_within_hdr_precision() {
    let dir = tempfile::tempdir().unwrap();
    let values = spread(20_000, 7);
    let mut text = String::from("timeStamp,elapsed,label,success\n");
    for (i, v) in values.iter().enumerate() {
        text += &format!("{},{v},x,true\n", 1_700_000_000_000 + i as u64);
    }
    let r = read(&write(&dir, "p.jtl", &text));
    for q in [50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
        let exact = nearest_rank(&values, q);
        #[allow(clippy::cast_precision_loss)]
        let exact_f = exact as f64;
        let got = r.total.percentile(q).unwrap();
        if exact < 2048 {
            assert_eq!(got, exact_f, "p{q}: exact below 2048 ms");
        } else {
            assert!(got >= exact_f && got <= exact_f * 1.001 + 1.0, "p{q}: {got} vs nearest rank {exact}");
        }
    }
    assert_eq!(r.total.percentile(100.0), r.total.max_ms);
}

#[test]
fn several_files_merge_into_the_percentiles_of_all_their_samples_not_their_average() {
    let dir = tempfile::tempdir().unwrap();
    // One fast worker, one slow: the p95 of all samples is the slow one's, not the average.
    let fast: Vec<u64> = (0..900).map(|i| 10 + i % 10).collect();
    let slow: Vec<u64> = (0..100).map(|i| 1000 + i).collect();
    let mut paths = Vec::new();
    for (name, values) in [("fast.jtl", &fast), ("slow.jtl", &slow)] {
        let mut text = String::from("timeStamp,elapsed,label,success,Hostname\n");
        for v in values.iter() {
            text += &format!("1700000000000,{v},x,true,{name}\n");
        }
        paths.push(write(&dir, name, &text));
    }
    let r = read_files(&paths, ReadOptions::default()).unwrap();
    let all: Vec<u64> = fast.iter().chain(&slow).copied().collect();
    #[allow(clippy::cast_precision_loss)]
    for q in [50.0, 90.0, 95.0, 99.0] {
        assert_eq!(r.total.percentile(q), Some(nearest_rank(&all, q) as f64), "p{q}");
    }
    assert_eq!(r.workers.len(), 2);
    assert_eq!(r.total.count, 1000);
    let averaged =
        (r.workers["fast.jtl"].percentile(95.0).unwrap() + r.workers["slow.jtl"].percentile(95.0).unwrap()) / 2.0;
    assert!((r.total.percentile(95.0).unwrap() - averaged).abs() > 400.0);
}

#[test]
fn throughput_is_samples_over_the_span_from_first_start_to_last_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success\n");
    for i in 0..100u64 {
        text += &format!("{},0,x,true\n", 1_700_000_000_000 + i * 100); // 100 samples over 9.9 s
    }
    let r = read(&write(&dir, "t.jtl", &text));
    let t = r.total.throughput().unwrap();
    assert!((t - 100.0 / 9.9).abs() < 1e-9, "{t}");
}

#[test]
fn the_series_has_one_bucket_per_second_with_counts_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success\n");
    for i in 0..30u64 {
        text += &format!("{},{},x,{}\n", 1_700_000_000_000 + i * 100, 10 * (i / 10 + 1), i % 10 != 0);
    }
    let r = read(&write(&dir, "s.jtl", &text));
    assert_eq!(r.series.bucket_seconds, 1.0);
    let p = &r.series.points;
    assert_eq!(p.len(), 3);
    assert_eq!(p.iter().map(|p| p.count).collect::<Vec<_>>(), [10, 10, 10]);
    assert_eq!(p.iter().map(|p| p.errors).collect::<Vec<_>>(), [1, 1, 1]);
    assert_eq!(p.iter().map(|p| p.p50_ms).collect::<Vec<_>>(), [Some(10.0), Some(20.0), Some(30.0)]);
    assert_eq!(p[1].t_ms - p[0].t_ms, 1000);
}

#[test]
fn a_long_run_widens_the_series_buckets_to_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success\n");
    // Ten hours, one sample every 10 s, in reverse order.
    for i in (0..3600u64).rev() {
        text += &format!("{},5,x,true\n", 1_700_000_000_000 + i * 10_000);
    }
    let r = read(&write(&dir, "l.jtl", &text));
    assert!(r.series.points.len() <= MAX_POINTS, "{}", r.series.points.len());
    assert!(r.series.bucket_seconds >= 64.0, "{}", r.series.bucket_seconds);
    assert_eq!(r.series.points.iter().map(|p| p.count).sum::<u64>(), 3600);
    assert!(r.series.points.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
}

#[test]
fn labels_beyond_the_limit_fold_into_other_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success\n");
    for i in 0..MAX_LABELS + 10 {
        text += &format!("1700000000000,1,label-{i},true\n");
    }
    let r = read(&write(&dir, "many.jtl", &text));
    assert_eq!(r.labels.len(), MAX_LABELS + 1);
    assert_eq!(r.labels[OTHER].count, 10);
    assert!(r.source.notes.iter().any(|n| n.contains(OTHER)));
}

// ---------- Locust ----------

const LOCUST_STATS: &str = "\"Type\",\"Name\",\"Request Count\",\"Failure Count\",\"Median Response Time\",\"Average Response Time\",\"Min Response Time\",\"Max Response Time\",\"Average Content Size\",\"Requests/s\",\"Failures/s\",\"50%\",\"66%\",\"75%\",\"80%\",\"90%\",\"95%\",\"98%\",\"99%\",\"99.9%\",\"99.99%\",\"100%\"\n\
\"GET\",\"/\",\"900\",\"0\",\"4\",\"5.2\",\"1.1\",\"80.3\",\"612.0\",\"30.0\",\"0.0\",\"4\",\"5\",\"6\",\"6\",\"8\",\"10\",\"14\",\"20\",\"70\",\"80\",\"80\"\n\
\"POST\",\"login\",\"100\",\"5\",\"30\",\"35.0\",\"12.0\",\"400.0\",\"20.0\",\"3.3\",\"0.2\",\"30\",\"33\",\"36\",\"40\",\"60\",\"90\",\"200\",\"300\",\"400\",\"400\",\"400\"\n\
\"\",\"Aggregated\",\"1000\",\"5\",\"5\",\"8.2\",\"1.1\",\"400.0\",\"552.8\",\"33.3\",\"0.2\",\"5\",\"5\",\"6\",\"7\",\"10\",\"20\",\"40\",\"80\",\"300\",\"400\",\"400\"\n";

const LOCUST_HISTORY: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count\n\
1700000000,10,,Aggregated,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0\n\
1700000001,10,,Aggregated,30.0,0.0,5,5,6,7,10,20,40,80,300,400,400,500,2\n\
1700000002,10,,Aggregated,33.0,1.0,6,6,7,8,11,22,44,90,300,400,400,1000,5\n";

const LOCUST_FAILURES: &str = "Method,Name,Error,Occurrences\nPOST,login,HTTPError('500 Server Error'),5\n";

fn locust_set(dir: &tempfile::TempDir) -> PathBuf {
    write(dir, "run_stats.csv", LOCUST_STATS);
    write(dir, "run_stats_history.csv", LOCUST_HISTORY);
    write(dir, "run_failures.csv", LOCUST_FAILURES);
    dir.path().join("run")
}

#[test]
fn locust_stats_give_locust_s_own_merged_numbers_per_name_and_in_total() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = locust_set(&dir);
    for path in [prefix.clone(), dir.path().join("run_stats.csv"), dir.path().join("run_failures.csv")] {
        let r = read(&path);
        assert_eq!(r.source.format, Format::Locust);
        assert_eq!(r.total.count, 1000);
        assert_eq!(r.total.errors, 5);
        assert_eq!(r.total.percentile(95.0), Some(20.0));
        assert_eq!(r.total.percentile(99.9), Some(300.0));
        assert_eq!(r.total.percentile(97.0), None, "Locust gives no p97");
        assert_eq!(r.total.throughput(), Some(33.3));
        assert_eq!(r.labels["login"].percentile(99.0), Some(300.0));
        assert_eq!(r.labels["/"].mean_ms, Some(5.2));
        assert!(r.workers.is_empty());
        assert_eq!(r.series.points.len(), 3);
        assert_eq!(r.series.points[2].count, 500);
        assert_eq!(r.series.points[2].errors, 3);
        assert_eq!(r.total.first_ms, Some(1_700_000_000_000));
        assert_eq!(r.errors[0].count, 5);
        assert_eq!(r.source.files.len(), 3);
    }
}

#[test]
fn two_locust_runs_cannot_be_merged_into_percentiles() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let err = read_files(&[locust_set(&a), locust_set(&b)], ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ResultsError::CannotMerge { .. }), "{err:?}");
    assert!(err.to_string().contains("no raw samples"), "{err}");
}

#[test]
fn locust_thresholds_on_workers_or_missing_percentiles_fail_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let r = read(&locust_set(&dir));
    let report = Report::new(
        r,
        &thresholds(&["p95 < 50ms", "p97 < 1s", "worker=w1: p95 < 1s", "label=login: error_rate < 10%"]),
    );
    let v = report.verdicts();
    assert!(v[0].passed);
    assert!(!v[1].passed && v[1].message.contains("not available from locust"), "{}", v[1].message);
    assert!(!v[2].passed && v[2].message.contains("no per-worker numbers"), "{}", v[2].message);
    assert!(v[3].passed, "{}", v[3].message);
}

// ---------- k6 ----------

#[test]
fn k6_csv_request_durations_are_samples_and_other_metrics_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let text = "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata\n\
                http_reqs,1700000000,1.000000,,,,true,,GET,http://127.0.0.1/,HTTP/1.1,default,,200,,,http://127.0.0.1/,,\n\
                http_req_duration,1700000000,1.250000,,,,true,,GET,http://127.0.0.1/,HTTP/1.1,default,,200,,,http://127.0.0.1/,,\n\
                http_req_duration,1700000001,3.500000,,,,false,,GET,http://127.0.0.1/x,HTTP/1.1,default,,404,,,http://127.0.0.1/x,,\n\
                vus,1700000001,10.000000,,,,,,,,,,,,,,,,\n";
    let r = read(&write(&dir, "k6.csv", text));
    assert_eq!(r.source.format, Format::K6);
    assert_eq!(r.total.count, 2);
    assert_eq!(r.total.errors, 1);
    assert_eq!(r.total.min_ms, Some(1.25));
    assert_eq!(r.total.percentile(100.0), Some(3.5));
    assert_eq!(r.labels["http://127.0.0.1/x"].errors, 1);
    assert_eq!(r.errors[0].code, "404");
}

#[test]
fn files_of_different_formats_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let jtl = write(&dir, "a.jtl", "timeStamp,elapsed,label,success\n1700000000000,1,a,true\n");
    let k6 = write(&dir, "k.csv", "metric_name,timestamp,metric_value\nhttp_req_duration,1700000000,1\n");
    let err = read_files(&[jtl, k6], ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ResultsError::CannotMerge { .. }));
}

// ---------- thresholds ----------

#[test]
fn the_four_required_forms_parse_as_written() {
    let t: Threshold = "p95 < 500ms".parse().unwrap();
    assert_eq!((t.scope(), t.metric(), t.op(), t.limit()), (&Scope::Total, Metric::Percentile(95.0), Op::Lt, 500.0));
    let t: Threshold = "error_rate < 1%".parse().unwrap();
    assert_eq!((t.metric(), t.limit()), (Metric::ErrorRate, 0.01));
    let t: Threshold = "throughput > 50/s".parse().unwrap();
    assert_eq!((t.metric(), t.op(), t.limit()), (Metric::Throughput, Op::Gt, 50.0));
    let t: Threshold = "label=login: p99 < 1s".parse().unwrap();
    assert_eq!((t.scope(), t.metric(), t.limit()), (&Scope::Label("login".into()), Metric::Percentile(99.0), 1000.0));
    assert_eq!(t.to_string(), "label=login: p99 < 1s");
}

#[test]
fn other_forms_parse_too() {
    for (text, metric, limit) in [
        ("p(95)<500ms", Metric::Percentile(95.0), 500.0),
        ("P99.9 <= 2S", Metric::Percentile(99.9), 2000.0),
        ("median < 0.25s", Metric::Percentile(50.0), 250.0),
        ("avg < 100ms", Metric::Mean, 100.0),
        ("max<=3s", Metric::Max, 3000.0),
        ("errors < 10", Metric::Errors, 10.0),
        ("count >= 1000", Metric::Count, 1000.0),
        ("rps > 20/s", Metric::Throughput, 20.0),
        ("total: error_rate <= 0.5%", Metric::ErrorRate, 0.005),
    ] {
        let t: Threshold = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!((t.metric(), t.limit()), (metric, limit), "{text}");
    }
    let t: Threshold = "label=GET /a:b: p95 < 1s".parse().unwrap();
    assert_eq!(t.scope(), &Scope::Label("GET /a:b".into()));
    let t: Threshold = r#"label="say \"hi\": now": p95 < 1s"#.parse().unwrap();
    assert_eq!(t.scope(), &Scope::Label("say \"hi\": now".into()));
    let t: Threshold = "worker=10.0.0.3: p95 < 1s".parse().unwrap();
    assert_eq!(t.scope(), &Scope::Worker("10.0.0.3".into()));
}

#[test]
fn parse_errors_say_what_is_wrong_and_show_an_accepted_form() {
    for (text, says) in [
        ("p95 < 500", "write \"p95 < 500ms\""),
        ("error_rate < 1", "write \"error_rate < 1%\""),
        ("throughput > 50", "write \"throughput > 50/s\""),
        ("label=login: p99 < 1", "write \"label=login: p99 < 1ms\""),
        ("p95 < 500kg", "unit \"kg\" does not fit p95"),
        ("p95 = 500ms", "not a comparison"),
        ("p95 500ms", "no comparison"),
        ("latency < 5ms", "unknown metric \"latency\""),
        ("p0 < 5ms", "above 0 and at most 100"),
        ("p101 < 5ms", "above 0 and at most 100"),
        ("error_rate < 120%", "more than 100%"),
        ("errors < 1.5", "whole number"),
        ("", "empty"),
        ("label=: p95 < 1s", "empty"),
        ("labl=x: p95 < 1s", "unknown scope"),
        ("p95 < abc", "not a number"),
        ("p95 << 5ms", "one comparison"),
    ] {
        let e = text.parse::<Threshold>().unwrap_err();
        assert!(e.to_string().contains(says), "{text:?}: {e}");
    }
}

fn results_of(values: &[(u64, bool)]) -> Results {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timeStamp,elapsed,label,success,Hostname\n");
    for (i, (v, ok)) in values.iter().enumerate() {
        text += &format!(
            "{},{v},{},{ok},w{}\n",
            1_700_000_000_000 + i as u64 * 10,
            if i % 2 == 0 { "a" } else { "b" },
            i % 3
        );
    }
    read(&write(&dir, "v.jtl", &text))
}

#[test]
fn verdicts_show_observed_against_limit() {
    let values: Vec<(u64, bool)> = (1..=100).map(|i| (i, i != 50)).collect();
    let r = results_of(&values);
    let report = Report::new(
        r,
        &thresholds(&[
            "p95 < 96ms",
            "p95 < 95ms",
            "error_rate <= 1%",
            "error_rate < 1%",
            "count >= 100",
            "label=a: max < 100ms",
            "label=zzz: p95 < 1s",
        ]),
    );
    let v = report.verdicts();
    assert!(v[0].passed && v[0].message == "p95 = 95ms", "{}", v[0].message);
    assert!(!v[1].passed && v[1].message == "p95 = 95ms, not < 95ms", "{}", v[1].message);
    assert_eq!(v[1].observed, Some(95.0));
    assert!(v[2].passed);
    assert!(!v[3].passed);
    assert_eq!(v[3].observed_in_unit(), Some(1.0));
    assert!(v[4].passed);
    assert!(v[5].passed, "label a holds the odd values 1..99: {}", v[5].message);
    assert!(!v[6].passed && v[6].message.contains("no samples for label \"zzz\""));
    assert!(!report.passed());
}

// ---------- exit codes ----------

#[test]
fn exit_code_precedence_master_first_then_thresholds() {
    assert_eq!(exit_code(0, true), 0);
    assert_eq!(exit_code(0, false), THRESHOLDS_FAILED);
    assert_eq!(exit_code(3, false), 3);
    assert_eq!(exit_code(3, true), 3);
    assert_eq!(exit_code(-1, false), -1);
    let r = results_of(&[(10, true)]);
    assert_eq!(Report::new(r.clone(), &thresholds(&["p95 < 1ms"])).exit_code(0), 99);
    assert_eq!(Report::new(r.clone(), &thresholds(&["p95 < 1ms"])).exit_code(2), 2);
    assert_eq!(Report::new(r, &[]).exit_code(0), 0);
}

#[test]
fn missing_results_fail_every_threshold_with_the_reason_and_exit_99() {
    let dir = tempfile::tempdir().unwrap();
    let t = thresholds(&["p95 < 1s"]);
    let err = analyze(dir.path(), Some(&ResultsSpec::new("results.jtl")), &t).unwrap_err();
    let report = Report::without_results(&err, &t);
    assert_eq!(report.exit_code(0), 99);
    assert_eq!(report.exit_code(1), 1);
    assert!(report.verdicts()[0].message.contains("not found"), "{}", report.verdicts()[0].message);
    assert!(Report::without_results("x", &[]).passed(), "no thresholds: nothing failed");
}

// ---------- analyze and the task ----------

#[test]
fn analyze_finds_the_results_in_an_artifacts_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "jmeter.log", "log");
    write(&dir, "results.jtl", &row_2_13(1_700_000_000_000, 5, "a", true, 1));
    let report = analyze(dir.path(), None, &thresholds(&["p95 < 1s"])).unwrap();
    assert!(report.passed());
    assert_eq!(find_results(dir.path()).unwrap(), dir.path().join("results.jtl"));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(find_results(empty.path()), Err(ResultsError::NotFound { .. })));
}

#[test]
fn analyze_task_reports_only_for_tasks_with_results_or_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "results.jtl", &row_2_13(1_700_000_000_000, 5, "a", true, 1));
    let base = crate::Task::builder("t").workers(crate::Service::new("i")).master(crate::Service::new("i"));
    assert!(analyze_task(dir.path(), &base.clone().build().unwrap()).is_none());
    let task = base.clone().artifacts("/atq/results").threshold("p95 < 1ms").build().unwrap();
    let report = analyze_task(dir.path(), &task).unwrap();
    assert_eq!(report.title(), "t");
    assert_eq!(report.exit_code(0), 99);
    let missing = tempfile::tempdir().unwrap();
    let report = analyze_task(missing.path(), &task).unwrap();
    assert!(report.results().is_none() && report.problem().is_some());
    assert_eq!(report.exit_code(0), 99);
}

#[test]
fn task_validation_names_each_bad_threshold_and_results_field() {
    let task = crate::Task::from_yaml_str(
        "name: t\nworker: {image: i}\nmaster: {image: i}\nartifacts: /atq/results\nresults: {format: jtl, path: ../x.jtl}\nthresholds:\n  - p95 < 500ms\n  - error_rate < 1\n",
    );
    let err = task.unwrap_err();
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["results.path", "thresholds[1]"], "{err}");
    assert!(err.problems[1].message.contains("error_rate < 1%"), "{err}");
    assert_eq!(err.problems[1].line, Some(6), "the line of `thresholds`");
    let err = crate::Task::builder("t")
        .workers(crate::Service::new("i"))
        .master(crate::Service::new("i"))
        .threshold("p95 < 1s")
        .results(ResultsSpec::new("/abs.jtl"))
        .build()
        .unwrap_err();
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["results.path", "results", "thresholds"], "{err}");
    let ok = crate::Task::from_yaml_str(
        "name: t\nworker: {image: i}\nmaster: {image: i}\nartifacts: /atq/results\nresults: {format: locust, path: stats}\nthresholds: [\"label=login: p99 < 1s\"]\n",
    )
    .unwrap();
    assert_eq!(ok.results().unwrap().format, Format::Locust);
    assert_eq!(ok.thresholds()[0].scope(), &Scope::Label("login".into()));
    let again = crate::Task::from_yaml_str(&ok.to_yaml()).unwrap();
    assert_eq!(again, ok);
}

// ---------- outputs ----------

const HOSTILE: &str = "<script>alert(1)</script>\"'&";

fn hostile_report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "timeStamp,elapsed,label,success,responseMessage,Hostname\n1700000000000,5,\"{l}\",false,\"{l}\",\"{l}\"\n1700000000000,5,\"ctl\u{1}\u{1b}[31m\",true,,w\n",
        l = HOSTILE.replace('"', "\"\"")
    );
    let r = read(&write(&dir, "h.jtl", &text));
    Report::new(r, &thresholds(&[&format!("label=\"{}\": p95 < 1ms", HOSTILE.replace('"', "\\\"")), "p95 < 1s"]))
        .titled(HOSTILE)
}

#[test]
fn junit_xml_is_well_formed_with_a_case_per_threshold_and_per_label() {
    use quick_xml::events::Event;
    let report = hostile_report();
    let xml = report.junit_xml();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut depth) = (Vec::new(), 0, 0i32);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}")) {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let attr = |k: &[u8]| {
                    e.try_get_attribute(k)
                        .unwrap()
                        .unwrap()
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap()
                        .into_owned()
                };
                cases.push((attr(b"classname"), attr(b"name")));
                depth += 1;
            }
            Event::Start(e) if e.name().as_ref() == b"failure" => failures += 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(depth > 0);
    let thresholds: Vec<_> = cases.iter().filter(|c| c.0 == "atq.thresholds").collect();
    let labels: Vec<_> = cases.iter().filter(|c| c.0 == "atq.labels").map(|c| c.1.clone()).collect();
    assert_eq!(thresholds.len(), 2);
    assert_eq!(labels.len(), 2);
    assert!(labels.contains(&HOSTILE.to_owned()), "{labels:?}");
    assert!(labels.contains(&"ctl\u{FFFD}\u{FFFD}[31m".to_owned()), "control characters replaced: {labels:?}");
    assert_eq!(failures, 2, "the hostile label's threshold fails, and its label case with it: {xml}");
}

#[test]
fn junit_without_results_has_one_failing_case_saying_why() {
    let xml = Report::without_results("results.jtl not found", &thresholds(&["p95 < 1s"])).junit_xml();
    assert!(xml.contains("classname=\"atq.results\""));
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
}

#[test]
fn html_escapes_hostile_labels_and_loads_nothing_from_outside() {
    let html = hostile_report().html();
    assert!(!html.contains("<script>alert"), "a label became markup");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for external in ["http://", "https://", "src=\"//", "href=\"//", "@import", "url("] {
        assert!(!html.contains(external), "external reference {external}");
    }
    assert!(html.contains("<svg"), "charts are inline SVG");
}

#[test]
fn summary_json_follows_the_schema() {
    let values: Vec<(u64, bool)> = (1..=10).map(|i| (i * 10, i != 10)).collect();
    let report = Report::new(results_of(&values), &thresholds(&["error_rate < 5%"])).titled("demo");
    let v: serde_json::Value = serde_json::from_str(&report.summary_json()).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(v["title"], "demo");
    assert_eq!(v["passed"], false);
    assert_eq!(v["total"]["count"], 10);
    assert_eq!(v["total"]["errors"], 1);
    assert_eq!(v["total"]["error_rate"], 0.1);
    assert_eq!(v["total"]["p50_ms"], 50.0);
    assert_eq!(v["total"]["max_ms"], 100.0);
    assert_eq!(v["labels"][0]["name"], "a");
    assert_eq!(v["workers"].as_array().unwrap().len(), 3);
    assert_eq!(v["thresholds"][0]["observed"], 10.0);
    assert_eq!(v["thresholds"][0]["unit"], "%");
    assert_eq!(v["thresholds"][0]["passed"], false);
    assert_eq!(v["source"]["format"], "jtl");
    assert!(v["series"]["points"].as_array().unwrap().len() == 1);
}

#[test]
fn write_outputs_writes_the_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let report = Report::new(results_of(&[(5, true)]), &[]);
    let written = report.write_outputs(&dir.path().join("out")).unwrap();
    let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(names, [SUMMARY_JSON, JUNIT_XML, REPORT_HTML]);
    assert!(written.iter().all(|p| std::fs::metadata(p).unwrap().len() > 100));
}

#[test]
fn the_summary_table_lists_labels_total_and_verdicts_without_control_characters() {
    let report = hostile_report();
    let table = report.summary_table();
    assert!(table.starts_with("LABEL"), "{table}");
    assert!(table.contains("TOTAL"));
    assert!(table.contains("FAIL"));
    assert!(table.contains("PASS  p95 < 1s"));
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Merging per-worker histograms gives exactly the histogram of all samples: the same
    /// percentiles, whichever way the samples are split.
    #[test]
    fn merged_worker_histograms_equal_one_histogram_of_all_samples(
        samples in proptest::collection::vec((0u64..200_000, 0usize..5), 1..400)
    ) {
        let mut one = collect::Collector::new(1000);
        let mut split: Vec<collect::Collector> = (0..5).map(|_| collect::Collector::new(1000)).collect();
        for (i, (v, w)) in samples.iter().enumerate() {
            let s = collect::Sample { ts_ms: i as i64, elapsed: *v, label: b"x", worker: None, success: true, bytes: 0, sent_bytes: 0 };
            one.add(&s, None);
            split[*w].add(&s, None);
        }
        let one = one.finish().total;
        let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
        for c in split.into_iter().filter(|c| !c.is_empty()) {
            if let summary::Distribution::Histogram { histogram, .. } = c.finish().total.distribution {
                match &mut merged {
                    Some(m) => m.add(&*histogram).unwrap(),
                    None => merged = Some(*histogram),
                }
            }
        }
        let merged = merged.unwrap();
        let summary::Distribution::Histogram { histogram: whole, .. } = &one.distribution else { panic!() };
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            prop_assert_eq!(merged.value_at_quantile(q), whole.value_at_quantile(q));
        }
        prop_assert_eq!(merged.len(), one.count);
    }

    /// Readers never panic on arbitrary bytes, in any format, and finish promptly.
    #[test]
    fn readers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), header in 0usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let prefix: &[u8] = match header {
            0 => b"",
            1 => b"timeStamp,elapsed,label,success,Hostname,bytes\n",
            2 => b"metric_name,timestamp,metric_value,name,status\n",
            _ => b"Type,Name,Request Count,Failure Count,50%,95%\n",
        };
        let path = dir.path().join("f_stats.csv");
        std::fs::write(&path, [prefix, &bytes].concat()).unwrap();
        for format in [Format::Auto, Format::Jtl, Format::K6, Format::Locust] {
            for on in [OnMalformed::Skip, OnMalformed::Fail] {
                if let Ok(r) = read_file(&path, ReadOptions::default().format(format).on_malformed(on)) {
                    let report = Report::new(r, &[]);
                    let _ = (report.summary_table(), report.summary_json(), report.junit_xml(), report.html());
                }
            }
        }
    }

    /// Any text either parses as a threshold or gives an error; never a panic.
    #[test]
    fn threshold_parsing_never_panics(text in "\\PC{0,40}") {
        let _ = text.parse::<Threshold>();
    }
}
