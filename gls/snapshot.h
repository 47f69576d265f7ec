// gls/snapshot.h: gls::Capture and gls::Snapshot, the values of a flow of
// execution as one immutable, shareable object.
//
// What this is for: handing a request's values to another flow of execution
// (a thread, a task posted to a pool, a callback run later) cheaply and
// without ever handing them to the wrong one. `gls::Capture()` takes every
// registered manager's values at this point; `snapshot.Run(fn)` runs `fn`,
// anywhere, with exactly those values. gls::Go is built on it.
//
// What this is not: a way to change another flow's values. A snapshot is a
// copy in effect: later SetValues in the capturing flow do not reach it, and
// SetValues inside Run do not reach the capturing flow.
//
// Guarantees:
//   * Capture() and copying, moving or destroying a Snapshot are O(1) and
//     allocate nothing, however many managers and values there are (one
//     atomic reference count per strategy that has values in the flow).
//     Thread-safe: a Snapshot may be copied and run on any number of threads
//     at once.
//   * Run(fn) makes the flow see exactly the snapshot's values, for every
//     registered manager of every strategy (a manager with no values in the
//     snapshot sees none, whatever the running flow had), and restores the
//     flow's own values when `fn` returns or throws, as a nested SetValues
//     would. The flow gets its own goroutine id if it had none.
//   * Only registered managers' values are carried: a manager unregistered
//     or destroyed by the time Run starts shows nothing of the snapshot.
//   * Run allocates nothing in a steady state (the flow's context, and under
//     the thread_local strategy the frame's view that a hop onto a thread
//     with no values binds, come from per-thread caches of blocks that a
//     thread refills as it frees them); it may allocate the first time a
//     thread runs one, when a thread's cache is empty (blocks freed on
//     another thread go to that thread's cache), when the context pool or
//     the flow's slot table must grow, and, under the stack_tag strategy
//     outside every scope, in the walk that finds no context
//     (strategies/stack_tag/stack_tag_strategy.h).
//
// Example:
//
//   std::vector<std::function<void()>> queue;  // a task queue run later
//   mgr.SetValues({{kRequestId, "12345"}}, [&] {
//     queue.push_back([snapshot = gls::Capture()] {
//       snapshot.Run([] { MyLog(); });
//     });
//   });
//   std::thread([&] { for (auto& task : queue) task(); }).join();
//   // Output: My request id is: 12345
#ifndef GLS_SNAPSHOT_H_
#define GLS_SNAPSHOT_H_

#include <functional>
#include <optional>
#include <type_traits>

#include "absl/functional/function_ref.h"
#include "gls/context_manager.h"
#include "gls/internal/frame.h"

namespace gls {

class Snapshot;

namespace internal {
void CaptureAllStrategies(Snapshot& snapshot) noexcept;
}  // namespace internal

// Capture()
//
// The values every registered ContextManager has in the running flow of
// execution, as one Snapshot. O(1), no allocation.
inline Snapshot Capture() noexcept;

// Snapshot
//
// See the file comment. A default-constructed Snapshot holds no values:
// running in it shows every registered manager nothing.
class Snapshot {
 public:
  Snapshot() noexcept = default;
  Snapshot(const Snapshot& other) noexcept : count_(other.count_) {
    if (count_ == 1) {
      frames_[0] = other.frames_[0];  // the common case, inline
      frames_[0]->Ref();
    } else if (count_ != 0) {
      CopyFramesOf(other);
    }
  }
  Snapshot(Snapshot&& other) noexcept : count_(other.count_) {
    if (count_ == 1) {
      frames_[0] = other.frames_[0];  // the common case, without a loop
    } else {
      for (int i = 0; i < count_; ++i) frames_[i] = other.frames_[i];
    }
    other.count_ = 0;
  }
  Snapshot& operator=(const Snapshot& other) noexcept;
  Snapshot& operator=(Snapshot&& other) noexcept;
  ~Snapshot() {
    if (count_ == 1) {
      internal::Frame::Unref(frames_[0]);  // the common case, inline
    } else if (count_ != 0) {
      Clear();
    }
  }

  // empty(): true if no registered manager had values when captured.
  bool empty() const noexcept { return count_ == 0; }

  // a == b: true if both hold the same captured values (the same capture,
  // or copies of it). O(1).
  friend bool operator==(const Snapshot& a, const Snapshot& b) noexcept {
    if (a.count_ != b.count_) return false;
    for (int i = 0; i < a.count_; ++i) {
      if (a.frames_[i] != b.frames_[i]) return false;
    }
    return true;
  }

