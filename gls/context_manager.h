// gls/context_manager.h: ContextManager, the main entry point of gls.
//
// What this is for: setting context values (a request id, a trace span, a
// tenant) for everything a function calls, however deep, and reading them
// back anywhere below without passing them as arguments. The C++ counterpart
// of jtolds/gls's ContextManager.
//
// What this is not: a way to share values between unrelated flows, or to
// change what an outer scope sees. Values flow down the call stack, and to
// other flows only through gls::Go and gls::Snapshot (gls/snapshot.h).
//
// Guarantees:
//   * Thread-safe: any number of threads may use one ContextManager at once;
//     each flow of execution sees only its own values.
//   * GetValue takes no lock and allocates nothing, for every key kind (a
//     string key is looked up as a std::string_view), with the thread_local,
//     goid and frame-pointer stack_tag strategies (see gls/strategy.h for
//     the libunwind walker). Through the default strategy it makes no
//     virtual call. With the same strategies it is async-signal-safe: a
//     handler on the interrupted flow's stack sees that flow's values
//     (docs/strategies.md says which strategy sees what on an alternate
//     signal stack).
//   * SetValues copies `values` (a scope owns its values: changing the
//     caller's object afterwards changes nothing below) into one frame from a
//     per-thread cache: no heap allocation in a steady state for up to two
//     values whose copies do not allocate. The first SetValues in a flow also
//     takes a goroutine id from the pool.
//   * Exception-safe: when the function passed to SetValues throws, the
//     previous values are back before the exception leaves SetValues.
//   * Usable at thread exit: SetValues, GetValue, Capture and Run work from
//     any thread_local destructor, whether it runs before or after gls's own
//     per-thread cleanup (gls's per-thread state is trivially destructible
//     and, once cleaned up, bypassed); a flow never shares a context or a
//     goroutine id with another live flow.
//   * Memory: each context's table grows only to the number of managers
//     alive at once; a destroyed manager's slot is reused, and no later
//     manager ever sees the values of an earlier one.
//   * Fiber-safety is the strategy's: the thread_local strategy follows
//     threads, not fibers (see docs/strategies.md).
//
// Example:
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
//   mgr.SetValues({{kRequestId, "12345"}}, [] { MyLog(); });  // 12345
//   MyLog();                                                  // none
#ifndef GLS_CONTEXT_MANAGER_H_
#define GLS_CONTEXT_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gls/internal/context.h"
#include "gls/internal/frame.h"
#include "gls/internal/selected_default_strategy.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {

class ScopedValues;

namespace internal {

template <typename T>
struct IsStdFunction : std::false_type {};
template <typename R, typename... A>
struct IsStdFunction<std::function<R(A...)>> : std::true_type {};

// ThrowEmptyCallable(where): the std::invalid_argument CheckCallable
// throws, out of line so the check itself stays a compare and a branch.
[[noreturn]] void ThrowEmptyCallable(const char* where);

// Throws std::invalid_argument naming `where` if `fn` is a null function
// pointer, a null member pointer or an empty std::function. Other callables
// (lambdas, function references) cannot be empty and are not tested, so no
// compiler warns that the test is always false.
template <typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CheckCallable(const F& fn,
                                                       const char* where) {
  using D = std::remove_cvref_t<F>;
  if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D>) {
    if (ABSL_PREDICT_FALSE(fn == nullptr)) ThrowEmptyCallable(where);
  } else if constexpr (IsStdFunction<D>::value) {
    if (ABSL_PREDICT_FALSE(!fn)) ThrowEmptyCallable(where);
  }
}

// Runs `fn` and stores its result, so a call can return what fn returns
// through a void() FunctionRef.
template <typename F, typename R = std::invoke_result_t<F&>>
class ResultCapture {
 public:
  static_assert(!std::is_reference_v<R>,
                "gls: the function passed to SetValues or Run may return a "
                "value or void, not a reference (it would dangle once the "
                "scope ends)");
  explicit ResultCapture(F& fn) : fn_(fn) {}
  void operator()() const { result_.emplace(std::invoke(fn_)); }
  R Take() { return std::move(*result_); }

 private:
  F& fn_;
  mutable std::optional<R> result_;
};

// Calls `fn()` through `run`, a function taking absl::FunctionRef<void()>,
// and returns what `fn` returns.
template <typename F, typename Run>
std::invoke_result_t<F&> CallReturning(F& fn, Run&& run) {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    // A wrapper, so mutable lambdas (not const-callable) work too.
    auto call = [&fn] { std::invoke(fn); };
    run(absl::FunctionRef<void()>(call));
  } else {
    ResultCapture<F> capture(fn);
    run(absl::FunctionRef<void()>(capture));
    return capture.Take();
  }
}

// CurrentContextOf(strategy, is_default): strategy.Current(), read inline
// with no virtual call when `strategy` is the build's default.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Context* CurrentContextOf(
    const Strategy& strategy, bool is_default) noexcept {
  return ABSL_PREDICT_TRUE(is_default) ? DefaultCurrent() : strategy.Current();
}

