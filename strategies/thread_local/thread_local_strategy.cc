#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {

namespace thread_local_internal {
constinit thread_local Context* tls_context = &internal::unbound_context;

Context* MaterializeView(Context* view) noexcept {
  Context* ctx = internal::AcquireContext();
  ctx->CopyViewState(view);
  tls_context = ctx;
  return ctx;
}

namespace {
// UnbindWithWarning(warned, what): EndSlow's two ends where fibers switched
// inside the Run: the once-per-case warning, and the thread left with
// nothing bound.
void UnbindWithWarning(std::atomic<bool>& warned, const char* what) noexcept {
  internal::WarnFiberMisuseOnce(warned, what);
  tls_context = &internal::unbound_context;
}
}  // namespace

void ViewBinding::EndSlow(const Context* view) noexcept {
  Context* bound = tls_context;
  if (bound != &internal::unbound_context && !bound->is_view() &&
      bound->materialized_from() == view) {
    // The Run's materialized context (a SetValues, guard or goroutine id
    // inside the Run asked for one).
    if (bound->innermost_scope() == nullptr) {
      tls_context = &internal::unbound_context;
      std::atomic_signal_fence(std::memory_order_release);
      bound->ClearViewState();
      internal::ReleaseContext(bound);
      return;
    }
    // A scope made inside the Run is still open in it.
    if (bound->open_guards() != 0) internal::AbortGuardOutlivedItsScope();
    // Not a guard's: fibers switched inside the Run's scopes (the strategy
    // cannot tell them apart). Those scopes still use the context: it is
    // retired, never pooled, and their flow's values may be wrong from here
    // (the strategy's documented limit); memory stays right.
    // Their saved states and frames refer to the view's frame, which the
    // Run's snapshot may free: it is kept.
    internal::PinFrameOfView(view);
    bound->forget_materialized_from();
    static std::atomic<bool> warned{false};
    UnbindWithWarning(
        warned,
        "a Snapshot::Run ended while scopes of another flow of execution "
        "were still open in it (its context is retired, not reused)");
    return;
  }
  // Something else is bound: another flow's binding (fibers switching under
  // this strategy). The thread had nothing bound when the Run began, and is
  // left so.
  static std::atomic<bool> warned{false};
  UnbindWithWarning(
      warned,
      "a Snapshot::Run ended while another flow's values were bound on its "
      "thread (the thread is left with no values)");
}
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
