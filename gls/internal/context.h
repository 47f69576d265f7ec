// gls/internal/context.h: the per-flow record behind the opaque gls::Context,
// and the process-wide pool of them.
//
// Not part of the public API: users include gls/gls.h; strategies see only
// the opaque `gls::Context` of gls/strategy.h.
//
// A Context is what the Go original calls a goroutine id plus the maps keyed
// by it: one small integer id, reused from a pool, and the flow's state: the
// innermost Frame (an immutable, shareable node holding one manager's values,
// linked to the frames below it; gls/internal/frame.h) and a per-manager
// table pointing at each manager's innermost frame, so GetValue is one index.
// A Context is bound to one flow of execution at a time and only that flow
// (or a signal handler interrupting it) reads or writes it, so its fields
// need no synchronization; writes are ordered with signal fences so that a
// handler on the same thread always reads a consistent table.
//
// Contexts are never freed: a released Context keeps its id and goes back to
// the pool, so a pointer from ContextWithId(id) is always safe to dereference.
#ifndef GLS_INTERNAL_CONTEXT_H_
#define GLS_INTERNAL_CONTEXT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"
#include "gls/strategy.h"

namespace gls {

class Context;
class Value;

namespace internal {
class Frame;
class Scope;
class ContextPool;

// FrameHead
//
// What a read needs of a Frame (gls/internal/frame.h), first in it: the
// manager it belongs to, as GetValue compares it, and its first two symbol
// entries. A context's empty slot holds `no_frame` instead of nullptr, and
// a thread_local flow with no context reads `unbound_context` instead of
// nullptr, so the default strategy's read is one compare where it was three
// tests (no context, no frame, another manager's frame).
struct FrameHead {
  // The handle of the frame's manager (a ManagerHandle,
  // gls/internal/registry.h); in `no_frame`, kNoManager, which no manager
  // has (slots stay below 2^16).
  static constexpr uint64_t kNoManager = ~uint64_t{0};
  uint64_t manager_handle = kNoManager;
  // The first two symbol entries (0: none), and whether that is all of them.
  uint64_t hot_symbol[2] = {0, 0};
  const void* hot_data[2] = {nullptr, nullptr};
  const Value* hot_value[2] = {nullptr, nullptr};
  bool hot_all = true;
  // The frame's reference count (Frame::Ref/Unref; a new frame starts with
  // its scope's one). Here, in the padding after hot_all, so that the
  // context layer can pin a frame it must keep (PinFrameOfView).
  std::atomic<uint32_t> refs{1};
};

// no_frame: what an empty slot holds. Never written.
extern const FrameHead no_frame;

// unbound_context: a context with no values and every slot empty, which the
// thread_local strategy's slot holds while no context is bound (its
// Current() still answers nullptr). Never written: Context's mutators are
// only reached through Current(), never through this object.
extern Context unbound_context;
}  // namespace internal

class Context {
 public:
  constexpr Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  // Trivial: contexts are never destroyed (the pool keeps them, and
  // unbound_context must outlive every thread_local destructor).
  ~Context() = default;

  uint64_t id() const { return id_; }

  // top(): the innermost frame of any manager, or nullptr (no values).
  internal::Frame* top() const { return top_; }

  // Slot(slot): the innermost frame of manager slot `slot`, or nullptr. The
  // caller checks the frame's handle against the manager's. Defined in
  // gls/internal/frame.h, where Frame is complete.
  internal::Frame* Slot(uint32_t slot) const;

  // InlineSlotForRead(slot): the head in inline slot `slot % kInlineSlots`,
  // never nullptr (an empty slot holds no_frame). For the default
  // strategy's inline read, which compares the head's read_handle with the
  // manager's handle: a slot beyond the inline ones lands on a frame of
  // another slot (or no_frame), which never matches, and takes the slow
  // path.
  const internal::FrameHead* InlineSlotForRead(uint32_t slot) const {
    return inline_slots_[slot & (kInlineSlots - 1)];
  }
  // SlotForRead(slot): the head in slot `slot`, never nullptr (no_frame if
  // empty or beyond the table).
  const internal::FrameHead* SlotForRead(uint32_t slot) const {
    if (ABSL_PREDICT_TRUE(slot < kInlineSlots)) return inline_slots_[slot];
    const uint32_t i = slot - kInlineSlots;
    return i < overflow_capacity_ ? overflow_[i] : &internal::no_frame;
  }
  static constexpr uint32_t kInlineSlots = 8;

