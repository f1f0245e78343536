"""Draws the charts of docs/performance.md from hookline bench JSON files.

Usage: charts.py RESULTS_DIR CHARTS_DIR (deploy/bench/charts.sh runs it).
Each file holds one `hookline bench --json` object; several runs of the same
setting are drawn as their median.
"""

import glob
import json
import os
import statistics
import sys
from collections import defaultdict

import matplotlib.pyplot as plt


def load(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    return out


def by(runs, key):
    groups = defaultdict(list)
    for r in runs:
        groups[r[key]].append(r)
    return sorted(groups.items())


def median(runs, field):
    return statistics.median(r[field] for r in runs)


def note(runs, key=None):
    procs = sorted({r.get("gomaxprocs") for r in runs})
    brokers = sorted({r.get("broker", "embedded") for r in runs})
    s = "GOMAXPROCS %s, broker %s" % (",".join(map(str, procs)), ",".join(brokers))
    if key:
        s += ", median of up to %d run(s) per point" % max(len(g) for _, g in by(runs, key))
    return s


def save(fig, charts, name):
    path = os.path.join(charts, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print("charts.py: wrote", path)


def throughput_vs(runs, key, xlabel, title, charts, name, rss=False):
    groups = by(runs, key)
    xs = [k for k, _ in groups]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(xs, [median(g, "pipeline_deliveries_per_second") for _, g in groups], "o-", label="pipeline deliveries/s")
    ax.plot(xs, [median(g, "raw_http_posts_per_second") for _, g in groups], "s--", label="raw loopback POST/s")
    ax.set_xscale("log", base=2 if key == "partitions" else 10)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("per second")
    ax.set_ylim(bottom=0)
    for x, (_, g) in zip(xs, groups):
        ax.annotate("%.2f" % median(g, "ratio"), (x, median(g, "pipeline_deliveries_per_second")),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    lines, labels = ax.get_legend_handles_labels()
    if rss:
        ax2 = ax.twinx()
        ax2.plot(xs, [median(g, "peak_rss_bytes") / 2**20 for _, g in groups], "^:", color="tab:gray", label="peak RSS (MiB)")
        ax2.set_ylabel("peak RSS (MiB)")
        ax2.set_ylim(bottom=0)
        l2, lb2 = ax2.get_legend_handles_labels()
        lines, labels = lines + l2, labels + lb2
    ax.legend(lines, labels, loc="lower left", fontsize=8)
    ax.set_title(title + "\n(ratio above each point; " + note(runs, key) + ")", fontsize=9)
    save(fig, charts, name)


def tiers_cdf(runs, charts):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, r in enumerate(runs):
        qs = r["lateness_ms_quantiles"]
        xs = [max(q["ms"], 1e-3) for q in qs]
        ax.plot(xs, [q["q"] for q in qs], label="run %d: %d events, %d waiting at peak" % (i + 1, r["events"], r["peak_records_waiting_in_tiers"]))
    ax.set_xscale("log")
    ax.set_xlabel("lateness of a tier attempt after its due time (ms, log)")
    ax.set_ylabel("share of tier attempts")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Retry tiers full: lateness CDF\n(" + note(runs) + ")", fontsize=9)
    save(fig, charts, "tiers-cdf.png")


def scale(runs, charts):
    r = runs[-1]
    labels = ["1 process"] + ["process %d of %d" % (i + 1, r["processes"]) for i in range(len(r["each_process_deliveries_per_second"]))] + ["%d together" % r["processes"]]
    values = [r["one_process_deliveries_per_second"]] + r["each_process_deliveries_per_second"] + [r["together_deliveries_per_second"]]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.bar(labels, values, color=["tab:blue"] + ["tab:cyan"] * (len(values) - 2) + ["tab:green"])
    ax.axhline(r["receiver_raw_posts_per_second"], color="tab:red", linestyle="--", label="receiver raw capacity, same run")
    ax.set_ylabel("deliveries/s")
    ax.legend(fontsize=8)
    ax.set_title("One vs %d serve processes, %d partitions, broker %s\n(GOMAXPROCS %d of the bench process; receiver headroom x%.1f)"
                 % (r["processes"], r["partitions"], r["broker"], r["gomaxprocs"], r["receiver_headroom"]), fontsize=9)
    save(fig, charts, "scale.png")


def main():
    results, charts = sys.argv[1], sys.argv[2]
    drawn = 0
    runs = load(os.path.join(results, "e2e-partitions-*.json"))
    if runs:
        throughput_vs(runs, "partitions", "partitions (--partitions)", "End to end vs partitions", charts, "partitions.png")
        drawn += 1
    runs = load(os.path.join(results, "keys-*.json"))
    if runs:
        throughput_vs(runs, "keys", "ordering keys (--keys)", "End to end vs ordering keys", charts, "keys.png", rss=True)
        drawn += 1
    runs = load(os.path.join(results, "tiers*.json"))
    if runs:
        tiers_cdf(runs, charts)
        drawn += 1
    runs = load(os.path.join(results, "scale*.json"))
    if runs:
        scale(runs, charts)
        drawn += 1
    if drawn == 0:
        sys.exit("charts.py: no bench JSON files in " + results)


if __name__ == "__main__":
    main()
