// gls/internal/frame.h: the immutable, shareable nodes a flow's values are
// made of, and the scopes that install them in a Context.
//
// Not part of the public API. See docs/design.md for the picture.
//
// A Frame is what one SetValues call adds: one manager's complete visible
// values at that point (its enclosing values merged with the new ones) and a
// link to the frame that was innermost before (`parent`, of any manager).
// A context's innermost frame (`Context::top`) therefore reaches every
// value of every manager visible in the flow: capturing the flow is one
// reference count increment on it (gls::Snapshot). Frames never change after
// construction, so any number of flows can share them; they are reference
// counted (atomically) and freed by whoever drops the last reference.
//
// Ownership: a frame starts with one reference, its SetValues scope's. While
// nobody else holds it, its parent needs no reference of its own (the
// enclosing scope outlives it). When its scope ends and someone still holds
// it (a Snapshot), the frame first takes a reference on its parent, so the
// chain below a captured frame stays alive exactly as long as the capture.
#ifndef GLS_INTERNAL_FRAME_H_
#define GLS_INTERNAL_FRAME_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <initializer_list>
#include <utility>

#include "absl/base/optimization.h"
#include "gls/internal/context.h"
#include "gls/internal/registry.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {
namespace internal {

class Frame : public FrameHead {
 public:
  // New(handle, strategy, base, overrides, parent): a frame holding `base`
  // (may be nullptr) merged with `overrides`, with one reference. Throws
  // std::bad_alloc or whatever copying a value throws; then nothing leaks.
  static Frame* New(ManagerHandle handle, const Strategy* strategy,
                    const Values* base, const Values& overrides, Frame* parent);
  // The same, moving `overrides`' entries into the frame.
  static Frame* New(ManagerHandle handle, const Strategy* strategy,
                    const Values* base, Values&& overrides, Frame* parent);
  // The same, copying each entry of a braced list once, into the frame.
  static Frame* New(ManagerHandle handle, const Strategy* strategy,
                    const Values* base,
                    std::initializer_list<Values::Entry> overrides,
                    Frame* parent);

  ManagerHandle handle() const { return manager_handle; }
  uint32_t slot() const { return SlotOf(manager_handle); }
  const Strategy* strategy() const { return strategy_; }
  const Values& values() const { return values_; }
  Frame* parent() const { return parent_; }

  // Find(key): the value for `key` in this frame, or nullptr.
  const Value* Find(KeyView key) const {
    return key.symbol() != 0 ? FindSymbol(key.symbol()) : values_.Find(key);
  }
  // FindSymbol(id) / FindSymbolData(id): the value (or the object it holds)
  // of the ContextKey or TypedKey numbered `id` (never 0). The first two
  // symbol entries are kept beside the frame's header, so the common scope
  // of one or two keys is read without touching the entries.
  const Value* FindSymbol(uint64_t id) const {
    if (ABSL_PREDICT_TRUE(hot_symbol[0] == id)) return hot_value[0];
    if (hot_symbol[1] == id) return hot_value[1];
    return hot_all ? nullptr : values_.FindSymbol(id);
  }
  const void* FindSymbolData(uint64_t id) const {
    if (ABSL_PREDICT_TRUE(hot_symbol[0] == id)) return hot_data[0];
    if (hot_symbol[1] == id) return hot_data[1];
    if (hot_all) return nullptr;
    const Value* value = values_.FindSymbol(id);
    return value == nullptr ? nullptr : value->data();
  }

  // HopView(): this frame's view (Context::is_view, gls/internal/context.h),
  // built on first use and shared by every flow that runs it. Only for a
  // frame with no parent whose slot is below Context::kInlineSlots. Throws
  // std::bad_alloc (only the first time).
  Context* HopView() {
    Context* view = hop_view_.load(std::memory_order_acquire);
    return ABSL_PREDICT_TRUE(view != nullptr) ? view : BuildHopView();
  }

  // BuiltHopView(): the view if HopView has built it, else nullptr.
  Context* BuiltHopView() const {
    return hop_view_.load(std::memory_order_acquire);
  }

