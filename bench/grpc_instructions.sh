#!/usr/bin/env bash
# //bench:grpc_instructions: callgrind instructions per unary loopback RPC,
# plain and with gls (bench/grpc_benchmark.cc --count), and their ratio;
# exits 1 when the ratio is above the limit: 1.03 (issue 22's), or
# --limit=X.
# Each count is (Ir of N=1000 RPCs) - (Ir of N=0), both measured between
# the same toggles after the same warm-up, so start-up and the toggles
# cancel out; three runs each, the median kept.
set -euo pipefail
limit=1.03
for arg in "$@"; do
  case "$arg" in
    --limit=*) limit="${arg#--limit=}" ;;
    *) echo "grpc_instructions: unknown argument '$arg' (only --limit=X)" >&2; exit 2 ;;
  esac
done
runfiles="${RUNFILES_DIR:-$0.runfiles}"
bin="$runfiles/gls/bench/grpc_benchmark"
command -v valgrind >/dev/null || { echo "valgrind not found (tools/setup installs it)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ir() {  # ir MODE N -> instructions collected between the toggles
  local mode=$1 n=$2 f="$out/cg.$1.$2.$RANDOM"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$f" \
    "$bin" --count="$mode" --rpcs="$n" >/dev/null 2>&1
  # The dump made at CALLGRIND_DUMP_STATS_AT("rpcs"): its totals line.
  local total=0 file
  for file in "$f"*; do
    if grep -q '^desc: Trigger: Client Request: rpcs' "$file"; then
      total=$(awk '/^totals:/ {print $2; exit}' "$file")
    fi
  done
  echo "$total"
}

per_rpc() {  # per_rpc MODE -> median over 3 of (Ir(1000) - Ir(0)) / 1000
  local mode=$1 i vals=()
  for i in 1 2 3; do
    local a b
    a=$(ir "$mode" 1000)
    b=$(ir "$mode" 0)
    vals+=($(( (a - b) / 1000 )))
  done
  printf '%s\n' "${vals[@]}" | sort -n | sed -n 2p
}

plain=$(per_rpc plain)
header=$(per_rpc header)
noop=$(per_rpc noop)
gls=$(per_rpc gls)
# header: plain plus the two fields gls sends, added by hand; noop: plain
# through an interceptor that only proceeds. They split gls's extra cost
# into gRPC carrying the metadata, gRPC running an interceptor, and gls.
echo "instructions per unary RPC: plain=${plain} header=${header} noop=${noop} gls=${gls}"
python3 -c "import sys; p,g,l=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); r=g/p; print(f'ratio gls/plain: {r:.4f} (limit {l})'); sys.exit(0 if r <= l else 1)" "$plain" "$gls" "$limit"
