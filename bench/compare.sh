#!/usr/bin/env bash
# Entry point of //bench:compare: finds the opt-built binaries and the Go
# harness in this target's runfiles and hands them to compare.py.
set -euo pipefail
runfiles="${RUNFILES_DIR:-$0.runfiles}"
here="$runfiles/gls/bench"
exec python3 "$here/compare.py" \
  --benchmark "$here/gls_benchmark" \
  --correctness "$here/correctness" \
  --go-bench "$here/go/go_bench" \
  --instructions "$here/instructions.py" \
  --instruction-loops "$here/instruction_loops" \
  "$@"
