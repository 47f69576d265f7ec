// gls/contrib/fiber.h: gls values and Boost.Fiber.
//
// What this is for: two things.
//   * gls::fiber::Launch(fn): a boost::fibers::fiber that starts with the
//     launching scope's values, as gls::Go does for threads (a snapshot at
//     launch: later changes in the launcher do not reach the fiber, and what
//     the fiber sets does not reach the launcher).
//   * gls::fiber::ThreadLocalSwitching<Algorithm>: a Boost.Fiber scheduling
//     algorithm that wraps another (round_robin by default) and switches the
//     thread_local strategy's context along with the fiber: on every switch
//     the outgoing fiber's context pointer is saved with the fiber and the
//     incoming one's restored. With it, fibers sharing a thread each see only
//     their own values under the thread_local strategy, even when one
//     switches away in the middle of a SetValues scope. Install it on each
//     thread that runs fibers, before launching any:
//
//       gls::fiber::UseThreadLocalSwitching();  // or <Algorithm>(args...)
//
// Which strategy needs what (docs/propagation.md; each a test in
// gls/contrib/fiber_test.cc):
//   * thread_local: ThreadLocalSwitching is required. Without it, a fiber
//     that yields inside a scope leaves its values visible to the next fiber
//     on the thread: a leak between requests.
//   * stack_tag: nothing extra for right answers: the values are tags on the
//     fiber's own stack. If code without frame pointers runs on the fibers,
//     pass a gls::stack_tag::RegisteredStackAllocator
//     (strategies/stack_tag/registered_stack.h) so that the stack walk is
//     bounded by the fiber's stack and misses are caught after a fiber
//     moves between threads.
//   * goid: no scheduler hook; the fibers' stacks must be registered, as for
//     any fiber under goid: pass a gls::goid::RegisteredStackAllocator
//     (Launch(std::allocator_arg, allocator, fn)).
//
// What this is not:
//   * A fiber-aware strategy. ThreadLocalSwitching only sees switches made
//     through the scheduling algorithm. boost::fibers::launch::dispatch
//     switches to the new fiber directly, bypassing it: do not use that
//     policy with the thread_local strategy (Launch always uses post).
//   * For algorithms with properties (algorithm_with_properties): the hook
//     keeps its per-fiber record in the fiber's properties slot, so it cannot
//     wrap an algorithm that uses that slot itself.
//
// Guarantees: the hook costs two thread-local accesses and two pointer moves
// per switch (bench: BM_FiberSwitch/thread_local_hook against
// BM_FiberSwitch/plain), and one small allocation per fiber, the first time
// it is switched. Fibers may migrate between threads (work-stealing
// algorithms): the context pointer travels with the fiber.
//
// Example:
//
//   gls::fiber::UseThreadLocalSwitching();
//   mgr.SetValues({{kRequestId, "12345"}}, [] {
//     auto f = gls::fiber::Launch([] {
//       boost::this_fiber::yield();
//       MyLog();  // "My request id is: 12345"
//     });
//     f.join();
//   });
#ifndef GLS_CONTRIB_FIBER_H_
#define GLS_CONTRIB_FIBER_H_

#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

#include "boost/fiber/algo/algorithm.hpp"
#include "boost/fiber/algo/round_robin.hpp"
#include "boost/fiber/context.hpp"
#include "boost/fiber/fiber.hpp"
#include "boost/fiber/operations.hpp"
#include "boost/fiber/policy.hpp"
#include "boost/fiber/properties.hpp"
#include "gls/bind.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace fiber {

// Launch(fn), Launch(std::allocator_arg, stack_allocator, fn)
//
// A fiber (launch::post) running `fn` with the values every registered
// manager has here now. Throws std::invalid_argument for a null `fn`.
template <typename F>
[[nodiscard]] boost::fibers::fiber Launch(F&& fn) {
  return boost::fibers::fiber(boost::fibers::launch::post,
                              Bind(std::forward<F>(fn)));
}
template <typename StackAllocator, typename F>
[[nodiscard]] boost::fibers::fiber Launch(std::allocator_arg_t,
                                          StackAllocator&& stack_allocator,
                                          F&& fn) {
  return boost::fibers::fiber(boost::fibers::launch::post, std::allocator_arg,
                              std::forward<StackAllocator>(stack_allocator),
                              Bind(std::forward<F>(fn)));
}

namespace internal {

// The thread_local strategy's context pointer of a fiber that is not
// running, kept in the fiber's properties slot.
class SavedContext final : public boost::fibers::fiber_properties {
 public:
  explicit SavedContext(boost::fibers::context* ctx)
      : boost::fibers::fiber_properties(ctx) {}
  Context* saved = nullptr;
};

inline SavedContext* SavedContextOf(boost::fibers::context* ctx) {
  auto* props = static_cast<SavedContext*>(ctx->get_properties());
  if (props == nullptr) {
    props = new SavedContext(ctx);  // owned, and deleted, by the fiber
    ctx->set_properties(props);
  }
  return props;
}

}  // namespace internal

// ThreadLocalSwitching<Algorithm>
//
// See the file comment. Every call goes to `Algorithm`; pick_next also moves
// the thread_local strategy's context pointer from the running fiber to the
// one picked (the scheduler's own dispatcher fiber gets none).
template <typename Algorithm = boost::fibers::algo::round_robin>
class ThreadLocalSwitching final : public boost::fibers::algo::algorithm {
 public:
  template <typename... Args>
  explicit ThreadLocalSwitching(Args&&... args)
      : inner_(std::forward<Args>(args)...) {}

  void awakened(boost::fibers::context* ctx) noexcept override {
    inner_.awakened(ctx);
  }

  boost::fibers::context* pick_next() noexcept override {
    boost::fibers::context* next = inner_.pick_next();
    // Called by the fiber about to be suspended, right before the switch.
    // The allocation of a fiber's record on its first switch can only fail
    // with std::bad_alloc, which this noexcept function turns into
    // std::terminate: as Boost.Fiber does for its own allocations there.
    internal::SavedContextOf(boost::fibers::context::active())->saved =
        thread_local_internal::BoundAsIs();
    thread_local_internal::RebindAsIs(
        next == nullptr ? nullptr : internal::SavedContextOf(next)->saved);
    return next;
  }

  bool has_ready_fibers() const noexcept override {
    return inner_.has_ready_fibers();
  }
  void suspend_until(
      std::chrono::steady_clock::time_point const& until) noexcept override {
    inner_.suspend_until(until);
  }
  void notify() noexcept override { inner_.notify(); }

 private:
  Algorithm inner_;
};

// UseThreadLocalSwitching<Algorithm>(args...)
//
// Installs ThreadLocalSwitching<Algorithm>(args...) as the calling thread's
// Boost.Fiber scheduling algorithm. Call it on each thread before it
// launches fibers.
template <typename Algorithm = boost::fibers::algo::round_robin,
          typename... Args>
void UseThreadLocalSwitching(Args&&... args) {
  boost::fibers::use_scheduling_algorithm<ThreadLocalSwitching<Algorithm>>(
      std::forward<Args>(args)...);
}

}  // namespace fiber
}  // namespace gls

#endif  // GLS_CONTRIB_FIBER_H_
