// strategies/stack_tag/stack_tag_strategy.h: the context id written into the
// call stack itself, as in the Go original.
//
// What this is for: goroutine-local storage that follows any stack, with no
// thread-local state and no cooperation from a scheduler. The context id is
// written as a chain of calls to 18 tag functions (a start marker, one
// function per hexadecimal digit, an end marker) below the SetValues scope,
// and read back by walking the stack from GetValue up to the innermost start
// marker (strategies/stack_tag/internal/tags.h). So it is right for threads
// and for stackful fibers that switch on one thread (Boost.Context,
// Boost.Fiber): each fiber's stack carries its own tag.
//
// What this is not: fast like thread_local. GetValue costs a stack walk
// proportional to the number of frames between it and the SetValues scope
// (about 1 ns per frame with the frame-pointer walker), and, when there is no
// scope at all, a walk to the end of the frame-pointer chain (see "Outside
// every scope").
//
// Walkers (docs/strategies.md):
//   * StackTagStrategy(): the build's default walker, set with
//     --//strategies/stack_tag:walker=frame_pointer (default) or =libunwind.
//     frame_pointer follows saved %rbp links (every gls build keeps frame
//     pointers: .bazelrc) and redoes the walk with libunwind when a link looks
//     wrong (never inside a signal handler, see Guarantees); libunwind uses
//     DWARF CFI and needs no frame pointers.
//   * StackTagLibunwindStrategy(): always libunwind ("stack_tag_libunwind").
//   Both read the same tags, so managers using either interoperate.
//
// Self-check: the first use encodes and decodes known ids (including
// 2^64-1) with each walker separately (the frame-pointer walker without its
// libunwind fallback). If only the frame-pointer walker fails, it reads with
// libunwind instead (right, slower). If both fail — the tag functions were
// inlined, folded or turned into tail calls by some compiler or linker — the
// strategy falls back to the thread_local strategy (correct for threads, not
// for fibers). Either way a diagnostic naming the likely cause goes to
// stderr, and with GLS_STACK_TAG_STRICT=1 in the environment the process
// aborts instead.
//
// Code without frame pointers between a scope and a read (a libc callback,
// consumer code built -fomit-frame-pointer): gls's own targets keep frame
// pointers whatever --copt says (tools/copts.bzl), so the tag frames stay on
// the chain. A junk %rbp that looks wrong sends the read to libunwind; one
// that looks right can lead the walk past the scope, which the read detects
// on the thread's own stack (the innermost live tag there is recorded per
// thread), on registered fiber stacks (recorded per stack, so also after the
// fiber moved to another thread: registered_stack.h) and, on unregistered
// fiber stacks, whenever a tag entered on this thread is live off its stack:
// the read is then redone with libunwind, and the first such read in the
// process prints one line to stderr. Not detected: a fiber on an
// unregistered stack that migrated between threads since its scope began
// (docs/strategies.md).
//
// Outside every scope (frame-pointer walker), on a thread's own stack: the
// walk goes up to the end of the frame-pointer chain. Where that chain ends
// with a null link (glibc leaves one for std::thread and pthread_create
// threads), the answer is "none" at once. Where it ends in junk (the main
// thread, a thread started by code without frame pointers), the first such
// read on the thread, outside a signal handler, learns the thread's stack
// bounds (pthread_getattr_np) and its root frame (the outermost frame that
// keeps a frame pointer, by one libunwind walk), cached per thread in
// initial-exec TLS; from then on a chain that goes through that root frame
// and breaks above it answers "none" from the frame-pointer walk alone, no
// libunwind (up to four root frames per thread; a thread that reads from
// more entry points may learn again). No read writes memory shared between
// threads: the statistics in internal/tags.h are per thread.
// Limits: a callback called by code without frame pointers (junk in %rbp)
// breaks the chain below the root: outside a signal handler the read is
// redone with libunwind (right, slower, counted per thread), inside one it
// answers "none" (below); a junk link that looks right is caught as above.
// On a fiber's stack or an alternate signal stack registered through
// registered_stack.h the walk is bounded by that stack, and a link leaving
// it ends the walk ("none" unless the stack's record shows a live scope the
// walk missed, which libunwind then finds): reads outside every scope there
// need no libunwind. On stacks nobody registered the walk is not bounded
// and behaves as before: a broken chain outside a handler means a libunwind
// walk, also outside every scope.
//
// Reads stay on the running stack: a thread's bounds are learned
// (pthread_getattr_np) at its first scope or first broken chain outside a
// signal handler, the main thread's before main, and until then a walk is
// bounded by the thread pointer, which glibc places above the thread's
// stack. So on the thread's own stack every frame word the walk reads lies
// between the reader's frame (or, after a signal frame, the interrupted
// %rsp) and the stack top, at 8-aligned, strictly increasing frame
// addresses; the reads are not instrumented by sanitizers (a junk link into
// the stack may point at an ASan redzone). The same holds on registered
// stacks (registered_stack.h). On a stack nobody registered (a fiber's),
// links are only checked to be increasing, aligned and at most 1 MiB apart,
// and a plausible junk link can lead the walk off the stack. A thread's first scope (SetValues, Run) must not be in a
// signal handler: learning the bounds is not async-signal-safe.
//
// Guarantees: thread-safe. Current() takes no lock and allocates nothing with
// the frame-pointer walker, and is then async-signal-safe once the strategy
// has been used outside the handler: GetValue in a signal handler never sees
// another flow's values, and sees the interrupted scope's, on the
// interrupted stack and on an alternate signal stack (sigaltstack +
// SA_ONSTACK) alike, unless the signal landed in code whose %rbp is not a
// frame pointer (code built without them: libc, a sanitizer's runtime),
// where it sees none. The walk crosses from a handler on an alternate stack
// to the interrupted stack through the kernel's signal frame, which it
// recognizes (x86-64 Linux); the handler, and anything between it and
// GetValue, must keep frame pointers. Inside a handler (a signal frame on
// the walked chain) the walk never falls back to libunwind, which is not
// async-signal-safe: where the chain breaks there, the answer is "none".
// Outside handlers, a chain broken below the thread's root frame (or any
// broken chain on a fiber's stack) falls back to a libunwind walk, which
// allocates for stacks deeper than 16 frames; learning a thread's bounds
// and root frame (above) happens only at such a point, never in a handler. The libunwind walker (StackTagLibunwindStrategy, or
// --//strategies/stack_tag:walker=libunwind) is not async-signal-safe and
// must not be read in a handler.
//
// Example:
//
//   gls::ContextManager mgr(gls::StackTagStrategy());
//   mgr.SetValues({{"request_id", 42}}, [&] {
//     // Any fiber resumed from here that set its own values sees its own.
//     Handle();
//   });
#ifndef STRATEGIES_STACK_TAG_STACK_TAG_STRATEGY_H_
#define STRATEGIES_STACK_TAG_STACK_TAG_STRATEGY_H_

#include "absl/status/status.h"
#include "gls/strategy.h"

namespace gls {

// StackTagStrategy()
//
// The stack_tag strategy with the build's default walker. Runs the self-check
// on first call.
const Strategy& StackTagStrategy();

// StackTagLibunwindStrategy()
//
// The stack_tag strategy that always walks with libunwind.
const Strategy& StackTagLibunwindStrategy();

namespace stack_tag_internal {
// StackTagStrategy().Current() without a virtual call, for the default
// strategy's inline read. Not for users.
Context* DefaultWalkerCurrent() noexcept;
}  // namespace stack_tag_internal

// StackTagSelfCheck()
//
// The result of the self-check (OK, or an error naming the likely cause).
// When it is an error, the stack_tag strategies use the thread_local
// strategy instead (see above).
const absl::Status& StackTagSelfCheck();

}  // namespace gls

#endif  // STRATEGIES_STACK_TAG_STACK_TAG_STRATEGY_H_
