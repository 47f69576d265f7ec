// gls/strategy.h: the interface every goroutine-id strategy implements.
//
// What this is for: a Strategy answers two questions for ContextManager and
// the goroutine-id functions: "which context is the running flow of execution
// in?" (Current) and "run this function with that context bound to the
// running flow" (RunBound). Everything else (values, scopes, Go, the id pool)
// is shared code in //gls. Several strategies can be used in one binary; each
// ContextManager is tied to one.
//
// What this is not: something most users touch. Users include gls/gls.h and
// get the default strategy (chosen at build time, see docs/strategies.md).
// Pick a strategy explicitly only to compare them or to use fibers:
//
// Example:
//
//   #include "gls/gls.h"
//   #include "strategies/thread_local/thread_local_strategy.h"
//
//   gls::ContextManager mgr(gls::ThreadLocalStrategy());
//   std::optional<uint64_t> id = gls::ThreadLocalStrategy().GetGoroutineId();
//
// Guarantees required of every implementation:
//   * Current() and RunBound() are thread-safe. Current() should take no lock
//     and allocate nothing; a strategy that cannot promise it says so (the
//     stack_tag libunwind walker: libunwind's first unwind of a module takes
//     a lock, and stacks deeper than 16 frames use a heap buffer).
//   * RunBound(ctx, fn) makes Current() return `ctx` in the flow of execution
//     that runs `fn`, for the whole of `fn`, and nowhere else; when `fn`
//     returns or throws, Current() answers what it answered before.
//   * Strategies are immortal singletons: a `const Strategy&` never dangles.
#ifndef GLS_STRATEGY_H_
#define GLS_STRATEGY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "gls/internal/context.h"

namespace gls {

// Strategy
//
// See the file comment. Implementations live in strategies/<name>/.
class Strategy {
 public:
  virtual ~Strategy() = default;

  // name(): short lowercase name, e.g. "thread_local"; used in benchmark and
  // test names.
  virtual std::string_view name() const = 0;

  // Current(): the context bound to the running flow of execution, or nullptr
  // when there is none.
  virtual internal::Context* Current() const = 0;

  // RunBound(ctx, fn): runs `fn` with `ctx` bound as the running flow's
  // context. Only called when Current() is nullptr.
  virtual void RunBound(internal::Context* ctx,
                        absl::FunctionRef<void()> fn) const = 0;

  // CurrentInline(): Current(), read without a virtual call when the
  // strategy keeps its contexts in the shared thread-local slot.
  internal::Context* CurrentInline() const {
    return uses_thread_slot_ ? internal::tls_context : Current();
  }

  // EnsureContext(cb): calls `cb` with the running flow's context, first
  // binding a fresh one from the pool (released again after `cb`) if there
  // is none. A template, so `cb` runs inside RunBound's function with no
  // call of its own: the stack-walking strategies pay for every frame
  // between a scope and the code in it.
  template <typename F>
  void EnsureContext(F&& cb) const {
    if (internal::Context* ctx = CurrentInline()) {
      cb(ctx);
      return;
    }
    internal::ContextLease lease;
    RunBound(lease.get(), [&] { cb(lease.get()); });
  }

  // GetGoroutineId(): the running flow's goroutine id, or std::nullopt
  // outside every context (no SetValues or EnsureGoroutineId scope is
  // active on this flow).
  std::optional<uint64_t> GetGoroutineId() const {
    const internal::Context* ctx = CurrentInline();
    if (ctx == nullptr) return std::nullopt;
    return ctx->id();
  }

  // EnsureGoroutineId(cb): calls `cb` with the running flow's goroutine id,
  // creating one for the duration of `cb` if there is none. The id is a
  // small integer reused from a pool: after `cb` returns it may name another
  // flow.
  void EnsureGoroutineId(absl::FunctionRef<void(uint64_t)> cb) const {
    EnsureContext([&](internal::Context* ctx) { cb(ctx->id()); });
  }

 protected:
  // uses_thread_slot: true if Current() is exactly `internal::tls_context`.
  explicit Strategy(bool uses_thread_slot = false)
      : uses_thread_slot_(uses_thread_slot) {}

 private:
  const bool uses_thread_slot_;
};

// DefaultStrategy()
//
// The strategy `ContextManager()`, `gls::GetGoroutineId()` and
// `gls::EnsureGoroutineId()` use: the one named by the Bazel build setting
// //gls:default_strategy (default "thread_local"). Defined by //gls.
const Strategy& DefaultStrategy();

}  // namespace gls

#endif  // GLS_STRATEGY_H_
