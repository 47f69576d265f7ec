#!/usr/bin/env python3
"""gls's main job: one run that measures every strategy, the C++ baselines and
the Go originals side by side, checks which is right where, and writes

    DIR/results.json  one record per system, workload and parameter
    DIR/report.md     tables, ratios against jtolds/gls, the correctness matrix
    DIR/report.png    ns/op by stack depth per system, log scale (gnuplot)

The hot paths are also counted in instructions (//bench:instructions,
callgrind): those figures do not move with the machine's load, and are their
own section of results.json ("instructions") and report.md.

Usage (through Bazel, which builds the C++ binaries with -c opt):
    bazel run //bench:compare -- [--out DIR] [--quick]

--quick runs every workload briefly (CI smoke, well under 2 minutes); the full
run takes repetitions (median of 5). Progress goes to stderr. A part that fails
to build or run is reported as failed in all three files; nothing is made up.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REFERENCE = "jtolds_gls"  # the Go original, our ratios' denominator
DEPTHS = [0, 8, 64, 512]


def log(message):
    print(f"compare: {message}", file=sys.stderr, flush=True)


class Progress:
    """Progress on stderr: the phase, step n of m, time elapsed and an estimate
    of what is left (from typical phase durations on a 2-core machine, then
    from this run's own pace within a phase)."""

    # Typical seconds per phase: full mode, quick mode.
    TYPICAL = {"C++ benchmarks": (300, 8), "C++ correctness and memory": (25, 4),
               "Go harness": (170, 6), "Instructions (callgrind)": (35, 35)}

    def __init__(self, phases, quick):
        self.phases = phases
        self.quick = quick
        self.start = time.monotonic()
        self.index = 0
        self.phase_start = self.start
        self.last_report = 0.0

    def typical(self, phase):
        return self.TYPICAL.get(phase, (60, 5))[1 if self.quick else 0]

    def begin(self, index):
        self.index = index
        self.phase_start = time.monotonic()
        self.report(force=True)

    def report(self, done=None, total=None, force=False):
        now = time.monotonic()
        if not force and now - self.last_report < 10:
            return
        self.last_report = now
        phase = self.phases[self.index]
        in_phase = now - self.phase_start
        if done and total:
            phase_left = in_phase / done * (total - done)
            detail = f": {done} of {total}"
        else:
            phase_left = max(self.typical(phase) - in_phase, 0)
            detail = ""
        later = sum(self.typical(p) for p in self.phases[self.index + 1:])
        log(f"[step {self.index + 1} of {len(self.phases)}] {phase}{detail}, "
            f"{now - self.start:.0f} s elapsed, about {phase_left + later:.0f} s left")


PROGRESS = None


def run(cmd, **kwargs):
    log("running " + " ".join(cmd))
    start = time.monotonic()
    result = subprocess.run(cmd, text=True, capture_output=True, **kwargs)
    log(f"  done in {time.monotonic() - start:.1f} s (exit {result.returncode})")
    return result


# ---- C++ microbenchmarks -------------------------------------------------

NAME_RE = re.compile(r"^BM_(?P<op>[A-Za-z]+)/(?P<system>[a-z_]+)(?P<rest>(/[^/]+)*)$")


# The one place rows are renamed: benchmark family (BM_<Family>/...) ->
# workload in results.json, where the name differs. docs/benchmarks.md
# ("results.json") lists the same mapping; .ci/run relies on it.
WORKLOAD_OF_FAMILY = {
    "SetValues": "SetValuesOutermost",   # outermost scope: takes an id from the pool
    "SetValuesNested": "SetValues",      # inside an enclosing scope
    "GetValueOutsideScope": "OutsideScope",
}


def parse_cpp_name(run_name):
    """BM_<Family>/<system>[/<param>:<value>...] -> (system, workload, params)."""
    m = NAME_RE.match(run_name)
    if not m:
        return None
    op, system = m.group("op"), m.group("system")
    params = {}
    for part in m.group("rest").split("/")[1:]:
        if ":" in part:
            k, v = part.split(":", 1)
            params[k] = int(v) if v.isdigit() else v
    if op == "SetValues":
        params = {"values": 1}
    if op == "Spawn":
        params = {"kind": "go" if params.get("go") == 1 else "plain"}
    return system, WORKLOAD_OF_FAMILY.get(op, op), params


def cpp_benchmarks(binary, quick, tmp):
    out = os.path.join(tmp, "cpp_benchmark.json")
    cmd = [binary, f"--benchmark_out={out}", "--benchmark_out_format=json"]
    if quick:
        cmd += ["--benchmark_min_time=0.01"]
    else:
        cmd += ["--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"]
    listed = subprocess.run([binary, "--benchmark_list_tests"], text=True, capture_output=True)
    total = len([line for line in listed.stdout.splitlines() if line.startswith("BM_")])
    log("running " + " ".join(cmd))
    done = 0
    with subprocess.Popen(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        for line in proc.stdout:
            # One console line per benchmark (quick) or per aggregate (full).
            if line.startswith("BM_") and (quick or "_median" in line.split()[0]):
                done += 1
                if PROGRESS:
                    PROGRESS.report(done, total)
        stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} exited {proc.returncode}: {stderr[-500:]}")
    data = json.load(open(out))
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    records = []
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
        if not quick and not (b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"):
            continue
        parsed = parse_cpp_name(b["run_name"])
        if parsed is None:
            continue
        system, workload, params = parsed
        if workload == "GetValueParallel":
            params = {"threads": b.get("threads", 1)}
            # Per operation over all threads: 1 / throughput.
            ns = 1e9 / b["items_per_second"]
        else:
            ns = b["real_time"] * scale[b["time_unit"]]
        records.append({
            "system": system, "workload": workload, "params": params,
            "median_ns": round(ns, 4),
            "repetitions": 1 if quick else b.get("repetitions", 5),
            "unit": "ns/op", "source": "c++ //bench:gls_benchmark",
        })
    return records, data.get("context", {})


def cpp_correctness(binary, quick):
    result = run([binary] + (["--quick"] if quick else []))
    if result.returncode != 0:
        raise RuntimeError(f"{binary} exited {result.returncode}: {result.stderr[-500:]}")
    data = json.loads(result.stdout)
    for r in data.get("memory", []):
        r["source"] = "c++ //bench:correctness"
    return data["correctness"], data.get("memory", [])


def instruction_counts(script, loops, tmp):
    """Instructions per operation from bench/instructions.py (callgrind)."""
    out = os.path.join(tmp, "instructions.json")
    result = run([sys.executable, script, "--loops", loops, "--json", out])
    if result.returncode != 0:
        raise RuntimeError(f"instructions.py exited {result.returncode}: "
                           f"{result.stderr[-500:]}")
    with open(out) as f:
        return json.load(f)


def instructions_section(data):
    if not data:
        return []
    strategies = ("thread_local", "goid", "stack_tag")
    lines = ["## Instructions per operation (callgrind)", "",
             f"Deterministic: {data['method']}, each loop as in "
             "bench/instruction_loops.cc; the same binary gives the same "
             "figures on any load. stack_tag reads 8 frames below its scope.", "",
             "| operation | " + " | ".join(strategies) + " |",
             "|---|" + "---:|" * len(strategies)]
    order = []
    for r in data["rows"]:
        if r["row"] not in order:
            order.append(r["row"])
    for row in order:
        what = next(r["what"] for r in data["rows"] if r["row"] == row)
        cells = []
        for s in strategies:
            v = next((r["instructions"] for r in data["rows"]
                      if r["row"] == row and r["strategy"] == s), None)
            cells.append("-" if v is None else f"{v:,.1f}")
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return lines + [""]


def go_harness(script, quick, tmp):
    out = os.path.join(tmp, "go.json")
    result = run([script, "--out", out] + (["--quick"] if quick else []))
    if result.returncode != 0:
        raise RuntimeError(f"{script} exited {result.returncode}: {result.stderr[-800:]}")
    data = json.load(open(out))
    for r in data["records"]:
        r["source"] = "go //bench/go:go_bench"
    return data


# ---- report ----------------------------------------------------------------

def find(records, system, workload, **params):
    for r in records:
        if r["system"] == system and r["workload"] == workload and r["params"] == params:
            return r
    return None


def fmt_ns(r):
    if r is None:
        return "n/a"
    v = r.get("median_ns")
    if v is None:
        v = r.get("value")
        return "—" if v is None else f"{v:,.0f} B"
    if v >= 1000:
        return f"{v / 1000:,.2f} µs"
    return f"{v:.3g} ns"


def ratio(reference, r):
    if reference is None or r is None or not r.get("median_ns") or not reference.get("median_ns"):
        return ""
    if r is reference:
        return " (1×)"
    x = reference["median_ns"] / r["median_ns"]
    return f" ({x:,.0f}×)" if x >= 10 else f" ({x:.2g}×)"


def systems_in(records):
    order = ["thread_local", "stack_tag", "stack_tag_libunwind", "goid",
             "raw_thread_local", "boost_thread_specific_ptr", "boost_fiber_specific_ptr",
             "jtolds_gls", "jtolds_gls_own", "goid_map", "runtime_stack_map"]
    present = {r["system"] for r in records}
    return [s for s in order if s in present] + sorted(present - set(order))


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu or platform.processor()}, {platform.system()} {platform.release()}"


def targets_section(recs, instructions=None):
    """The speed targets of the issues: instruction counts (callgrind, the
    gate for the hot paths) and ratios of two rows of this run."""
    def ns(system, workload, **params):
        r = find(recs, system, workload, **params)
        return r["median_ns"] if r and r.get("median_ns") else None

    rows = []

    def target(what, num, den, limit, at_least=False, scale=1.0):
        if num is None or den is None:
            rows.append(f"| {what} | n/a | n/a | missing rows |")
            return
        x = num / den * scale
        met = x >= limit if at_least else x <= limit
        sign = "≥" if at_least else "≤"
        rows.append(f"| {what} | {num:.3g} ns / {den:.3g} ns | {x:.2f} ({sign} {limit}) | "
                    f"{'met' if met else '**not met**'} |")

    raw = ns("raw_thread_local", "GetValue")
    tsp = ns("boost_thread_specific_ptr", "GetValue")
    for s in ("thread_local", "stack_tag", "goid"):
        target(f"`BM_GetValueTyped/{s}` ÷ `BM_GetValue/raw_thread_local`",
               ns(s, "GetValueTyped"), raw, 3.0 if s == "thread_local" else float("inf"))
    cap = {m: ns("thread_local", "Capture", managers=m) for m in (1, 4, 16)}
    if all(cap.values()):
        spread = max(cap.values()) / min(cap.values())
        rows.append(f"| `BM_Capture/thread_local/managers:1,4,16` spread (max ÷ min) | "
                    f"{cap[1]:.3g} / {cap[4]:.3g} / {cap[16]:.3g} ns | {spread:.2f} (≤ 1.5) | "
                    f"{'met' if spread <= 1.5 else '**not met**'} |")
    else:
        rows.append("| `BM_Capture/thread_local` spread | n/a | n/a | missing rows |")
    target("`BM_Capture/thread_local/managers:4` ÷ `BM_SetValues/thread_local`",
           cap.get(4), ns("thread_local", "SetValuesOutermost", values=1), 1.0)
    target("thread_local `GetValue` ÷ `boost::thread_specific_ptr::get()`",
           ns("thread_local", "GetValue"), tsp, 0.5)
    target("outermost 1-value `BM_SetValues/thread_local` ÷ `thread_specific_ptr::get()`",
           ns("thread_local", "SetValuesOutermost", values=1), tsp, 3.0)
    target("jtolds/gls own `BenchmarkGetValue` ÷ stack_tag `GetValue` at 8 frames",
           ns("jtolds_gls_own", "GetValue"), ns("stack_tag", "GetValue", depth=8), 50,
           at_least=True)
    target("goid `GetValue` ÷ `fiber_specific_ptr::get()`",
           ns("goid", "GetValue"), ns("boost_fiber_specific_ptr", "GetValue"), 1.0)
    target("stack_tag `BM_GetValueOutsideScope` (fresh thread, no scope) ÷ "
           "`BM_GetValue/stack_tag/depth:8`",
           ns("stack_tag", "OutsideScope"), ns("stack_tag", "GetValue", depth=8), 2.0)
    # Crossing boundaries (issue "Values follow the request across every
    # boundary"): carrying values costs against not carrying them.
    target("`BM_AsioPost/propagating` ÷ `BM_AsioPost/plain` (32 posts in a request scope, "
           "run outside it)", ns("propagating", "AsioPost"), ns("plain", "AsioPost"), 1.15)
    # The core v3 issue's time ratios, beside its instruction targets below.
    target("`BM_AsioPost/propagating` ÷ `BM_AsioPost/plain` (core v3's limit)",
           ns("propagating", "AsioPost"), ns("plain", "AsioPost"), 1.25)
    target("`BM_BindInvoke/thread_local` ÷ `BM_BindInvoke/std_function`",
           ns("thread_local", "BindInvoke"), ns("std_function", "BindInvoke"), 4.0)
    target("`BM_BindInvoke/thread_local_elsewhere` ÷ `BM_BindInvoke/std_function` "
           "(called outside the binding scope)",
           ns("thread_local_elsewhere", "BindInvoke"), ns("std_function", "BindInvoke"),
           6.0)
    target("`BM_FiberSwitch/thread_local_hook` ÷ `BM_FiberSwitch/plain`",
           ns("thread_local_hook", "FiberSwitch"), ns("plain", "FiberSwitch"), 1.5)
    for t in (instructions or {}).get("targets", []):
        if "instructions" in t:
            figure = t["instructions"]
            shown = "n/a" if figure is None else f"{figure:,.1f} instructions"
            rows.append(f"| {t['target']} (thread_local, callgrind) | {shown} | "
                        f"≤ {t['limit']} | {'met' if t['met'] else '**not met**'} |")
        else:
            figure = t.get("ratio")
            shown = "n/a" if figure is None else f"{figure:.2f}"
            rows.append(f"| {t['target']} (callgrind) | instructions | "
                        f"{shown} (≤ {t['limit']}) | "
                        f"{'met' if t['met'] else '**not met**'} |")
    return ["## Targets, checked in this run", "",
            "Each a ratio of two medians from this run (a limit of inf: reported, "
            "no target), or an instruction count (callgrind).", "",
            "| target | figures | ratio | verdict |", "|---|---|---|---|"] + rows + [""]


def write_report(out_dir, results):
    recs = results["records"]
    lines = [
        "# gls comparison report", "",
        f"Run {results['started']} on {results['machine']}; mode: {results['mode']}; "
        f"command: `{results['command']}`. Medians of {results['repetitions']} "
        "repetition(s); C++ built with `-c opt`. Ratios in parentheses: how many "
        "times faster than jtolds/gls (Go) on the same workload, same run.", "",
        "![ns/op by stack depth](report.png)", "",
    ]
    if results["failures"]:
        lines += ["## Parts that failed", ""]
        lines += [f"- **{f['part']}**: {f['error']}" for f in results["failures"]]
        lines += [""]

    lines += targets_section(recs, results.get("instructions"))
    lines += instructions_section(results.get("instructions"))

    systems = systems_in(recs)
    lines += ["## GetValue by stack depth", "",
              "Frames between the SetValues scope and the read.", "",
              "| system | " + " | ".join(f"depth {d}" for d in DEPTHS) + " |",
              "|---|" + "---|" * len(DEPTHS)]
    for s in systems:
        cells = [find(recs, s, "GetValue", depth=d) for d in DEPTHS]
        if all(c is None for c in cells):
            continue
        refs = [find(recs, REFERENCE, "GetValue", depth=d) for d in DEPTHS]
        lines.append(f"| {s} | " + " | ".join(fmt_ns(c) + ratio(ref, c) for c, ref in zip(cells, refs)) + " |")
    lines += [""]

    workloads = [
        ("GetValue hit", "GetValue", {}),
        ("GetValue miss", "GetValueMiss", {}),
        ("SetValues, 1 value, nested", "SetValues", {"values": 1}),
        ("SetValues, 8 values, nested", "SetValues", {"values": 8}),
        ("SetValues, 1 value, outermost", "SetValuesOutermost", {"values": 1}),
        ("GetValue, 1 thread", "GetValueParallel", {"threads": 1}),
        ("GetValue, 2 threads (per op, all threads)", "GetValueParallel", {"threads": 2}),
        ("spawn: plain thread / goroutine", "Spawn", {"kind": "plain"}),
        ("spawn: gls::Go / gls.Go", "Spawn", {"kind": "go"}),
        ("memory per live context", "MemoryPerContext", {}),
        ("GetValue outside every scope (fresh thread)", "OutsideScope", {}),
        ("SetValues as written (Values built per call)", "SetValuesAsWritten", {}),
        ("memory per thread that used gls", "MemoryPerThread", {}),
    ]
    lines += ["## Workloads", "",
              "| system | " + " | ".join(w[0] for w in workloads) + " | 2-thread scaling |",
              "|---|" + "---|" * (len(workloads) + 1)]
    for s in systems:
        cells = [find(recs, s, w, **p) for _, w, p in workloads]
        if all(c is None for c in cells):
            continue
        refs = [find(recs, REFERENCE, w, **p) for _, w, p in workloads]
        one, two = cells[5], cells[6]
        scaling = f"{one['median_ns'] / two['median_ns']:.2f}×" if one and two else "—"
        row = [fmt_ns(c) + (ratio(ref, c) if not w.startswith("Memory") else "")
               for c, ref, (_, w, _) in zip(cells, refs, workloads)]
        lines.append(f"| {s} | " + " | ".join(row) + f" | {scaling} |")
    lines += ["",
              "Memory per live context: what entering one scope with one value "
              "costs a parked flow of execution, measured the same way on both "
              "sides: flows parked outside any scope, then inside one, and the "
              "difference divided by their number. C++ counts malloc'd bytes "
              "(mallinfo2; thread stacks are mmap'd and excluded); Go counts "
              "heap plus goroutine stack growth (runtime.MemStats). A gls "
              "context's table grows with the managers alive at once, not with "
              "those ever created (slots are reused), so the many managers the "
              "correctness run creates and destroys do not inflate it.", ""]

    corr = results["correctness"]
    scenarios = []
    for c in corr:
        if c["scenario"] not in scenarios:
            scenarios.append(c["scenario"])
    mark = {"pass": "pass", "fail": "**FAIL**", "not_applicable": "n/a"}
    lines += ["## Correctness", "",
              "From real runs of each scenario (//bench:correctness for C++, "
              "bench/go's correctness program for Go).", "",
              "| system | " + " | ".join(scenarios) + " |",
              "|---|" + "---|" * len(scenarios)]
    for s in systems_in(corr):
        row = []
        for sc in scenarios:
            c = next((c for c in corr if c["system"] == s and c["scenario"] == sc), None)
            row.append(mark.get(c["result"], c["result"]) if c else "—")
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    notes = [c for c in corr if c["result"] != "pass" and c.get("note")]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {c['system']} / {c['scenario']}: {c['note']}" for c in notes]
    lines += [""]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))


