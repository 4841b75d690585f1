#!/usr/bin/env python3
"""Benchmark report for bench/run.sh (standard library only).

  report.py count PATH
      Prints the number of data rows in an output: CSV = lines minus the header row, JSON lines =
      lines. PATH may be a directory of part files (each CSV part has its own header).
  report.py count --sums PATH
      The rows, then the sum of every value column (the columns not named id*; empty = 0) to 8
      significant digits, e.g. `100 Σ1.2345678e+06`: for the H2O questions, where tools must
      agree on the values too, not only on the group count.
  report.py table --meas M.csv --counts C.csv [--meta meta.txt] [--append RESULTS.md]
      Prints the results table (markdown) and appends it, dated, to RESULTS.md.
      Exit status 1 if the tools disagree on the row count of an output.
"""
import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict

GOAL_RATIO = 0.7  # flow's wall time at most 0.7x the best peer's
GOAL_RSS_MIB = 64  # flow's peak RSS strictly under 64 MiB
PEERS = ["duckdb", "polars", "datafusion"]
TOOL_ORDER = ["flow"] + PEERS


def count_lines(path):
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            n += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":  # last line without a newline
        n += 1
    return n


def count_rows(path):
    """Outputs hold no embedded newlines (ids, vendors, numbers, city names), so lines = rows."""
    if os.path.isdir(path):
        parts = sorted(os.path.join(path, p) for p in os.listdir(path) if not p.startswith("."))
        return sum(count_rows(p) for p in parts)
    n = count_lines(path)
    if path.endswith(".csv") and n > 0:
        n -= 1  # header row
    return n


