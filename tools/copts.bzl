"""The one set of compiler options every gls target uses."""

GLS_COPTS = [
    # gls's own code keeps frame pointers whatever the build around it says
    # (target copts come after --copt): a consumer building with
    # --copt=-fomit-frame-pointer still gets tag frames, and frames between
    # them and a read, that the stack_tag frame-pointer walk can follow.
    "-fno-omit-frame-pointer",
    "-mno-omit-leaf-frame-pointer",
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
