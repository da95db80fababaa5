"""What a Python user would write to summarise a JTL: pandas read_csv + groupby quantiles.

python3 benches/results_pandas.py FILE [--usecols]   (pandas from PyPI, e.g. in a venv)

Reads the file (every column, as `pd.read_csv(path)` is usually written; `--usecols`: only the
six the summary needs, kinder to pandas), then per label and per worker: count, errors, mean, p50/p90/p95/p99/p99.9; the same for all
samples. Prints one line like results-summary's: `pandas samples=N seconds=S ... peak_rss_kib=K`
(rates on CPU time, time.process_time; ru_maxrss: the process's peak resident memory,
interpreter and pandas included).
"""
import resource
import sys
import time

import pandas as pd

QUANTILES = [0.5, 0.9, 0.95, 0.99, 0.999]
# `--usecols`: read only the six columns used (kinder to pandas); default: the whole file, as
# `pd.read_csv(path)` is usually written.
USECOLS = ["timeStamp", "elapsed", "label", "success", "bytes", "Hostname"] if "--usecols" in sys.argv else None


def main(path):
    started, cpu_started = time.perf_counter(), time.process_time()
    df = pd.read_csv(path, usecols=USECOLS) if USECOLS else pd.read_csv(path)
    df["failed"] = ~df["success"]
    total = df["elapsed"].quantile(QUANTILES)
    checksum = float(total.sum())
    for key in ("label", "Hostname"):
        g = df.groupby(key)
        stats = g.agg(count=("elapsed", "size"), errors=("failed", "sum"), mean=("elapsed", "mean"), bytes=("bytes", "sum"))
        q = g["elapsed"].quantile(QUANTILES).unstack()
        checksum += float(q.to_numpy().sum()) + float(stats["count"].sum()) * 0
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    n = len(df)
    print(
        f"pandas{'-usecols' if USECOLS else ''} samples={n} wall_s={seconds:.3f} cpu_s={cpu:.3f} samples_per_cpu_s={n / cpu:.0f} "
        f"cpu_ns_per_sample={cpu * 1e9 / n:.0f} peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} "
        f"p95_total_ms={total[0.95]} checksum={checksum:.0f} pandas={pd.__version__}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
