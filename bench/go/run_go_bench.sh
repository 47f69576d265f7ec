#!/usr/bin/env bash
# Go benchmark + correctness harness for the gls comparison (//bench/go:go_bench).
#
#   bench/go/run_go_bench.sh --out FILE [--quick]
#   bazel run //bench/go:go_bench -- --out /tmp/go.json [--quick]
#
# Builds bench/go/src/glsbench (GOPATH mode, next to Debian's
# /usr/share/gocode copies of jtolds/gls and petermattis/goid), runs its
# benchmarks, jtolds/gls's own benchmarks, the memory and correctness
# programs, and writes one JSON document to FILE. Progress goes to stderr.
set -euo pipefail

usage() {
  echo "usage: $0 --out FILE [--quick]" >&2
  exit 2
}

out=""
quick=0
while (($#)); do
  case "$1" in
    --out) (($# >= 2)) || usage; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) usage ;;
    *) echo "run_go_bench: unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n "$out" ]] || usage
# `bazel run` starts us inside the runfiles tree: a relative --out means
# relative to where the user typed the command.
if [[ "$out" != /* ]]; then
  out="${BUILD_WORKING_DIRECTORY:-$PWD}/$out"
fi

# Find bench/go: the real source directory behind this script (Bazel's
# runfiles are symlinks into the source tree), else the runfiles copy.
find_here() {
  local candidate
  for candidate in \
      "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" \
      "$(dirname "$(readlink -f "$0")")" \
      "${RUNFILES_DIR:+$RUNFILES_DIR/gls/bench/go}" \
      "$0.runfiles/gls/bench/go"; do
    if [[ -n "$candidate" && -f "$candidate/src/glsbench/systems.go" && \
          -f "$candidate/go_bench_report.py" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  echo "run_go_bench: cannot find bench/go (src/glsbench) from $0" >&2
  return 1
}
here="$(find_here)"

command -v go >/dev/null || { echo "run_go_bench: 'go' not found (apt-get install golang-go)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "run_go_bench: python3 not found" >&2; exit 1; }
gocode=/usr/share/gocode
for pkg in github.com/jtolds/gls github.com/petermattis/goid; do
  [[ -d "$gocode/src/$pkg" ]] || {
    echo "run_go_bench: $gocode/src/$pkg missing (apt-get install golang-github-jtolds-gls-dev golang-github-petermattis-goid-dev)" >&2
    exit 1
  }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/gls-go-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

unset GOFLAGS GOROOT GOBIN
export GO111MODULE=off
export GOPATH="$here:$gocode"
export GOPROXY=off
export GOTOOLCHAIN=local
# A persistent build cache when there is a home for it, else a throwaway one.
cache=""
if [[ -n "${XDG_CACHE_HOME:-}" ]]; then
  cache="$XDG_CACHE_HOME/gls-go-build"
elif [[ -n "${HOME:-}" && -d "$HOME" ]]; then
  cache="$HOME/.cache/gls-go-build"
fi
if [[ -z "$cache" ]] || ! mkdir -p "$cache" 2>/dev/null || [[ ! -w "$cache" ]]; then
  cache="$work/gocache"
  mkdir -p "$cache"
fi
export GOCACHE="$cache"

procs=2  # -cpu: GOMAXPROCS of every benchmark (GetValueParallel sets its own)
if ((quick)); then
  count=1; benchtime=20ms; own_benchtime=20ms; mem_reps=1
else
  count=5; benchtime=400ms; own_benchtime=1s; mem_reps=5
fi

log() { echo "run_go_bench: $*" >&2; }
go_version="$(go env GOVERSION)"
log "$go_version, GOPATH=$GOPATH, GOCACHE=$GOCACHE, count=$count, benchtime=$benchtime"
start=$SECONDS

log "building"
go test -c -o "$work/glsbench.test" glsbench
go test -c -o "$work/jtolds_gls.test" github.com/jtolds/gls
go build -o "$work/memory" glsbench/cmd/memory
go build -o "$work/correctness" glsbench/cmd/correctness

log "correctness scenarios"
"$work/correctness" >"$work/correctness.json"

log "memory per live context (reps=$mem_reps)"
"$work/memory" -reps "$mem_reps" >"$work/memory.json"

# The benchmark output is kept for parsing and echoed to stderr as progress.
log "glsbench benchmarks"
(cd "$here/src/glsbench" &&
  "$work/glsbench.test" -test.run '^$' -test.bench . -test.count "$count" \
    -test.benchtime "$benchtime" -test.cpu "$procs" -test.timeout 30m) \
  | tee "$work/glsbench.txt" >&2

log "jtolds/gls's own benchmarks"
(cd "$gocode/src/github.com/jtolds/gls" &&
  "$work/jtolds_gls.test" -test.run '^$' -test.bench . -test.count "$count" \
    -test.benchtime "$own_benchtime" -test.cpu "$procs" -test.timeout 30m) \
  | tee "$work/own.txt" >&2

settings="$(printf '{"quick": %s, "count": %d, "benchtime": "%s", "own_benchtime": "%s", "gomaxprocs": %d, "memory_reps": %d}' \
  "$([[ $quick == 1 ]] && echo true || echo false)" "$count" "$benchtime" "$own_benchtime" "$procs" "$mem_reps")"
mkdir -p "$(dirname "$out")"
python3 "$here/go_bench_report.py" \
  --go-version "$go_version" --procs "$procs" --count "$count" --settings "$settings" \
  --bench "$work/glsbench.txt" --own-bench "$work/own.txt" \
  --memory "$work/memory.json" --correctness "$work/correctness.json" \
  --out "$out"
log "done in $((SECONDS - start))s: $out"
