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
#include <cstdint>

#include "absl/base/optimization.h"
#include "gls/internal/context.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {
namespace internal {

// A manager's identity in frames: a flag (bit 63: the manager does not use
// the default strategy, so GetValue tests it on a value it loads anyway),
// the generation (bits 32-62) and the slot (low 32 bits). Slots are reused
// once a manager is destroyed; the generation tells its frames from a later
// manager's.
using ManagerHandle = uint64_t;
inline constexpr ManagerHandle kNotDefaultStrategy = uint64_t{1} << 63;
inline uint32_t SlotOf(ManagerHandle handle) {
  return static_cast<uint32_t>(handle);
}
inline uint64_t GenerationOf(ManagerHandle handle) {
  return (handle & ~kNotDefaultStrategy) >> 32;
}

class Frame {
 public:
  // New(handle, strategy, base, overrides, parent): a frame holding `base`
  // (may be nullptr) merged with `overrides`, with one reference. Throws
  // std::bad_alloc or whatever copying a value throws; then nothing leaks.
  static Frame* New(ManagerHandle handle, const Strategy* strategy,
                    const Values* base, const Values& overrides, Frame* parent);

  ManagerHandle handle() const { return handle_; }
  uint32_t slot() const { return SlotOf(handle_); }
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
    if (ABSL_PREDICT_TRUE(hot_symbol_[0] == id)) return hot_value_[0];
    if (hot_symbol_[1] == id) return hot_value_[1];
    return hot_all_ ? nullptr : values_.FindSymbol(id);
  }
  const void* FindSymbolData(uint64_t id) const {
    if (ABSL_PREDICT_TRUE(hot_symbol_[0] == id)) return hot_data_[0];
    if (hot_symbol_[1] == id) return hot_data_[1];
    if (hot_all_) return nullptr;
    const Value* value = values_.FindSymbol(id);
    return value == nullptr ? nullptr : value->data();
  }

  // Ref(): one more reference. Only the flow the frame is visible in, or a
  // holder of a reference, may call it.
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Unref(frame): drops a reference; frees the frame (and whatever parents
  // only it held) on the last one.
  static void Unref(Frame* frame) noexcept {
    if (frame->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      FreeChain(frame);
    }
  }
  // EndScope(frame): the frame's SetValues scope ends: drops the scope's
  // reference, first pinning the parent if the frame is shared.
  static void EndScope(Frame* frame) noexcept;

  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

 private:
  Frame(ManagerHandle handle, const Strategy* strategy, const Values* base,
        const Values& overrides, Frame* parent)
      : handle_(handle),
        strategy_(strategy),
        parent_(parent),
        values_(base == nullptr ? Values(overrides)
                                : Values::Merged(*base, overrides)) {
    int hot = 0;
    for (const Values::Entry& entry : values_) {
      if (!entry.first.is_symbol()) break;  // symbols sort first
      if (hot == 2) {
        hot_all_ = false;
        break;
      }
      hot_symbol_[hot] = entry.first.symbol();
      hot_value_[hot] = &entry.second;
      hot_data_[hot] = entry.second.data();
      ++hot;
    }
  }
  ~Frame() = default;
  static void Free(Frame* frame) noexcept;
  // Frees `frame`, whose last reference was just dropped, and drops the
  // reference it held on its parent, and so on up the chain.
  static void FreeChain(Frame* frame) noexcept;

  std::atomic<uint32_t> refs_{1};
  // Set (by the owning flow, before it drops its reference) when this frame
  // holds a reference on parent_.
  bool owns_parent_ = false;
  const ManagerHandle handle_;
  // The first two symbol entries (0: none), and whether that is all of them.
  uint64_t hot_symbol_[2] = {0, 0};
  const void* hot_data_[2] = {nullptr, nullptr};
  const Value* hot_value_[2] = {nullptr, nullptr};
  bool hot_all_ = true;
  const Strategy* const strategy_;
  Frame* const parent_;
  const Values values_;
};

// Registry queries (gls/context_manager.cc), lock-free.
// The registry's per-manager states (generation << 2 | live << 1 |
// registered), in chunks allocated as slots are first used, never freed:
// readable inline, lock-free, from any thread or signal handler.
struct ManagerStates {
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkSize = uint32_t{1} << kChunkBits;
  static constexpr uint32_t kMaxChunks = 64;
  static constexpr uint64_t kRegistered = 1;
  static constexpr uint64_t kLive = 2;
  std::atomic<std::atomic<uint64_t>*> chunks[kMaxChunks] = {};

