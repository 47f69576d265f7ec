#!/usr/bin/env bash
# A TypedKey<T> set to something that is not convertible to T does not
# compile, and the compiler's message says why; a convertible value compiles.
set -uo pipefail
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
compile() {
  "${CXX:-g++}" -std=c++20 -fsyntax-only -I"$root" "$root/gls/testdata/$1" 2>&1
}
if ! out=$(compile typed_key_right_type.cc); then
  echo "the convertible value did not compile:"; echo "$out"; exit 1
fi
if out=$(compile typed_key_wrong_type.cc); then
  echo "a std::string-like value for a TypedKey<int> compiled"; exit 1
fi
if ! grep -q "the value given for a gls::TypedKey<T> cannot be converted to T" <<<"$out"; then
  echo "the error does not carry gls's message:"; echo "$out" | head -20; exit 1
fi
echo "ok: rejected with gls's message"
