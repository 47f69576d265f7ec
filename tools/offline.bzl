"""Offline stand-ins for the rule repositories Bazel 4.2.3 expects to download.

Debian's bazel-bootstrap builds C++ with its native rules, but the tools it
embeds (`@bazel_tools`) still load `@rules_cc`, `@rules_java`, `@rules_proto`,
`@platforms` and friends, and every test action references
`@remote_coverage_tools`. With no network those downloads fail before
anything builds. The repository rules here generate minimal versions of those
repositories on the fly: the rule sets forward to Bazel's built-in native
rules, `@platforms` declares the standard OS and CPU constraints, and the
coverage tools are stubs that fail with a message (`bazel coverage` is not
supported offline).

What this is not: a replacement for the real rule sets. A workspace that needs
real rules_cc/rules_java features should declare the real archives before
calling `gls_dependencies()`; declared repositories are never overridden.
"""

def _forwarding_rules_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "")
    for package, rules in ctx.attr.packages.items():
        lines = ['"""Offline %s: every rule forwards to the native rule of Bazel 4.2.3."""' % ctx.name]
        for rule in rules:
            lines.append("")
            lines.append("def %s(**kwargs):" % rule)
            lines.append("    native.%s(**kwargs)" % rule)
        ctx.file(package + "/BUILD.bazel", "")
        ctx.file(package + "/defs.bzl", "\n".join(lines) + "\n")
    for path, content in ctx.attr.extra_files.items():
        ctx.file(path, content)

forwarding_rules_repository = repository_rule(
    implementation = _forwarding_rules_impl,
    attrs = {
        "packages": attr.string_list_dict(doc = "package -> native rules its defs.bzl forwards"),
        "extra_files": attr.string_dict(doc = "path -> content of further files"),
    },
    local = False,
)

_OS = ["linux", "osx", "macos", "ios", "tvos", "watchos", "windows", "freebsd", "openbsd", "android", "qnx", "none", "emscripten", "wasi"]
_CPU = ["x86_64", "x86_32", "i386", "aarch64", "arm", "arm64", "arm64_32", "arm64e", "armv7", "armv7k", "ppc", "s390x", "mips64", "riscv64", "wasm32", "wasm64"]

def _constraints(setting, values):
    return "\n".join([
        'package(default_visibility = ["//visibility:public"])',
        'constraint_setting(name = "%s")' % setting,
        "[constraint_value(name = n, constraint_setting = \":%s\") for n in %s]" % (setting, repr(values)),
        "",
    ])

_COVERAGE_BUILD = """# Offline stub: every test action references these two targets, but
# `bazel coverage` itself is not supported without the real tools.
package(default_visibility = ["//visibility:public"])

sh_binary(name = "coverage_report_generator", srcs = ["unsupported.sh"])

sh_binary(name = "lcov_merger", srcs = ["unsupported.sh"])
"""

_COVERAGE_SCRIPT = """#!/bin/sh
echo "bazel coverage needs the real remote_coverage_tools; this offline workspace has a stub" >&2
exit 1
"""

def _maybe(existing, name, **kwargs):
    if name not in existing:
        forwarding_rules_repository(name = name, **kwargs)

def offline_rule_repositories():
    """Declares every rule repository Bazel 4.2.3 would otherwise download.

    Each is declared only if the workspace has not declared it already.
    """
    existing = native.existing_rules()
    _maybe(existing, "rules_cc", packages = {"cc": [
        "cc_binary",
        "cc_import",
        "cc_library",
        "cc_proto_library",
        "cc_test",
        "cc_toolchain",
        "cc_toolchain_suite",
        "fdo_prefetch_hints",
        "fdo_profile",
        "objc_import",
        "objc_library",
    ]})
    _maybe(existing, "rules_java", packages = {"java": [
        "java_binary",
        "java_import",
        "java_library",
        "java_lite_proto_library",
        "java_package_configuration",
        "java_plugin",
        "java_proto_library",
        "java_runtime",
        "java_test",
        "java_toolchain",
    ]})
    _maybe(existing, "rules_proto", packages = {"proto": ["proto_lang_toolchain", "proto_library"]})
    _maybe(existing, "bazel_skylib", extra_files = {"lib/BUILD.bazel": ""})
    _maybe(existing, "rules_pkg")
    _maybe(existing, "platforms", extra_files = {
        "os/BUILD.bazel": _constraints("os", _OS),
        "cpu/BUILD.bazel": _constraints("cpu", _CPU),
    })
    _maybe(existing, "remote_coverage_tools", extra_files = {
        "BUILD.bazel": _COVERAGE_BUILD,
        "unsupported.sh": _COVERAGE_SCRIPT,
    })