def write_chart(out_dir, records, tmp):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        raise RuntimeError("gnuplot not found: run tools/setup (Debian package gnuplot-nox)")
    # One colour and point shape per system (gnuplot's default cycle repeats
    # after eight, which would make two systems look alike). Line style tells
    # the families apart: gls's strategies thick and solid, other C++ systems
    # thin and solid, Go systems dashed; a system with one figure for every
    # depth is drawn flat, dash-dotted.
    palette = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#f0e442", "#0072b2",
               "#d55e00", "#000000", "#cc79a7", "#7f7f7f", "#8b4513", "#2e8b57"]
    palette[4] = "#b8860b"  # dark gold: the light yellow vanished on white
    gls_systems = {"thread_local", "stack_tag", "stack_tag_libunwind", "goid"}
    go_systems = {r["system"] for r in records if r.get("source", "").startswith("go")}
    series = []
    for n, s in enumerate(systems_in(records)):
        points = [(i, find(records, s, "GetValue", depth=d)) for i, d in enumerate(DEPTHS)]
        points = [(i, r["median_ns"]) for i, r in points if r and r.get("median_ns")]
        colour = palette[n % len(palette)]
        if s in gls_systems:
            width, dash, family = 3.5, 1, "gls"
        elif s in go_systems:
            width, dash, family = 1.5, 2, "Go"
        else:
            width, dash, family = 1.5, 1, "C++"
        style = f"with linespoints lw {width} dt {dash} pt {5 + n % 9} ps 1.3 lc rgb '{colour}'"
        title = f"{s} ({family})"
        if not points:
            # Systems that do not walk the stack: their one GetValue figure,
            # drawn flat across the depths.
            flat = find(records, s, "GetValue")
            if flat is None or not flat.get("median_ns"):
                continue
            points = [(i, flat["median_ns"]) for i in range(len(DEPTHS))]
            style = f"with lines lw {max(width, 2.5)} dt 4 lc rgb '{colour}'"
            title = f"{s} ({family}, flat)"
        path = os.path.join(tmp, f"series_{s}.dat")
        with open(path, "w") as f:
            f.writelines(f"{i} {v}\n" for i, v in points)
        series.append((title, path, style))
    if not series:
        raise RuntimeError("no GetValue-by-depth records to plot")
    png = os.path.join(out_dir, "report.png")
    script = [
        "set terminal pngcairo size 1100,650 font 'sans,11' noenhanced",
        f"set output '{png}'",
        "set title 'GetValue cost by stack depth (lower is better)'",
        "set xlabel 'frames between SetValues and GetValue'",
        "set ylabel 'ns per GetValue (log scale)'",
        "set logscale y",
        "set grid ytics mytics xtics",
        "set key outside right top",
        "set xtics (" + ", ".join(f"'{d}' {i}" for i, d in enumerate(DEPTHS)) + ")",
        "set xrange [-0.3:3.3]",
        "plot " + ", ".join(f"'{p}' using 1:2 {style} title '{t}'" for t, p, style in series),
    ]
    script_path = os.path.join(tmp, "chart.gp")
    with open(script_path, "w") as f:
        f.write("\n".join(script) + "\n")
    result = run([gnuplot, script_path])
    if result.returncode != 0:
        raise RuntimeError("gnuplot failed: " + result.stderr[-500:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="output directory (default: out/compare in the workspace)")
    parser.add_argument("--quick", action="store_true", help="brief runs, for CI smoke")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--correctness", required=True)
    parser.add_argument("--go-bench", required=True)
    parser.add_argument("--instructions", required=True,
                        help="bench/instructions.py")
    parser.add_argument("--instruction-loops", required=True,
                        help="the instruction_loops binary (-c opt)")
    args = parser.parse_args()

    base = os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd())
    out_dir = args.out or os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", base), "out", "compare")
    out_dir = os.path.join(base, out_dir)  # relative to where the user ran bazel
    os.makedirs(out_dir, exist_ok=True)
    started = time.monotonic()

    results = {
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "repetitions": 1 if args.quick else 5,
        "command": "bazel run //bench:compare" + (" -- --quick" if args.quick else ""),
        "records": [], "correctness": [], "failures": [],
    }
    with tempfile.TemporaryDirectory(prefix="gls-compare-") as tmp:
        parts = [
            ("C++ benchmarks", lambda: results["records"].extend(cpp_benchmarks(args.benchmark, args.quick, tmp)[0])),
            ("C++ correctness and memory", lambda: _cpp_correctness(results, args)),
            ("Go harness", lambda: _go(results, args, tmp)),
            ("Instructions (callgrind)", lambda: results.__setitem__(
                "instructions", instruction_counts(args.instructions,
                                                   args.instruction_loops, tmp))),
        ]
        global PROGRESS
        PROGRESS = Progress([name for name, _ in parts], args.quick)
        for index, (name, step) in enumerate(parts):
            PROGRESS.begin(index)
            try:
                step()
            except Exception as e:  # reported, never hidden
                log(f"{name} FAILED: {e}")
                results["failures"].append({"part": name, "error": str(e)})
        try:
            write_chart(out_dir, results["records"], tmp)
        except Exception as e:
            log(f"chart FAILED: {e}")
            results["failures"].append({"part": "chart", "error": str(e)})
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_report(out_dir, results)
    log(f"wrote {out_dir}/results.json, report.md, report.png in {results['elapsed_s']} s")
    return 1 if results["failures"] else 0


def _cpp_correctness(results, args):
    correctness, memory = cpp_correctness(args.correctness, args.quick)
    results["correctness"].extend(correctness)
    results["records"].extend(memory)


def _go(results, args, tmp):
    data = go_harness(args.go_bench, args.quick, tmp)
    results["records"].extend(data["records"])
    results["correctness"].extend(data.get("correctness", []))
    results["go_version"] = data.get("go_version")


if __name__ == "__main__":
    sys.exit(main())
