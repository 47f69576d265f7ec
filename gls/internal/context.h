// gls/internal/context.h: the per-flow-of-execution record every strategy
// hands out, and the process-wide pool of them.
//
// Not part of the public API: users include gls/gls.h. Strategies
// (strategies/*) and ContextManager use this.
//
// A Context is what the Go original calls a goroutine id plus the per-manager
// maps keyed by it: one small integer id, reused from a pool, and for each
// ContextManager the Values visible at the current point of that flow of
// execution. A Context is bound to exactly one flow of execution (a thread or
// a fiber) at a time and only that flow reads or writes its contents, so its
// fields need no synchronization. The pool (AcquireContext/ReleaseContext) is
// thread-safe; FindContext is lock-free and wait-free.
//
// Contexts are never freed: a released Context keeps its id and goes back to
// the pool, so a pointer from FindContext(id) is always safe to dereference
// (what it holds is only meaningful to the flow the context is bound to).
#ifndef GLS_INTERNAL_CONTEXT_H_
#define GLS_INTERNAL_CONTEXT_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "gls/values.h"

namespace gls {
namespace internal {

class ScopedValues;

// Context
//
// One flow of execution's goroutine id and its per-manager values.
class Context {
 public:
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // id(): this context's goroutine id, unique among live contexts.
  uint64_t id() const { return id_; }

  // Get(manager): the values manager number `manager` has set here, or
  // nullptr.
  inline const Values* Get(size_t manager) const;

  // Innermost(manager): the innermost active scope of manager number
  // `manager` here, or nullptr.
  ScopedValues* Innermost(size_t manager) const {
    return manager < scopes_.size() ? scopes_[manager] : nullptr;
  }

  // Exchange(manager, scope): makes `scope` (may be nullptr) the innermost
  // scope of manager number `manager` and returns the one before.
  ScopedValues* Exchange(size_t manager, ScopedValues* scope);

  // IsEmpty(): true when no manager has values here (the state in which a
  // context goes back to the pool).
  // O(1): the outermost SetValues checks it on every return.
  bool IsEmpty() const { return live_ == 0; }

 private:
  friend class ContextPool;
  uint64_t id_ = 0;
  int live_ = 0;  // non-null entries of scopes_
  absl::InlinedVector<ScopedValues*, 4> scopes_;
};

// AcquireContext(): a context with no values and an id no other live context
// has. Thread-safe. Never returns nullptr (aborts with a message if the
// process exhausts 2^26 simultaneously live contexts).
Context* AcquireContext();

// ReleaseContext(ctx): returns `ctx` to the pool; its id may be handed out
// again by the next AcquireContext. If `ctx` still has values (another flow's
// scopes are still using it: fibers under a strategy that cannot tell them
// apart), it is retired instead, with a one-time warning on stderr.
void ReleaseContext(Context* ctx);

// FindContext(id): the context with this id, or nullptr if no context with
// this id was ever created. Lock-free; async-signal-safe.
Context* FindContext(uint64_t id);

// ContextLease
//
// RAII ownership of a pooled context: acquires on construction, releases on
// destruction. Neither copyable nor movable.
class ContextLease {
 public:
  ContextLease() : ctx_(AcquireContext()) {}
  ~ContextLease() { ReleaseContext(ctx_); }
  ContextLease(const ContextLease&) = delete;
  ContextLease& operator=(const ContextLease&) = delete;

  Context* get() const { return ctx_; }

 private:
  Context* const ctx_;
};

// The one thread-local context slot of the process. The thread_local
// strategy binds contexts here; ContextManager reads it inline (no virtual
// call) for strategies that say they use it. Initial-exec TLS: one
// %fs-relative load, no __tls_get_addr call.
extern thread_local Context* tls_context
    __attribute__((tls_model("initial-exec")));

// ScopedValues
//
// Installs a manager's values in a context for the lifetime of the guard and
// puts back exactly what was there before when it is destroyed (also during
// exception unwinding). Neither copyable nor movable, so an unbalanced
// install/restore cannot be written.
//
// The scopes of one manager in one context form a list, innermost first. On
// one flow of execution they end innermost first. If they do not — fibers
// switching inside scopes under a strategy that cannot tell fibers apart —
// a scope that ends while a newer one is still active unlinks itself, so the
// newer one later restores the scope before it, never a dead one: values may
// then be wrong (the strategy's documented limit), memory never is.
class ScopedValues {
 public:
  // Installs `*borrowed`, which must outlive the guard (no copy).
  ScopedValues(Context* ctx, size_t manager, const Values* borrowed)
      : ctx_(ctx), manager_(manager), values_(borrowed) {
    previous_ = ctx_->Exchange(manager_, this);
  }
  // Installs `owned`, kept by the guard.
  ScopedValues(Context* ctx, size_t manager, Values&& owned)
      : ctx_(ctx), manager_(manager), owned_(std::move(owned)), values_(&owned_) {
    previous_ = ctx_->Exchange(manager_, this);
  }
  ~ScopedValues();
  ScopedValues(const ScopedValues&) = delete;
  ScopedValues& operator=(const ScopedValues&) = delete;

  const Values& values() const { return *values_; }

 private:
  Context* const ctx_;
  const size_t manager_;
  const Values owned_;          // empty when borrowing
  const Values* const values_;  // owned_ or the borrowed values
  ScopedValues* previous_;
};

inline const Values* Context::Get(size_t manager) const {
  const ScopedValues* scope = Innermost(manager);
  return scope == nullptr ? nullptr : &scope->values();
}

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_CONTEXT_H_
