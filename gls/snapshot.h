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
//   * Capture() and copying, moving or destroying a Snapshot are O(1),
//     however many managers and values there are (one atomic reference
//     count), and allocate nothing: a Snapshot is one pointer. The one
//     exception: with values of managers of more than one strategy in the
//     flow (rare: managers made with a Strategy other than the default),
//     Capture takes a small block from the per-thread cache gls keeps for
//     frames, so it allocates only when that cache is empty (the first such
//     Capture on a thread, say).
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

#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>

#include "absl/functional/function_ref.h"
#include "gls/context_manager.h"
#include "gls/internal/frame.h"

namespace gls {

class Snapshot;

namespace internal {
// CaptureAllStrategies(): Capture() when the registry is not simple: the
// new snapshot's representation (Snapshot::rep_). Returned as a word, not
// written through a reference, so Capture's snapshot stays in registers.
uintptr_t CaptureAllStrategies() noexcept;
// The frames of a snapshot of several strategies' values (snapshot.cc).
struct MultiFrames;
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
  // An empty snapshot (carried by every executor that propagates nothing
  // yet) is copied with one test.
  Snapshot(const Snapshot& other) noexcept : rep_(other.rep_) {
    if (rep_ != 0) {
      if (ABSL_PREDICT_TRUE((rep_ & kMultiTag) == 0)) {
        single()->Ref();  // the common case, inline
      } else {
        RefMulti(rep_);
      }
    }
  }
  Snapshot(Snapshot&& other) noexcept : rep_(other.rep_) { other.rep_ = 0; }
  Snapshot& operator=(const Snapshot& other) noexcept;
  Snapshot& operator=(Snapshot&& other) noexcept;
  ~Snapshot() {
    if (ABSL_PREDICT_TRUE((rep_ & kMultiTag) == 0)) {
      if (rep_ != 0) internal::Frame::Unref(single());  // inline
    } else {
      ReleaseMulti(rep_);
    }
  }

  // empty(): true if no registered manager had values when captured.
  bool empty() const noexcept { return rep_ == 0; }

  // a == b: true if both hold the same captured values (the same capture,
  // or copies of it). O(1).
  friend bool operator==(const Snapshot& a, const Snapshot& b) noexcept {
    if (a.rep_ == b.rep_) return true;
    // Two captures of several strategies' values are two blocks: equal if
    // they hold the same frames.
    return (a.rep_ & b.rep_ & kMultiTag) != 0 && MultiEqual(a.rep_, b.rep_);
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
      // One compare: an empty snapshot's rep_ is 0 (a flow with no values
      // has a null top) and one of several strategies' is odd (never a
      // frame's address).
      const Context* bound = internal::DefaultContextForRead();
      if (reinterpret_cast<uintptr_t>(bound->top()) == rep_) {
        return std::invoke(fn);
      }
      if constexpr (internal::kDefaultBindsViews) {
        // A task's hop to a thread with nothing bound, its frame hopped
        // before: bind the frame's view. A frame only has a view if it can
        // be hopped this way (InstallSimple builds it on the first hop).
        if (bound == &internal::unbound_context && (rep_ & kMultiTag) == 0 &&
            rep_ != 0) {
          if (Context* view = single()->BuiltHopView()) {
            internal::DefaultViewBinding binding(view);
            return std::invoke(fn);
          }
        }
      }
    }
    return RunSlow(fn);
  }