  // capacity(): slots the table has room for.
  uint32_t capacity() const { return kInlineSlots + overflow_capacity_; }

  // IsEmpty(): no manager has values here (the state in which a context goes
  // back to the pool).
  bool IsEmpty() const { return top_ == nullptr; }

  // MemoryBytes(): what this context occupies: the record and its slot table.
  size_t MemoryBytes() const;

  // Mutators, for scopes (gls/internal/frame.h). Each leaves the record
  // readable by a signal handler at every instruction.
  void SetTop(internal::Frame* frame) {
    std::atomic_signal_fence(std::memory_order_release);
    top_ = frame;
    std::atomic_signal_fence(std::memory_order_release);
  }
  // Sets a slot Reserve made room for (or any slot to nullptr: empty).
  // Defined in gls/internal/frame.h, where Frame is complete.
  void SetSlot(uint32_t slot, internal::Frame* frame);
  // SetSlotHead(slot, head): the same with a head as SlotForRead returns
  // it (never nullptr; &no_frame: empty), for scopes that save and restore
  // a slot without looking at it.
  void SetSlotHead(uint32_t slot, const internal::FrameHead* head) {
    std::atomic_signal_fence(std::memory_order_release);
    if (slot < kInlineSlots) {
      inline_slots_[slot] = head;
    } else if (slot - kInlineSlots < overflow_capacity_) {
      overflow_[slot - kInlineSlots] = head;
    }
    std::atomic_signal_fence(std::memory_order_release);
  }
  // Makes every slot empty.
  void ClearSlots();
  // Reserves room for `slot` (may allocate: throws std::bad_alloc; call
  // before changing anything).
  void Reserve(uint32_t slot) {
    if (slot >= kInlineSlots + overflow_capacity_) Grow(slot);
  }

  internal::Frame* run_base() const { return run_base_; }
  void set_run_base(internal::Frame* frame) { run_base_ = frame; }
  internal::Scope* innermost_scope() const { return innermost_scope_; }
  void set_innermost_scope(internal::Scope* scope) { innermost_scope_ = scope; }
  // Whether a scope guard (gls/scoped_values.h) attached this context to its
  // flow with Strategy::Attach: the guard whose end leaves it with no scope
  // detaches and releases it.
  bool attached_by_guard() const { return attached_by_guard_; }
  void set_attached_by_guard(bool attached) { attached_by_guard_ = attached; }
  // Scope guards (gls/scoped_values.h) with a scope open in this context.
  uint32_t open_guards() const { return open_guards_; }
  void set_open_guards(uint32_t n) { open_guards_ = n; }

  // Views. A view is a context that is never written after it is built:
  // the state one parentless frame gives a flow that had no values (its
  // `top` and `run_base`, and its slot). The thread_local strategy binds a
  // frame's view (Frame::HopView, gls/internal/frame.h) for a task's hop
  // to a thread with no values, so Snapshot::Run is a pointer swap in and
  // out. Readers read a view as any context. A view has no id of its own
  // and is shared by every flow that runs its frame: the strategy's
  // Current() never returns one, but first copies it into a pooled context
  // (materializes it) and binds that in its place until the Run ends.
  bool is_view() const { return is_view_; }
  // InitAsView(top, head, slot): makes this fresh context the view of
  // `top` (`head`: the same frame as a FrameHead), a frame with no parent
  // in slot `slot`, below kInlineSlots.
  void InitAsView(internal::Frame* top, const internal::FrameHead* head,
                  uint32_t slot) {
    top_ = top;
    run_base_ = top;
    inline_slots_[slot] = head;
    is_view_ = true;
  }
  // CopyViewState(view): this empty pooled context takes `view`'s state
  // and remembers where it came from (materialized_from()).
  void CopyViewState(const Context* view);
  // ClearViewState(): back to empty after CopyViewState, every scope in
  // between having ended.
  void ClearViewState();
  const Context* materialized_from() const { return materialized_from_; }
  void forget_materialized_from() { materialized_from_ = nullptr; }

