// strategies/thread_local/thread_local_strategy.h: contexts follow threads.
//
// What this is for: the fastest strategy, and the default. The running
// thread's context is one thread_local pointer; GetValue reads it inline, so
// it costs one TLS load plus a short search.
//
// What this is not: fiber-aware. Fibers (Boost.Context, Boost.Fiber, any
// user-space stack switch) that share a thread share its context: a fiber that
// switches away in the middle of a SetValues scope leaves its values visible
// to the next fiber on that thread. Use the stack_tag or goid strategy for
// fibers (docs/strategies.md).
//
// Guarantees: thread-safe; Current() is a single load, lock-free,
// allocation-free and async-signal-safe (a signal handler sees the values of
// the scope the interrupted code was in).
//
// As the default strategy (//strategies/thread_local:default, the default of
// --//gls:default_strategy), GetValue reads the slot inline: one TLS load, no
// call.
//
// Example:
//
//   gls::ContextManager mgr(gls::ThreadLocalStrategy());
#ifndef STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_
#define STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_

#include "gls/internal/context.h"
#include "gls/strategy.h"

namespace gls {

namespace thread_local_internal {
// The running thread's context: the strategy's one piece of state. Initial-
// exec TLS, declared constinit so readers need no TLS wrapper call: one
// %fs-relative load. Never nullptr: while no context is bound it holds
// &internal::unbound_context (no values), so gls's inline read needs no
// test for "none". Not for users; read through gls, and written only
// through SetCurrent and Binding.
extern constinit thread_local Context* tls_context
    __attribute__((tls_model("initial-exec")));

// CurrentOrNull(): the bound context, or nullptr (the strategy's Current()).
inline Context* CurrentOrNull() noexcept {
  Context* ctx = tls_context;
  return ctx == &internal::unbound_context ? nullptr : ctx;
}
// SetCurrent(ctx): binds `ctx` (nullptr: none).
inline void SetCurrent(Context* ctx) noexcept {
  tls_context = ctx == nullptr ? &internal::unbound_context : ctx;
}

// Binds a context to this thread for its lifetime and restores the previous
// one however the scope ends: the strategy's RunBound, also used inline when
// thread_local is the default strategy.
class Binding {
 public:
  // `ctx` is never nullptr (RunBound's contract): stored as is.
  explicit Binding(Context* ctx) : previous_(tls_context) { tls_context = ctx; }
  ~Binding() { tls_context = previous_; }
  Binding(const Binding&) = delete;
  Binding& operator=(const Binding&) = delete;

 private:
  Context* const previous_;
};
}  // namespace thread_local_internal

// ThreadLocalStrategy()
//
// The process's one thread_local strategy.
const Strategy& ThreadLocalStrategy();

}  // namespace gls

#endif  // STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_
