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
// Guarantees: thread-safe. GetValue's read is a single load, lock-free,
// allocation-free and async-signal-safe (a signal handler sees the values of
// the scope the interrupted code was in). Current() is the same load, except
// inside a Snapshot::Run that hopped onto a thread with no values of its own:
// there the thread holds the snapshot's shared, read-only view (the hop is a
// pointer swap), and the first Current() of that Run (a SetValues, a guard,
// GetGoroutineId) copies the view into a context from the pool and binds it
// until the Run ends; that may take the pool's lock, so Current() is not
// async-signal-safe inside such a Run.
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

#include <atomic>

#include "absl/base/optimization.h"
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

// MaterializeView(view): copies the bound `view` into a context from the
// pool, binds that instead, and returns it. Terminates if the pool cannot
// allocate (Current() is noexcept).
Context* MaterializeView(Context* view) noexcept;

// CurrentOrNull(): the bound context, or nullptr (the strategy's Current()).
// Never a view: a bound view is materialized first.
inline Context* CurrentOrNull() noexcept {
  Context* ctx = tls_context;
  if (ctx == &internal::unbound_context) return nullptr;
  if (ABSL_PREDICT_FALSE(ctx->is_view())) return MaterializeView(ctx);
  return ctx;
}
// SetCurrent(ctx): binds `ctx` (nullptr: none).
inline void SetCurrent(Context* ctx) noexcept {
  tls_context = ctx == nullptr ? &internal::unbound_context : ctx;
}

// BoundAsIs() / RebindAsIs(bound): what the thread holds, a view included
// (nullptr: nothing), and putting it back: for a fiber scheduler that
// moves the binding from fiber to fiber (gls/contrib/fiber.h) without
// materializing a view.
inline Context* BoundAsIs() noexcept {
  Context* ctx = tls_context;
  return ctx == &internal::unbound_context ? nullptr : ctx;
}
inline void RebindAsIs(Context* bound) noexcept { SetCurrent(bound); }

// ViewBinding
//
// Binds a frame's view (Context::is_view) to this thread, which has nothing
// bound (no values), for its lifetime: Snapshot::Run's hop when
// thread_local is the default strategy. Leaving unbinds it; if the Run
// materialized the view, the materialized context goes back to the pool
// (EndSlow).
class ViewBinding {
 public:
  explicit ViewBinding(Context* view) : view_(view) {
    // The view was complete before this thread could see it (Frame::HopView
    // publishes it with release/acquire); a signal handler here sees it
    // whole too.
    std::atomic_signal_fence(std::memory_order_release);
    tls_context = view;
  }
  ~ViewBinding() {
    if (ABSL_PREDICT_TRUE(tls_context == view_)) {
      tls_context = &internal::unbound_context;
      return;
    }
    EndSlow(view_);
  }
  ViewBinding(const ViewBinding&) = delete;
  ViewBinding& operator=(const ViewBinding&) = delete;

 private:
  static void EndSlow(const Context* view) noexcept;

  Context* const view_;
};

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
