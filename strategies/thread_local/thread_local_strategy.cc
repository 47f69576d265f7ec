#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {

namespace thread_local_internal {
constinit thread_local Context* tls_context = &internal::unbound_context;
}  // namespace thread_local_internal

namespace {

using thread_local_internal::tls_context;

class ThreadLocal final : public Strategy {
 public:
  std::string_view name() const override { return "thread_local"; }

  Context* Current() const noexcept override {
    return thread_local_internal::CurrentOrNull();
  }

  void RunBound(Context* ctx, absl::FunctionRef<void()> fn) const override {
    thread_local_internal::Binding binding(ctx);
    fn();
  }

  bool CanAttach() const noexcept override { return true; }

  bool Attach(Context* ctx) const override {
    thread_local_internal::SetCurrent(ctx);
    return true;
  }

  void Detach(Context* /*ctx*/) const override {
    thread_local_internal::SetCurrent(nullptr);
  }
};

}  // namespace

const Strategy& ThreadLocalStrategy() {
  static const ThreadLocal* strategy = new ThreadLocal;
  return *strategy;
}

}  // namespace gls
