// gls/go.h: gls::Go, which starts a thread that keeps the caller's context
// values.
//
// What this is for: a plain std::thread starts with no context values (its
// stack is brand new, as a goroutine's is). gls::Go copies the values every
// registered ContextManager has at the call and sets them again, each under
// its own manager's strategy, around `fn` in the new thread: the C++ form of
// jtolds/gls's Go.
//
// What this is not: a thread pool or an executor. To carry values into a task
// you hand to an executor, capture them with `mgr.GetValues()` and re-set
// them with `mgr.SetValues(...)` in the task.
//
// Guarantees: thread-safe. The copy is taken before Go returns, so later
// changes in the caller do not reach the new thread, and a manager destroyed
// afterwards does not invalidate it. The new thread runs `fn` inside its own
// fresh context (its own goroutine id). As with std::thread, an exception
// escaping `fn` calls std::terminate.
//
// Example:
//
//   mgr.SetValues({{kRequestId, "12345"}}, [] {
//     std::jthread plain([] { MyLog(); });   // "No request id found"
//     plain.join();
//     gls::Go([] { MyLog(); }).join();       // "My request id is: 12345"
//   });
#ifndef GLS_GO_H_
#define GLS_GO_H_

#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gls/context_manager.h"

namespace gls {

// Go(fn)
//
// Starts a thread running `fn()` with the calling thread's context values of
// every registered ContextManager (see ContextManager::Unregister) still set.
// Returns the thread; a std::jthread joins on destruction, so dropping the
// result waits for `fn`. Throws std::invalid_argument if `fn` is a null
// function pointer or an empty std::function, and std::system_error if the
// thread cannot be started.
template <typename F>
[[nodiscard]] std::jthread Go(F&& fn) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>,
                "gls::Go needs a function callable with no arguments");
  internal::CheckCallable(fn, "gls::Go");
  return std::jthread(
      [carried = internal::CaptureRegisteredValues(),
       fn = std::forward<F>(fn)]() mutable {
        internal::RunWithValues(carried, [&] { fn(); });
      });
}

}  // namespace gls

#endif  // GLS_GO_H_
