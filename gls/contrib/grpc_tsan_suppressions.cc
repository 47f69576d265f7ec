// ThreadSanitizer suppressions for programs that link Debian's gRPC 1.51 and
// Abseil, which are not built with -fsanitize=thread: TSan sees their
// memory accesses only through the libc functions it intercepts (memmove,
// malloc, ...), not their atomics or their absl::Mutex (futex-based, and
// annotated for TSan only in a TSan build), so it reports races between
// accesses that those libraries order themselves. Each entry names a
// function inside gRPC or Abseil only (a `race:` pattern matches any frame
// of a report's stacks, so an entry naming gls, a test, or a generic frame
// such as a std:: function would hide real races of ours: there are none
// here). Linked into //gls/contrib:grpc_test and the examples/grpc_log
// binaries, into the executable itself (linkstatic: from a shared library
// the TSan runtime's weak default wins); TSan reads
// __tsan_default_suppressions at start-up. They do not make these tests
// TSan-clean (docs/benchmarks.md, "gRPC and ThreadSanitizer").

extern "C" const char* __tsan_default_suppressions() {
  return
      // Abseil's Mutex deadlock detector: its graph is guarded by an
      // absl::base_internal::SpinLock whose acquire/release TSan cannot
      // see in an uninstrumented libabsl_synchronization.
      "race:absl::debian3::synchronization_internal::GraphCycles\n"
      // The uninstrumented libraries' own memory copies: TSan intercepts
      // memcpy, memmove and friends even when an uninstrumented library
      // calls them, and records them as that thread's accesses, ordered by
      // nothing TSan can see. Ignored for calls made directly from these
      // libraries (gls calls none of them; each pattern matches exactly one
      // library, TSan checks that, so gls's own libgls_Scontrib_Slibgrpc.so
      // is never matched).
      "called_from_lib:/libabsl_graphcycles_internal.so.\n"
      "called_from_lib:/libgrpc.so.\n"
      "called_from_lib:/libgrpc++.so.\n"
      "called_from_lib:/libgpr.so.\n"
      "called_from_lib:/libupb.so.\n"
      "called_from_lib:/libprotobuf.so.\n"
      "called_from_lib:/libabsl_random_internal_pool_urbg.so.\n"
      "called_from_lib:/libabsl_synchronization.so.\n";
}
