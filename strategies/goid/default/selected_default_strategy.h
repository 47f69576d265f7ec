// gls/internal/selected_default_strategy.h, as provided by
// //strategies/goid:default: makes the goid strategy the default (the
// target the label flag //gls:default_strategy names).
//
// Not for users: gls includes it. Every default-strategy target provides
// this header, with DefaultCurrent(), the default strategy's Current()
// and RunBound without a virtual call (a direct call: one radix-table lookup), and defines gls::DefaultStrategy().
#ifndef GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
#define GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_

#include "gls/internal/context.h"
#include "gls/strategy.h"
#include "strategies/goid/goid_strategy.h"

namespace gls {
namespace internal {

inline Context* DefaultCurrent() noexcept { return goid_internal::CurrentContext(); }

// DefaultContextForRead(): DefaultCurrent(), or unbound_context (no
// values) where it is nullptr: never nullptr, for GetValue's inline read.
inline const Context* DefaultContextForRead() noexcept {
  const Context* ctx = DefaultCurrent();
  return ctx != nullptr ? ctx : &unbound_context;
}

// kDefaultBindsViews / DefaultViewBinding: views (Context::is_view) are
// the thread_local strategy's; this strategy finds a flow's context by its
// stack, so Snapshot::Run's hop leases a context and binds it.
// DefaultViewBinding exists only so that Run's code compiles with every
// default strategy; `if constexpr (kDefaultBindsViews)` never reaches it.
inline constexpr bool kDefaultBindsViews = false;
class DefaultViewBinding {
 public:
  explicit DefaultViewBinding(Context* /*view*/) {}
};

// DefaultRunBound(ctx, fn): the default strategy's RunBound, inline where
// it can be.
template <typename F>
inline void DefaultRunBound(Context* ctx, F&& fn) {
  GoidStrategy().RunBound(ctx, fn);
}

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