 private:
  friend class internal::ContextPool;

  void Grow(uint32_t slot);

  uint64_t id_ = 0;
  internal::Frame* top_ = nullptr;
  // The frame the innermost active Snapshot::Run installed: frames below it
  // (inclusive) came from another flow, and only registered managers' of
  // them are visible.
  internal::Frame* run_base_ = nullptr;
  internal::Scope* innermost_scope_ = nullptr;
  const internal::FrameHead* inline_slots_[kInlineSlots] = {
      &internal::no_frame, &internal::no_frame, &internal::no_frame,
      &internal::no_frame, &internal::no_frame, &internal::no_frame,
      &internal::no_frame, &internal::no_frame};
  static_assert(kInlineSlots == 8, "inline_slots_ lists every slot");
  // Slots from kInlineSlots on, when a process has that many managers alive.
  const internal::FrameHead** overflow_ = nullptr;
  uint32_t overflow_capacity_ = 0;
  // In the padding after overflow_capacity_: the hot fields keep their
  // offsets.
  bool attached_by_guard_ = false;
  bool is_view_ = false;
  uint32_t open_guards_ = 0;
  const Context* materialized_from_ = nullptr;
};

namespace internal {

// The context this thread released last, handed back before the shared pool
// is asked. Trivially destructible and constant-initialized, so it stays
// readable while and after the thread's thread_local destructors run, in
// whatever order they run: gls's own state never disappears under a
// destructor that still uses gls (a logger flushing at thread exit). See
// context.cc for the flusher that empties it at thread exit.
struct ThreadContextCache {
  Context* ctx = nullptr;
  bool exited = false;  // the flusher has run: use the shared pool
  bool armed = false;   // the flusher is constructed
};
extern constinit thread_local ThreadContextCache thread_context_cache
    __attribute__((tls_model("initial-exec")));

Context* AcquireContextSlow();

// Test hook (gls/conformance/soak_test.cc): contexts the pool has ever
// created, and how many of them are back in the shared pool (a context in a
// live thread's one-entry cache counts as neither back nor lost).
struct ContextPoolStats {
  uint64_t created = 0;
  uint64_t pooled = 0;
};
ContextPoolStats ContextPoolStatsForTesting();
// Test hook (gls/bad_input_test.cc): the pool aborts, as when 2^26 contexts
// are live, once it would create more than `max_created` contexts.
void SetContextLimitForTesting(uint64_t max_created);
void ReleaseContextSlow(Context* ctx);

// SetValuesBookkeeping: marks the stretch of a SetValues call in which gls
// changes the calling thread's own state (leasing a context, building and
// installing a frame, restoring the previous one), but not the call of the
// user's function. A SetValues that starts inside such a stretch on the same
// thread was called from a signal handler that interrupted gls (or from a
// value's copy constructor): gls's per-thread state is half-changed there,
// so it aborts with a message instead of corrupting it (which could show one
// flow another's values). Not a lock: one flag per thread.
extern constinit thread_local bool in_set_values_bookkeeping
    __attribute__((tls_model("initial-exec")));
[[noreturn]] void AbortSetValuesReentered();
class SetValuesBookkeeping {
 public:
  SetValuesBookkeeping() {
    if (in_set_values_bookkeeping) [[unlikely]] AbortSetValuesReentered();
    Resume();
  }
  ~SetValuesBookkeeping() { Pause(); }
  SetValuesBookkeeping(const SetValuesBookkeeping&) = delete;
  SetValuesBookkeeping& operator=(const SetValuesBookkeeping&) = delete;
  // Around the user's function: a SetValues inside it is an ordinary nested
  // one.
  void Pause() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    in_set_values_bookkeeping = false;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  void Resume() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    in_set_values_bookkeeping = true;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
};

// Scope guards (gls/scoped_values.h) open on this thread, for gls::Task to
// tell that its body suspended with one still open (see coro.h). Plain
// int: only this thread reads or writes it.
extern constinit thread_local int open_scope_guards
    __attribute__((tls_model("initial-exec")));
// AbortScopeGuardAcrossSuspension(): the message and abort for that.
[[noreturn]] void AbortScopeGuardAcrossSuspension();

// PinFrameOfView(view): keeps the frame of `view` (Context::is_view) alive
// for the rest of the process: for a materialized context that is retired
// while another flow's scopes still refer to that frame (fibers switching
// inside a hop under the thread_local strategy). The pin stays reachable,
// so leak checkers stay quiet.
void PinFrameOfView(const Context* view);

// AbortGuardOutlivedItsScope(): the message and abort for a SetValues,
// Snapshot::Run or gls::Bind scope that ends while a guard made inside it is
// still open.
[[noreturn]] void AbortGuardOutlivedItsScope();

// AcquireContext(): a context with no values and an id no other live context
// has. Thread-safe, also from thread_local destructors, in any order with
// gls's own per-thread state. Aborts with a message if 2^26 contexts are live
// at once.
inline Context* AcquireContext() {
  ThreadContextCache& cache = thread_context_cache;
  if (Context* ctx = cache.ctx) {
    cache.ctx = nullptr;
    return ctx;
  }
  return AcquireContextSlow();
}

// ReleaseContext(ctx): returns `ctx` to the pool. If it still has values
// (another flow's scopes still use it: fibers under a strategy that cannot
// tell them apart), it is retired instead, with a one-time warning.
inline void ReleaseContext(Context* ctx) {
  ThreadContextCache& cache = thread_context_cache;
  if (ABSL_PREDICT_TRUE(ctx->IsEmpty() && cache.armed && !cache.exited &&
                        cache.ctx == nullptr)) {
    cache.ctx = ctx;
    return;
  }
  ReleaseContextSlow(ctx);
}

// ContextLease
//
// RAII ownership of a pooled context. Neither copyable nor movable.
class ContextLease {
 public:
  ContextLease() : ctx_(AcquireContext()) {}
  ~ContextLease() { ReleaseContext(ctx_); }
  ContextLease(const ContextLease&) = delete;
  ContextLease& operator=(const ContextLease&) = delete;