  // Ref(): one more reference. Only the flow the frame is visible in, or a
  // holder of a reference, may call it.
  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  // Unref(frame): drops a reference; frees the frame (and whatever parents
  // only it held) on the last one.
  static void Unref(Frame* frame) noexcept {
    if (frame->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      FreeChain(frame);
    }
  }
  // EndScope(frame): the frame's SetValues scope ends: drops the scope's
  // reference, first pinning the parent if the frame is shared.
  static void EndScope(Frame* frame) noexcept;

  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

 private:
  template <typename V>
  Frame(ManagerHandle handle, const Strategy* strategy, const Values* base,
        V&& overrides, Frame* parent)
      : FrameHead{.manager_handle = handle},
        strategy_(strategy),
        parent_(parent),
        values_(base == nullptr ? Values(std::forward<V>(overrides))
                                : MergedWith(*base, std::forward<V>(overrides))) {
    int hot = 0;
    for (const Values::Entry& entry : values_) {
      if (!entry.first.is_symbol()) break;  // symbols sort first
      if (hot == 2) {
        hot_all = false;
        break;
      }
      hot_symbol[hot] = entry.first.symbol();
      hot_value[hot] = &entry.second;
      hot_data[hot] = entry.second.data();
      ++hot;
    }
  }
  ~Frame() = default;
  template <typename V>
  static Values MergedWith(const Values& base, V&& overrides) {
    if constexpr (std::is_same_v<std::decay_t<V>,
                                 std::initializer_list<Values::Entry>>) {
      return Values::Merged(base, Values(overrides));
    } else {
      return Values::Merged(base, std::forward<V>(overrides));
    }
  }
  template <typename V>
  static Frame* NewImpl(ManagerHandle handle, const Strategy* strategy,
                        const Values* base, V&& overrides, Frame* parent);
  Context* BuildHopView();
  static void Free(Frame* frame) noexcept;
  // Frees `frame`, whose last reference was just dropped, and drops the
  // reference it held on its parent, and so on up the chain.
  static void FreeChain(Frame* frame) noexcept;

  // Set (by the owning flow, before it drops its reference) when this frame
  // holds a reference on parent_.
  bool owns_parent_ = false;
  const Strategy* const strategy_;
  Frame* const parent_;
  const Values values_;
  // The view HopView built, or nullptr; freed with the frame.
  std::atomic<Context*> hop_view_{nullptr};
};

}  // namespace internal

inline internal::Frame* Context::Slot(uint32_t slot) const {
  const internal::FrameHead* head = SlotForRead(slot);
  // Only frames and no_frame are ever stored, and frames are never const.
  return head == &internal::no_frame
             ? nullptr
             : const_cast<internal::Frame*>(
                   static_cast<const internal::Frame*>(head));
}

inline void Context::SetSlot(uint32_t slot, internal::Frame* frame) {
  SetSlotHead(slot, frame == nullptr
                        ? &internal::no_frame
                        : static_cast<const internal::FrameHead*>(frame));
}

namespace internal {

// Scope
//
// Changes a context's state for its lifetime and restores it exactly when it
// ends, also during exception unwinding. Neither copyable nor movable, so an
// unbalanced install/restore cannot be written. Two kinds:
//   * Push (SetValues): `frame`, owned, becomes the innermost frame and its
//     manager's visible frame.
//   * Install (Snapshot::Run): `frame` (may be nullptr; borrowed, must
//     outlive the scope) becomes the whole state; of the frames it reaches,
//     only those of registered, live managers become visible.
//
// Scopes of one context end innermost first on one flow of execution. If
// they do not (fibers switching inside scopes under a strategy that cannot
// tell fibers apart), a scope that ends while a newer one is active unlinks
// itself so the newer one later restores what was there before it, and its
// frame is kept (not freed) since newer frames link to it: values may be
// wrong (the strategy's documented limit), memory never is.
class Scope {
 public:
  struct InstallTag {};

