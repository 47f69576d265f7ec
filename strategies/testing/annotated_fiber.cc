#include "strategies/testing/annotated_fiber.h"

#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define GLS_ANNOTATE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GLS_ANNOTATE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GLS_ANNOTATE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GLS_ANNOTATE_TSAN 1
#endif
#endif

#if defined(GLS_ANNOTATE_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GLS_ANNOTATE_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace gls {
namespace testing {

void AnnotatedFiber::BeginCreate() {
#if defined(GLS_ANNOTATE_TSAN)
  tsan_fiber_ = __tsan_create_fiber(0);
  tsan_caller_ = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
}

void AnnotatedFiber::EndCreate() {
#if defined(GLS_ANNOTATE_TSAN)
  __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
}

void AnnotatedFiber::OnStackAllocated(void* top, size_t size) {
  stack_top_ = top;
  stack_size_ = size;
#if defined(GLS_ANNOTATE_ASAN)
  // A recycled stack may still carry the poisoned redzones of frames that
  // never returned (an abandoned fiber): start clean.
  __asan_unpoison_memory_region(static_cast<char*>(top) - size, size);
#endif
}

void AnnotatedFiber::AfterSwitchIntoFiber() {
#if defined(GLS_ANNOTATE_ASAN)
  // Also learns the resumer's stack, to switch back to it.
  __sanitizer_finish_switch_fiber(fiber_fake_stack_, &caller_stack_bottom_,
                                  &caller_stack_size_);
#endif
}

boost::context::fiber AnnotatedFiber::Run(boost::context::fiber&& caller) {
  caller_ = std::move(caller);
  AfterSwitchIntoFiber();
  started_ = true;
  if (!cancel_) {
    Yield yield(this);
    try {
      fn_(yield);
    } catch (const FiberCancelled&) {
      // The destructor is unwinding us: done.
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  finished_ = true;
#if defined(GLS_ANNOTATE_ASAN)
  // Keep (not destroy) this fiber's fake stack: the frames between here and
  // the switch still return through it. Resume() frees it afterwards.
  __sanitizer_start_switch_fiber(&fiber_fake_stack_, caller_stack_bottom_,
                                 caller_stack_size_);
#endif
  // TSan: not announced here; see the file comment and Resume().
  return std::move(caller_);
}

void AnnotatedFiber::SwitchOut() {
#if defined(GLS_ANNOTATE_TSAN)
  __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
#if defined(GLS_ANNOTATE_ASAN)
  __sanitizer_start_switch_fiber(&fiber_fake_stack_, caller_stack_bottom_,
                                 caller_stack_size_);
#endif
  caller_ = std::move(caller_).resume();
  AfterSwitchIntoFiber();
  if (cancel_) throw FiberCancelled{};
}

void AnnotatedFiber::Resume() {
#if defined(GLS_ANNOTATE_TSAN)
  tsan_caller_ = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
#if defined(GLS_ANNOTATE_ASAN)
  __sanitizer_start_switch_fiber(&caller_fake_stack_,
                                 static_cast<char*>(stack_top_) - stack_size_,
                                 stack_size_);
#endif
  fiber_ = std::move(fiber_).resume();
#if defined(GLS_ANNOTATE_ASAN)
  __sanitizer_finish_switch_fiber(caller_fake_stack_, nullptr, nullptr);
#endif
  if (finished_) {
#if defined(GLS_ANNOTATE_TSAN)
    // The finished fiber's last frames returned and Boost freed its stack
    // on its TSan state; only now are we back on ours.
    __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
    ReleaseSanitizerState();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
}

void AnnotatedFiber::ReleaseSanitizerState() {
#if defined(GLS_ANNOTATE_ASAN)
  if (fiber_fake_stack_ != nullptr) {
    // A fake stack is destroyed by a switch away from it that saves nothing.
    // Make the fiber's the current one for an instant (no frame runs in
    // between), then switch "away" from it and back to ours.
    void* ours = nullptr;
    const void* our_bottom = nullptr;
    size_t our_size = 0;
    __sanitizer_start_switch_fiber(
        &ours, static_cast<char*>(stack_top_) - stack_size_, stack_size_);
    __sanitizer_finish_switch_fiber(fiber_fake_stack_, &our_bottom, &our_size);
    __sanitizer_start_switch_fiber(nullptr, our_bottom, our_size);
    __sanitizer_finish_switch_fiber(ours, nullptr, nullptr);
    fiber_fake_stack_ = nullptr;
  }
#endif
#if defined(GLS_ANNOTATE_TSAN)
  if (tsan_fiber_ != nullptr) {
    __tsan_destroy_fiber(tsan_fiber_);
    tsan_fiber_ = nullptr;
  }
#endif
}

void AnnotatedFiber::Abandon() {
  if (finished_) return;
  // Reachable forever, so leak checkers see the parked fibers (and their
  // stacks) as intentionally kept.
  static std::mutex mu;
  static auto* parked = new std::vector<boost::context::fiber>;
  {
    std::lock_guard<std::mutex> lock(mu);
    parked->push_back(std::move(fiber_));
  }
  finished_ = true;
  ReleaseSanitizerState();
}

AnnotatedFiber::~AnnotatedFiber() {
  if (!finished_) {
    cancel_ = true;
    try {
      Resume();  // unwinds the fiber's scopes on its own stack
    } catch (...) {
      // The function threw something else while unwinding: nothing to
      // report it to from a destructor.
    }
  }
  ReleaseSanitizerState();
}

}  // namespace testing
}  // namespace gls
