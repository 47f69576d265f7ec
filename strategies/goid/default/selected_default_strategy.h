// gls/internal/selected_default_strategy.h, as provided by
// //strategies/goid:default: makes the goid strategy the default (the
// target the label flag //gls:default_strategy names).
//
// Not for users: gls includes it. Every default-strategy target provides
// this header, with DefaultCurrent(), the default strategy's Current()
// without a virtual call (a direct call: one radix-table lookup), and defines gls::DefaultStrategy().
#ifndef GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
#define GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_

#include "gls/strategy.h"
#include "strategies/goid/goid_strategy.h"

namespace gls {
namespace internal {

inline Context* DefaultCurrent() noexcept { return goid_internal::CurrentContext(); }

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_SELECTED_DEFAULT_STRATEGY_H_