  // Run(fn)
  //
  // Calls `fn()` in the calling flow with exactly the snapshot's values and
  // returns what it returns; the flow's own values are back when `fn`
  // returns or throws. Every manager, registered or not, sees only what the
  // snapshot carries: an unregistered manager (never carried) sees nothing
  // inside, whatever the flow had and whatever other managers exist
  // (unregister_test). Throws std::invalid_argument if `fn` is a null
  // function pointer or an empty std::function.
  template <typename F>
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::invoke_result_t<F&> Run(F&& fn) const {
    internal::CheckCallable(fn, "gls::Snapshot::Run");
    // Decided once: in the common registry (every live manager uses the
    // default strategy and is registered) the flow's values are one inline
    // read away, and installing is the default strategy's inline binding.
    if (ABSL_PREDICT_TRUE(internal::RegistryIsSimple())) {
      // Run where the values already are (a handler dispatched inline, a
      // bound callable called in the scope that bound it): nothing to
      // install. Read as GetValue reads: never nullptr (unbound_context:
      // nothing bound), and a bound view is read, not materialized.
      const Context* bound = internal::DefaultContextForRead();
      const internal::Frame* top = bound->top();
      if (count_ == 0 ? top == nullptr : (count_ == 1 && top == frames_[0])) {
        return std::invoke(fn);
      }
      if constexpr (internal::kDefaultBindsViews) {
        // A task's hop to a thread with nothing bound, its frame hopped
        // before: bind the frame's view. A frame only has a view if it can
        // be hopped this way (InstallSimple builds it on the first hop).
        if (count_ == 1 && bound == &internal::unbound_context) {
          if (Context* view = frames_[0]->BuiltHopView()) {
            internal::DefaultViewBinding binding(view);
            return std::invoke(fn);
          }
        }
      }
      return InstallSimple(fn);
    }
    if (!internal::AnyUnregisteredLiveManager() && SeenByRunningFlowSlow()) {
      return std::invoke(fn);
    }
    return internal::CallReturning(
        fn, [&](absl::FunctionRef<void()> f) { RunGeneral(f); });
  }

 private:
  friend Snapshot Capture() noexcept;
  friend class ScopedSnapshot;
  friend void internal::CaptureAllStrategies(Snapshot& snapshot) noexcept;
  // HopInFreshContext(fn): Run's hop when the flow has no context: one
  // from the pool, bound by the default strategy around the call.
  template <typename F>
  std::invoke_result_t<F&> HopInFreshContext(F& fn) const {
    using R = std::invoke_result_t<F&>;
    internal::ContextLease lease;
    Context* ctx = lease.get();
    internal::Frame* frame = frames_[0];
    if constexpr (std::is_void_v<R>) {
      internal::DefaultRunBound(ctx, [&] {
        internal::Scope scope(ctx, frame, internal::Scope::HopTag{});
        std::invoke(fn);
      });
    } else {
      std::optional<R> result;
      internal::DefaultRunBound(ctx, [&] {
        internal::Scope scope(ctx, frame, internal::Scope::HopTag{});
        result.emplace(std::invoke(fn));
      });
      return std::move(*result);
    }
  }
  // InstallSimple(fn): Run in the simple registry when the flow's values
  // are not already the snapshot's and no view was ready: out of line, so
  // that Run's fast paths keep few registers.
  template <typename F>
  [[gnu::noinline]] std::invoke_result_t<F&> InstallSimple(F& fn) const {
    const Context* bound = internal::DefaultContextForRead();
    // A task's hop to a flow with no values: one frame, installed inline.
    if (count_ == 1 && bound->top() == nullptr &&
        frames_[0]->parent() == nullptr &&
        internal::IsDefault(frames_[0]->handle())) {
      if (bound == &internal::unbound_context) {
        if constexpr (internal::kDefaultBindsViews) {
          if (ABSL_PREDICT_TRUE(frames_[0]->slot() < Context::kInlineSlots)) {
            internal::DefaultViewBinding binding(frames_[0]->HopView());
            return std::invoke(fn);
          }
        }
        return HopInFreshContext(fn);
      }
      // A context with no values is bound (views and materialized
      // contexts always have values): the hop fills it. Pooled contexts
      // are never const objects; DefaultContextForRead only adds const.
      Context* ctx = const_cast<Context*>(bound);
      internal::Scope scope(ctx, frames_[0], internal::Scope::HopTag{});
      return std::invoke(fn);
    }
    return internal::CallReturning(
        fn, [&](absl::FunctionRef<void()> f) { RunSimple(f); });
  }
  // RunSimple(fn): Run's install, in the simple registry.
  void RunSimple(absl::FunctionRef<void()> fn) const;
  // RunGeneral(fn): Run's install, for any registry.
  void RunGeneral(absl::FunctionRef<void()> fn) const;
  // Whether the running flow sees exactly this snapshot's values already:
  // what Capture() would take here is the same frames. The caller checked
  // that every live manager is registered.
  bool SeenByRunningFlowSlow() const noexcept;
  void Clear() noexcept;
  // CopyFramesOf(other): the copy constructor's loop, for count_ > 1.
  void CopyFramesOf(const Snapshot& other) noexcept;

  // The innermost frame of each strategy's context that had values; each
  // holds one reference.
  // Entries at and beyond count_ are never read (not even initialized: a
  // capture writes one pointer in the common case, not the whole array).
  internal::Frame* frames_[internal::kMaxStrategies];
  int count_ = 0;
};

inline Snapshot Capture() noexcept {
  // One named result on every path, so it is built in place (no move).
  Snapshot snapshot;
  if (ABSL_PREDICT_FALSE(!internal::RegistryIsSimple())) {
    internal::CaptureAllStrategies(snapshot);
    return snapshot;
  }
  // The common case, one strategy: read inline (a flow with no context
  // reads unbound_context, whose top is nullptr).
  if (internal::Frame* top = internal::DefaultContextForRead()->top()) {
    top->Ref();
    snapshot.frames_[0] = top;
    snapshot.count_ = 1;
  }
  return snapshot;
}

}  // namespace gls

#endif  // GLS_SNAPSHOT_H_
