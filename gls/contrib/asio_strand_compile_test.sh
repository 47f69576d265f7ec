#!/usr/bin/env bash
# Converting a strand made from gls::asio::Propagating into a
# boost::asio::strand<Other> (e.g. strand<any_io_executor>) does not compile,
# and the compiler's message says what to write instead; the spellings
# gls/contrib/asio.h names as right compile with -Wall -Wextra -Werror, also
# with BOOST_ASIO_NO_DEPRECATED.
# Runs the system compiler (g++ -fsyntax-only) on gls/contrib/testdata/.
set -uo pipefail
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
# The headers of //gls/contrib:asio come as runfiles (cc_headers); the
# default strategy's header is under its target's _virtual_includes.
includes=(-I"$root")
while IFS= read -r dir; do
  includes+=(-I"$dir")
done < <(find -L "$root" -type d -path "*/_virtual_includes/*" -prune)
compile() {
  local file="$1"
  shift
  "${CXX:-g++}" -std=c++20 -Wall -Wextra -Werror -fsyntax-only "$@" \
    "${includes[@]}" "$root/gls/contrib/testdata/$file" 2>&1
}
if ! out=$(compile asio_strand_right_spellings.cc); then
  echo "the right strand spellings did not compile:"; echo "$out" | head -40; exit 1
fi
# Asio refuses any definition of its deprecated handler hooks under
# BOOST_ASIO_NO_DEPRECATED: asio.h defines its hook only when Asio uses them.
if ! out=$(compile asio_strand_right_spellings.cc -DBOOST_ASIO_NO_DEPRECATED); then
  echo "the right strand spellings did not compile with BOOST_ASIO_NO_DEPRECATED:"
  echo "$out" | grep "error" | head -20; exit 1
fi
if out=$(compile asio_strand_conversion_refused.cc); then
  echo "a strand<PropagatingExecutor<E>> converted to strand<any_io_executor> compiled"; exit 1
fi
if ! grep -q "gls: a boost::asio::strand<gls::asio::PropagatingExecutor<E>> cannot become a boost::asio::strand<Other>" <<<"$out"; then
  echo "the error does not carry gls's message:"; echo "$out" | grep -v "^ *from\|^In file" | head -20; exit 1
fi
if grep -q "error:" <<<"$(grep -v "static assertion failed: gls:" <<<"$out")"; then
  echo "errors other than gls's message:"; echo "$out" | grep "error:" | head; exit 1
fi
echo "ok: rejected with gls's message; the right spellings compile"
