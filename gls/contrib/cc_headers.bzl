"""cc_headers(): the headers of cc_library targets as runfiles.

For tests that run the compiler themselves (a compile-failure test), which
need the headers a target's users include, including those of libraries in
other packages that only export their targets, not their files.
"""

def _cc_headers_impl(ctx):
    headers = depset(transitive = [
        dep[CcInfo].compilation_context.headers
        for dep in ctx.attr.deps
    ])
    return [DefaultInfo(
        files = headers,
        runfiles = ctx.runfiles(transitive_files = headers),
    )]

cc_headers = rule(
    implementation = _cc_headers_impl,
    attrs = {"deps": attr.label_list(providers = [CcInfo])},
    doc = "Every header `deps` make visible to their users, as runfiles.",
)
