#include "strategies/testing/annotated_fiber.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "boost/context/fixedsize_stack.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define GLS_ASAN_FIBERS 1
#endif

#if defined(__SANITIZE_THREAD__)
#define GLS_TSAN_FIBERS 1
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace gls {
namespace testing {
namespace {

// A fixedsize_stack that reports where the stack it hands out lives.
class RecordingStack {
 public:
  RecordingStack(size_t size, void** low, void** high)
      : inner_(size), low_(low), high_(high) {}
  boost::context::stack_context allocate() {
    boost::context::stack_context sc = inner_.allocate();
    *high_ = sc.sp;
    *low_ = static_cast<char*>(sc.sp) - sc.size;
    return sc;
  }
  void deallocate(boost::context::stack_context& sc) noexcept {
    inner_.deallocate(sc);
  }

 private:
  boost::context::fixedsize_stack inner_;
  void** low_;
  void** high_;
};

}  // namespace

AnnotatedFiber::AnnotatedFiber(Body body, size_t stack_size)
    : body_(std::move(body)), stack_size_(stack_size) {
  fiber_ = boost::context::fiber(
      std::allocator_arg, RecordingStack(stack_size, &stack_low_, &stack_high_),
      [this](boost::context::fiber&& caller) {
        return Entry(std::move(caller));
      });
#if defined(GLS_TSAN_FIBERS)
  tsan_fiber_ = __tsan_create_fiber(0);
#endif
}

AnnotatedFiber::~AnnotatedFiber() {
  if (started_ && !done_) {
    std::fprintf(stderr,
                 "AnnotatedFiber destroyed before its body finished\n");
    std::abort();
  }
#if defined(GLS_TSAN_FIBERS)
  __tsan_destroy_fiber(tsan_fiber_);
#endif
}

boost::context::fiber AnnotatedFiber::Entry(boost::context::fiber&& caller) {
#if defined(GLS_ASAN_FIBERS)
  __sanitizer_finish_switch_fiber(nullptr, &caller_stack_low_,
                                  &caller_stack_size_);
#endif
  caller_ = std::move(caller);
  body_(*this);
  done_ = true;
#if defined(GLS_ASAN_FIBERS)
  // nullptr: this stack is finished; ASan may drop its fake frames.
  __sanitizer_start_switch_fiber(nullptr, caller_stack_low_,
                                 caller_stack_size_);
#endif
#if defined(GLS_TSAN_FIBERS)
  __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
  return std::move(caller_);
}

void AnnotatedFiber::Resume() {
  if (done_) {
    std::fprintf(stderr, "AnnotatedFiber resumed after it finished\n");
    std::abort();
  }
  started_ = true;
#if defined(GLS_TSAN_FIBERS)
  tsan_caller_ = __tsan_get_current_fiber();
#endif
#if defined(GLS_ASAN_FIBERS)
  __sanitizer_start_switch_fiber(&caller_fake_stack_, stack_low_, stack_size_);
#endif
#if defined(GLS_TSAN_FIBERS)
  __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
  fiber_ = std::move(fiber_).resume();
#if defined(GLS_ASAN_FIBERS)
  __sanitizer_finish_switch_fiber(caller_fake_stack_, nullptr, nullptr);
#endif
}

void AnnotatedFiber::Yield() {
#if defined(GLS_ASAN_FIBERS)
  __sanitizer_start_switch_fiber(&fiber_fake_stack_, caller_stack_low_,
                                 caller_stack_size_);
#endif
#if defined(GLS_TSAN_FIBERS)
  __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
  caller_ = std::move(caller_).resume();
#if defined(GLS_ASAN_FIBERS)
  __sanitizer_finish_switch_fiber(fiber_fake_stack_, &caller_stack_low_,
                                  &caller_stack_size_);
#endif
}

}  // namespace testing
}  // namespace gls
