#!/usr/bin/env python3
"""Turns the raw outputs of run_go_bench.sh into one JSON document.

Inputs: `go test -bench` text output of the glsbench package and of
github.com/jtolds/gls's own benchmarks, the JSON of cmd/memory and of
cmd/correctness. Output: {"go_version", "records": [...], "correctness": [...]}
(see README.md). Exits non-zero if an expected record is missing or empty.
Standard library only.
"""
import argparse
import json
import re
import statistics
import sys

SYSTEMS = ["jtolds_gls", "goid_map", "runtime_stack_map"]

# Benchmark<Name> in bench_test.go -> workload name in the report.
WORKLOADS = {
    "GetValue": "GetValue",
    "GetValueDepth": "GetValue",
    "GetValueMiss": "GetValueMiss",
    "SetValues": "SetValues",
    "SetValuesOutermost": "SetValuesOutermost",
    "GetValueParallel": "GetValueParallel",
    "Spawn": "Spawn",
}

# "BenchmarkGetValueDepth/jtolds_gls/depth=8-2   141452   1615 ns/op ..."
LINE = re.compile(r"^Benchmark(\S+)\s+(\d+)\s+([0-9.eE+-]+) ns/op\b")


def strip_procs(name, procs):
    suffix = "-%d" % procs
    if procs != 1 and name.endswith(suffix):
        return name[: -len(suffix)]
    return name


def param_value(text):
    try:
        return int(text)
    except ValueError:
        return text


def parse_bench(path, procs):
    """Returns {benchmark name without the -procs suffix: [ns/op, ...]}."""
    samples = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if m:
                name = strip_procs(m.group(1), procs)
                samples.setdefault(name, []).append(float(m.group(3)))
    return samples


def record(system, workload, params, values, unit="ns/op", **extra):
    rec = {
        "system": system,
        "workload": workload,
        "params": params,
        "median_ns": statistics.median(values),
        "repetitions": len(values),
        "unit": unit,
    }
    rec.update(extra)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--go-version", required=True)
    ap.add_argument("--procs", type=int, required=True, help="the -cpu value used")
    ap.add_argument("--bench", required=True)
    ap.add_argument("--own-bench", required=True)
    ap.add_argument("--memory", required=True)
    ap.add_argument("--correctness", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--settings", default="{}", help="JSON: how the run was made")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    records = []
    for name, values in parse_bench(args.bench, args.procs).items():  # run order
        parts = name.split("/")
        if parts[0] not in WORKLOADS or len(parts) < 2:
            sys.exit("go_bench_report: unexpected benchmark %r" % name)
        params = {}
        for part in parts[2:]:
            key, _, value = part.partition("=")
            params[key] = param_value(value)
        records.append(record(parts[1], WORKLOADS[parts[0]], params, values))

    own = parse_bench(args.own_bench, args.procs)
    for op in ("GetValue", "SetValues"):
        if op in own:
            records.append(record("jtolds_gls_own", op, {}, own[op],
                                  source="go test github.com/jtolds/gls -bench ."))

    with open(args.memory) as f:
        memory = json.load(f)["memory"]
    for row in memory:
        samples = row["samples"]
        records.append({
            "system": row["system"],
            "workload": "MemoryPerContext",
            "params": {},
            "median_ns": None,
            "value": statistics.median(s["total"] for s in samples),
            "repetitions": len(samples),
            "unit": "bytes",
            "live_contexts": row["live_contexts"],
            "heap_bytes": statistics.median(s["heap"] for s in samples),
            "stack_bytes": statistics.median(s["stack"] for s in samples),
        })

    with open(args.correctness) as f:
        correctness = json.load(f)["correctness"]

    # Every expected row must be there, with numbers.
    expected = [("jtolds_gls_own", "GetValue", {}), ("jtolds_gls_own", "SetValues", {})]
    for s in SYSTEMS:
        expected += [(s, "GetValue", {}), (s, "GetValueMiss", {}),
                     (s, "SetValuesOutermost", {"values": 1}), (s, "MemoryPerContext", {})]
        expected += [(s, "GetValue", {"depth": d}) for d in (0, 8, 64, 512)]
        expected += [(s, "SetValues", {"values": n}) for n in (1, 8)]
        expected += [(s, "GetValueParallel", {"threads": t}) for t in (1, 2)]
        expected += [(s, "Spawn", {"kind": k}) for k in ("go", "plain")]
    have = {(r["system"], r["workload"], json.dumps(r["params"], sort_keys=True)): r
            for r in records}
    problems = []
    for s, w, p in expected:
        r = have.get((s, w, json.dumps(p, sort_keys=True)))
        if r is None:
            problems.append("missing %s %s %s" % (s, w, p))
            continue
        number = r["value"] if r["unit"] == "bytes" else r["median_ns"]
        if number is None:
            problems.append("no number for %s %s %s" % (s, w, p))
        if r["unit"] != "bytes" and r["repetitions"] != args.count:
            problems.append("%s %s %s: %d repetitions, expected %d"
                            % (s, w, p, r["repetitions"], args.count))
    for s in SYSTEMS:
        if not any(c["system"] == s for c in correctness):
            problems.append("no correctness rows for %s" % s)
    for c in correctness:
        if c.get("result") not in ("pass", "fail", "not_applicable"):
            problems.append("bad correctness row %r" % c)

    doc = {
        "go_version": args.go_version,
        "settings": json.loads(args.settings),
        "records": records,
        "correctness": correctness,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    for r in records:
        number = r["value"] if r["unit"] == "bytes" else r["median_ns"]
        print("  %-18s %-17s %-16s %12.1f %s" % (
            r["system"], r["workload"], json.dumps(r["params"]), number, r["unit"]),
            file=sys.stderr)
    failed = [c for c in correctness if c["result"] == "fail"]
    for c in failed:
        print("  correctness FAIL %s / %s: %s" % (c["system"], c["scenario"], c["note"]),
              file=sys.stderr)
    if problems:
        for p in problems:
            print("go_bench_report: " + p, file=sys.stderr)
        sys.exit(1)
    print("go_bench_report: wrote %d records, %d correctness rows to %s"
          % (len(records), len(correctness), args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
