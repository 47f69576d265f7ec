#!/usr/bin/env bash
# Entry point of //bench:instructions: finds the opt-built loops binary in this
# target's runfiles and hands it to instructions.py.
set -euo pipefail
runfiles="${RUNFILES_DIR:-$0.runfiles}"
here="$runfiles/gls/bench"
exec python3 "$here/instructions.py" --loops "$here/instruction_loops" "$@"
