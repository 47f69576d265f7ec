#!/usr/bin/env bash
# examples/grpc_log/e2e_test.sh: runs e2e_test.py with the system's python3.
# Usage: e2e_test.sh <e2e_test.py> <server> <client>
set -euo pipefail
exec python3 "$@"