// EnsureContextOf(strategy, is_default, cb): FindOrBindContext with the
// default strategy's inline read and binding when `is_default`, `strategy`'s
// virtual ones otherwise.
template <typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void EnsureContextOf(
    const Strategy& strategy, bool is_default, F&& cb) {
  if (ABSL_PREDICT_TRUE(is_default)) {
    FindOrBindContext(
        [] { return DefaultCurrent(); },
        [](Context* ctx, auto&& fn) { DefaultRunBound(ctx, fn); }, cb);
  } else {
    EnsureContext(strategy, cb);
  }
}

inline bool IsDefault(ManagerHandle handle) {
  return (handle & kNotDefaultStrategy) == 0;
}

}  // namespace internal

// ContextManager
//
// Holds one independent set of context values. Usually one per kind of value,
// declared at namespace scope. Constructing one registers it in the
// process-wide registry that gls::Go and gls::Capture use to carry values
// into other flows; Unregister() or destruction removes it. Neither copyable
// nor movable.
class ContextManager {
 public:
  // ContextManager(): uses the build's default strategy
  // (gls::DefaultStrategy(), see docs/strategies.md).
  ContextManager();
  // ContextManager(strategy): uses `strategy` to know which flow of
  // execution is running. Throws std::length_error if managers of more than
  // 8 distinct strategies have been created, or more than 65,536 managers
  // are alive at once.
  explicit ContextManager(const Strategy& strategy);
  // ~ContextManager(): unregisters and frees the manager's slot. A scope of
  // this manager still open on another flow runs to its end normally (after
  // its function returns, SetValues touches only the flow's own context), but
  // the destroyed object must not be used again (a use-after-free, as for any
  // object). Its values, in open scopes or captured in a Snapshot, are never
  // shown to a manager made later in the same slot (gls/bad_input_test.cc).
  ~ContextManager();

  ContextManager(const ContextManager&) = delete;
  ContextManager& operator=(const ContextManager&) = delete;

  // SetValues(values, fn)
  //
  // Calls `fn()` with `values` added to (or replacing same-key entries of)
  // the values visible here, and returns what `fn` returns. Everything `fn`
  // calls sees them through GetValue; outer frames never do: when `fn`
  // returns or throws, the previous values are back exactly. `values` is
  // copied: changing it later changes nothing. With empty `values`, just
  // calls `fn`. Throws std::invalid_argument if `fn` is a null function
  // pointer or an empty std::function.
  //
  // Not async-signal-safe (GetValue is): it may allocate. A SetValues called
  // from a signal handler that interrupted a SetValues on the same thread
  // (or from a value's copy constructor while SetValues copies it) aborts
  // with "gls: SetValues was called while gls was changing this thread's
  // values ..." rather than corrupt the thread's half-changed state.
  template <typename F>
  std::invoke_result_t<F&> SetValues(const Values& values, F&& fn) {
    internal::CheckCallable(fn, "gls::ContextManager::SetValues");
    return internal::CallReturning(
        fn, [&](absl::FunctionRef<void()> f) { SetValuesImpl(values, f); });
  }
  // SetValues(values, fn) with a temporary (`mgr.SetValues({{kKey, "v"}},
  // fn)`, or std::move of a Values): the same, moving the values into the
  // scope instead of copying them, so each value is copied at most once on
  // its way from the caller (into the braced list's Values) to the scope.
  template <typename F>
  std::invoke_result_t<F&> SetValues(Values&& values, F&& fn) {
    internal::CheckCallable(fn, "gls::ContextManager::SetValues");
    return internal::CallReturning(fn, [&](absl::FunctionRef<void()> f) {
      SetValuesImpl(std::move(values), f);
    });
  }

  // SetValues({{key, value}, ...}, fn): the same, as users usually write
  // it: each value is copied once, from the braced list straight into the
  // scope's frame (no Values in between).
  template <typename F>
  std::invoke_result_t<F&> SetValues(std::initializer_list<Values::Entry> values,
                                     F&& fn) {
    internal::CheckCallable(fn, "gls::ContextManager::SetValues");
    return internal::CallReturning(
        fn, [&](absl::FunctionRef<void()> f) { SetValuesImpl(values, f); });
  }

