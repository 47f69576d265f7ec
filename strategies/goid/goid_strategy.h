// strategies/goid/goid_strategy.h: contexts follow stacks: threads and
// fibers.
//
// What this is for: context values that stay with the flow of execution when
// fibers (Boost.Context, Boost.Fiber, any user-space stack switch) share a
// thread. The running flow is identified by the stack its stack pointer is
// in, as the process already knows it: a thread's stack as the threading
// runtime reports it (pthread_getattr_np), a fiber's stack as the fiber's
// stack allocator registered it. Nothing is planted on the stack and no
// variable has to be switched along with the fiber. Each stack maps to at
// most one bound context, so several fibers on one thread, each inside its
// own SetValues and switching in the middle of it, each see only their own
// values; a fiber moved to another thread keeps its values.
//
// What this is not:
//   * Automatic for fibers. Every stack a fiber runs on must be registered
//     for the fiber's whole life (including its unwinding): wrap the fiber
//     library's stack allocator in `gls::goid::RegisteredStackAllocator`, or
//     hold a `gls::goid::ScopedStack` over a stack you manage yourself. A
//     SetValues on an unregistered, non-thread stack aborts with a message
//     saying so; a GetValue there finds nothing. (An unregistered fiber
//     stack that is a buffer inside a thread's stack is taken for part of
//     that thread.) Segmented (split) stacks are not supported.
//   * The fastest strategy: GetValue costs a page-table walk (four or five
//     dependent loads, no lock, no writes; about 3 ns, twice the
//     thread_local strategy and half of boost::fibers::fiber_specific_ptr).
//   * Portable beyond Linux with glibc on x86-64 (aarch64 should build but
//     is untested). Stacks must lie below 2^47. Threads must come from
//     pthreads (their stack bounds are asked of pthread_getattr_np).
//
// Guarantees:
//   * Current() is lock-free, wait-free, allocation-free and writes no
//     memory; async-signal-safe. A signal handler sees the interrupted
//     flow's values, never another flow's:
//       - on the interrupted stack (no SA_ONSTACK), always;
//       - on an alternate signal stack (sigaltstack + SA_ONSTACK) the
//         strategy knows of, on x86-64 Linux: one set before the thread's
//         first SetValues (the strategy asks sigaltstack() then), or one
//         named by a gls::goid::ScopedSignalStack. The read follows the
//         frame-pointer chain from GetValue to the handler, reading only
//         inside the alternate stack, and looks up the stack pointer the
//         kernel saved for the interrupted flow in its signal frame. So the
//         handler, and anything between it and GetValue, must keep frame
//         pointers (gls's own code does: .bazelrc); where the chain or the
//         signal frame does not look right, the handler sees no values.
//         An alternate stack set after the first SetValues and not named
//         by a ScopedSignalStack, or one on another architecture: no values.
//         An alternate stack must not lie inside a thread's or fiber's stack
//         (a local array): a handler there is taken for that stack's flow.
//     Outside every stack the strategy knows, Current() costs one TLS load
//     and a compare more than before; no syscall.
//   * A thread's stack is registered on the thread's first SetValues (or
//     first ScopedStack inside that stack) and unregistered when the thread
//     exits (a thread_local destructor), before the runtime can hand the
//     memory to another thread: a new thread on a reused stack starts with no
//     values and no goroutine id. After fork(), the child drops the
//     registrations of the threads that did not survive the fork.
//   * A stack registered again, e.g. recycled by a pooled stack allocator,
//     gets a fresh registration: the new fiber starts with no values and no
//     goroutine id even if the old fiber was abandoned mid-scope.
//   * Registrations may nest (a fiber stack buffer that is a local of a
//     thread or of another fiber): the innermost one owns its range, and
//     unregistering it hands the range back to the one around it. Live
//     registrations must not otherwise overlap. Ownership is tracked per 16
//     bytes: unaligned ends are rounded inwards.
//   * Registering and unregistering take a process-wide mutex (readers never
//     do) and cost time proportional to the stack's size in 64 KiB blocks:
//     about 0.7 us per fiber for a 64 KiB pooled stack, on top of Boost's
//     0.04 us (BM_FiberLifetime, -c opt, on a busy 2-core machine).
//     A thread registers its stack once (pthread_getattr_np; for the main
//     thread glibc reads /proc/self/maps), capped at the stack's top 256 MiB.
//   * Bookkeeping memory: the stack table (stack_table.h) costs 1 KiB per
//     8 MiB of registered stack plus 136 bytes per block, page or line
//     holding a stack boundary; a fresh 8 MiB thread stack at most 1424
//     bytes (page aligned; 1968 if its ends are not), checked by
//     stack_table_test and goid_strategy_test. Plus a 64 KiB mid node per
//     8 GiB of address space that holds stacks, shared by all of them, and
//     a registration record per stack. Table nodes are kept (and reused)
//     after unregistering.
//   * Under ASan or TSan, fiber switches must be announced to the sanitizer
//     as for any fiber code (see strategies/testing/annotated_fiber.h); the
//     strategy itself reads the real stack pointer, so ASan's fake stacks do
//     not confuse it.
//
// Example:
//
//   #include "boost/context/fiber.hpp"
//   #include "boost/context/pooled_fixedsize_stack.hpp"
//   #include "gls/context_manager.h"
//   #include "strategies/goid/goid_strategy.h"
//
//   gls::ContextManager mgr(gls::GoidStrategy());
//
//   gls::goid::RegisteredStackAllocator<boost::context::pooled_fixedsize_stack>
//       stacks;
//   boost::context::fiber f(std::allocator_arg, stacks,
//                           [](boost::context::fiber&& caller) {
//     mgr.SetValues({{"request", 1}}, [&] {
//       caller = std::move(caller).resume();  // switch away mid-scope
//       assert(*mgr.GetValue("request")->TryAs<int>() == 1);  // still ours
//     });
//     return std::move(caller);
//   });
//   f = std::move(f).resume();  // runs the fiber until it switches back
//   assert(mgr.GetValue("request") == nullptr);  // this flow has none
//   f = std::move(f).resume();  // finishes the fiber
#ifndef STRATEGIES_GOID_GOID_STRATEGY_H_
#define STRATEGIES_GOID_GOID_STRATEGY_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "gls/strategy.h"
#include "strategies/internal/registering_stack_allocator.h"

