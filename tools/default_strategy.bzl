"""default_strategy_library(): a target that makes a strategy the default.

The label flag //gls:default_strategy names such a target. It must provide the
header gls/internal/selected_default_strategy.h (inline DefaultCurrent() and
DefaultRunBound(), see strategies/thread_local/default/) and define
gls::DefaultStrategy(). Works from any workspace:

    load("@gls//tools:default_strategy.bzl", "default_strategy_library")
    default_strategy_library(name = "default", strategy = ":my_strategy")

    bazel build --@gls//gls:default_strategy=//my:default ...
"""

def default_strategy_library(name, strategy, directory = "default", **kwargs):
    """`directory` holds selected_default_strategy.h and default_strategy.cc."""
    native.cc_library(
        name = name,
        srcs = [directory + "/default_strategy.cc"],
        hdrs = [directory + "/selected_default_strategy.h"],
        include_prefix = "gls/internal",
        strip_include_prefix = directory,
        visibility = ["//visibility:public"],
        deps = [
            strategy,
            Label("//gls:strategy"),
        ],
        **kwargs
    )
