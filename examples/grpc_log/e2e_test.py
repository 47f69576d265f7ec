"""examples/grpc_log end to end, two processes.

Starts the back service, then the front service (--back the back's port),
both on loopback ports they pick (--port 0), then the load client: 16
threads, 2,080 RPCs mixing unary, server-streaming (3 back calls) and bidi
(3 messages, 3 back calls), one in 8 with hostile metadata and no gls scope.
Closes the servers' stdin, and checks every log line of both processes:

  * every handler line: the ids gls printed (request_id, trace_id,
    parent_id) equal those the handler read from its raw metadata by itself
    (own_req, own_trace, own_parent); on the front, the trace is the one the
    client called in and the parent is the span gls's interceptor sent
    (the client's OnClientSpan record); hostile RPCs: a new trace, no
    parent, exactly one warning line, in the RPC's values;
  * every front line of one RPC has the RPC's one span id;
  * the back: same trace as the front, parent = one of the front's
    "front call span=<id>" spans of that request, each such span the parent
    of exactly one back call, and the front's span that call's parent;
  * lines outside RPCs (tick, starting, stopped) carry no values;
  * counts are exact, per RPC and in total.
"""
import ctypes
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict

THREADS, RPCS = 16, 130
START_TIMEOUT_S = 60


class Failure(Exception):
    pass


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def start(binary, role, tmpdir, extra):
    log = os.path.join(tmpdir, f"{role}.log")
    err = open(os.path.join(tmpdir, f"{role}.stderr"), "wb")
    proc = subprocess.Popen([binary, "--role", role, "--port", "0", "--log", log] + extra,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                            preexec_fn=die_with_parent)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout=START_TIMEOUT_S):
        raise Failure(f"{role}: no port line in {START_TIMEOUT_S} s")
    m = re.fullmatch(r"port (\d+)\n", proc.stdout.readline().decode())
    if not m:
        raise Failure(f"{role}: no port line; stderr in {err.name}")
    return proc, log, int(m.group(1))


def stop(proc, role):
    proc.stdin.close()
    rc = proc.wait(timeout=120)
    if rc != 0:
        raise Failure(f"{role} exited with {rc}")


TOKEN = re.compile(r"(\w+)=(\S*)")
HEX32, HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")


def parse(path):
    lines = []
    with open(path, errors="replace") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            words = raw.split(" ")
            fields = dict(TOKEN.fullmatch(w).groups() for w in words if TOKEN.fullmatch(w))
            lines.append((raw, words, fields))
    return lines


