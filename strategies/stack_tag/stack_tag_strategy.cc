#include "strategies/stack_tag/stack_tag_strategy.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

// Decided once per walker, from that walker's own self-check: the walker a
// stack_tag strategy reads with, or, when no walker works, the strategy
// every call delegates to instead.
struct Resolution {
  Walker walker;
  const Strategy* fallback;  // nullptr when tags work
};

[[noreturn]] void AbortStrict(const absl::Status& status, const char* instead) {
  std::fprintf(stderr,
               "gls: %s\ngls: GLS_STACK_TAG_STRICT=1: aborting instead of %s\n",
               std::string(status.message()).c_str(), instead);
  std::abort();
}

Resolution Resolve(Walker wanted) {
  const absl::Status& libunwind = stack_tag_internal::SelfCheckFor(Walker::kLibunwind);
  if (wanted == Walker::kFramePointer) {
    const absl::Status& frame_pointer =
        stack_tag_internal::SelfCheckFor(Walker::kFramePointer);
    if (frame_pointer.ok()) return {Walker::kFramePointer, nullptr};
    if (libunwind.ok()) {
      // Right answers, slower: the libunwind walker needs no frame pointers.
      static std::once_flag reported;
      std::call_once(reported, [&] {
        if (StrictMode()) AbortStrict(frame_pointer, "using the libunwind walker");
        std::fprintf(stderr,
                     "gls: %s\ngls: stack_tag reads with the libunwind walker "
                     "instead (right, slower); set GLS_STACK_TAG_STRICT=1 to "
                     "abort instead\n",
                     std::string(frame_pointer.message()).c_str());
      });
      return {Walker::kLibunwind, nullptr};
    }
  } else if (libunwind.ok()) {
    return {Walker::kLibunwind, nullptr};
  }
  const absl::Status& status = stack_tag_internal::SelfCheck();
  static std::once_flag reported;
  std::call_once(reported, [&] {
    if (StrictMode()) {
      AbortStrict(status, "falling back to the thread_local strategy");
    }
    std::fprintf(stderr,
                 "gls: %s\ngls: falling back to the thread_local strategy "
                 "(right for threads, NOT for fibers); set "
                 "GLS_STACK_TAG_STRICT=1 to abort instead\n",
                 std::string(status.message()).c_str());
  });
  return {wanted, &ThreadLocalStrategy()};
}

class StackTag final : public Strategy {
 public:
  StackTag(Walker walker, std::string_view name)
      : StackTag(Resolve(walker), name) {}
  StackTag(Resolution resolution, std::string_view name)
      : walker_(resolution.walker),
        name_(name),
        fallback_(resolution.fallback) {}

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