 private:
  friend Snapshot Capture() noexcept;
  friend class ScopedSnapshot;
  friend uintptr_t internal::CaptureAllStrategies() noexcept;
  // HopInFreshContext(fn): Run's hop when the flow has no context: one
  // from the pool, bound by the default strategy around the call.
  template <typename F>
  std::invoke_result_t<F&> HopInFreshContext(F& fn) const {
    using R = std::invoke_result_t<F&>;
    internal::ContextLease lease;
    Context* ctx = lease.get();
    internal::Frame* frame = single();
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
  // RunSlow(fn): everything Run does beyond its two inline fast paths, out
  // of line, so that the inlined part stays small enough for callers'
  // inliners (Asio's handler invocation inlines a bound call whole).
  template <typename F>
  [[gnu::noinline]] std::invoke_result_t<F&> RunSlow(F& fn) const {
    if (ABSL_PREDICT_TRUE(internal::RegistryIsSimple())) {
      return InstallSimple(fn);
    }
    if (!internal::AnyUnregisteredLiveManager() && SeenByRunningFlowSlow()) {
      return std::invoke(fn);
    }
    return internal::CallReturning(
        fn, [&](absl::FunctionRef<void()> f) { RunGeneral(f); });
  }
  // InstallSimple(fn): Run in the simple registry when the flow's values
  // are not already the snapshot's and no view was ready.
  template <typename F>
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::invoke_result_t<F&> InstallSimple(
      F& fn) const {
    const Context* bound = internal::DefaultContextForRead();
    internal::Frame* const frame = single();
    // A task's hop to a flow with no values: one frame, installed inline.
    if (frame != nullptr && bound->top() == nullptr &&
        frame->parent() == nullptr && internal::IsDefault(frame->handle())) {
      if (bound == &internal::unbound_context) {
        if constexpr (internal::kDefaultBindsViews) {
          if (ABSL_PREDICT_TRUE(frame->slot() < Context::kInlineSlots)) {
            internal::DefaultViewBinding binding(frame->HopView());
            return std::invoke(fn);
          }
        }
        return HopInFreshContext(fn);
      }
      // A context with no values is bound (views and materialized
      // contexts always have values): the hop fills it. Pooled contexts
      // are never const objects; DefaultContextForRead only adds const.
      Context* ctx = const_cast<Context*>(bound);
      internal::Scope scope(ctx, frame, internal::Scope::HopTag{});
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

  // rep_: 0 (no values), the innermost frame of the one strategy's
  // context that had values (the common case; it holds one reference), or
  // the address of an internal::MultiFrames (several strategies' frames,
  // reference counted as a whole) with kMultiTag set.
  static constexpr uintptr_t kMultiTag = 1;
  internal::Frame* single() const noexcept {
    return (rep_ & kMultiTag) == 0 ? reinterpret_cast<internal::Frame*>(rep_)
                                   : nullptr;
  }
  // Frames(out): the snapshot's frames, one per strategy, into `out`;
  // returns how many.
  int Frames(internal::Frame* out[internal::kMaxStrategies]) const noexcept;
  // RefMulti(rep) / ReleaseMulti(rep): one reference more / less on a
  // MultiFrames rep_. Static, taking the word: the snapshot's address does
  // not escape, so a snapshot that lives in one function stays in a
  // register.
  static void RefMulti(uintptr_t rep) noexcept;
  static bool MultiEqual(uintptr_t a, uintptr_t b) noexcept;
  static void ReleaseMulti(uintptr_t rep) noexcept;

  uintptr_t rep_ = 0;
};

inline Snapshot Capture() noexcept {
  // One named result on every path, so it is built in place (no move).
  Snapshot snapshot;
  if (ABSL_PREDICT_FALSE(!internal::RegistryIsSimple())) {
    snapshot.rep_ = internal::CaptureAllStrategies();
    return snapshot;
  }
  // The common case, one strategy: read inline (a flow with no context
  // reads unbound_context, whose top is nullptr). A frame's address is
  // even: telling the compiler lets it drop the destructor's kMultiTag test
  // where the snapshot dies in view.
  if (internal::Frame* top = internal::DefaultContextForRead()->top()) {
    top->Ref();
    snapshot.rep_ = reinterpret_cast<uintptr_t>(
        __builtin_assume_aligned(top, alignof(internal::Frame)));
  }
  return snapshot;
}

}  // namespace gls

#endif  // GLS_SNAPSHOT_H_
