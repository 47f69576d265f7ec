"""opt_files: builds its srcs with -c opt whatever the command line says.

`bazel run //bench:compare` (no flags) must measure optimized binaries; this
rule puts opt builds of the benchmarks in the runfiles of the fastbuild
compare tool.
"""

def _to_opt_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

_to_opt = transition(
    implementation = _to_opt_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _opt_files_impl(ctx):
    files = depset(transitive = [src[DefaultInfo].files for src in ctx.attr.srcs])
    runfiles = ctx.runfiles(transitive_files = files)
    for src in ctx.attr.srcs:
        runfiles = runfiles.merge(src[DefaultInfo].default_runfiles)
    return [DefaultInfo(files = files, runfiles = runfiles)]

opt_files = rule(
    implementation = _opt_files_impl,
    attrs = {
        "srcs": attr.label_list(cfg = _to_opt),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