def value_sum(path):
    """The sum of the value columns (not named id*) of a CSV output or a directory of parts."""
    if os.path.isdir(path):
        return sum(value_sum(os.path.join(path, p)) for p in sorted(os.listdir(path)) if not p.startswith("."))
    total = 0.0
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r, [])
        vals = [i for i, name in enumerate(header) if not name.startswith("id")]
        for row in r:
            for i in vals:
                if i < len(row) and row[i] != "":
                    total += float(row[i])
    return total


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fmt(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def table(args):
    meas = read_csv(args.meas)
    counts = read_csv(args.counts)
    meta = {}
    if args.meta and os.path.exists(args.meta):
        with open(args.meta) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v

    runs = defaultdict(list)  # (rows, job, tool) -> [(status, wall, rss_kb)]
    for m in meas:
        wall = float(m["wall_s"]) if m["wall_s"] else None
        rss = int(m["rss_kb"]) if m["rss_kb"] else None
        cpu = float(m["cpu_s"]) if m.get("cpu_s") else None
        runs[(m["rows"], m["job"], m["tool"])].append((m["status"], wall, rss, cpu))
    cnt = defaultdict(set)  # (rows, job, output) -> {(tool, count)}
    for c in counts:
        cnt[(c["rows"], c["job"], c["output"])].add((c["tool"], c["count"]))

    sizes = sorted({k[0] for k in runs}, key=lambda s: (len(s), s))
    lines = []
    out = lines.append
    out(f"## {meta.get('date', '')} — {', '.join(sizes)} rows, {meta.get('repeat', '?')} rounds")
    out("")
    for key in ("commit", "cpu", "mem", "load_at_start", "load_at_end", "versions", "tools", "flow"):
        if key in meta:
            out(f"- {key.replace('_', ' ')}: {meta[key]}")
    out("- wall = whole-process wall time (`/usr/bin/time %e`), RSS = peak resident set (`%M`), CPU = user + system seconds (`%U + %S`, less sensitive to other load than wall); medians over "
        "successful rounds; 2 threads per tool")
    out("")
    mismatch = False
    for size in sizes:
        jobs = sorted({k[1] for k in runs if k[0] == size}, key=lambda j: (j[0], len(j), j))  # q2 before q10
        tools = [t for t in TOOL_ORDER if any((size, j, t) in runs for j in jobs)]
        out(f"### {size} rows")
        out("")
        out("| job | tool | wall s (median) | CPU s (median) | peak RSS MiB (median) | ok runs | flow ÷ tool (wall) | output rows |")
        out("|---|---|---:|---:|---:|---:|---:|---|")
        med = {}
        cpu_med = {}
        for job in jobs:
            for tool in tools:
                rs = runs.get((size, job, tool), [])
                ok = [r for r in rs if r[0] == "ok"]
                w = statistics.median([r[1] for r in ok]) if ok else None
                m = statistics.median([r[2] / 1024 for r in ok]) if ok else None
                cpus = [r[3] for r in ok if r[3] is not None]
                cpu_med[(job, tool)] = statistics.median(cpus) if cpus else None
                med[(job, tool)] = (w, m)
            fw = med.get((job, "flow"), (None, None))[0]
            for tool in tools:
                rs = runs.get((size, job, tool), [])
                if not rs:
                    continue
                w, m = med[(job, tool)]
                okn = sum(1 for r in rs if r[0] == "ok")
                ratio = "—" if tool == "flow" or fw is None or not w else f"{fw / w:.2f}"
                outs = sorted({o for (s, j, o) in cnt if s == size and j == job})
                rows_txt = ", ".join(
                    f"{o}={'/'.join(sorted({n for (t, n) in cnt[(size, job, o)] if t == tool})) or '—'}"
                    for o in outs)
                out(f"| {job.upper()} | {tool} | {fmt(w)} | {fmt(cpu_med[(job, tool)])} | {fmt(m, 0)} | {okn}/{len(rs)} | {ratio} | {rows_txt} |")
        out("")

        # Row counts: every tool and every round must agree per output.
        size_mismatch = False
        for job in jobs:
            for o in sorted({o for (s, j, o) in cnt if s == size and j == job}):
                values = {n for (_, n) in cnt[(size, job, o)]}
                if len(values) > 1:
                    mismatch = size_mismatch = True
                    detail = "; ".join(f"{t}={n}" for t, n in sorted(cnt[(size, job, o)]))
                    out(f"- **ROW COUNT MISMATCH** {job.upper()} {o}: {detail}")
        if not size_mismatch:
            out("- row counts: all tools agree on every output")

        # Goal per job: flow wall <= 0.7 x best peer, flow peak RSS < 64 MiB.
        for job in jobs:
            peers = [(med[(job, t)][0], t) for t in PEERS if t in tools and med[(job, t)][0] is not None]
            best = min(peers) if peers else None
            fw, fm = med.get((job, "flow"), (None, None))
            best_txt = f"best peer {best[1]} {best[0]:.2f} s → target ≤ {GOAL_RATIO * best[0]:.2f} s" if best else "no peer measured"
            if "flow" not in tools and "flow" not in meta.get("tools", "flow"):
                verdict = "n/a (flow not in --tools)"
                flow_txt = "flow: not run"
            elif "flow" not in tools:
                verdict = "FAIL (flow not available)"
                flow_txt = "flow: no result"
            elif fw is None:
                verdict = "FAIL (flow failed every round)"
                flow_txt = "flow: no successful run"
            elif best is None:
                verdict = "n/a (no peer)"
                flow_txt = f"flow {fw:.2f} s, {fm:.0f} MiB"
            else:
                r = fw / best[0]
                ok = r <= GOAL_RATIO and fm < GOAL_RSS_MIB
                verdict = "PASS" if ok else "FAIL"
                flow_txt = f"flow {fw:.2f} s ({r:.2f}×), {fm:.0f} MiB"
            out(f"- goal {job.upper()} (≤ {GOAL_RATIO}× best peer wall, < {GOAL_RSS_MIB} MiB): {best_txt}; {flow_txt}: **{verdict}**")
        j1 = med.get(("j1", "flow"), (None, None))[0]
        j3 = med.get(("j3", "flow"), (None, None))[0]
        if j1 and j3:
            out(f"- flow J3/J1 (three sinks vs one): {j3 / j1:.2f}")
        elif "j1" in jobs and "j3" in jobs:
            out("- flow J3/J1: — (flow not measured)" if "flow" in meta.get("tools", "flow") else "- flow J3/J1: — (flow not run)")
        out("")

    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.append:
        new = not os.path.exists(args.append)
        with open(args.append, "a") as f:
            if new:
                f.write("# Benchmark results\n\nAppended by `bench/run.sh` (see bench/README.md); newest last.\n\n")
            f.write(text)
        print(f"(appended to {args.append})")
    return 1 if mismatch else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count")
    c.add_argument("--sums", action="store_true", help="also the sum of the value columns")
    c.add_argument("path")
    t = sub.add_parser("table")
    t.add_argument("--meas", required=True)
    t.add_argument("--counts", required=True)
    t.add_argument("--meta")
    t.add_argument("--append")
    args = ap.parse_args()
    if args.cmd == "count":
        if not os.path.exists(args.path):
            print(f"report.py: {args.path} does not exist", file=sys.stderr)
            return 1
        if args.sums:
            print(f"{count_rows(args.path)} Σ{value_sum(args.path):.8g}")
        else:
            print(count_rows(args.path))
        return 0
    return table(args)


if __name__ == "__main__":
    sys.exit(main())
