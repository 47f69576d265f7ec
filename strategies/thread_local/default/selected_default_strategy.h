// gls/internal/selected_default_strategy.h, as provided by
// //strategies/thread_local:default: makes the thread_local strategy the default (the
// target the label flag //gls:default_strategy names).
//
// Not for users: gls includes it. Every default-strategy target provides
// this header, with DefaultCurrent(), the default strategy's Current()
// and RunBound without a virtual call (one TLS load), and defines gls::DefaultStrategy().
#ifndef GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
#define GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_

#include "gls/strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace internal {

inline Context* DefaultCurrent() noexcept {
  return thread_local_internal::CurrentOrNull();
}

// DefaultContextForRead(): the default strategy's current context, or
// unbound_context (no values) where it has none: never nullptr, so
// GetValue's inline read does not test for it. One TLS load here.
inline const Context* DefaultContextForRead() noexcept {
  return thread_local_internal::tls_context;
}

// DefaultRunBound(ctx, fn): the default strategy's RunBound, inline where
// it can be.
// kDefaultBindsViews / DefaultViewBinding: the default strategy can bind a
// frame's read-only view (Context::is_view) for Snapshot::Run's hop to a
// thread with no values: a pointer swap in and out, no context leased.
inline constexpr bool kDefaultBindsViews = true;
using DefaultViewBinding = thread_local_internal::ViewBinding;

template <typename F>
inline void DefaultRunBound(Context* ctx, F&& fn) {
  thread_local_internal::Binding binding(ctx);
  fn();
}

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
