#include "gls/context_manager.h"

#include <sstream>
#include <string>
#include <utility>
#include <stdexcept>

namespace gls {

void internal::ThrowEmptyCallable(const char* where) {
  throw std::invalid_argument(std::string(where) +
                              ": the function to call is empty (null)");
}

ContextManager::ContextManager() : ContextManager(DefaultStrategy()) {}

ContextManager::ContextManager(const Strategy& strategy)
    : strategy_(&strategy), handle_(internal::RegisterManager(&strategy)) {}

ContextManager::~ContextManager() { internal::RemoveManager(handle_); }

void ContextManager::Unregister() { internal::UnregisterManager(handle_); }

// Inlined into both SetValuesImpl overloads: a call between them costs
// about ten instructions per SetValues (//bench:instructions).
template <typename V>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void ContextManager::SetValuesIn(
    V&& values, absl::FunctionRef<void()> fn) {
  if (values.size() == 0) {
    fn();
    return;
  }
  internal::SetValuesBookkeeping bookkeeping;
  // Inlined at both of FindOrBindContext's calls (a context found, one
  // leased): as a call it cost 15 instructions per SetValues
  // (//bench:instructions).
  auto in_context = [&](Context* ctx) ABSL_ATTRIBUTE_ALWAYS_INLINE {
    // NewFrameIn(ctx, values), written out: through the call, GCC 12
    // allocates registers worse here (+6 instructions per SetValues,
    // //bench:instructions).
    const uint32_t slot = internal::SlotOf(handle_);
    ctx->Reserve(slot);
    const internal::FrameHead* head = ctx->SlotForRead(slot);
    const internal::Frame* visible =
        head->manager_handle == handle_
            ? static_cast<const internal::Frame*>(head)
            : nullptr;
    internal::Frame* frame = internal::Frame::New(
        handle_, strategy_, visible == nullptr ? nullptr : &visible->values(),
        std::forward<V>(values), ctx->top());
    internal::Scope scope(ctx, frame);
    bookkeeping.Pause();
    fn();
    bookkeeping.Resume();
  };
  internal::EnsureContextOf(*strategy_, is_default(), in_context);
}

void ContextManager::SetValuesImpl(const Values& values,
                                   absl::FunctionRef<void()> fn) {
  SetValuesIn(values, fn);
}

void ContextManager::SetValuesImpl(Values&& values,
                                   absl::FunctionRef<void()> fn) {
  SetValuesIn(std::move(values), fn);
}

void ContextManager::SetValuesImpl(std::initializer_list<Values::Entry> values,
                                   absl::FunctionRef<void()> fn) {
  SetValuesIn(values, fn);
}

Values ContextManager::GetValues() const {
  const internal::Frame* frame = VisibleFrame();
  return frame == nullptr ? Values() : frame->values();
}

absl::Status ContextManager::NotFound(KeyView key) {
  std::ostringstream message;
  message << "gls: no value for key " << key
          << " is set in any enclosing SetValues scope";
  return absl::NotFoundError(message.str());
}

}  // namespace gls
