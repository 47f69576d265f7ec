"""examples/request_log/e2e_test.py: two request_log servers, thousands of
concurrent requests, and a check that every log line names exactly its own
request, in both processes.

What this is for: the end-to-end proof of gls's use case. A front server
(with --downstream) and a back server run as separate processes on loopback
ports they pick themselves; 16 clients send 2,080 requests with distinct ids
(traceparent with tracestate, X-Request-Id only, neither, both plus
baggage and a tracestate with OWS and an empty member, baggage with an
encoded space) and a few hostile ones. After stopping both servers
(SIGTERM) the test reads both logs and checks that:
  * each line's gls ids (the spdlog flag) equal the ids the logging code
    knew by itself (own_trace=, own_req= in the message), and belong to a
    request the test sent or got back in a response;
  * each request has exactly the lines the server writes for it (front:
    handler, admit, pool, go, downstream, write; back: handler, admit, pool,
    go, write), plus exactly one warning for each hostile header;
  * the admit lines, logged on one strand shared by every request of a
    process (whose handler reads the tenant from the gls values), count each
    tenant's requests exactly: a tenant's tenant_seen values are 1..n, each
    once;
  * lines outside any request (startup, shutdown, bad requests) carry no ids;
  * every line of a request carries the tracestate it was sent (as
    FormatTraceState writes it), or none, in both processes: the front
    continues it as a gls value and sends it downstream;
  * the back's lines carry the front's trace id for the same request, with
    the front's span as their parent, and the same tenant, user and
    tracestate;
  * both servers exit 0 (no sanitizer report, no leak) and count what the
    test sent;
  * a front whose downstream is gone (the stopped back's port) answers 502,
    logs each failure once at warn level, and still logs every other line.

Usage (Bazel passes the server): e2e_test.py <path to server>
"""

import concurrent.futures
import ctypes
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import http.client
from collections import Counter, defaultdict

CLIENTS = 16
REQUESTS_PER_CLIENT = 130  # 2,080 in all
FRONT_EVENTS = Counter(handler=1, admit=1, pool=1, go=1, downstream=1, write=1)
BACK_EVENTS = Counter(handler=1, admit=1, pool=1, go=1, write=1)
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

LINE_RE = re.compile(r"^(\S+) (\S+) (\S+) \[(\d+)\]")
FIELD_RE = re.compile(r' ([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "]*)')
OWN_RE = re.compile(r"^(\w+) own_trace=(\S+) own_req=(\S+)(.*)$")
ADMIT_RE = re.compile(r"^ tenant_seen=(\d+)$")
HOSTILE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HOSTILE_PARENT = "00f067aa0ba902b7"


class Failure(Exception):
    pass


def unquote(value):
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_line(line):
    """(logger, level, {flag fields}, message) of one log line."""
    m = LINE_RE.match(line)
    if not m:
        raise Failure(f"unparsable log line: {line!r}")
    fields = {}
    pos = m.end()
    while True:
        f = FIELD_RE.match(line, pos)
        if not f:
            break
        if f.group(1) in fields:
            raise Failure(f"field {f.group(1)} twice in {line!r}")
        fields[f.group(1)] = unquote(f.group(2))
        pos = f.end()
    if line[pos:pos + 3] != " | ":
        raise Failure(f"no ' | ' after the flag in {line!r}")
    return m.group(2), m.group(3), fields, line[pos + 3:]


def die_with_parent():
    # The servers go when the test goes, however it goes (PR_SET_PDEATHSIG).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


