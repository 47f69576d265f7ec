#!/usr/bin/env bash
# Usage: expect_output.sh BINARY EXPECTED_FILE — runs BINARY and fails, with a
# diff, unless its standard output is exactly EXPECTED_FILE.
set -euo pipefail
if ! diff -u "$2" <("$1"); then
  echo "FAIL: $1 printed something other than $2 (diff above: - expected, + actual)" >&2
  exit 1
fi
echo "PASS: output of $1 matches $2"
