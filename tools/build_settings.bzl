"""A string build setting (bazel_skylib's string_flag is not available offline)."""

def _string_setting_impl(ctx):
    value = ctx.build_setting_value
    if value not in ctx.attr.values:
        fail("%s: '%s' is not one of %s" % (ctx.label, value, ctx.attr.values))
    return []

string_setting = rule(
    implementation = _string_setting_impl,
    build_setting = config.string(flag = True),
    attrs = {"values": attr.string_list(mandatory = True)},
    doc = "A command-line string flag restricted to `values`.",
)
