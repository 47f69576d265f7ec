#!/usr/bin/env bash
# examples/request_log/e2e_test.sh: runs e2e_test.py with the system's
# python3 (Bazel 4's py_test stub wants a `python` this machine lacks).
# Usage: e2e_test.sh <e2e_test.py> <server>
set -euo pipefail
exec python3 "$@"