  uint64_t Of(uint32_t slot) const noexcept {
    const uint32_t chunk = slot >> kChunkBits;
    if (chunk >= kMaxChunks) return 0;
    std::atomic<uint64_t>* base = chunks[chunk].load(std::memory_order_acquire);
    if (base == nullptr) return 0;
    return base[slot & (kChunkSize - 1)].load(std::memory_order_acquire);
  }
};
extern constinit ManagerStates manager_states;

// ManagerLive(handle): the manager is alive (not destroyed).
inline bool ManagerLive(ManagerHandle handle) noexcept {
  const uint64_t state = manager_states.Of(SlotOf(handle));
  return (state >> 2) == GenerationOf(handle) &&
         (state & ManagerStates::kLive) != 0;
}
// ManagerCarried(handle): alive and registered (carried by Go and Run).
inline bool ManagerCarried(ManagerHandle handle) noexcept {
  const uint64_t state = manager_states.Of(SlotOf(handle));
  constexpr uint64_t kBoth = ManagerStates::kLive | ManagerStates::kRegistered;
  return (state >> 2) == GenerationOf(handle) && (state & kBoth) == kBoth;
}
// RegisteredStrategies(out): the strategies of registered managers; at most
// kMaxStrategies, returns how many.
inline constexpr int kMaxStrategies = 8;
int RegisteredStrategies(const Strategy* out[kMaxStrategies]) noexcept;
// LiveStrategies(out): the strategies of live managers, registered or not
// (those whose values a flow can have); at most kMaxStrategies, returns how
// many.
int LiveStrategies(const Strategy* out[kMaxStrategies]) noexcept;
// The registry's answers the hot paths of Capture and Snapshot::Run need,
// kept where an inline load reaches them (written under the registry's lock).
struct RegistrySummary {
  // Bit i: strategy i of the registry has registered managers.
  std::atomic<uint32_t> registered_strategies{0};
  // Bit i: strategy i of the registry has live managers (registered or not).
  std::atomic<uint32_t> live_strategies{0};
  // The bit of the build's default strategy, once it has a manager; else 0.
  std::atomic<uint32_t> default_strategy_bit{0};
  // Managers alive but unregistered: while there are none, a flow's own
  // values and the values a snapshot of them carries are the same.
  std::atomic<int> unregistered_live{0};
};
extern constinit RegistrySummary registry_summary;

// OnlyDefaultStrategyRegistered(): the registered managers all use the
// build's default strategy (the common case, served without a loop).
inline bool OnlyDefaultStrategyRegistered() noexcept {
  const uint32_t bit =
      registry_summary.default_strategy_bit.load(std::memory_order_acquire);
  return bit != 0 &&
         registry_summary.registered_strategies.load(std::memory_order_acquire) == bit;
}

// OnlyDefaultStrategyLive(): every live manager, registered or not, uses the
// build's default strategy (so a Snapshot::Run of default-strategy frames has
// no other strategy's values to hide).
inline bool OnlyDefaultStrategyLive() noexcept {
  const uint32_t bit =
      registry_summary.default_strategy_bit.load(std::memory_order_acquire);
  return bit != 0 &&
         (registry_summary.live_strategies.load(std::memory_order_acquire) & ~bit) == 0;
}

// AnyUnregisteredLiveManager(): some manager is alive but unregistered (its
// values are visible in its own flow but not carried).
inline bool AnyUnregisteredLiveManager() noexcept {
  return registry_summary.unregistered_live.load(std::memory_order_acquire) != 0;
}

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
        saved_slot_(ctx->Slot(slot_)),
        prev_scope_(ctx->innermost_scope()) {
    ctx_->SetSlot(slot_, frame_);  // the caller reserved the slot
    ctx_->SetTop(frame_);
    ctx_->set_innermost_scope(this);
  }
  Scope(Context* ctx, Frame* frame, InstallTag);
  ~Scope() {
    if (ABSL_PREDICT_FALSE(ctx_->innermost_scope() != this)) {
      EndedOutOfOrder();
      return;
    }
    ctx_->set_innermost_scope(prev_scope_);
    if (ABSL_PREDICT_TRUE(slot_ != kNoSlot)) {
      ctx_->SetSlot(slot_, saved_slot_);
      ctx_->SetTop(saved_top_);
      Frame::EndScope(frame_);
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
  Frame* saved_slot_ = nullptr;
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

// Test hook: frames alive in the process (-1 in NDEBUG builds, which do not
// count).
int64_t LiveFrames();

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_FRAME_H_
