// strategies/testing/annotated_fiber.h: a Boost.Context fiber that annotates
// its stack switches for AddressSanitizer and ThreadSanitizer.
//
// What this is for: tests that interleave fibers on one thread (the fiber
// scenarios of the stack_tag and goid strategies) and must run clean under
// --config=asan and --config=tsan rather than be excluded from them. Around
// every switch it calls __sanitizer_start_switch_fiber /
// __sanitizer_finish_switch_fiber (ASan) and __tsan_switch_to_fiber (TSan);
// in builds without sanitizers those calls compile away.
//
// What this is not: a scheduler, or production code. A fiber must run to
// completion before it is destroyed (the destructor aborts otherwise), and
// an exception escaping its body terminates the process.
//
// Guarantees: not thread-safe; a fiber is resumed only from the thread that
// created it. Allocates its stack (mmap'd by Boost with a guard page) on
// construction.
//
// Example:
//
//   gls::testing::AnnotatedFiber fiber([](gls::testing::AnnotatedFiber& self) {
//     Step1();
//     self.Yield();   // back to whoever called Resume()
//     Step2();
//   });
//   fiber.Resume();   // runs Step1
//   fiber.Resume();   // runs Step2; fiber.done() is now true
#ifndef STRATEGIES_TESTING_ANNOTATED_FIBER_H_
#define STRATEGIES_TESTING_ANNOTATED_FIBER_H_

#include <cstddef>
#include <functional>

#include "boost/context/fiber.hpp"

namespace gls {
namespace testing {

class AnnotatedFiber {
 public:
  using Body = std::function<void(AnnotatedFiber&)>;

  // AnnotatedFiber(body, stack_size): a fiber that will run `body(*this)` on
  // its own stack of `stack_size` bytes, starting at the first Resume().
  explicit AnnotatedFiber(Body body, size_t stack_size = 256 * 1024);
  // Aborts if the fiber started and has not finished.
  ~AnnotatedFiber();
  AnnotatedFiber(const AnnotatedFiber&) = delete;
  AnnotatedFiber& operator=(const AnnotatedFiber&) = delete;

  // Resume(): runs the fiber until it yields or finishes. Caller side only.
  void Resume();
  // Yield(): switches back to the Resume() caller. Fiber side only.
  void Yield();
  // done(): the body has returned.
  bool done() const { return done_; }
  // stack_low(), stack_high(): the fiber's stack memory [low, high).
  const void* stack_low() const { return stack_low_; }
  const void* stack_high() const { return stack_high_; }

 private:
  boost::context::fiber Entry(boost::context::fiber&& caller);

  Body body_;
  boost::context::fiber fiber_;   // the fiber, while suspended
  boost::context::fiber caller_;  // the resumer, while the fiber runs
  bool started_ = false;
  bool done_ = false;
  void* stack_low_ = nullptr;
  void* stack_high_ = nullptr;
  size_t stack_size_;
  // ASan: fake-stack handles of each side, and the resumer's stack bounds.
  void* caller_fake_stack_ = nullptr;
  void* fiber_fake_stack_ = nullptr;
  const void* caller_stack_low_ = nullptr;
  size_t caller_stack_size_ = 0;
  // TSan: fiber handles of each side.
  void* tsan_fiber_ = nullptr;
  void* tsan_caller_ = nullptr;
};

}  // namespace testing
}  // namespace gls

#endif  // STRATEGIES_TESTING_ANNOTATED_FIBER_H_