namespace gls {

// GoidStrategy()
//
// The process's one goid strategy. name() is "goid".
const Strategy& GoidStrategy();

namespace goid_internal {
// GoidStrategy().Current() without a virtual call, for the default
// strategy's inline read. Not for users.
Context* CurrentContext() noexcept;
struct Registration;
Registration* RegisterStack(const void* lo, size_t size);
void UnregisterStack(Registration* registration) noexcept;
void RegisterAllocatedStack(void* lo, size_t size);
void UnregisterAllocatedStack(void* lo, size_t size) noexcept;
// The calling thread's alternate signal stack as the strategy knows it
// (ScopedSignalStack; empty: none).
struct SignalStackRange {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
};
SignalStackRange SetSignalStack(const void* lo, size_t size);
void RestoreSignalStack(SignalStackRange previous) noexcept;
}  // namespace goid_internal

namespace goid {

// ScopedStack
//
// Registers the stack memory [lo, lo + size) with the goid strategy for the
// lifetime of the object: code running with its stack pointer in there is
// one flow of execution of its own. Construct it before the first switch
// onto the stack and destroy it only after the last switch away from it
// (after the fiber finished or was unwound). A buffer inside the running
// thread's own stack is fine (the thread's stack is registered first and
// gets the range back afterwards). Throws std::bad_alloc. Neither copyable
// nor movable.
//
// Example: a fiber on a buffer the caller owns.
//
//   alignas(16) static char stack[64 * 1024];
//   {
//     gls::goid::ScopedStack registration(stack, sizeof stack);
//     RunFiberOn(stack, sizeof stack);  // returns once the fiber is done
//   }
class ScopedStack {
 public:
  ScopedStack(const void* lo, size_t size)
      : registration_(goid_internal::RegisterStack(lo, size)) {}
  ~ScopedStack() { goid_internal::UnregisterStack(registration_); }
  ScopedStack(const ScopedStack&) = delete;
  ScopedStack& operator=(const ScopedStack&) = delete;