  Context* get() const { return ctx_; }

 private:
  Context* const ctx_;
};

// WarnFiberMisuseOnce(flag, what): prints, once per `flag`, "gls: <what>"
// followed by the likely cause (fibers switching inside SetValues scopes
// under a strategy that cannot tell them apart) and the remedy.
void WarnFiberMisuseOnce(std::atomic<bool>& flag, const char* what);

// FindOrBindContext(current, run_bound, cb): the one place gls finds the
// running flow's context or binds one: calls `cb(ctx)` with `current()`'s
// context, or, if that is nullptr, with a fresh one from the pool bound by
// `run_bound(ctx, fn)` around the call and released after it. A template,
// so `cb` runs inside RunBound's function with no call of its own: the
// stack-walking strategies pay for every frame between a scope and the code
// in it; and the default strategy's inline read and binding
// (EnsureContextOf in gls/context_manager.h) stay inline.
template <typename CurrentFn, typename RunBoundFn, typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void FindOrBindContext(
    CurrentFn&& current, RunBoundFn&& run_bound, F&& cb) {
  if (Context* ctx = current()) {
    cb(ctx);
    return;
  }
  ContextLease lease;
  run_bound(lease.get(), [&] { cb(lease.get()); });
}

// EnsureContext(strategy, cb): FindOrBindContext through `strategy`'s
// virtual Current and RunBound.
template <typename F>
void EnsureContext(const Strategy& strategy, F&& cb) {
  FindOrBindContext(
      [&] { return strategy.Current(); },
      [&](Context* ctx, auto&& fn) { strategy.RunBound(ctx, fn); }, cb);
}

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_CONTEXT_H_
