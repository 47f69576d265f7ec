// strategies/testing/annotated_fiber.h: a Boost.Context fiber whose every stack
// switch is announced to AddressSanitizer and ThreadSanitizer, for tests.
//
// What this is for: tests that run fibers (several flows of execution on one
// thread, switching in the middle of their work) and must stay clean under
// --config=asan and --config=tsan. Boost.Context's fcontext switches are
// assembly the sanitizers cannot see; without annotations ASan misjudges
// which stack it is on (fake stacks, no-return unpoisoning) and TSan's
// per-thread shadow state gets mixed between fibers. This wrapper makes the
// announcements around each boost::context::fiber switch:
//   * ASan: __sanitizer_start_switch_fiber just before a switch and
//     __sanitizer_finish_switch_fiber just after it, each fiber keeping its
//     own fake stack; a finished or abandoned fiber's fake stack is freed.
//   * TSan: a TSan fiber per fiber (__tsan_create_fiber /
//     __tsan_destroy_fiber) and __tsan_switch_to_fiber just before each
//     switch. The final switch out of a finished fiber is announced after it
//     happened, from the resumer, so no frame of the finished fiber returns
//     under the resumer's TSan state.
// Nothing happens in builds without sanitizers. Nothing here is specific to
// gls or to a strategy. It takes any Boost.Context StackAllocator (so tests
// control where stacks come from and when they are recycled), cancels by
// unwinding, can Abandon() a fiber, be resumed from another thread, and passes
// exceptions to the resumer.
//
// What this is not: a scheduler, or thread-safe. One AnnotatedFiber is
// resumed by one flow at a time (any thread, but handing it between threads
// needs the usual synchronization). Not for production code.
//
// Guarantees: every switch this class makes is annotated, including the
// fiber's cancellation and its end: the destructor of a suspended fiber
// resumes it with a cancellation (its Yield throws FiberCancelled) so its
// scopes unwind on its own stack, rather than letting Boost unwind it with
// unannotated switches; a fiber that was never resumed is ended without
// running its function. The one exception is the excursion Boost's fiber
// constructor makes onto the new stack and straight back (a few
// instructions of boost's fiber_entry): TSan sees it on the new fiber's
// state, ASan does not see it. An exception escaping the fiber's function
// is rethrown by the Resume() that ran it.
//
// Example:
//
//   using gls::testing::AnnotatedFiber;
//   AnnotatedFiber fiber([&](AnnotatedFiber::Yield& yield) {
//     step = 1;
//     yield();  // back to Resume()'s caller
//     step = 2;
//   });
//   fiber.Resume();  // step == 1
//   fiber.Resume();  // step == 2, fiber.finished()
#ifndef STRATEGIES_TESTING_ANNOTATED_FIBER_H_
#define STRATEGIES_TESTING_ANNOTATED_FIBER_H_

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include "boost/context/fiber.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"

namespace gls {
namespace testing {

// FiberCancelled
//
// Thrown by Yield when the fiber is being destroyed while suspended. Let it
// propagate (catch and rethrow is fine).
struct FiberCancelled {};

// AnnotatedFiber
//
// See the file comment. Neither copyable nor movable.
class AnnotatedFiber {
 public:
  // Yield
  //
  // Handed to the fiber's function: calling it switches back to the flow
  // that called Resume(), until the next Resume().
  class Yield {
   public:
    void operator()() { fiber_->SwitchOut(); }

   private:
    friend class AnnotatedFiber;
    explicit Yield(AnnotatedFiber* fiber) : fiber_(fiber) {}
    AnnotatedFiber* fiber_;
  };
  using Function = std::function<void(Yield&)>;

  static constexpr size_t kDefaultStackSize = 256 * 1024;

  // AnnotatedFiber(salloc, fn): a suspended fiber that will run `fn` on a
  // stack from `salloc` (any Boost.Context StackAllocator).
  template <typename StackAllocator>
  AnnotatedFiber(StackAllocator salloc, Function fn);
  // AnnotatedFiber(fn): same, on a kDefaultStackSize fixedsize_stack.
  explicit AnnotatedFiber(Function fn)
      : AnnotatedFiber(boost::context::fixedsize_stack(kDefaultStackSize),
                       std::move(fn)) {}
  ~AnnotatedFiber();
  AnnotatedFiber(const AnnotatedFiber&) = delete;
  AnnotatedFiber& operator=(const AnnotatedFiber&) = delete;

  // Resume(): runs the fiber until its function yields or returns. Must not
  // be called on a finished fiber, nor from the fiber itself.
  void Resume();

  // finished(): the function returned (or threw), or the fiber was
  // cancelled or abandoned.
  bool finished() const { return finished_; }

  // Abandon(): forgets a suspended fiber without unwinding it, the way a
  // fiber library that simply drops a fiber's stack would: its frames never
  // run again and its stack is never deallocated (the boost::context::fiber
  // is parked, intentionally leaked, in a reachable list). Tests use it to
  // reuse the memory under a suspended flow. Sanitizer state is released.
  void Abandon();

  // The stack the fiber runs on: [stack_top() - stack_size(), stack_top()).
  void* stack_top() const { return stack_top_; }
  size_t stack_size() const { return stack_size_; }

 private:
  // Records the stack the allocator hands out, for the ASan annotations.
  template <typename Base>
  struct RecordingAllocator {
    Base base;
    AnnotatedFiber* owner;
    boost::context::stack_context allocate() {
      boost::context::stack_context sctx = base.allocate();
      owner->OnStackAllocated(sctx.sp, sctx.size);
      return sctx;
    }
    void deallocate(boost::context::stack_context& sctx) noexcept {
      base.deallocate(sctx);
    }
  };

  void OnStackAllocated(void* top, size_t size);
  boost::context::fiber Run(boost::context::fiber&& caller);
  void SwitchOut();
  // Annotation helpers (no-ops without sanitizers).
  void BeginCreate();
  void EndCreate();
  void AfterSwitchIntoFiber();
  void ReleaseSanitizerState();

  Function fn_;
  boost::context::fiber fiber_;   // the fiber, while suspended
  boost::context::fiber caller_;  // the resumer, while the fiber runs
  void* stack_top_ = nullptr;
  size_t stack_size_ = 0;
  bool started_ = false;
  bool finished_ = false;
  bool cancel_ = false;
  std::exception_ptr error_;

  // ASan: each side's saved fake stack, and the resumer's stack bounds
  // (learned when switching into the fiber).
  void* fiber_fake_stack_ = nullptr;
  void* caller_fake_stack_ = nullptr;
  const void* caller_stack_bottom_ = nullptr;
  size_t caller_stack_size_ = 0;
  // TSan: the fiber's TSan fiber, and the resumer's.
  void* tsan_fiber_ = nullptr;
  void* tsan_caller_ = nullptr;
};

template <typename StackAllocator>
AnnotatedFiber::AnnotatedFiber(StackAllocator salloc, Function fn)
    : fn_(std::move(fn)) {
  // Boost jumps onto the new stack and back inside the constructor: that
  // excursion is made on the fiber's TSan state.
  BeginCreate();
  try {
    fiber_ = boost::context::fiber(
        std::allocator_arg,
        RecordingAllocator<StackAllocator>{std::move(salloc), this},
        [this](boost::context::fiber&& caller) {
          return Run(std::move(caller));
        });
  } catch (...) {
    EndCreate();
    ReleaseSanitizerState();
    throw;
  }
  EndCreate();
}

}  // namespace testing
}  // namespace gls

#endif  // STRATEGIES_TESTING_ANNOTATED_FIBER_H_
