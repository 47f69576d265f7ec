#include "gls/strategy.h"

namespace gls {

void Strategy::EnsureContext(
    absl::FunctionRef<void(internal::Context*)> cb) const {
  if (internal::Context* ctx = CurrentInline()) {
    cb(ctx);
    return;
  }
  internal::ContextLease lease;
  RunBound(lease.get(), [&] { cb(lease.get()); });
}

}  // namespace gls
