#include "strategies/stack_tag/stack_tag_strategy.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "strategies/stack_tag/internal/tags.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using stack_tag_internal::Walker;

bool StrictMode() {
  const char* strict = std::getenv("GLS_STACK_TAG_STRICT");
  return strict != nullptr && std::strcmp(strict, "1") == 0;
}

// Decided once: the strategy every stack_tag call delegates to when the
// self-check failed, or nullptr when tags work.
const Strategy* Fallback() {
  static const Strategy* fallback = []() -> const Strategy* {
    const absl::Status& status = stack_tag_internal::SelfCheck();
    if (status.ok()) return nullptr;
    if (StrictMode()) {
      std::fprintf(stderr,
                   "gls: %s\ngls: GLS_STACK_TAG_STRICT=1: aborting instead of "
                   "falling back to the thread_local strategy\n",
                   std::string(status.message()).c_str());
      std::abort();
    }
    std::fprintf(stderr,
                 "gls: %s\ngls: falling back to the thread_local strategy "
                 "(right for threads, NOT for fibers); set "
                 "GLS_STACK_TAG_STRICT=1 to abort instead\n",
                 std::string(status.message()).c_str());
    return &ThreadLocalStrategy();
  }();
  return fallback;
}

class StackTag final : public Strategy {
 public:
  StackTag(Walker walker, std::string_view name)
      : walker_(walker), name_(name), fallback_(Fallback()) {}

  std::string_view name() const override { return name_; }

  Context* Current() const noexcept override {
    if (fallback_ != nullptr) return fallback_->Current();
    return stack_tag_internal::CurrentContextFromTag(walker_);  // tail call
  }

  void RunBound(Context* ctx, absl::FunctionRef<void()> fn) const override {
    if (fallback_ != nullptr) {
      fallback_->RunBound(ctx, fn);
      return;
    }
    stack_tag_internal::RunTagged(ContextId(*ctx), fn);
  }

 private:
  const Walker walker_;
  const std::string_view name_;
  const Strategy* const fallback_;
};

}  // namespace

const Strategy& StackTagStrategy() {
#if defined(GLS_STACK_TAG_WALKER_LIBUNWIND)
  static const StackTag* strategy = new StackTag(Walker::kLibunwind, "stack_tag");
#else
  static const StackTag* strategy =
      new StackTag(Walker::kFramePointer, "stack_tag");
#endif
  return *strategy;
}

namespace stack_tag_internal {
Context* DefaultWalkerCurrent() noexcept {
  // A qualified call: no virtual dispatch, and inlined here.
  const auto& strategy = static_cast<const StackTag&>(StackTagStrategy());
  return strategy.StackTag::Current();
}
}  // namespace stack_tag_internal

const Strategy& StackTagLibunwindStrategy() {
  static const StackTag* strategy =
      new StackTag(Walker::kLibunwind, "stack_tag_libunwind");
  return *strategy;
}

const absl::Status& StackTagSelfCheck() {
  return stack_tag_internal::SelfCheck();
}

}  // namespace gls
