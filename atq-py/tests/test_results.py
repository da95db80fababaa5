"""atq.Results: results files read, merged and judged by the core; tasks with thresholds."""

import json

import pytest

import atq

T0 = 1_700_000_000_000


def jtl(tmp_path, name="r.jtl", host="w1", n=100, fail_every=None):
    """A JTL with a header: latency 1..n ms, every tenth sample on label `login`."""
    lines = ["timeStamp,elapsed,label,responseCode,success,bytes,Hostname"]
    for i in range(1, n + 1):
        ok = fail_every is None or i % fail_every != 0
        label = "login" if i % 10 == 0 else "home"
        lines.append(f"{T0 + i * 10},{i},{label},{200 if ok else 500},{str(ok).lower()},100,{host}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_from_file_gives_summaries_as_dicts(tmp_path):
    r = atq.Results.from_file(jtl(tmp_path))
    assert r.passed
    assert r.total["count"] == 100
    assert r.total["p50_ms"] == 50.0
    assert r.total["max_ms"] == 100.0
    assert r.labels["login"]["count"] == 10
    assert r.labels["home"]["errors"] == 0
    assert list(r.workers) == ["w1"]
    assert r.source["format"] == "jtl"
    assert r.summary()["schema"] == "atq.summary/1"
    assert json.loads(r.to_json())["total"]["count"] == 100
    assert r.exit_code() == 0
    assert r.exit_code(3) == 3


def test_percentiles_are_those_of_the_raw_values(tmp_path):
    values = sorted(range(1, 1001))
    r = atq.Results.from_file(jtl(tmp_path, n=1000))
    for q, key in [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")]:
        import math

        assert r.total[key] == values[math.ceil(q * len(values)) - 1]


def test_failed_thresholds_give_99_and_an_assertion_with_the_table(tmp_path):
    r = atq.Results.from_file(jtl(tmp_path, fail_every=10), thresholds=["error_rate < 1%", "p95 < 1s"])
    assert not r.passed
    assert not r
    assert r.exit_code() == 99
    assert r.exit_code(2) == 2
    verdicts = {v["threshold"]: v for v in r.verdicts}
    assert verdicts["error_rate < 1%"]["observed"] == 10.0
    assert verdicts["error_rate < 1%"]["passed"] is False
    assert verdicts["p95 < 1s"]["passed"] is True
    with pytest.raises(AssertionError) as info:
        r.assert_passed()
    assert "FAIL  error_rate < 1%" in str(info.value)
    assert "TOTAL" in str(info.value)


def test_several_files_merge(tmp_path):
    a = jtl(tmp_path, "a.jtl", "w1", 90)
    b = jtl(tmp_path, "b.jtl", "w2", 10)
    r = atq.Results.from_files([a, b])
    assert r.total["count"] == 100
    assert sorted(r.workers) == ["w1", "w2"]
    assert r.total["p50_ms"] == 40.0


def test_outputs_are_written(tmp_path):
    r = atq.Results.from_file(jtl(tmp_path), thresholds=["p99 < 1s"], title="demo")
    written = r.write_outputs(tmp_path / "out")
    assert [p.rsplit("/", 1)[1] for p in written] == ["summary.json", "junit.xml", "report.html"]
    assert "<svg" in r.html()
    assert 'name="p99 &lt; 1s"' in r.junit_xml()
    assert r.table().startswith("LABEL")


def test_a_bad_threshold_is_a_validation_error_naming_its_index(tmp_path):
    with pytest.raises(atq.ValidationError) as info:
        atq.Results.from_file(jtl(tmp_path), thresholds=["p95 < 1s", "p95 < 500"])
    assert info.value.field == "thresholds[1]"
    assert '"p95 < 500ms"' in str(info.value)


def test_unreadable_results_raise_results_error_with_path_and_line(tmp_path):
    xml = tmp_path / "x.jtl"
    xml.write_text('<?xml version="1.0"?>\n<testResults/>\n')
    with pytest.raises(atq.ResultsError) as info:
        atq.Results.from_file(xml)
    assert "output_format=csv" in str(info.value)
    assert info.value.path == str(xml)
    bad = tmp_path / "m.jtl"
    bad.write_text("timeStamp,elapsed,label,success\n1700000000000,5,a,true\n1700000000001,x,a,true\n")
    assert atq.Results.from_file(bad).source["skipped_rows"] == 1
    with pytest.raises(atq.ResultsError) as info:
        atq.Results.from_file(bad, strict=True)
    assert info.value.line == 3
    with pytest.raises(atq.ResultsError):
        atq.Results.from_file(tmp_path / "missing.jtl")
    assert issubclass(atq.ResultsError, atq.AtqError)


def test_locust_results_have_no_workers_and_only_locust_percentiles(tmp_path):
    (tmp_path / "run_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
        "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
        "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
        "GET,/,10,1,5,6.0,1.0,20.0,100,2.0,0.2,5,6,7,8,10,15,18,20,20,20,20\n"
        ",Aggregated,10,1,5,6.0,1.0,20.0,100,2.0,0.2,5,6,7,8,10,15,18,20,20,20,20\n"
    )
    r = atq.Results.from_file(tmp_path / "run", thresholds=["p95 < 100ms", "p97 < 1s"])
    assert r.source["format"] == "locust"
    assert r.total["p95_ms"] == 15.0
    assert r.workers == {}
    assert [v["passed"] for v in r.verdicts] == [True, False]


def test_a_task_carries_results_and_thresholds():
    task = atq.Task(
        "load",
        worker=atq.Service("i"),
        master=atq.Service("i"),
        artifacts="/atq/results",
        results={"path": "results.jtl", "format": "jtl"},
        thresholds=["p95 < 500ms", "label=login: p99 < 1s"],
    )
    assert task.results == {"format": "jtl", "path": "results.jtl"}
    assert task.thresholds == ["p95 < 500ms", "label=login: p99 < 1s"]
    assert atq.Task.from_yaml(task.to_yaml()) == task
    with pytest.raises(atq.ValidationError) as info:
        atq.Task("load", worker=atq.Service("i"), master=atq.Service("i"), thresholds=["p95 < 1s"])
    assert info.value.field == "thresholds"
    with pytest.raises(atq.ValidationError) as info:
        atq.Task("load", worker=atq.Service("i"), master=atq.Service("i"), artifacts="/r", thresholds=["p9 <"])
    assert info.value.field == "thresholds[0]"