def check(records, front_lines, back_lines):
    want_front = defaultdict(lambda: defaultdict(int))
    for r in records.values():
        k = r["kind"]
        c = want_front[r["id"]]
        c[["front unary", "front stream", "front bidi"][k]] += 1
        c["front call"] += r["messages"]
        c["front message"] += 3 if k == 2 else 0
        c["front done"] += 1
        c["warning:"] += r["hostile"]
    got_front = defaultdict(lambda: defaultdict(int))
    front_span, front_trace, calls = {}, {}, defaultdict(set)
    outside = 0
    for raw, words, f in front_lines:
        what = " ".join(words[:2]) if words[0] == "front" else words[0]
        if what in ("tick", "front starting", "front stopped"):
            if "trace_id" in f or "request_id" in f or "span_id" in f:
                raise Failure(f"front line outside RPCs carries values: {raw}")
            outside += 1
            continue
        rid = f.get("request_id")
        if rid not in records:
            raise Failure(f"front line of no known request: {raw}")
        r = records[rid]
        got_front[rid][what] += 1
        if not HEX32.fullmatch(f.get("trace_id", "")) or not HEX16.fullmatch(f.get("span_id", "")):
            raise Failure(f"front line without a trace: {raw}")
        if front_span.setdefault(rid, f["span_id"]) != f["span_id"]:
            raise Failure(f"two spans for {rid} on the front: {raw}")
        if front_trace.setdefault(rid, f["trace_id"]) != f["trace_id"]:
            raise Failure(f"two traces for {rid} on the front: {raw}")
        if r["hostile"]:
            if "parent_id" in f or f["trace_id"] == r["trace"]:
                raise Failure(f"hostile {rid}: wanted a new trace without parent: {raw}")
        elif f["trace_id"] != r["trace"] or f.get("parent_id") != r["span"]:
            raise Failure(f"{rid}: want trace {r['trace']} parent {r['span']}: {raw}")
        if "own_req" in f:
            if f["own_req"] != rid:
                raise Failure(f"request_id={rid} but the handler read {f['own_req']}: {raw}")
            own_trace = f["trace_id"] if r["hostile"] else f["own_trace"]
            if f["own_trace"] != ("new" if r["hostile"] else f["trace_id"]) or \
                    own_trace != f["trace_id"] or \
                    f["own_parent"] != f.get("parent_id", "none"):
                raise Failure(f"gls's ids differ from the handler's own: {raw}")
        if what == "front call":
            span = f["span"]
            if not HEX16.fullmatch(span) or span == f["span_id"] or span in calls[rid]:
                raise Failure(f"bad client span: {raw}")
            calls[rid].add(span)
    for rid, want in want_front.items():
        got = {k: v for k, v in got_front[rid].items()}
        want = {k: v for k, v in want.items() if v}
        if got != want:
            raise Failure(f"{rid}: front lines {got}, want {want}")

    back_work, back_done = defaultdict(set), defaultdict(set)
    back_outside = 0
    for raw, words, f in back_lines:
        what = " ".join(words[:2]) if words[0] == "back" else words[0]
        if what in ("tick", "back starting", "back stopped"):
            if "trace_id" in f or "request_id" in f or "span_id" in f:
                raise Failure(f"back line outside RPCs carries values: {raw}")
            back_outside += 1
            continue
        if what not in ("back work", "back done"):
            raise Failure(f"unexpected back line (a warning?): {raw}")
        rid = f.get("request_id")
        if rid not in records:
            raise Failure(f"back line of no known request: {raw}")
        if f["own_req"] != rid or f["own_trace"] != f.get("trace_id") or \
                f["own_parent"] != f.get("parent_id"):
            raise Failure(f"gls's ids differ from the back handler's own: {raw}")
        if f["trace_id"] != front_trace.get(rid):
            raise Failure(f"{rid}: back trace {f['trace_id']}, front's {front_trace.get(rid)}")
        parent = f["parent_id"]
        if parent not in calls[rid]:
            raise Failure(f"{rid}: back parent {parent} is no front call span of it: {raw}")
        target = back_work if what == "back work" else back_done
        if parent in target[rid]:
            raise Failure(f"{rid}: two '{what}' lines for parent {parent}")
        target[rid].add(parent)
    for rid in records:
        if back_work[rid] != calls[rid] or back_done[rid] != calls[rid]:
            raise Failure(f"{rid}: back calls {sorted(back_work[rid])} / done "
                          f"{sorted(back_done[rid])}, front call spans {sorted(calls[rid])}")
    if outside < 2 or back_outside < 2:
        raise Failure("no lines outside RPCs were logged")
    return outside, back_outside


def main():
    server_bin, client_bin = sys.argv[1], sys.argv[2]
    tmpdir = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()
    back, back_log, back_port = start(server_bin, "back", tmpdir, [])
    front, front_log, front_port = start(server_bin, "front", tmpdir,
                                         ["--back", f"127.0.0.1:{back_port}"])
    out = os.path.join(tmpdir, "records.txt")
    rc = subprocess.run([client_bin, "--target", f"127.0.0.1:{front_port}", "--threads",
                         str(THREADS), "--rpcs", str(RPCS), "--out", out]).returncode
    stop(front, "front")
    stop(back, "back")
    if rc != 0:
        raise Failure(f"client exited with {rc}")
    records = {}
    with open(out) as f:
        for line in f:
            rid, kind, messages, trace, span, hostile = line.split()
            records[rid] = dict(id=rid, kind=int(kind), messages=int(messages), trace=trace,
                                span=span, hostile=int(hostile))
    if len(records) != THREADS * RPCS:
        raise Failure(f"{len(records)} records, want {THREADS * RPCS}")
    front_lines, back_lines = parse(front_log), parse(back_log)
    outside, back_outside = check(records, front_lines, back_lines)
    kinds = [sum(1 for r in records.values() if r["kind"] == k) for k in range(3)]
    hostile = sum(r["hostile"] for r in records.values())
    print(f"e2e: {len(records)} RPCs (unary {kinds[0]}, server streaming {kinds[1]}, "
          f"bidi {kinds[2]}; {hostile} hostile), {len(front_lines)} front and "
          f"{len(back_lines)} back lines checked ({outside} + {back_outside} outside RPCs)")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"e2e FAILED: {e}", file=sys.stderr)
        sys.exit(1)
