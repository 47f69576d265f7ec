#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

class ThreadLocal final : public Strategy {
 public:
  ThreadLocal() : Strategy(/*uses_thread_slot=*/true) {}

  std::string_view name() const override { return "thread_local"; }

  internal::Context* Current() const override { return internal::tls_context; }

  void RunBound(internal::Context* ctx,
                absl::FunctionRef<void()> fn) const override {
    // Restores the previous binding however fn exits.
    struct Binding {
      internal::Context* const previous = internal::tls_context;
      explicit Binding(internal::Context* c) { internal::tls_context = c; }
      ~Binding() { internal::tls_context = previous; }
      Binding(const Binding&) = delete;
      Binding& operator=(const Binding&) = delete;
    } binding(ctx);
    fn();
  }
};

}  // namespace

const Strategy& ThreadLocalStrategy() {
  static const ThreadLocal* strategy = new ThreadLocal;
  return *strategy;
}

}  // namespace gls
