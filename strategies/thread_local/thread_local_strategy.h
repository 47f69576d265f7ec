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
// Example:
//
//   gls::ContextManager mgr(gls::ThreadLocalStrategy());
#ifndef STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_
#define STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_

#include "gls/strategy.h"

namespace gls {

// ThreadLocalStrategy()
//
// The process's one thread_local strategy.
const Strategy& ThreadLocalStrategy();

}  // namespace gls

#endif  // STRATEGIES_THREAD_LOCAL_THREAD_LOCAL_STRATEGY_H_
