// gls/scoped_values.h: scopes without a callback. gls::ScopedValues sets
// values from its construction to its destruction; gls::ScopedSnapshot
// installs a Snapshot for as long.
//
// What this is for: the places that must set values but cannot wrap the work
// in a function: an RPC interceptor with separate before and after hooks, a
// framework's begin/end callbacks, a storage interface with Attach and
// Detach (OpenTelemetry's RuntimeContextStorage), a task runner that
// installs a captured Snapshot around a task it does not own. Where the work
// is a function, prefer ContextManager::SetValues and Snapshot::Run: an
// unbalanced pair cannot be written with them.
//
// What this is not: a way to give a coroutine values (gls::WithValues does,
// gls/coro.h), or to set values in another flow. A guard's scope belongs to
// the flow (thread, fiber) it was made on and must end there, innermost
// first, as a SetValues scope would.
//
// Strategies: works under thread_local and goid, and under any strategy
// whose Strategy::Attach binds a context (gls/strategy.h). Under stack_tag,
// which finds a flow's values through tags written into its callers' stack
// frames, a guard cannot exist: its constructor throws std::logic_error
// saying so and naming what to use (SetValues(values, fn), Snapshot::Run,
// or the thread_local or goid strategy), and changes nothing.
//
// Guarantees (tested in gls/scoped_values_test.cc and, per strategy, by the
// public conformance suite):
//   * Inside a guard, GetValue sees exactly what it would see inside
//     SetValues(values, fn) (or Run) at the same place; after it, the
//     previous values are back exactly. Guards and SetValues scopes nest in
//     any mix.
//   * Ending guards out of order (an outer guard destroyed while an inner
//     one is open) is detected: one line on stderr naming it. It is defined:
//     the outer guard's values stay visible until the inner guard ends, and
//     then the values from before the outer guard are back. No flow ever
//     sees another flow's values.
//   * Destroying a guard in another flow than the one it was made in (a
//     guard moved into a lambda run on another thread, a guard held across
//     a thread hop) aborts the process with a message: the flow it was made
//     in still has its values and cannot be changed from here, and
//     continuing would show them to that flow's next work.
//   * A guard still open when the SetValues, Snapshot::Run or gls::Bind
//     scope it was made in ends (a guard emplaced into an object that
//     outlives the callback) aborts the process with a message at that end:
//     its values would stay installed in the flow after the scope, where the
//     flow's next work (another request's, on a pool thread) would see them.
//   * A guard still open when a gls::Task suspends at a co_await aborts the
//     process with a message at that suspension (the task may resume on
//     another thread). This cannot be refused at compile time: a guard is
//     an ordinary local in the coroutine's frame.
//   * If the constructor throws (std::logic_error as above, std::bad_alloc
//     growing a context), nothing has changed.
//   * Not async-signal-safe (GetValue is), as SetValues.
//
// Example: an interceptor with before/after hooks.
//
//   class RequestIdInterceptor {
//    public:
//     void Before(const Request& request) {
//       guard_.emplace(request_mgr, gls::Values{{kRequestId, request.id}});
//     }
//     void After() { guard_.reset(); }
//
//    private:
//     std::optional<gls::ScopedValues> guard_;
//   };
#ifndef GLS_SCOPED_VALUES_H_
#define GLS_SCOPED_VALUES_H_

#include <cstddef>

#include "gls/context_manager.h"
#include "gls/snapshot.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {

// ScopedValues
//
// ScopedValues(mgr, values): from here until the guard is destroyed, `mgr`
// in this flow sees `values` added to (or replacing same-key entries of)
// what it saw. `values` is copied. With empty `values`, does nothing (but
// still throws under a strategy that cannot attach). Throws
// std::logic_error if `mgr`'s strategy cannot attach (stack_tag; see the
// file comment), std::bad_alloc if memory runs out; nothing changes
// then. Neither copyable nor movable: it ends where it began.
class ScopedValues {
 public:
  ScopedValues(ContextManager& mgr, const Values& values);
  ~ScopedValues();

  ScopedValues(const ScopedValues&) = delete;
  ScopedValues& operator=(const ScopedValues&) = delete;

  // The storage of the scope inside (gls's own type, kept out of this
  // header); checked against the type's size in scoped_values.cc.
  static constexpr size_t kScopeBytes = 64;

 private:
  Context* ctx_ = nullptr;  // null: nothing was set (empty values)
  const Strategy* strategy_ = nullptr;
  alignas(void*) unsigned char scope_[kScopeBytes];
};

// ScopedSnapshot
//
// ScopedSnapshot(snapshot): from here until the guard is destroyed, this
// flow sees exactly `snapshot`'s values, as inside snapshot.Run(fn): every
// registered manager shows what it had where the snapshot was captured (and
// nothing if it had nothing), whatever the flow had. The guard holds its own
// copy of the snapshot. Throws std::logic_error if a strategy whose values
// it would change (those the snapshot has values of, and those the flow has
// values of) cannot attach (stack_tag), std::bad_alloc if memory runs out; nothing changes then. Neither
// copyable nor movable.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(const Snapshot& snapshot);
  ~ScopedSnapshot();

  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;

 private:
  // One installed scope per strategy whose context changed: the snapshot's
  // frame, or nothing (hiding a strategy the snapshot has no values of).
  struct Installed {
    Context* ctx;
    const Strategy* strategy;
    alignas(void*) unsigned char scope[ScopedValues::kScopeBytes];
  };
  static constexpr int kMaxInstalled = 8;  // strategies a process may have

  void Install(Context* ctx, const Strategy* strategy, internal::Frame* frame);
  void Uninstall() noexcept;

  Snapshot snapshot_;
  Installed installed_[kMaxInstalled];
  int count_ = 0;
};

}  // namespace gls

#endif  // GLS_SCOPED_VALUES_H_