 private:
  goid_internal::Registration* const registration_;
};

// ScopedSignalStack
//
// Names [lo, lo + size) as the calling thread's alternate signal stack (the
// one it set, or is about to set, with sigaltstack) for the lifetime of the
// object, so that GetValue in a handler running there (SA_ONSTACK) sees the
// interrupted flow's values. Needed only when the alternate stack is set
// after the thread's first SetValues: one set before is found without it.
// Per thread, like sigaltstack itself: construct and destroy it on the
// thread whose stack it names, and destroy it before that memory is freed
// or reused. Restores the previously named stack (if any) on destruction.
// The memory must lie outside every thread and fiber stack (aborts with a
// message otherwise). Neither copyable nor movable. For crash-handler
// installers.
//
// Example: a per-thread crash handler installed after gls is in use.
//
//   static thread_local char* alt = new char[256 * 1024];
//   stack_t ss = {};
//   ss.ss_sp = alt;
//   ss.ss_size = 256 * 1024;
//   sigaltstack(&ss, nullptr);
//   static thread_local gls::goid::ScopedSignalStack named(alt, ss.ss_size);
//   // A handler installed with SA_ONSTACK now reads, with GetValue, the
//   // values of the scope this thread was interrupted in.
class ScopedSignalStack {
 public:
  ScopedSignalStack(const void* lo, size_t size)
      : previous_(goid_internal::SetSignalStack(lo, size)) {}
  ~ScopedSignalStack() { goid_internal::RestoreSignalStack(previous_); }
  ScopedSignalStack(const ScopedSignalStack&) = delete;
  ScopedSignalStack& operator=(const ScopedSignalStack&) = delete;

 private:
  const goid_internal::SignalStackRange previous_;
};

// RegisteredStackAllocator<Base>
//
// A stack allocator (the Boost.Context / Boost.Fiber StackAllocator concept:
// `stack_context allocate()`, `void deallocate(stack_context&)`) that
// registers each stack `Base` hands out, [sp - size, sp), from allocate()
// until deallocate(). Boost calls deallocate only after the fiber finished
// or was unwound, so the registration covers the fiber's whole life by
// construction. Works with fixedsize_stack, protected_fixedsize_stack and
// pooled_fixedsize_stack (a recycled stack is registered afresh); not with
// segmented_stack, nor with `preallocated` stacks (Boost never calls
// allocate() for those: use ScopedStack). Copyable if Base is.
//
// Example:
//
//   gls::goid::RegisteredStackAllocator<boost::context::fixedsize_stack>
//       stacks(boost::context::fixedsize_stack(256 * 1024));
//   boost::context::fiber f(std::allocator_arg, stacks, fn);
template <typename Base>
using RegisteredStackAllocator =
    strategies_internal::RegisteringStackAllocator<
        Base, goid_internal::RegisterAllocatedStack,
        goid_internal::UnregisterAllocatedStack>;

// IsRegisteredStack(address)
//
// True if `address` lies in a stack registered right now: a thread's stack
// after the thread's first SetValues and until it exits, or a ScopedStack /
// RegisteredStackAllocator stack. For checking a fiber setup and for tests.
// Lock-free.
bool IsRegisteredStack(const void* address);

}  // namespace goid
}  // namespace gls

#endif  // STRATEGIES_GOID_GOID_STRATEGY_H_