  Scope(Context* ctx, Frame* frame)
      : ctx_(ctx),
        frame_(frame),
        slot_(frame->slot()),
        saved_top_(ctx->top()),
        saved_slot_(ctx->SlotForRead(slot_)),
        prev_scope_(ctx->innermost_scope()) {
    ctx_->SetSlotHead(slot_, frame_);  // the caller reserved the slot
    ctx_->SetTop(frame_);
    ctx_->set_innermost_scope(this);
  }
  Scope(Context* ctx, Frame* frame, InstallTag);
  // Scope(ctx, frame, HopTag): an Install for the common hop of a task to a
  // flow with no values (a pool thread), inline: `ctx` has no values,
  // `frame` has no parent, and the caller saw RegistryIsSimple() (every
  // live manager is registered, so the frame is visible if its manager is
  // alive; if it is not, GetValue's generation check hides it). The frame's
  // slot is the only one to set. Reserve comes first: if it throws, nothing
  // changed.
  struct HopTag {};
  Scope(Context* ctx, Frame* frame, HopTag)
      : ctx_(ctx),
        frame_(frame),
        slot_(kNoSlot),
        saved_top_(nullptr),
        saved_run_base_(ctx->run_base()),
        prev_scope_(ctx->innermost_scope()) {
    const uint32_t slot = frame->slot();
    ctx->Reserve(slot);
    // Rebuild's order: the top, then the slot.
    ctx->SetTop(frame);
    ctx->set_run_base(frame);
    ctx->SetSlotHead(slot, frame);
    ctx->set_innermost_scope(this);
  }
  ~Scope() {
    if (ABSL_PREDICT_FALSE(ctx_->innermost_scope() != this)) {
      EndedOutOfOrder();
      return;
    }
    ctx_->set_innermost_scope(prev_scope_);
    if (ABSL_PREDICT_TRUE(slot_ != kNoSlot)) {
      ctx_->SetSlotHead(slot_, saved_slot_);
      ctx_->SetTop(saved_top_);
      Frame::EndScope(frame_);
    } else if (saved_top_ == nullptr && frame_ != nullptr &&
               frame_->parent() == nullptr && ctx_->top() == frame_) {
      // One frame leaves a context that had no values: Rebuild's steps for
      // it, inline (its slot is the only one the install set).
      ctx_->SetTop(nullptr);
      ctx_->set_run_base(saved_run_base_);
      ctx_->SetSlotHead(frame_->slot(), &no_frame);
    } else {
      EndInstall();
    }
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // MarkAsGuard(): this scope is a scope guard's (gls/scoped_values.h),
  // whose end is a separate call: ending it out of order is the guard's
  // defined, reported case (not fibers), and a scope that is not a guard's
  // ending while a guard's newer scope is still open aborts (the guard
  // outlived the scope it was made in).
  void MarkAsGuard() { guard_ = true; }

 private:
  static constexpr uint32_t kNoSlot = ~uint32_t{0};

  void EndedOutOfOrder() noexcept;
  void EndInstall() noexcept;

  Context* const ctx_;
  Frame* const frame_;
  const uint32_t slot_;  // kNoSlot for Install
  bool guard_ = false;
  Frame* saved_top_;
  const FrameHead* saved_slot_ = &no_frame;
  Frame* saved_run_base_ = nullptr;
  Scope* prev_scope_;
};

// Rebuild(ctx, old_top): recomputes ctx's per-manager table from its frames
// (see Scope) after its top changed from `old_top`. Never allocates: every
// slot the new frames need was reserved when they were first installed.
// Costs the length of the two frame chains, not the size of the table: a
// table only ever holds frames of its top's chain, so only `old_top`'s chain
// can have left entries to clear.
void Rebuild(Context* ctx, const Frame* old_top);

// kFrameBlockSize / AllocateFrameBlock() / FreeFrameBlock(block): blocks of
// a frame's size from the per-thread cache frames come from (a block freed
// on any thread goes to that thread's cache). AllocateFrameBlock returns
// nullptr when the cache is empty and the heap is out of memory. For small
// records that live like frames (a snapshot of several strategies' frames).
inline constexpr size_t kFrameBlockSize = sizeof(Frame);
void* AllocateFrameBlock() noexcept;
void FreeFrameBlock(void* block) noexcept;
// WarnCaptureOutOfMemory(): the once-per-process warning for Capture.
void WarnCaptureOutOfMemory() noexcept;

// Test hook: frames alive in the process (-1 in NDEBUG builds, which do not
// count).
int64_t LiveFrames();

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_FRAME_H_
