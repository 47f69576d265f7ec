// gls/bind.h: gls::Bind, a callable that carries the values of the scope
// that made it to wherever it is called.
//
// What this is for: the one call that makes a callback keep its request's
// values when it crosses a boundary gls cannot see: a task handed to a thread
// pool, a completion handler run by an event loop, a callback stored and
// called later. `gls::Bind(fn)` captures the calling flow's values
// (gls::Capture) and returns a callable that runs `fn` with exactly those
// values (Snapshot::Run), on any thread, as often as it is called.
//
// What this is not: a way to share values both ways. Like gls::Go, the bound
// callable gets a snapshot: values set later in the binding flow do not reach
// it, and values it sets do not reach the binding flow or the flow that calls
// it. To wrap every task an executor runs, see gls/executor.h.
//
// Guarantees:
//   * Bind allocates nothing beyond what storing `fn` needs: the bound
//     callable holds `fn` and a Snapshot (one reference per strategy with
//     values), inline. It accepts move-only callables; it is copyable when
//     `fn` is.
//   * Calling it makes the calling flow see exactly the captured values of
//     every registered manager, and restores the caller's own values when
//     `fn` returns or throws (see gls/snapshot.h). It allocates nothing in a
//     steady state. A manager destroyed or unregistered before the call shows
//     nothing.
//   * Destroying a bound callable that was never called (a task dropped by a
//     pool that shut down) releases its values; nothing is installed in any
//     flow.
//
// Example:
//
//   mgr.SetValues({{kRequestId, "12345"}}, [&] {
//     pool.post(gls::Bind([] { MyLog(); }));
//   });
//   // On a pool thread, later: "My request id is: 12345". Tasks posted
//   // without Bind see no values there.
#ifndef GLS_BIND_H_
#define GLS_BIND_H_

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "gls/context_manager.h"
#include "gls/snapshot.h"

namespace gls {

// Bound<F>
//
// What gls::Bind returns: `F` plus the Snapshot to run it in. Callable with
// the arguments `F` takes; returns what `F` returns (references included).
template <typename F>
class Bound {
 public:
  Bound(Snapshot snapshot, F fn) noexcept(
      std::is_nothrow_move_constructible_v<F>)
      : snapshot_(std::move(snapshot)), fn_(std::move(fn)) {}
  // Captures the running flow's values (gls::Capture) for `fn`.
  template <typename G>
  Bound(std::in_place_t, G&& fn) : snapshot_(Capture()), fn_(std::forward<G>(fn)) {}

  template <typename... Args>
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::invoke_result_t<F&, Args...> operator()(
      Args&&... args) {
    return Call(fn_, std::forward<Args>(args)...);
  }
  template <typename... Args>
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::invoke_result_t<const F&, Args...>
  operator()(Args&&... args) const {
    return Call(fn_, std::forward<Args>(args)...);
  }

  // snapshot(): the values the call runs with.
  const Snapshot& snapshot() const noexcept { return snapshot_; }

  // function(): the wrapped callable (for adapters that forward its
  // associated properties, e.g. an Asio handler's executor).
  F& function() noexcept { return fn_; }
  const F& function() const noexcept { return fn_; }

 private:
  // Always inlined, like Snapshot::Run: a call in the binding flow (an
  // Asio handler run by the event loop that bound it) is then a compare
  // and the call, with no frame of its own (//bench:instructions).
  template <typename G, typename... Args>
  ABSL_ATTRIBUTE_ALWAYS_INLINE decltype(auto) Call(G& fn,
                                                   Args&&... args) const {
    using R = std::invoke_result_t<G&, Args...>;
    if constexpr (std::is_reference_v<R>) {
      // Snapshot::Run returns values only; carry the reference as a pointer.
      return static_cast<R>(*snapshot_.Run([&] {
        auto&& result = std::invoke(fn, std::forward<Args>(args)...);
        return std::addressof(result);
      }));
    } else {
      return snapshot_.Run(
          [&]() -> R { return std::invoke(fn, std::forward<Args>(args)...); });
    }
  }

  Snapshot snapshot_;
  F fn_;
};

// Bind(fn)
//
// A Bound callable that runs `fn` with the values every registered manager
// has in the calling flow now. See the file comment. Throws
// std::invalid_argument if `fn` is a null function pointer or an empty
// std::function.
template <typename F>
[[nodiscard]] Bound<std::decay_t<F>> Bind(F&& fn) {
  internal::CheckCallable(fn, "gls::Bind");
  return Bound<std::decay_t<F>>(std::in_place, std::forward<F>(fn));
}

}  // namespace gls

#endif  // GLS_BIND_H_