  // GetValue(key)
  //
  // The value set for `key` (a ContextKey, a string, or a Key) by a SetValues
  // scope that encloses this call, or nullptr if there is none ("not
  // found"). The pointee stays valid until that scope ends; copy it to keep
  // it longer. Lock-free; no allocation.
  const Value* GetValue(KeyView key) const noexcept {
    const internal::Frame* frame = VisibleFrame();
    return frame == nullptr ? nullptr : frame->Find(key);
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE const Value* GetValue(
      ContextKey key) const noexcept {
    const internal::Frame* frame = VisibleFrame();
    return frame == nullptr ? nullptr : frame->FindSymbol(key.id());
  }

  // GetValue(typed_key)
  //
  // The `T` set for `key` by an enclosing scope, or nullptr. No run-time type
  // check, no allocation, no lock: the fast path.
  template <typename T>
  ABSL_ATTRIBUTE_ALWAYS_INLINE const T* GetValue(
      const TypedKey<T>& key) const noexcept {
    const internal::Frame* frame = VisibleFrame();
    return frame == nullptr
               ? nullptr
               : static_cast<const T*>(frame->FindSymbolData(key.id()));
  }

  // GetValue<T>(key)
  //
  // A copy of the value for `key` as a `T`. Errors: NotFound if no enclosing
  // scope set `key`; FailedPrecondition, naming both types, if the value is
  // not exactly a `T`.
  template <typename T>
  absl::StatusOr<T> GetValue(KeyView key) const {
    const Value* value = GetValue(key);
    if (value == nullptr) return NotFound(key);
    return value->As<T>();
  }

  // GetValues(): a copy of every value visible here (empty outside every
  // scope of this manager).
  Values GetValues() const;

  // Unregister(): removes this manager from the registry gls::Go and
  // gls::Capture use, so its values are no longer carried into other flows.
  // The manager itself keeps working: its own scopes show their values in
  // their own flow, outside any Snapshot::Run. Idempotent.
  //
  // Inside a Snapshot::Run that was already running when Unregister was
  // called, the manager may go on showing the values that Run carried for it
  // until that Run, or a Run nested in it, ends in that flow; from then on
  // it shows none of them. It never shows another flow's values, and after
  // the outermost Run the flow's own values are back (unregister_test).
  void Unregister();

  // strategy(): the strategy this manager uses.
  const Strategy& strategy() const { return *strategy_; }

 private:
  bool is_default() const { return internal::IsDefault(handle_); }
  ABSL_ATTRIBUTE_ALWAYS_INLINE Context* CurrentContext() const noexcept {
    return internal::CurrentContextOf(*strategy_, is_default());
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE const internal::Frame* VisibleFrame()
      const noexcept {
    // One load of the handle serves the default-strategy test, the slot and
    // the manager check.
    const internal::ManagerHandle handle = handle_;
    const internal::FrameHead* head;
    if (ABSL_PREDICT_TRUE(internal::IsDefault(handle))) {
      // The context is never nullptr here (unbound_context) and a slot
      // never holds nullptr (no_frame), so one compare tells this manager's
      // frame from "none", a dead manager's frame and, for a slot beyond the
      // inline ones, the frame or no_frame of the inline slot it lands on.
      head = internal::DefaultContextForRead()->InlineSlotForRead(
          internal::SlotOf(handle));
      if (ABSL_PREDICT_FALSE(head->manager_handle != handle)) {
        if (ABSL_PREDICT_TRUE(internal::SlotOf(handle) <
                              Context::kInlineSlots)) {
          return nullptr;
        }
        head = internal::DefaultContextForRead()->SlotForRead(
            internal::SlotOf(handle));
      }
    } else {
      const Context* ctx = strategy_->Current();
      if (ctx == nullptr) return nullptr;
      head = ctx->SlotForRead(internal::SlotOf(handle));
    }
    return ABSL_PREDICT_TRUE(head->manager_handle == handle)
               ? static_cast<const internal::Frame*>(head)
               : nullptr;
  }
  friend class ScopedValues;
  void SetValuesImpl(const Values& values, absl::FunctionRef<void()> fn);
  void SetValuesImpl(Values&& values, absl::FunctionRef<void()> fn);
  void SetValuesImpl(std::initializer_list<Values::Entry> values,
                     absl::FunctionRef<void()> fn);
  template <typename V>
  void SetValuesIn(V&& values, absl::FunctionRef<void()> fn);
  // NewFrameIn(ctx, values): a frame of this manager for `ctx`'s flow:
  // `values` over what the flow sees of this manager, linked to ctx's top.
  // Reserves the manager's slot in `ctx` first (may throw std::bad_alloc,
  // before anything changed).
  internal::Frame* NewFrameIn(
      Context* ctx, const Values& values) const {
    const uint32_t slot = internal::SlotOf(handle_);
    ctx->Reserve(slot);
    const internal::FrameHead* head = ctx->SlotForRead(slot);
    const internal::Frame* visible =
        head->manager_handle == handle_
            ? static_cast<const internal::Frame*>(head)
            : nullptr;
    return internal::Frame::New(
        handle_, strategy_, visible == nullptr ? nullptr : &visible->values(),
        values, ctx->top());
  }
  static absl::Status NotFound(KeyView key);

  const Strategy* const strategy_;
  // Slot, generation, and whether strategy_ is the default (see
  // internal::ManagerHandle).
  const internal::ManagerHandle handle_;
};

}  // namespace gls

#endif  // GLS_CONTEXT_MANAGER_H_
