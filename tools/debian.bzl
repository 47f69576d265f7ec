"""Repositories that expose Debian's packaged C++ libraries under the labels
their upstream Bazel builds use.

`@com_google_absl//absl/container:flat_hash_map`, `@com_google_googletest//:gtest_main`,
`@com_github_google_benchmark//:benchmark`, `@libunwind//:libunwind` and
`@boost//:context`, `@spdlog//:spdlog`, `@com_github_grpc_grpc//:grpc++` and
`@com_google_protobuf//:protobuf` resolve to the headers in /usr/include and the shared
libraries Debian installs; link flags come from pkg-config where Debian ships a
.pc file. Nothing is vendored or downloaded. A workspace with network access
can swap any of them for the upstream source archive by declaring that
repository before calling `gls_dependencies()`.

A missing package fails the fetch with the name of the Debian package to
install (tools/setup installs them all).
"""

_LIBDIR = "/usr/lib/x86_64-linux-gnu"

def _require(ctx, path, package):
    if not ctx.path(path).exists:
        fail("%s not found: install Debian's %s (tools/setup installs every package gls needs)" % (path, package))

def _pkg_config_libs(ctx, module, package):
    pkg_config = ctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config not found: install Debian's pkg-config (tools/setup does)")
    result = ctx.execute([pkg_config, "--libs", module])
    if result.return_code != 0:
        fail("pkg-config --libs %s failed (%s): install Debian's %s" % (module, result.stderr.strip(), package))
    return result.stdout.strip().split(" ")

def _library(name, linkopts, deps = [], defines = []):
    return """cc_library(
    name = "{name}",
    defines = {defines},
    linkopts = {linkopts},
    deps = {deps},
    visibility = ["//visibility:public"],
)
""".format(name = name, defines = repr(defines), linkopts = repr(linkopts), deps = repr(deps))

# Abseil targets whose .pc name does not say which package they live in.
_ABSL_PACKAGE_OF = {
    "algorithm_container": "algorithm",
    "any": "types",
    "bad_any_cast": "types",
    "bad_optional_access": "types",
    "bad_variant_access": "types",
    "compare": "types",
    "optional": "types",
    "span": "types",
    "variant": "types",
    "any_invocable": "functional",
    "bind_front": "functional",
    "function_ref": "functional",
    "atomic_hook": "base",
    "base_internal": "base",
    "config": "base",
    "core_headers": "base",
    "dynamic_annotations": "base",
    "endian": "base",
    "errno_saver": "base",
    "fast_type_id": "base",
    "log_severity": "base",
    "malloc_internal": "base",
    "prefetch": "base",
    "pretty_function": "base",
    "raw_logging_internal": "base",
    "spinlock_wait": "base",
    "strerror": "base",
    "throw_delegate": "base",
    "bits": "numeric",
    "int128": "numeric",
    "numeric_representation": "numeric",
    "btree": "container",
    "compressed_tuple": "container",
    "container_common": "container",
    "container_memory": "container",
    "counting_allocator": "container",
    "fixed_array": "container",
    "flat_hash_map": "container",
    "flat_hash_set": "container",
    "hash_function_defaults": "container",
    "hash_policy_traits": "container",
    "hashtable_debug": "container",
    "hashtable_debug_hooks": "container",
    "hashtablez_sampler": "container",
    "inlined_vector": "container",
    "inlined_vector_internal": "container",
    "layout": "container",
    "node_hash_map": "container",
    "node_hash_set": "container",
    "node_slot_policy": "container",
    "raw_hash_map": "container",
    "raw_hash_set": "container",
    "sample_recorder": "profiling",
    "exponential_biased": "profiling",
    "periodic_sampler": "profiling",
    "city": "hash",
    "low_level_hash": "hash",
    "cord": "strings",
    "cord_internal": "strings",
    "cordz_functions": "strings",
    "cordz_handle": "strings",
    "cordz_info": "strings",
    "cordz_sample_token": "strings",
    "cordz_statistics": "strings",
    "cordz_update_scope": "strings",
    "cordz_update_tracker": "strings",
    "str_format": "strings",
    "str_format_internal": "strings",
    "strings_internal": "strings",
    "statusor": "status",
    "civil_time": "time",
    "time_zone": "time",
    "kernel_timeout_internal": "synchronization",
    "graphcycles_internal": "synchronization",
    "demangle_internal": "debugging",
    "debugging_internal": "debugging",
    "examine_stack": "debugging",
    "failure_signal_handler": "debugging",
    "leak_check": "debugging",
    "stacktrace": "debugging",
    "symbolize": "debugging",
    "scoped_set_env": "flags",
    "type_traits": "meta",
}

def _absl_impl(ctx):
    _require(ctx, "/usr/include/absl/base/config.h", "libabsl-dev")
    pcdir = ctx.path(_LIBDIR + "/pkgconfig")
    packages = {}
    for entry in pcdir.readdir():
        base = entry.basename
        if not base.startswith("absl_") or not base.endswith(".pc"):
            continue
        target = base[len("absl_"):-len(".pc")]
        package = _ABSL_PACKAGE_OF.get(target)
        if package == None:
            # absl_flags_parse -> absl/flags:parse; absl_random_random -> absl/random:random;
            # absl_strings -> absl/strings:strings.
            head = target.split("_")[0]
            if ctx.path("/usr/include/absl/" + target).exists:
                package = target
            elif ctx.path("/usr/include/absl/" + head).exists:
                package = head
                if target.startswith(head + "_"):
                    target = target[len(head) + 1:]
            else:
                continue
        linkopts = _pkg_config_libs(ctx, base[:-len(".pc")], "libabsl-dev")
        packages.setdefault(package, []).append(_library(target, linkopts))
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "")
    for package, rules in packages.items():
        ctx.file("absl/%s/BUILD.bazel" % package, "\n".join(rules))