class Server:
    def __init__(self, binary, name, tmpdir, extra):
        self.name = name
        self.log = os.path.join(tmpdir, f"{name}.log")
        self.stderr_path = os.path.join(tmpdir, f"{name}.stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--name", name, "--log", self.log] + extra,
            stdout=subprocess.PIPE, stderr=self.stderr, preexec_fn=die_with_parent)
        self.port = self._read_port()

    def _read_port(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=START_TIMEOUT_S):
            raise Failure(f"{self.name}: no 'listening on' line in {START_TIMEOUT_S} s")
        line = self.proc.stdout.readline().decode()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            raise Failure(f"{self.name}: first stdout line is {line!r}, stderr: {self.stderr_text()}")
        return int(m.group(1))

    def stderr_text(self):
        self.stderr.flush()
        with open(self.stderr_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        """SIGTERM, then the exit status (SIGKILL after STOP_TIMEOUT_S)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure(f"{self.name} did not stop within {STOP_TIMEOUT_S} s of SIGTERM")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def parse_body(body):
    m = re.fullmatch(r"trace_id=([0-9a-f]{32}) request_id=(\S+)\n", body)
    if not m:
        raise Failure(f"unexpected response body {body!r}")
    return m.group(1), m.group(2)


def plan(client, i):
    """The headers of request i of `client`, and what the test expects."""
    kind = i % 5
    rid = f"c{client:02d}-r{i:04d}-{os.urandom(3).hex()}"
    trace, parent = os.urandom(16).hex(), os.urandom(8).hex()
    headers, want = {}, {"kind": kind}
    if kind in (0, 3):
        headers["traceparent"] = f"00-{trace}-{parent}-01"
        want["trace"], want["parent"] = trace, parent
    if kind == 0:
        headers["tracestate"] = f"congo=c{client}r{i},rojo=00f067aa0ba902b7"
        want["tracestate"] = headers["tracestate"]
    if kind == 3:
        # OWS and an empty member: forwarded without them.
        headers["tracestate"] = f" t{client}@congo= x{i} , ,rojo=1\t"
        want["tracestate"] = f"t{client}@congo= x{i},rojo=1"
    if kind in (1, 3, 4):
        headers["X-Request-Id"] = rid
        want["request_id"] = rid
    if kind == 3:
        headers["baggage"] = f"tenant=t{client},user=u{i};p=1, color=blue"
        want["tenant"], want["user"] = f"t{client}", f"u{i}"
    if kind == 4:
        headers["baggage"] = f"other=x,tenant=acme%20corp{client}"
        want["tenant"] = f"acme corp{client}"
    return headers, want


def run_client(port, client):
    """Sends REQUESTS_PER_CLIENT requests; even clients keep one connection,
    odd ones open a new connection per request."""
    records = []
    conn = None
    for i in range(REQUESTS_PER_CLIENT):
        headers, want = plan(client, i)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"/item/{client}/{i}", headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise Failure(f"status {resp.status} for {headers}: {body!r}")
        trace, rid = parse_body(body)
        if "trace" in want and trace != want["trace"]:
            raise Failure(f"sent trace {want['trace']}, got back {trace}")
        if "request_id" in want and rid != want["request_id"]:
            raise Failure(f"sent X-Request-Id {want['request_id']}, got back {rid}")
        if "request_id" not in want and rid != trace:
            raise Failure(f"no X-Request-Id sent: request id {rid} should be the trace id {trace}")
        want.update(trace=trace, request_id=rid, warnings=0)
        records.append(want)
        if client % 2 == 1:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return records


def hostile_requests(port):
    """Requests a server must survive. Returns (records of the ones that get
    a 200, number of requests rejected before any id is known)."""
    records = []
    cases = [
        # Malformed traceparent: a new trace, one warning.
        ({"traceparent": "00-xyz-nothex-01", "X-Request-Id": "hostile-tp-short"}, {}),
        # All-zero trace id: invalid per W3C, one warning.
        ({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
          "X-Request-Id": "hostile-tp-zero"}, {}),
        # Baggage far beyond the W3C limits (8192 bytes, 180 entries) but
        # within the server's header limit: dropped past the limit, tenant
        # (first) kept, one warning.
        ({"baggage": "tenant=big," + ",".join(f"k{i}=" + "v" * 40 for i in range(250)),
          "X-Request-Id": "hostile-baggage"}, {"tenant": "big"}),
        # An X-Request-Id that could forge log fields: ignored, one warning,
        # the request id becomes the trace id.
        ({"X-Request-Id": "x own_req=y | z"}, {}),
        # tracestate without traceparent: discarded, one warning.
        ({"tracestate": "congo=1", "X-Request-Id": "hostile-ts-alone"}, {}),
        # An invalid tracestate (uppercase key) with a valid traceparent:
        # the trace continues, the tracestate is discarded, one warning.
        ({"traceparent": "00-" + HOSTILE_TRACE + "-" + HOSTILE_PARENT + "-01",
          "tracestate": "congo=1,Rojo=2", "X-Request-Id": "hostile-ts-bad"},
         {"parent": HOSTILE_PARENT}),
    ]
    for headers, want in cases:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/hostile", headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        if resp.status != 200:
            raise Failure(f"hostile {headers!r:.80}: status {resp.status}")
        trace, rid = parse_body(body)
        want = dict(want, kind="hostile", trace=trace, request_id=rid, warnings=1)
        if headers["X-Request-Id"].startswith("hostile") and rid != headers["X-Request-Id"]:
            raise Failure(f"hostile request id {headers['X-Request-Id']} came back as {rid}")
        records.append(want)

    rejected = 0
    for raw, status in [
        (b"NOT AN HTTP REQUEST\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ]:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            try:
                s.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading it all
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        if not data.startswith(f"HTTP/1.1 {status} ".encode()):
            raise Failure(f"hostile {raw[:30]!r}: expected {status}, got {data[:80]!r}")
        rejected += 1
    return records, rejected


def admission(admitted, fields, rest, line):
    """Records an admit line's count under its tenant (from the gls flag)."""
    m = ADMIT_RE.match(rest)
    if not m:
        raise Failure(f"admit line without tenant_seen=N: {line}")
    admitted[fields.get("tenant", "")].append(int(m.group(1)))


def check_admission(server, admitted):
    """Each tenant's admit counts are 1..n, each once: the shared strand
    counted every request under its own tenant."""
    for tenant, seen in admitted.items():
        if sorted(seen) != list(range(1, len(seen) + 1)):
            raise Failure(f"{server.name}: tenant {tenant!r} admitted as {sorted(seen)[:20]}..., "
                          f"want 1..{len(seen)} each once")


def check_log(server, records, events, downstream_of=None):
    """Checks server's log against what the test sent. Returns {request id:
    span id} for the back server to check its parents against."""
    by_id = {r["request_id"]: r for r in records}
    seen = defaultdict(Counter)
    admitted = defaultdict(list)
    spans = {}
    outside = []
    with open(server.log, errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        logger, level, fields, message = parse_line(line)
        if logger != server.name:
            raise Failure(f"{server.name} log has a line of logger {logger}: {line}")
        own = OWN_RE.match(message)
        if own is None:
            if fields:
                raise Failure(f"line outside any request carries ids: {line}")
            outside.append((level, message))
            continue
        event, own_trace, own_req, rest = own.groups()
        if fields.get("trace_id") != own_trace or fields.get("request_id") != own_req:
            raise Failure(f"gls ids differ from the code's own ids: {line}")
        record = by_id.get(own_req)
        if record is None:
            raise Failure(f"line for a request id the test never sent or got: {line}")
        if own_trace != record["trace"]:
            raise Failure(f"trace id {own_trace} is not request {own_req}'s "
                          f"({record['trace']}): {line}")
        for key in ("tenant", "user", "tracestate"):
            if fields.get(key) != record.get(key):
                raise Failure(f"{key}={fields.get(key)!r}, want {record.get(key)!r}: {line}")
        span = fields.get("span_id")
        if not span or spans.setdefault(own_req, span) != span:
            raise Failure(f"span_id missing or not the request's ({spans.get(own_req)}): {line}")
        want_parent = (downstream_of or {}).get(own_req, record.get("parent"))
        if fields.get("parent_id") != want_parent:
            raise Failure(f"parent_id={fields.get('parent_id')}, want {want_parent}: {line}")
        if event == "warning":
            if level != "warning":
                raise Failure(f"warning logged at level {level}: {line}")
        elif level != "info":
            raise Failure(f"unexpected {level} line: {line}")
        if event == "downstream" and f"status=200 " not in rest + " ":
            raise Failure(f"downstream line without status=200: {line}")
        if event == "downstream" and not rest.endswith(f"echoed_trace={own_trace}"):
            raise Failure(f"the downstream saw another trace id: {line}")
        if event == "write" and " status=200 " not in rest + " ":
            raise Failure(f"write line without status=200: {line}")
        if event == "admit":
            admission(admitted, fields, rest, line)
        seen[own_req][event] += 1

    check_admission(server, admitted)
    for rid, record in by_id.items():
        want = Counter(events)
        if record["warnings"] and downstream_of is None:
            want["warning"] = record["warnings"]
        if seen[rid] != want:
            raise Failure(f"{server.name}: request {rid} ({record['kind']}) has lines "
                          f"{dict(seen[rid])}, want {dict(want)}")
    return spans, outside, len(lines)


def check_outside(server, outside, requests, bad_requests):
    messages = [m for _, m in outside]
    if not messages or not messages[0].startswith("listening on 127.0.0.1:"):
        raise Failure(f"{server.name}: first line outside requests is not the startup line: {messages[:1]}")
    want_stopped = (f"stopped requests={requests} bad_requests={bad_requests} "
                    f"downstream_failures=0")
    if messages[-1] != want_stopped or messages[-2] != "stopping on signal 15":
        raise Failure(f"{server.name}: last lines {messages[-2:]}, want "
                      f"['stopping on signal 15', {want_stopped!r}]")
    bad = [m for m in messages[1:-2]]
    if len(bad) != bad_requests or not all(m.startswith("bad request status=") for m in bad):
        raise Failure(f"{server.name}: want {bad_requests} 'bad request' lines between "
                      f"start and stop, got {bad}")


def check_downstream_failure(binary, tmpdir, dead_port, servers):
    """A front whose downstream refuses connections: every request gets 502
    and its usual lines, the downstream one a warning."""
    count = 20
    front = Server(binary, "front_no_back", tmpdir,
                   ["--threads", "2", "--downstream", f"http://127.0.0.1:{dead_port}"])
    servers.append(front)
    traces = {}
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=60)
    for i in range(count):
        rid = f"dead-{i}-{os.urandom(3).hex()}"
        conn.request("GET", "/", headers={"X-Request-Id": rid})
        resp = conn.getresponse()
        body = resp.read().decode()
        m = re.fullmatch(rf"trace_id=([0-9a-f]{{32}}) request_id={rid} downstream=failed\n", body)
        if resp.status != 502 or not m:
            raise Failure(f"dead downstream: status {resp.status}, body {body!r}")
        traces[rid] = m.group(1)
    conn.close()
    status = front.stop()
    if status != 0:
        raise Failure(f"{front.name} exited with {status}; stderr:\n{front.stderr_text()}")
    seen = defaultdict(Counter)
    admitted = defaultdict(list)
    outside = []
    with open(front.log, errors="replace") as f:
        for line in f.read().splitlines():
            _, level, fields, message = parse_line(line)
            own = OWN_RE.match(message)
            if own is None:
                if fields:
                    raise Failure(f"line outside any request carries ids: {line}")
                outside.append((level, message))
                continue
            event, own_trace, own_req, rest = own.groups()
            if (fields.get("trace_id") != own_trace or fields.get("request_id") != own_req
                    or traces.get(own_req) != own_trace):
                raise Failure(f"ids of another request, or none: {line}")
            if event == "downstream" and (level != "warning" or "failed stage=connect" not in rest):
                raise Failure(f"downstream failure not logged as a warning: {line}")
            if event == "write" and " status=502 " not in rest + " ":
                raise Failure(f"write line without status=502: {line}")
            if event == "admit":
                admission(admitted, fields, rest, line)
            seen[own_req][event] += 1
    check_admission(front, admitted)
    if sum(len(v) for v in admitted.values()) != count:
        raise Failure(f"{front.name}: {dict(admitted)} admit lines, want {count}")
    for rid in traces:
        if seen[rid] != FRONT_EVENTS:
            raise Failure(f"{front.name}: request {rid} has lines {dict(seen[rid])}, "
                          f"want {dict(FRONT_EVENTS)}")
    messages = [m for _, m in outside]
    want = f"stopped requests={count} bad_requests=0 downstream_failures={count}"
    if len(messages) != 3 or messages[-1] != want:
        raise Failure(f"{front.name}: lines outside requests {messages}, want the last {want!r}")
    return count


GRPC_CLIENTS, GRPC_REQUESTS = 8, 40  # 320 requests over the gRPC hop


def check_grpc_back(binary, grpc_binary, tmpdir, servers):
    """--grpc-back: the HTTP server calls examples/grpc_log's back service over
    gRPC for each request. Every request's values reach the back: its trace,
    a new span of it as the back's parent (the span the front's interceptor
    logged, "grpc_back call span=<id>"), its request id; counts exact."""
    log = os.path.join(tmpdir, "grpc_back.log")
    err = open(os.path.join(tmpdir, "grpc_back.stderr"), "wb")
    back = subprocess.Popen([grpc_binary, "--role", "back", "--port", "0", "--log", log],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                            preexec_fn=die_with_parent)
    try:
        sel = selectors.DefaultSelector()
        sel.register(back.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=START_TIMEOUT_S):
            raise Failure("grpc back: no port line")
        m = re.fullmatch(r"port (\d+)\n", back.stdout.readline().decode())
        if not m:
            raise Failure("grpc back: bad port line")
        front = Server(binary, "grpc_front", tmpdir,
                       ["--threads", "2", "--grpc-back", f"127.0.0.1:{m.group(1)}"])
        servers.append(front)

        def client(c):
            sent = []
            conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=60)
            for i in range(GRPC_REQUESTS):
                trace, parent = os.urandom(16).hex(), os.urandom(8).hex()
                rid = f"g{c:02d}-{i:03d}-{os.urandom(3).hex()}"
                conn.request("GET", f"/grpc/{c}/{i}", headers={
                    "traceparent": f"00-{trace}-{parent}-01", "X-Request-Id": rid})
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200 or parse_body(body) != (trace, rid):
                    raise Failure(f"--grpc-back: status {resp.status}, body {body!r}")
                sent.append((rid, trace, parent))
            conn.close()
            return sent

        with concurrent.futures.ThreadPoolExecutor(GRPC_CLIENTS) as pool:
            sent = [r for f in [pool.submit(client, c) for c in range(GRPC_CLIENTS)]
                    for r in f.result()]
        status = front.stop()
        if status != 0:
            raise Failure(f"grpc_front exited with {status}")
        back.stdin.close()
        if back.wait(timeout=60) != 0:
            raise Failure("grpc back exited non-zero")
    finally:
        if back.poll() is None:
            back.kill()
            back.wait()

    want = {rid: (trace, parent) for rid, trace, parent in sent}
    call_span, finished = {}, Counter()
    with open(front.log, errors="replace") as f:
        for line in f:
            _, _, fields, message = parse_line(line.rstrip("\n"))
            rid = fields.get("request_id")
            if message.startswith("grpc_back call span="):
                span = message[len("grpc_back call span="):]
                if rid not in want or rid in call_span:
                    raise Failure(f"grpc call line of no request or twice: {line!r}")
                trace, parent = want[rid]
                if fields.get("trace_id") != trace or fields.get("parent_id") != parent or \
                        not re.fullmatch(r"[0-9a-f]{16}", span) or span == fields.get("span_id"):
                    raise Failure(f"grpc call line: want trace {trace} parent {parent}: {line!r}")
                call_span[rid] = span
            elif message.startswith("grpc_back "):
                if f"own_req={rid} " not in message or f"echoed_req={rid}" not in message or \
                        f"own_trace={fields.get('trace_id')} " not in message or \
                        "status=ok" not in message:
                    raise Failure(f"grpc_back line: gls's ids differ from the code's own: {line!r}")
                finished[rid] += 1
    work, done = Counter(), Counter()
    with open(log, errors="replace") as f:
        for line in f:
            words = line.split()
            fields = dict(w.split("=", 1) for w in words if "=" in w)
            if words[0] not in ("back",) or words[1] not in ("work", "done"):
                if "trace_id" in fields or "request_id" in fields:
                    raise Failure(f"grpc back line outside RPCs carries values: {line!r}")
                continue
            rid = fields.get("request_id")
            if rid not in want:
                raise Failure(f"grpc back line of no request: {line!r}")
            if fields.get("trace_id") != want[rid][0] or fields.get("parent_id") != call_span.get(rid) \
                    or fields.get("own_req") != rid or fields.get("own_trace") != want[rid][0] \
                    or fields.get("own_parent") != call_span.get(rid):
                raise Failure(f"grpc back: want trace {want[rid][0]} parent "
                              f"{call_span.get(rid)}: {line!r}")
            (work if words[1] == "work" else done)[rid] += 1
    for rid in want:
        if rid not in call_span or finished[rid] != 1 or work[rid] != 1 or done[rid] != 1:
            raise Failure(f"{rid}: call span {call_span.get(rid)}, grpc_back lines "
                          f"{finished[rid]}, back work {work[rid]}, done {done[rid]}")
    return len(want)


