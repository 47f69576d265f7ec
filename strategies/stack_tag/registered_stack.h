// strategies/stack_tag/registered_stack.h: telling the stack_tag strategy
// where a fiber's stack ends, so its stack walks stay inside it.
//
// What this is for: the stack_tag strategy reads a scope's id by following
// the frame-pointer chain up the running stack. On a thread's own stack the
// walk knows the stack's bounds (pthread_getattr_np) and never reads outside
// them, whatever junk code without frame pointers left in %rbp. On a fiber's
// stack (Boost.Context, Boost.Fiber, any user-space stack switch) it knows
// nothing by itself: links are only checked one by one (increasing, aligned,
// at most 1 MiB apart), so a plausible junk link can lead the walk past the
// stack's end, into memory that may not be mapped. Registering the stack
// gives the walk its bounds there too:
//   * no word outside [lo, lo + size) is read on that stack; a link that
//     would leave it (the fiber library's entry code, or junk) ends the walk
//     there (internal/tags.h WalksLeftRegisteredStack);
//   * the innermost live scope on the stack is recorded with the stack, as
//     for a thread's stack, so a walk that ended (or was led by a junk link)
//     past a live scope on it is caught and redone with libunwind (right,
//     slower, counted: MissedScopesCaught), also after the fiber moved to
//     another thread (work-stealing schedulers); with no live scope missed,
//     the answer is "none" without libunwind.
// The same holds for an alternate signal stack (sigaltstack) registered
// with ScopedStack.
//
// What this is not: needed for right answers when every frame between a
// scope and a read keeps frame pointers (gls's own code always does); nor
// the goid strategy's registration (gls::goid::RegisteredStackAllocator),
// which is separate: a program that uses both strategies on fibers wraps
// its allocator in both. Segmented stacks are not supported.
//
// Guarantees:
//   * A walk on a registered stack reads only inside it (from the reader's
//     frame up to the stack's top); reads stay async-signal-safe, lock-free
//     and allocation-free. Finding the bounds costs a few dependent loads,
//     only for walks that start off the thread's own stack.
//   * Registering and unregistering take a process-wide mutex (readers never
//     do) and cost time proportional to the stack's size in 64 KiB blocks.
//     Memory: about 1 KiB per 8 MiB of registered stack plus 136 bytes per
//     stack boundary (strategies/goid/stack_table.h), kept for reuse.
//   * Live registrations must not overlap: a later one takes over the
//     overlap, and unregistering either leaves the overlap unregistered
//     (walks there are then checked link by link, as before). A stack
//     inside a thread's own stack (a local buffer) is walked with the
//     thread's bounds, which contain it.
//   * fork(): registrations stay in the child (its address space still holds
//     the stacks), and the child can register and unregister (the lock is
//     held across the fork, then released in both processes).
//   * Bad ranges (null, empty, wrapping, above 2^47) throw
//     std::invalid_argument naming the range; nothing is registered.
//
// Example:
//
//   #include "boost/context/fiber.hpp"
//   #include "boost/context/protected_fixedsize_stack.hpp"
//   #include "strategies/stack_tag/registered_stack.h"
//
//   gls::stack_tag::RegisteredStackAllocator<
//       boost::context::protected_fixedsize_stack> stacks;
//   boost::context::fiber f(std::allocator_arg, stacks, fn);
#ifndef STRATEGIES_STACK_TAG_REGISTERED_STACK_H_
#define STRATEGIES_STACK_TAG_REGISTERED_STACK_H_

#include <cstddef>

#include "strategies/internal/registering_stack_allocator.h"
#include "strategies/stack_tag/internal/tags.h"

namespace gls {
namespace stack_tag {

// ScopedStack
//
// Registers [lo, lo + size) (rounded inwards to 16 bytes) as a stack the
// stack_tag walk may run on, for the lifetime of the object. Construct it
// before the first switch onto the stack and destroy it only after the last
// switch away from it. Throws std::invalid_argument (see the file comment)
// and std::bad_alloc. Neither copyable nor movable.
//
// Example: an alternate signal stack.
//
//   static char alt[256 * 1024];
//   static gls::stack_tag::ScopedStack registered(alt, sizeof alt);
//   stack_t ss = {};
//   ss.ss_sp = alt;
//   ss.ss_size = sizeof alt;
//   sigaltstack(&ss, nullptr);
class ScopedStack {
 public:
  ScopedStack(const void* lo, size_t size)
      : stack_(stack_tag_internal::RegisterStack(lo, size)) {}
  ~ScopedStack() { stack_tag_internal::UnregisterStack(stack_); }
  ScopedStack(const ScopedStack&) = delete;
  ScopedStack& operator=(const ScopedStack&) = delete;

 private:
  stack_tag_internal::RegisteredStack* const stack_;
};

// RegisteredStackAllocator<Base>
//
// A stack allocator (the Boost.Context / Boost.Fiber StackAllocator concept:
// `stack_context allocate()`, `void deallocate(stack_context&)`) that
// registers each stack `Base` hands out, [sp - size, sp), from allocate()
// until deallocate(). Boost deallocates a stack only after its fiber
// finished or was unwound, so the registration covers the fiber's whole
// life. Works with fixedsize_stack, protected_fixedsize_stack and
// pooled_fixedsize_stack (a recycled stack is registered afresh); not with
// segmented_stack, nor with `preallocated` stacks (use ScopedStack).
// Copyable if Base is.
template <typename Base>
using RegisteredStackAllocator =
    strategies_internal::RegisteringStackAllocator<
        Base, stack_tag_internal::RegisterAllocatedStack,
        stack_tag_internal::UnregisterAllocatedStack>;

}  // namespace stack_tag
}  // namespace gls

#endif  // STRATEGIES_STACK_TAG_REGISTERED_STACK_H_
