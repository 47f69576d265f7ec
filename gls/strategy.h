// gls/strategy.h: the interface a goroutine-id strategy implements. Public:
// a strategy for your own scheduler lives in your code, not in gls.
//
// What this is for: a Strategy answers two questions for gls: "which context
// is the running flow of execution in?" (Current) and "run this function with
// that context bound to the running flow" (RunBound). A `gls::Context` is an
// opaque per-flow record that gls hands the strategy; the strategy only stores
// the pointer where Current() will find it again (a thread_local, a field of
// the running task, a table keyed by stack). Everything else (values, scopes,
// snapshots, Go, the id pool) is gls's. Several strategies can be used in one
// binary; each ContextManager is tied to one.
//
// What this is not: something most users touch. Users include gls/gls.h and
// get the default strategy, chosen at build time with the label flag
// `--//gls:default_strategy=<cc_library>` (docs/strategies.md).
//
// Contract every implementation keeps (gls/conformance checks it):
//   * Current() and RunBound() are thread-safe. Current() is noexcept; it
//     should take no lock and allocate nothing (say so in your header if it
//     does), since GetValue calls it.
//   * RunBound(ctx, fn) makes Current() return `ctx` in the flow of execution
//     that runs `fn`, for the whole of `fn`, and in no other flow; when `fn`
//     returns or throws, Current() answers what it answered before. gls only
//     calls it when Current() is nullptr.
//   * Strategies are immortal: a `const Strategy&` handed to gls never dangles
//     (a function-local `static const T* s = new T;` is the usual form).
//   * A strategy that stores an integer rather than a pointer (the stack_tag
//     strategy writes it into the call stack) uses ContextId/ContextWithId.
//
// Example: a strategy keyed on the running task of a user's scheduler.
//
//   thread_local Task* current_task;    // set by the scheduler
//
//   class TaskStrategy final : public gls::Strategy {
//    public:
//     std::string_view name() const override { return "task"; }
//     gls::Context* Current() const noexcept override {
//       return current_task->gls_context;
//     }
//     void RunBound(gls::Context* ctx,
//                   absl::FunctionRef<void()> fn) const override {
//       Task* task = current_task;
//       task->gls_context = ctx;
//       struct Unbind {
//         Task* t;
//         ~Unbind() { t->gls_context = nullptr; }
//       } unbind{task};
//       fn();
//     }
//   };
//   gls::ContextManager mgr(*new TaskStrategy);
#ifndef GLS_STRATEGY_H_
#define GLS_STRATEGY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/functional/function_ref.h"

namespace gls {

// Context
//
// Opaque: one flow of execution's goroutine id and values, owned by gls.
// A strategy stores and returns pointers to it and never looks inside.
class Context;

// ContextId(ctx)
//
// The goroutine id of `ctx`: a small integer, unique among live contexts.
uint64_t ContextId(const Context& ctx) noexcept;

// ContextWithId(id)
//
// The context whose id is `id`, or nullptr if no context ever had it.
// Lock-free and async-signal-safe; contexts are never freed, so the pointer
// is always safe to return from Current().
Context* ContextWithId(uint64_t id) noexcept;

// Strategy
//
// See the file comment.
class Strategy {
 public:
  virtual ~Strategy() = default;

  // name(): short lowercase name, e.g. "thread_local"; used in benchmark and
  // test names.
  virtual std::string_view name() const = 0;

  // Current(): the context bound to the running flow of execution, or nullptr
  // when there is none.
  virtual Context* Current() const noexcept = 0;

  // RunBound(ctx, fn): runs `fn` with `ctx` bound as the running flow's
  // context. Only called when Current() is nullptr.
  virtual void RunBound(Context* ctx, absl::FunctionRef<void()> fn) const = 0;

  // CanAttach(), Attach(ctx), Detach(ctx)
  //
  // Bind `ctx` to the running flow of execution with no function to run,
  // for scopes whose beginning and end are separate calls (the guards of
  // gls/scoped_values.h): after Attach(ctx) returns true, Current() returns
  // `ctx` in this flow, and in no other, until Detach(ctx) is called in the
  // same flow. gls calls Attach only when Current() is nullptr, and Detach
  // only with the context it attached, from the flow it attached it in.
  // Attach may return false, binding nothing, where the strategy cannot
  // bind at that moment (goid: on a thread that is exiting).
  //
  // Optional: the default CanAttach() is false (and Attach binds nothing),
  // which makes those guards throw std::logic_error naming the strategy. A
  // strategy whose binding lives in a stack frame of RunBound (stack_tag
  // writes it into the call stack) cannot attach, and keeps the default.
  virtual bool CanAttach() const noexcept;
  virtual bool Attach(Context* ctx) const;
  virtual void Detach(Context* ctx) const;

  // GetGoroutineId(): the running flow's goroutine id, or std::nullopt
  // outside every context (no SetValues, Run or EnsureGoroutineId scope of
  // this strategy is active on this flow).
  std::optional<uint64_t> GetGoroutineId() const noexcept;

  // EnsureGoroutineId(cb): calls `cb` with the running flow's goroutine id,
  // creating one for the duration of `cb` if there is none. The id is a small
  // integer reused from a pool: after `cb` returns it may name another flow.
  void EnsureGoroutineId(absl::FunctionRef<void(uint64_t)> cb) const;

 protected:
  Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;
};

// DefaultStrategy()
//
// The strategy `ContextManager()`, `gls::GetGoroutineId()` and
// `gls::EnsureGoroutineId()` use: the one the label flag
// //gls:default_strategy names (default //strategies/thread_local:default).
// Defined by that target.
const Strategy& DefaultStrategy();

}  // namespace gls

#endif  // GLS_STRATEGY_H_