def main():
    binary = os.path.abspath(sys.argv[1])
    tmpdir = os.environ.get("TEST_TMPDIR") or "/tmp"
    # Fewer io threads under ThreadSanitizer: still several, on 2 cores.
    threads = os.environ.get("REQUEST_LOG_THREADS", "3")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("e2e_test: terminated"))
    servers = []
    # grpc_e2e_test: `e2e_test.py <server> --grpc-back-only <grpc_log server>`,
    # only the --grpc-back hop (a target of its own: it needs gRPC, which is
    # not TSan-built, and the HTTP test keeps its tsan run).
    if len(sys.argv) > 3 and sys.argv[2] == "--grpc-back-only":
        try:
            n = check_grpc_back(binary, os.path.abspath(sys.argv[3]), tmpdir, servers)
            print(f"--grpc-back: {n} requests over gRPC, each with its trace, a new span as "
                  f"the back's parent and its request id on every line of both processes")
            return 0
        except Exception as e:
            print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
            for server in servers:
                print(f"--- {server.name} stderr:\n{server.stderr_text()}", file=sys.stderr)
            return 1
        finally:
            for server in servers:
                server.kill()
    try:
        back = Server(binary, "back", tmpdir, ["--threads", threads, "--pool-threads", "2"])
        servers.append(back)
        front = Server(binary, "front", tmpdir,
                       ["--threads", threads, "--pool-threads", "2",
                        "--downstream", f"http://127.0.0.1:{back.port}"])
        servers.append(front)

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(run_client, front.port, c) for c in range(CLIENTS)]
            records = [r for f in futures for r in f.result()]
        hostile, rejected = hostile_requests(front.port)
        records += hostile
        ids = [r["request_id"] for r in records]
        if len(set(ids)) != len(ids):
            raise Failure("two requests share a request id")
        print(f"sent {len(records) - len(hostile)} requests from {CLIENTS} clients, "
              f"{len(hostile)} hostile ones answered, {rejected} rejected")

        for server in (front, back):  # front first: it calls back
            status = server.stop()
            if status != 0:
                raise Failure(f"{server.name} exited with {status}; stderr:\n{server.stderr_text()}")

        front_spans, front_outside, front_lines = check_log(front, records, FRONT_EVENTS)
        _, back_outside, back_lines = check_log(back, records, BACK_EVENTS,
                                                downstream_of=front_spans)
        check_outside(front, front_outside, len(records), rejected)
        check_outside(back, back_outside, len(records), 0)
        print(f"front: {front_lines} log lines, back: {back_lines}; every id line is its "
              f"request's, counts exact, back's parents are front's spans")
        failed = check_downstream_failure(binary, tmpdir, back.port, servers)
        print(f"downstream gone: {failed} requests answered 502, each failure logged once")
        return 0
    except Exception as e:  # a Failure, or a client error (refused, reset)
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        for server in servers:
            print(f"--- {server.name} stderr:\n{server.stderr_text()}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.kill()
            out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
            if out and os.path.exists(server.log):
                shutil.copy(server.log, out)


if __name__ == "__main__":
    sys.exit(main())
