#!/usr/bin/env bash
# examples/request_log/w3c_suite.sh: runs the official W3C Trace Context
# test suite against the request_log server, at Trace Context Level 2 with
# every strict test (SPEC_LEVEL=2 STRICT_LEVEL=2), and fails unless all 41
# tests ran and passed; then checks that a malformed body gets 400 and a
# callback off loopback 403, each with one warning line and no call made.
#
# Usage: examples/request_log/w3c_suite.sh [path to a built server]
#   Without an argument it builds //examples/request_log:server with bazel.
#
# The suite is not part of this repository: it is the test/ folder of
# w3c/trace-context, found in $GLS_W3C_SUITE_DIR/trace-context if set, else
# in ../shared/w3c/trace-context next to the repository's top directory,
# else in /work/shared/w3c/trace-context. It needs Debian's python3-aiohttp
# (tools/setup installs it) and binds 127.0.0.1:7777 for its callbacks. The
# server listens on a free loopback port (--port 0) with
# --w3c-test-endpoint; its log is kept in a temporary directory, printed on
# failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

find_suite() {
  local top candidates=()
  [[ -n "${GLS_W3C_SUITE_DIR:-}" ]] && candidates+=("$GLS_W3C_SUITE_DIR")
  if top=$(git rev-parse --show-toplevel 2>/dev/null); then
    candidates+=("$top/../shared/w3c")
  fi
  candidates+=(/work/shared/w3c)
  local dir
  for dir in "${candidates[@]}"; do
    if [[ -f "$dir/trace-context/test.py" ]]; then
      (cd "$dir/trace-context" && pwd)
      return 0
    fi
  done
  echo "w3c_suite: no trace-context/test.py in: ${candidates[*]} (set GLS_W3C_SUITE_DIR)" >&2
  return 1
}

suite=$(find_suite)
python=/usr/bin/python3
if ! "$python" -c 'import aiohttp' 2>/dev/null; then
  echo "w3c_suite: $python cannot import aiohttp: run tools/setup (python3-aiohttp)" >&2
  exit 1
fi

if [[ $# -ge 1 ]]; then
  server=$1
else
  bazel build //examples/request_log:server >&2
  server="$(bazel info bazel-bin 2>/dev/null)/examples/request_log/server"
fi
[[ -x "$server" ]] || { echo "w3c_suite: no server binary at $server" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/stdout"
"$server" --port 0 --name w3c --w3c-test-endpoint --log "$work/server.log" \
  >"$work/stdout" 2>"$work/server.stderr" &
server_pid=$!
exec 3<"$work/stdout"
line=
if ! read -r -t 60 line <&3 || [[ ! "$line" =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]]; then
  echo "w3c_suite: server did not start (first line: '$line')" >&2
  cat "$work/server.stderr" >&2
  exit 1
fi
endpoint="http://127.0.0.1:${BASH_REMATCH[1]}/test"
echo "w3c_suite: server on $endpoint, suite in $suite" >&2

status=0
(cd "$suite" && SPEC_LEVEL=2 STRICT_LEVEL=2 SERVICE_ENDPOINT="$endpoint" \
  "$python" test.py "$endpoint") >"$work/suite.log" 2>&1 || status=$?
cat "$work/suite.log"

# What the suite does not send: a body that is not the instructions' JSON
# (400) and callbacks off loopback (403), each refused with one warning line
# and no call made.
refusals=0
"$python" - "$endpoint" >"$work/refusals.log" 2>&1 <<'PY' || refusals=$?
import http.client, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
cases = [(b'[{"url": "http://127.0.0.1:7777/x", ', 400),
         (b'{"url": "http://127.0.0.1:7777/x"}', 400),
         (b'[{"url": "http://10.1.2.3:7777/x", "arguments": []}]', 403),
         (b'[{"url": "http://127.0.0.1:1/x"}, {"url": "http://localhost:7777/y"}]', 403)]
for body, want in cases:
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("POST", url.path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    text = resp.read().decode(errors="replace")
    conn.close()
    if resp.status != want:
        sys.exit(f"POST {body!r}: status {resp.status}, want {want}: {text!r}")
print(f"{len(cases)} refused requests answered 400/403")
PY
cat "$work/refusals.log"

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=

fail() {
  echo "w3c_suite: FAILED: $*" >&2
  echo "--- server log (last 40 lines):" >&2
  tail -n 40 "$work/server.log" >&2 || true
  cat "$work/server.stderr" >&2 || true
  exit 1
}
grep -q '^Ran 41 tests in ' "$work/suite.log" || fail "the suite did not report 'Ran 41 tests'"
[[ "$(tail -n 1 "$work/suite.log")" == "OK" ]] || fail "the suite's last line is not 'OK'"
[[ $status -eq 0 ]] || fail "the suite exited with $status"
[[ $server_status -eq 0 ]] || fail "the server exited with $server_status"
[[ $refusals -eq 0 ]] || fail "a malformed or off-loopback POST /test was not refused"
refused_400=$(grep -c ' warning .* w3c-test .* refused status=400 ' "$work/server.log" || true)
refused_403=$(grep -c ' warning .* w3c-test .* refused status=403 ' "$work/server.log" || true)
calls_off_loopback=$(grep -c 'w3c-call .*url=http://\(10\.\|127\.0\.0\.1:1/\|localhost\)' "$work/server.log" || true)
[[ $refused_400 -eq 2 && $refused_403 -eq 2 && $calls_off_loopback -eq 0 ]] ||
  fail "want 2 warning lines for 400, 2 for 403 and no call: got $refused_400, $refused_403, $calls_off_loopback calls"
echo "w3c_suite: 41 tests passed (SPEC_LEVEL=2 STRICT_LEVEL=2)" >&2
