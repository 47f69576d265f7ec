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
// binaries; TSan reads __tsan_default_suppressions at start-up.

extern "C" const char* __tsan_default_suppressions() {
  return
      // Abseil's Mutex deadlock detector: its graph is guarded by an
      // absl::base_internal::SpinLock whose acquire/release TSan cannot
      // see in an uninstrumented libabsl_synchronization.
      "race:absl::debian3::synchronization_internal::GraphCycles\n";
}