debian_absl_repository = repository_rule(
    implementation = _absl_impl,
    doc = "Debian's libabsl-dev as @com_google_absl//absl/<package>:<target>.",
    local = True,
)

def _simple_impl(ctx):
    for header, package in ctx.attr.require.items():
        _require(ctx, header, package)
    rules = []
    for target, linkopts in ctx.attr.targets.items():
        resolved = []
        for opt in linkopts:
            if opt.startswith("pkg-config:"):
                resolved.extend(_pkg_config_libs(ctx, opt[len("pkg-config:"):], ctx.attr.require.values()[0]))
            else:
                resolved.append(opt)
        rules.append(_library(target, resolved, defines = ctx.attr.defines.get(target, [])))
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(rules))

debian_library_repository = repository_rule(
    implementation = _simple_impl,
    doc = "A Debian library as a repository of cc_library targets with the given link flags.",
    attrs = {
        "require": attr.string_dict(doc = "header that must exist -> Debian package providing it"),
        "targets": attr.string_list_dict(doc = "target -> link flags (`pkg-config:MODULE` expands)"),
        "defines": attr.string_list_dict(doc = "target -> preprocessor definitions its users need"),
    },
    local = True,
)

def debian_repositories():
    """Declares every Debian-backed repository gls uses, unless already declared."""
    existing = native.existing_rules()
    if "com_google_absl" not in existing:
        debian_absl_repository(name = "com_google_absl")
    if "com_google_googletest" not in existing:
        debian_library_repository(
            name = "com_google_googletest",
            require = {"/usr/include/gtest/gtest.h": "libgtest-dev", "/usr/include/gmock/gmock.h": "libgmock-dev"},
            targets = {
                "gtest": ["-lgtest", "-pthread"],
                "gtest_main": ["-lgtest_main", "-lgtest", "-pthread"],
                "gmock": ["-lgmock", "-lgtest", "-pthread"],
                "gmock_main": ["-lgmock_main", "-lgmock", "-lgtest", "-pthread"],
            },
        )
    if "com_github_google_benchmark" not in existing:
        debian_library_repository(
            name = "com_github_google_benchmark",
            require = {"/usr/include/benchmark/benchmark.h": "libbenchmark-dev"},
            targets = {
                "benchmark": ["-lbenchmark", "-pthread"],
                "benchmark_main": ["-lbenchmark_main", "-lbenchmark", "-pthread"],
            },
        )
    if "libunwind" not in existing:
        debian_library_repository(
            name = "libunwind",
            require = {"/usr/include/x86_64-linux-gnu/libunwind.h": "libunwind-dev"},
            targets = {"libunwind": ["pkg-config:libunwind"]},
        )
    if "boost" not in existing:
        debian_library_repository(
            name = "boost",
            require = {
                "/usr/include/boost/context/fiber.hpp": "libboost-context-dev",
                "/usr/include/boost/fiber/all.hpp": "libboost-fiber-dev",
                "/usr/include/boost/thread/tss.hpp": "libboost-thread-dev",
                "/usr/include/boost/asio.hpp": "libboost1.74-dev",
            },
            targets = {
                "context": ["-lboost_context"],
                "fiber": ["-lboost_fiber", "-lboost_context"],
                "thread": ["-lboost_thread", "-pthread"],
                # Header-only: Asio and Beast.
                "asio": ["-pthread"],
            },
        )
    if "spdlog" not in existing:
        # Debian builds spdlog as a shared library over the external fmt; its
        # headers need the same three definitions (pkg-config --cflags spdlog).
        debian_library_repository(
            name = "spdlog",
            require = {"/usr/include/spdlog/spdlog.h": "libspdlog-dev", "/usr/include/fmt/format.h": "libfmt-dev"},
            targets = {"spdlog": ["-lspdlog", "-lfmt", "-pthread"]},
            defines = {"spdlog": ["SPDLOG_SHARED_LIB", "SPDLOG_COMPILED_LIB", "SPDLOG_FMT_EXTERNAL"]},
        )
    if "com_google_protobuf" not in existing:
        # Protobuf 3.21's runtime; generated code comes from Debian's protoc
        # (tools/grpc.bzl).
        debian_library_repository(
            name = "com_google_protobuf",
            require = {"/usr/include/google/protobuf/message.h": "libprotobuf-dev", "/usr/bin/protoc": "protobuf-compiler"},
            targets = {"protobuf": ["pkg-config:protobuf", "-pthread"]},
        )
    if "com_github_grpc_grpc" not in existing:
        # gRPC 1.51's C++ library (with its C core, Abseil, re2, c-ares and
        # OpenSSL, as grpc++.pc lists them); grpc_cpp_plugin generates the
        # service code (tools/grpc.bzl).
        debian_library_repository(
            name = "com_github_grpc_grpc",
            require = {"/usr/include/grpcpp/grpcpp.h": "libgrpc++-dev", "/usr/bin/grpc_cpp_plugin": "protobuf-compiler-grpc"},
            targets = {"grpc++": ["pkg-config:grpc++", "pkg-config:protobuf", "-pthread"]},
        )
