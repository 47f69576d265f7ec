"""gls_fuzz_binary: a libFuzzer target that only --config=fuzz builds."""

def gls_fuzz_binary(name, srcs, deps = [], copts = [], **kwargs):
    """A libFuzzer binary (LLVMFuzzerTestOneInput in `srcs`).

    Tagged manual and incompatible outside --config=fuzz, so `bazel build //...`
    and `bazel test //...` under gcc never build it. Run it with:

      bazel --output_base="$HOME/.cache/gls_fuzz" run --config=fuzz //pkg:name -- \\
          -max_total_time=30 /tmp/corpus

    Args:
      name: target name.
      srcs: sources; one defines LLVMFuzzerTestOneInput.
      deps: libraries under test.
      copts: extra compiler options.
      **kwargs: passed to cc_binary.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        copts = copts,
        # libFuzzer's main; the rest of the code is instrumented by the
        # config's -fsanitize=fuzzer-no-link.
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzz"],
        target_compatible_with = select({
            "//tools/fuzz:enabled": [],
            "//conditions:default": ["//tools/fuzz:unsatisfiable"],
        }),
        **kwargs
    )
