// gls/executor.h: gls::Propagating, an executor wrapper that carries the
// submitter's values into every task.
//
// What this is for: thread pools and task queues you do not own. Wrap the
// executor once; every task handed to it through the wrapper is bound
// (gls::Bind) at submit time, so it runs with the values of the scope that
// submitted it, and the pool thread's own values (none, between tasks) are
// back when the task ends. Any executor with a `post`, `execute`, `submit`,
// `add` (folly-style), `defer` or `dispatch` member taking a callable works;
// the wrapper forwards whichever of these the executor has and returns what
// it returns (a std::future from `submit`, say).
//
// What this is not: an executor of its own, or an Asio executor (Asio's
// executors have properties; use gls/contrib/asio.h). For `std::async` and
// `std::thread` no wrapper is needed: bind the function,
//   std::async(std::launch::async, gls::Bind(fn));
//
// Guarantees: the same as gls::Bind, per task: captured at submit in O(1)
// with no allocation beyond storing the task, run with exactly the captured
// values, caller's values restored after. A task the executor drops unrun
// (a pool destroyed with work queued) releases its values when destroyed.
// The wrapper is as thread-safe as the executor it wraps, and copyable when
// it is.
//
// Example: a third-party pool held by pointer.
//
//   ThirdPartyPool pool(4);                        // has `void post(F)`
//   auto executor = gls::Propagating(&pool);
//   mgr.SetValues({{kRequestId, "12345"}}, [&] {
//     executor.post([] { MyLog(); });              // "My request id is: 12345"
//     pool.post([] { MyLog(); });                  // "No request id found"
//   });
#ifndef GLS_EXECUTOR_H_
#define GLS_EXECUTOR_H_

#include <functional>
#include <type_traits>
#include <utility>

#include "gls/bind.h"

namespace gls {

// PropagatingExecutor<Executor>
//
// See the file comment. `Executor` is held by value; it may be a pointer or a
// std::reference_wrapper to an executor owned elsewhere.
namespace internal {

template <typename T>
struct IsReferenceWrapper : std::false_type {};
template <typename T>
struct IsReferenceWrapper<std::reference_wrapper<T>> : std::true_type {};

// The executor object `held` stands for: through the pointer or
// reference_wrapper if that is what is held.
template <typename Executor>
decltype(auto) ExecutorTarget(Executor& held) noexcept {
  if constexpr (std::is_pointer_v<Executor>) {
    return (*held);
  } else if constexpr (IsReferenceWrapper<Executor>::value) {
    return (held.get());
  } else {
    return (held);
  }
}

}  // namespace internal

// One forwarding member per submit verb; each exists only if the wrapped
// executor has that member.
#define GLS_INTERNAL_FORWARD_SUBMIT(verb)                                  \
  template <typename F, typename... Rest>                                  \
    requires requires(Executor& held, Bound<std::decay_t<F>>&& task,       \
                      Rest&&... rest) {                                    \
      internal::ExecutorTarget(held).verb(std::move(task),                 \
                                          std::forward<Rest>(rest)...);    \
    }                                                                      \
  decltype(auto) verb(F&& fn, Rest&&... rest) {                            \
    return internal::ExecutorTarget(executor_).verb(                       \
        Bind(std::forward<F>(fn)), std::forward<Rest>(rest)...);           \
  }

// PropagatingExecutor<Executor>
//
// See the file comment. `Executor` is held by value; it may be a pointer or a
// std::reference_wrapper to an executor owned elsewhere.
template <typename Executor>
class PropagatingExecutor {
 public:
  explicit PropagatingExecutor(Executor executor) noexcept(
      std::is_nothrow_move_constructible_v<Executor>)
      : executor_(std::move(executor)) {}

  // post(fn), execute(fn), submit(fn), add(fn), defer(fn), dispatch(fn):
  // the wrapped executor's member of that name, given gls::Bind(fn) (plus any
  // further arguments, e.g. an allocator, passed through unchanged). Each
  // exists only if the wrapped executor has it.
  GLS_INTERNAL_FORWARD_SUBMIT(post)
  GLS_INTERNAL_FORWARD_SUBMIT(execute)
  GLS_INTERNAL_FORWARD_SUBMIT(submit)
  GLS_INTERNAL_FORWARD_SUBMIT(add)
  GLS_INTERNAL_FORWARD_SUBMIT(defer)
  GLS_INTERNAL_FORWARD_SUBMIT(dispatch)

  // underlying(): the wrapped executor, for everything else it offers.
  Executor& underlying() noexcept { return executor_; }
  const Executor& underlying() const noexcept { return executor_; }

 private:
  Executor executor_;
};

#undef GLS_INTERNAL_FORWARD_SUBMIT

// Propagating(executor)
//
// `executor` wrapped so that every task submitted through the result runs
// with the submitter's values. See the file comment.
template <typename Executor>
PropagatingExecutor<std::decay_t<Executor>> Propagating(Executor&& executor) {
  return PropagatingExecutor<std::decay_t<Executor>>(
      std::forward<Executor>(executor));
}

}  // namespace gls

#endif  // GLS_EXECUTOR_H_
