#!/usr/bin/env bash
# examples/request_log/overhead.sh: what gls costs the request_log server,
# measured with wrk against --gls=on and --gls=off.
#
#   bazel run -c opt //examples/request_log:overhead [-- --rounds 5 --seconds 10]
#
# Starts the server twice on loopback (front only, no downstream; each with
# its own log file on /tmp, every line formatted), then runs wrk against
# each in turn, alternating which goes first each round so drift and noise
# land on both. Prints requests/s of every run, the medians, the spread
# (min-max as % of the median) and the overhead of gls:
# (median off - median on) / median off. Also the server's CPU time per
# request (user + system, from /proc/<pid>/stat, threads that exited
# included): on a shared machine it moves less with other load than
# requests/s does.
#
# Options: --rounds N (5), --seconds S (10), --connections C (32),
# --wrk-threads T (2), --threads T (server io threads, 2), --server PATH.
set -euo pipefail

rounds=5
seconds=10
connections=32
wrk_threads=2
server_threads=2
server=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --threads) server_threads=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    *) echo "overhead.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

if [[ -z "$server" ]]; then
  # Under bazel run: the server next to this script in the runfiles.
  for candidate in "${RUNFILES_DIR:-$0.runfiles}/gls/examples/request_log/server" \
                   "$(dirname "$0")/server"; do
    if [[ -x "$candidate" ]]; then server=$candidate; break; fi
  done
fi
[[ -x "$server" ]] || { echo "overhead.sh: no server binary (pass --server PATH)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "overhead.sh: wrk not found (Debian's wrk; tools/setup)" >&2; exit 2; }

work=$(mktemp -d /tmp/request_log_overhead.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

declare -A port pid_of
for mode in on off; do
  "$server" --port 0 --gls="$mode" --threads "$server_threads" --name "$mode" \
    --log "$work/$mode.log" >"$work/$mode.out" 2>"$work/$mode.err" &
  pids+=($!)
  pid_of[$mode]=$!
  for _ in $(seq 100); do
    if [[ -s "$work/$mode.out" ]]; then break; fi
    sleep 0.1
  done
  port[$mode]=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/$mode.out")
  [[ -n "${port[$mode]}" ]] || { echo "overhead.sh: --gls=$mode did not start: $(cat "$work/$mode.err")" >&2; exit 1; }
done

echo "server: $server"
echo "wrk: ${rounds} rounds x ${seconds} s per mode, ${wrk_threads} threads, ${connections} connections; server: ${server_threads} io threads, front only (no downstream)"

cpu_ticks() {  # pid -> utime + stime of the process, in clock ticks
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }  # fields after "(comm) "; utime, stime are 12th, 13th
  awk '{print $12 + $13}' <<<"$stat"
}

run_wrk() {  # mode -> "requests/s cpu-microseconds-per-request"
  local mode=$1 out before after requests
  before=$(cpu_ticks "${pid_of[$mode]}")
  out=$(wrk -t "$wrk_threads" -c "$connections" -d "${seconds}s" \
    -H "X-Request-Id: bench-$mode" -H "baggage: tenant=acme" \
    "http://127.0.0.1:${port[$mode]}/bench")
  after=$(cpu_ticks "${pid_of[$mode]}")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "overhead.sh: wrk saw errors against --gls=$mode:" >&2
    echo "$out" >&2
    exit 1
  fi
  # The log grows by ~1 KB a request; start each run with an empty file
  # (spdlog appends, so writes continue at the new end).
  : >"$work/$mode.log"
  requests=$(awk '/ requests in / {print $1}' <<<"$out")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    '/^Requests\/sec:/ {printf "%s %.1f\n", $2, ticks * 1e6 / hz / n}' <<<"$out"
}

declare -a on_rps off_rps on_cpu off_cpu
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=(on off); else order=(off on); fi
  line="round $r:"
  for mode in "${order[@]}"; do
    read -r rps cpu < <(run_wrk "$mode")
    if [[ $mode == on ]]; then on_rps+=("$rps"); on_cpu+=("$cpu"); else off_rps+=("$rps"); off_cpu+=("$cpu"); fi
    line+="  gls=$mode ${rps} req/s ${cpu} us-cpu/req"
  done
  echo "$line"
done

python3 - "${on_rps[*]}" "${off_rps[*]}" "${on_cpu[*]}" "${off_cpu[*]}" <<'PY'
import statistics, sys
on, off, on_cpu, off_cpu = ([float(x) for x in a.split()] for a in sys.argv[1:5])
def summary(name, xs, unit):
    m = statistics.median(xs)
    print(f"gls={name}: median {m:.1f} {unit}, min {min(xs):.1f}, max {max(xs):.1f}, "
          f"spread {100 * (max(xs) - min(xs)) / m:.1f}% of the median")
    return m
m_on, m_off = summary("on", on, "req/s"), summary("off", off, "req/s")
c_on, c_off = summary("on", on_cpu, "us-cpu/req"), summary("off", off_cpu, "us-cpu/req")
print(f"overhead of gls, requests/s: {100 * (m_off - m_on) / m_off:.1f}% "
      f"(median off {m_off:.0f} req/s, median on {m_on:.0f} req/s)")
print(f"overhead of gls, server CPU per request: {100 * (c_on - c_off) / c_off:.1f}% "
      f"(median off {c_off:.1f} us, median on {c_on:.1f} us)")
PY
