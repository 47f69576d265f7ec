"""gls_dependencies(): everything a workspace needs to build @gls//gls offline.

Downstream use, in the consumer's WORKSPACE:

    local_repository(name = "gls", path = "/path/to/gls")  # or git_repository
    load("@gls//tools:deps.bzl", "gls_dependencies")
    gls_dependencies()

then `deps = ["@gls//gls"]` in a cc_library/cc_binary. Repositories the
workspace already declared (for example Abseil from a source archive) are kept.
"""

load("//tools:debian.bzl", "debian_repositories")
load("//tools:offline.bzl", "offline_rule_repositories")

def gls_dependencies():
    offline_rule_repositories()
    debian_repositories()
