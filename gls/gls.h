// gls/gls.h: goroutine-local storage for C++. The one header users include.
//
// What this is for: context values (a request id, a trace span, a tenant)
// that follow the flow of execution without being passed as arguments, so
// every log line of a request can carry its request id without changing every
// function signature. The C++ counterpart of Go's jtolds/gls, with the same
// API: ContextManager (SetValues, GetValue, Unregister), Values, ContextKey
// and GenSym, Go, EnsureGoroutineId and GetGoroutineId.
//
// What this is not: a replacement for passing a context object explicitly
// where you can; nor shared state between threads (values reach another flow
// only through gls::Go or a gls::Snapshot).
//
// Guarantees: see each header. In short: thread-safe; GetValue is a lock-free
// read costing about a thread_local read plus a short search; values are
// restored exactly when a SetValues scope ends, by return or by exception.
// Which flow of execution "here" means (thread, or also fiber) depends on the
// strategy; the default is chosen at build time with the label flag
// `--//gls:default_strategy=//strategies/<name>:default` (docs/strategies.md).
//
// Example:
//
//   #include "gls/gls.h"
//
//   gls::ContextManager mgr;
//   const gls::ContextKey kRequestId = gls::GenSym();
//
//   void MyLog() {
//     if (const gls::Value* id = mgr.GetValue(kRequestId)) {
//       std::cout << "My request id is: " << *id << "\n";
//     } else {
//       std::cout << "No request id found\n";
//     }
//   }
//
//   int main() {
//     mgr.SetValues({{kRequestId, "12345"}}, [] { MyLog(); });
//     MyLog();
//   }
//   // Output: My request id is: 12345
//   //         No request id found
#ifndef GLS_GLS_H_
#define GLS_GLS_H_

#include <cstdint>
#include <optional>

#include "absl/functional/function_ref.h"
#include "gls/bind.h"             // IWYU pragma: export
#include "gls/context_manager.h"  // IWYU pragma: export
#include "gls/executor.h"         // IWYU pragma: export
#include "gls/go.h"               // IWYU pragma: export
#include "gls/scoped_values.h"    // IWYU pragma: export
#include "gls/snapshot.h"         // IWYU pragma: export
#include "gls/strategy.h"         // IWYU pragma: export
#include "gls/values.h"           // IWYU pragma: export

namespace gls {

// GetGoroutineId()
//
// The running flow of execution's goroutine id under the default strategy, or
// std::nullopt outside every context ("none"). Lock-free, except the first
// call inside a Snapshot::Run (or a gls::Bind call) that hopped onto a thread
// with no values of its own under the thread_local strategy: the hop shares
// the snapshot's read-only view, and the id comes with a context leased from
// the pool then (strategies/thread_local/thread_local_strategy.h), which may
// take the pool's lock.
inline std::optional<uint64_t> GetGoroutineId() {
  return DefaultStrategy().GetGoroutineId();
}

// EnsureGoroutineId(cb)
//
// Calls `cb` with the running flow's goroutine id under the default strategy,
// creating one (a small integer reused from a pool) for the duration of `cb`
// if there is none. The id may name another flow after `cb` returns.
inline void EnsureGoroutineId(absl::FunctionRef<void(uint64_t)> cb) {
  DefaultStrategy().EnsureGoroutineId(cb);
}

}  // namespace gls

#endif  // GLS_GLS_H_
