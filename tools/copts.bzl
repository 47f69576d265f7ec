"""The one set of compiler options every gls target uses."""

GLS_COPTS = [
    "-Werror=return-type",
    "-Wshadow",
    "-Wnon-virtual-dtor",
]

# What user code that includes gls is built with in examples/: every common
# warning on, and any warning an error (.bazelrc turns -Wunused-parameter off
# for gls's own code; users typically have it on).
USER_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wunused-parameter",
    "-Werror",
]
