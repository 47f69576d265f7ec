// gls/context_manager.h: ContextManager, the main entry point of gls.
//
// What this is for: setting context values (a request id, a trace span, a
// tenant) for everything a function calls, however deep, and reading them
// back anywhere below without passing them as arguments. The C++ counterpart
// of jtolds/gls's ContextManager.
//
// What this is not: a way to share values between unrelated threads, or to
// change what an outer scope sees. Values flow down the call stack, and
// across threads only through gls::Go (gls/go.h).
//
// Guarantees:
//   * Thread-safe: any number of threads may use one ContextManager at once;
//     each sees only its own values.
//   * GetValue takes no lock and allocates nothing (with the thread_local,
//     goid and frame-pointer stack_tag strategies; see gls/strategy.h for
//     the libunwind walker). SetValues copies
//     nothing when no enclosing scope of the manager has values (the scope
//     borrows the caller's Values) and otherwise allocates only to merge the
//     enclosing values with the new ones (nothing for up to two values with
//     short keys); the first SetValues in a flow of execution also takes a
//     goroutine id from the pool.
//   * Exception-safe: when the function passed to SetValues throws, the
//     previous values are back before the exception leaves SetValues.
//   * Not async-signal-safe in general; see docs/strategies.md for what each
//     strategy allows in a signal handler.
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
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {

namespace internal {

template <typename T>
struct IsStdFunction : std::false_type {};
template <typename R, typename... A>
struct IsStdFunction<std::function<R(A...)>> : std::true_type {};

// Throws std::invalid_argument naming `where` if `fn` is a null function
// pointer or an empty std::function. Other callables cannot be empty.
template <typename F>
void CheckCallable(const F& fn, const char* where) {
  using D = std::decay_t<F>;
  if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D> ||
                IsStdFunction<D>::value) {
    if (!fn) {
      throw std::invalid_argument(std::string(where) +
                                  ": the function to call is empty (null)");
    }
  }
}

// Runs `fn` and stores its result, so SetValues can return what fn returns
// through a void() FunctionRef.
template <typename F, typename R = std::invoke_result_t<F&>>
class ResultCapture {
 public:
  static_assert(!std::is_reference_v<R>,
                "gls: the function passed to SetValues may return a value or "
                "void, not a reference (it would dangle once the scope ends)");
  explicit ResultCapture(F& fn) : fn_(fn) {}
  void operator()() { result_.emplace(std::invoke(fn_)); }
  R Take() { return std::move(*result_); }

 private:
  F& fn_;
  std::optional<R> result_;
};

}  // namespace internal

// ContextManager
//
// Holds one independent set of context values. Usually one per kind of value,
// declared at namespace scope. Constructing one registers it in the
// process-wide registry that gls::Go uses to carry values into new threads;
// Unregister() or destruction removes it. Neither copyable nor movable.
class ContextManager {
 public:
  // ContextManager(): uses the build's default strategy
  // (gls::DefaultStrategy(), see docs/strategies.md).
  ContextManager();
  // ContextManager(strategy): uses `strategy` to know which flow of
  // execution is running.
  explicit ContextManager(const Strategy& strategy);
  // ~ContextManager(): unregisters. No SetValues scope of this manager may
  // still be active.
  ~ContextManager();

  ContextManager(const ContextManager&) = delete;
  ContextManager& operator=(const ContextManager&) = delete;

  // SetValues(values, fn)
  //
  // Calls `fn()` with `values` added to (or replacing same-key entries of)
  // the values visible here, and returns what `fn` returns. Everything `fn`
  // calls sees them through GetValue; outer frames never do: when `fn`
  // returns or throws, the previous values are back exactly. With empty
  // `values`, just calls `fn`. Throws std::invalid_argument if `fn` is a
  // null function pointer or an empty std::function.
  template <typename F>
  std::invoke_result_t<F&> SetValues(const Values& values, F&& fn) {
    internal::CheckCallable(fn, "gls::ContextManager::SetValues");
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<R>) {
      SetValuesImpl(values, fn);
    } else {
      internal::ResultCapture<F> capture(fn);
      SetValuesImpl(values, std::ref(capture));
      return capture.Take();
    }
  }

  // GetValue(key)
  //
  // The value set for `key` by a SetValues scope that encloses this call, or
  // nullptr if there is none ("not found"). The pointee stays valid until
  // that scope ends; copy it to keep it longer. Lock-free; no allocation.
  const Value* GetValue(ContextKey key) const {
    const Values* values = VisibleValues();
    return values == nullptr ? nullptr : values->Find(key);
  }
  const Value* GetValue(const Key& key) const {
    const Values* values = VisibleValues();
    return values == nullptr ? nullptr : values->Find(key);
  }

  // GetValue<T>(key)
  //
  // A copy of the value for `key` as a `T`. Errors: NotFound if no enclosing
  // scope set `key`; FailedPrecondition, naming both types, if the value is
  // not exactly a `T`.
  template <typename T>
  absl::StatusOr<T> GetValue(const Key& key) const {
    const Value* value = GetValue(key);
    if (value == nullptr) return NotFound(key);
    return value->As<T>();
  }

  // GetValues(): a copy of every value visible here (empty outside every
  // scope of this manager).
  Values GetValues() const;

  // Unregister(): removes this manager from the registry gls::Go uses, so Go
  // no longer carries its values into new threads. The manager itself keeps
  // working. Idempotent.
  void Unregister();

  // strategy(): the strategy this manager uses.
  const Strategy& strategy() const { return *strategy_; }

 private:
  const Values* VisibleValues() const {
    const internal::Context* ctx = strategy_->CurrentInline();
    return ctx == nullptr ? nullptr : ctx->Get(index_);
  }
  void SetValuesImpl(const Values& values, absl::FunctionRef<void()> fn);
  static absl::Status NotFound(const Key& key);

  const Strategy* const strategy_;
  const size_t index_;  // this manager's slot in every Context
};

namespace internal {

// One registered manager's values, captured in one flow of execution and
// installable in another: what gls::Go carries.
struct CarriedValues {
  const Strategy* strategy;
  size_t manager_index;
  Values values;
};

// CaptureRegisteredValues(): the values every registered manager has in the
// running flow of execution (managers with none are skipped).
std::vector<CarriedValues> CaptureRegisteredValues();

// RunWithValues(carried, fn): runs `fn` with every entry of `carried`
// installed, each in its own strategy's context, as nested SetValues would.
void RunWithValues(const std::vector<CarriedValues>& carried,
                   absl::FunctionRef<void()> fn);

}  // namespace internal

}  // namespace gls

#endif  // GLS_CONTEXT_MANAGER_H_
