#!/usr/bin/env python3
"""Instructions per gls operation, counted by callgrind (//bench:instructions).

Runs bench/instruction_loops.cc's loops under `valgrind --tool=callgrind`
twice per (row, strategy), with N = 3,200 and N = 35,200 iterations, and
reports (total(35,200) - total(3,200)) / 32,000: the instructions of one
iteration, with start-up, set-up and one-time costs cancelled. Instruction
counts do not move with the machine's load, so these figures are the gate for
the hot paths' targets (issue 19), and they repeat exactly run to run.

Usage (from //bench:instructions, which passes --loops):
  bazel run -c opt //bench:instructions [-- --json FILE] [--rows a,b]
Prints a table; --json writes {"rows": [...], "targets": [...]}.
Exit status: 0 when every row was counted (targets met or not: they are
reported, not enforced here), 1 when a count failed.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

SHORT_N = 3200
LONG_N = 35200
STRATEGIES = ("thread_local", "goid", "stack_tag")

# (what, row, limit): issue 19's instruction targets, for the default
# thread_local strategy. asio_post_overhead is asio_post_propagating minus
# asio_post_plain.
TARGETS = [
    ("GetValue(TypedKey<int>) in scope", "get_value_typed", 12),
    ("GetValue(ContextKey) in scope", "get_value_context_key", 20),
    ("Capture() + ~Snapshot, in scope", "capture", 16),
    ("snapshot.Run(fn) outside the capturing scope", "snapshot_run", 60),
    ("calling a gls::Bind(fn) result outside its scope", "bind_call", 60),
    ("asio post + poll per handler, Propagating minus plain",
     "asio_post_overhead", 80),
    ("outermost SetValues(prebuilt_values, fn)", "set_values_prebuilt", 150),
    ("SetValues({{kKey, \"12345\"}}, fn) as written", "set_values_as_written",
     250),
]


def valgrind_binary():
    path = shutil.which("valgrind")
    if path is None:
        sys.exit("instructions: valgrind not found (tools/setup installs it)")
    return path


def count(valgrind, loops, row, strategy, n):
    """Total instructions of one run, or None if the row does not apply."""
    cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
           loops, row, strategy, str(n)]
    # A fixed environment: the same inputs give the same count.
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode == 2:  # the row does not apply to this strategy
        return None
    match = re.search(r"^==\d+== Collected : (\d+)$", proc.stderr, re.M)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return int(match.group(1))


def list_rows(loops):
    out = subprocess.run([loops, "--list"], capture_output=True, text=True,
                         check=True).stdout
    return [tuple(line.split("\t", 1)) for line in out.splitlines() if line]


def measure(loops, rows, jobs):
    valgrind = valgrind_binary()
    work = [(row, strategy, n) for row, _ in rows for strategy in STRATEGIES
            for n in (SHORT_N, LONG_N)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {w: pool.submit(count, valgrind, loops, *w) for w in work}
        totals = {w: f.result() for w, f in futures.items()}
    results = []
    for row, what in rows:
        for strategy in STRATEGIES:
            short = totals[(row, strategy, SHORT_N)]
            long_ = totals[(row, strategy, LONG_N)]
            if short is None or long_ is None:
                continue
            per_op = (long_ - short) / (LONG_N - SHORT_N)
            results.append({"row": row, "what": what, "strategy": strategy,
                            "instructions": round(per_op, 1)})
    return results


def lookup(results, row, strategy):
    for r in results:
        if r["row"] == row and r["strategy"] == strategy:
            return r["instructions"]
    return None


def targets(results):
    out = []
    for name, row, limit in TARGETS:
        if row == "asio_post_overhead":
            plain = lookup(results, "asio_post_plain", "thread_local")
            wrapped = lookup(results, "asio_post_propagating", "thread_local")
            value = (None if plain is None or wrapped is None
                     else round(wrapped - plain, 1))
        else:
            value = lookup(results, row, "thread_local")
        out.append({"target": name, "instructions": value,
                    "limit": limit, "met": value is not None and value <= limit})
    goid = lookup(results, "get_value_typed", "goid")
    tl = lookup(results, "get_value_typed", "thread_local")
    ratio = None if goid is None or not tl else round(goid / tl, 2)
    out.append({"target": "goid typed read / thread_local typed read",
                "ratio": ratio, "limit": 3.0,
                "met": ratio is not None and ratio <= 3.0})
    return out


def table(results, checked):
    rows = []
    order = []
    for r in results:
        if r["row"] not in order:
            order.append(r["row"])
    lines = ["| operation | " + " | ".join(STRATEGIES) + " |",
             "|---|" + "---:|" * len(STRATEGIES)]
    for row in order:
        what = next(r["what"] for r in results if r["row"] == row)
        cells = []
        for strategy in STRATEGIES:
            v = lookup(results, row, strategy)
            cells.append("-" if v is None else f"{v:,.1f}")
        lines.append(f"| {what} (`{row}`) | " + " | ".join(cells) + " |")
    lines += ["", "| target (thread_local) | figure | limit | met |",
              "|---|---:|---:|---|"]
    for t in checked:
        figure = t.get("instructions", t.get("ratio"))
        shown = "-" if figure is None else (
            f"{figure:,.1f}" if "instructions" in t else f"{figure:.2f}x")
        limit = (f"<= {t['limit']}" if "instructions" in t
                 else f"<= {t['limit']:.0f}x")
        lines.append(f"| {t['target']} | {shown} | {limit} | "
                     f"{'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", required=True,
                        help="the instruction_loops binary (-c opt)")
    parser.add_argument("--json", help="write the figures here as JSON")
    parser.add_argument("--rows", help="comma-separated rows (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = list_rows(args.loops)
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - {r for r, _ in rows}
        if unknown:
            sys.exit(f"instructions: unknown rows {sorted(unknown)}")
        rows = [r for r in rows if r[0] in wanted]
    try:
        results = measure(args.loops, rows, args.jobs)
    except RuntimeError as e:
        print(f"instructions: {e}", file=sys.stderr)
        return 1
    checked = targets(results)
    print(table(results, checked))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"method": f"callgrind Ir, (N={LONG_N} - N={SHORT_N}) / "
                                 f"{LONG_N - SHORT_N}",
                       "rows": results, "targets": checked}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
