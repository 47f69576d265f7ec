// gls/go.h: gls::Go, which starts a thread that keeps the caller's context
// values.
//
// What this is for: a plain std::thread starts with no context values (its
// stack is brand new, as a goroutine's is). gls::Go captures the values every
// registered ContextManager has at the call (gls::Capture) and runs `fn` in
// the new thread with them (Snapshot::Run), each under its own manager's
// strategy: the C++ form of jtolds/gls's Go.
//
// What this is not: a thread pool or an executor. To carry values into a
// task you hand to an executor, capture a gls::Snapshot and Run the task in
// it (gls/snapshot.h).
//
// Guarantees: thread-safe. The capture is taken before Go returns and costs
// O(1) with no allocation, so later changes in the caller do not reach the
// new thread, and a manager destroyed or unregistered before the thread
// starts is not carried. The new thread runs `fn` inside its own fresh
// context (its own goroutine id). As with std::thread, an exception escaping
// `fn` calls std::terminate.
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

#include "gls/context_manager.h"
#include "gls/snapshot.h"

namespace gls {

// Go(fn)
//
// Starts a thread running `fn()` with the calling flow's context values of
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
  return std::jthread([snapshot = Capture(),
                       fn = std::decay_t<F>(std::forward<F>(fn))]() mutable {
    snapshot.Run([&] { fn(); });
  });
}

}  // namespace gls

#endif  // GLS_GO_H_
