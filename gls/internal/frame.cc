#include "gls/internal/frame.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"

namespace gls {
namespace internal {

// A per-thread cache of frame-sized blocks, so a SetValues that does not
// outlive its scope costs no malloc. Trivially destructible and
// constant-initialized: usable from any thread_local destructor, before or
// after the flusher below has run (then it is bypassed).
//
// External linkage on purpose: an initial-exec TLS variable with internal
// linkage in a shared library gets a TPOFF relocation against the TLS
// section with its offset dropped (seen with GNU ld 2.40), so it aliased
// other thread_locals of the library under -fsanitize=thread.
struct FreeBlock {
  FreeBlock* next;
};
struct FrameCache {
  FreeBlock* head = nullptr;
  uint32_t count = 0;
  bool exited = false;
  bool armed = false;
};
constinit thread_local FrameCache frame_cache
    __attribute__((tls_model("initial-exec")));

namespace {

#ifndef NDEBUG
// Counted only in debug builds (tests): two atomic updates per SetValues are
// measurable.
std::atomic<int64_t> live_frames{0};
#define GLS_COUNT_FRAME(delta) live_frames.fetch_add(delta, std::memory_order_relaxed)
#else
#define GLS_COUNT_FRAME(delta) static_cast<void>(0)
#endif

#if defined(__SANITIZE_ADDRESS__)
// Under ASan every frame goes back to the heap at once, so a use after free
// of a frame is reported rather than hidden by the cache.
constexpr uint32_t kMaxCachedFrames = 0;
#else
constexpr uint32_t kMaxCachedFrames = 64;
#endif

// Empties the cache when the thread exits, and from then on keeps it out of
// the way.
struct FrameCacheFlusher {
  void Arm() { armed = true; }
  bool armed = false;
  ~FrameCacheFlusher() {
    FrameCache& cache = frame_cache;
    cache.exited = true;
    FreeBlock* block = cache.head;
    cache.head = nullptr;
    cache.count = 0;
    while (block != nullptr) {
      FreeBlock* next = block->next;
      ::operator delete(static_cast<void*>(block));
      block = next;
    }
  }
};
thread_local FrameCacheFlusher frame_cache_flusher;

// TakeCachedBlock(): a block from this thread's cache, or nullptr.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void* TakeCachedBlock() {
  static_assert(sizeof(Frame) >= sizeof(FreeBlock));
  FrameCache& cache = frame_cache;
  FreeBlock* block = cache.head;
  if (block != nullptr) {
    cache.head = block->next;
    --cache.count;
  }
  return block;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void* AllocateBlock() {
  if (void* block = TakeCachedBlock()) return block;
  return ::operator new(sizeof(Frame));
}

// PushBlock(cache, p): `p` onto the cache (which has room).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void PushBlock(FrameCache& cache, void* p) {
  cache.head = ::new (p) FreeBlock{cache.head};
  ++cache.count;
}

// FreeBlockSlow(p): FreeBlockOf's uncommon cases, out of line: the first
// free on a thread (which arms the flusher), a full cache, and frees after
// the flusher ran (then the heap).
[[gnu::noinline]] void FreeBlockSlow(void* p) noexcept {
  FrameCache& cache = frame_cache;
  if (!cache.exited && cache.count < kMaxCachedFrames) {
    if (!cache.armed) {
      cache.armed = true;
      frame_cache_flusher.Arm();
    }
    PushBlock(cache, p);
    return;
  }
  ::operator delete(p);
}

// FreeBlockOf(p): `p` back to this thread's cache, or to the heap. Inline
// for the common case: the flusher is armed, has not run, and the cache has
// room.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void FreeBlockOf(void* p) noexcept {
  FrameCache& cache = frame_cache;
  if (ABSL_PREDICT_TRUE(cache.armed && !cache.exited &&
                        cache.count < kMaxCachedFrames)) {
    PushBlock(cache, p);
    return;
  }
  FreeBlockSlow(p);
}

}  // namespace

void* AllocateFrameBlock() noexcept {
  if (void* block = TakeCachedBlock()) return block;
  return ::operator new(sizeof(Frame), std::nothrow);
}

void FreeFrameBlock(void* block) noexcept { FreeBlockOf(block); }

void WarnCaptureOutOfMemory() noexcept {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true, std::memory_order_relaxed)) {
    std::fputs(
        "gls: gls::Capture() ran out of memory for the values of several "
        "strategies' managers; the snapshot carries the first strategy's "
        "only (warned once)\n",
        stderr);
  }
}

template <typename V>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Frame* Frame::NewImpl(
    ManagerHandle handle, const Strategy* strategy, const Values* base,
    V&& overrides, Frame* parent) {
  void* storage = AllocateBlock();
  try {
    Frame* frame = ::new (storage)
        Frame(handle, strategy, base, std::forward<V>(overrides), parent);
    GLS_COUNT_FRAME(1);
    return frame;
  } catch (...) {
    FreeBlockOf(storage);
    throw;
  }
}

Frame* Frame::New(ManagerHandle handle, const Strategy* strategy,
                  const Values* base, const Values& overrides, Frame* parent) {
  return NewImpl(handle, strategy, base, overrides, parent);
}

Frame* Frame::New(ManagerHandle handle, const Strategy* strategy,
                  const Values* base, Values&& overrides, Frame* parent) {
  return NewImpl(handle, strategy, base, std::move(overrides), parent);
}

Frame* Frame::New(ManagerHandle handle, const Strategy* strategy,
                  const Values* base,
                  std::initializer_list<Values::Entry> overrides,
                  Frame* parent) {
  return NewImpl(handle, strategy, base, overrides, parent);
}

Context* Frame::BuildHopView() {
  static_assert(sizeof(Context) <= sizeof(Frame),
                "a view takes a frame-sized block of the per-thread cache");
  static_assert(std::is_trivially_destructible_v<Context>);
  Context* view = ::new (AllocateBlock()) Context;
  view->InitAsView(this, this, slot());
  Context* expected = nullptr;
  // Another flow running the same frame may have built one meanwhile: the
  // first one published wins, for every flow.
  if (!hop_view_.compare_exchange_strong(expected, view,
                                         std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
    FreeBlockOf(view);
    return expected;
  }
  return view;
}

void Frame::Free(Frame* frame) noexcept {
  // No flow runs the frame any more (this was its last reference), so none
  // has its view bound.
  if (Context* view = frame->hop_view_.load(std::memory_order_acquire)) {
    FreeBlockOf(view);
  }
  frame->~Frame();
  GLS_COUNT_FRAME(-1);
  FreeBlockOf(frame);
}

void Frame::FreeChain(Frame* frame) noexcept {
  for (;;) {
    Frame* parent = frame->owns_parent_ ? frame->parent_ : nullptr;
    Free(frame);
    if (parent == nullptr ||
        parent->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) {
      return;
    }
    frame = parent;
  }
}

void Frame::EndScope(Frame* frame) noexcept {
  if (frame->refs.load(std::memory_order_acquire) == 1) {
    // Nobody else holds it, and nobody else can start to: only this flow
    // could capture it, and this flow is here.
    Free(frame);
    return;
  }
  if (frame->parent_ != nullptr) {
    frame->parent_->Ref();
    frame->owns_parent_ = true;
  }
  Unref(frame);
}

int64_t LiveFrames() {
#ifndef NDEBUG
  return live_frames.load(std::memory_order_relaxed);
#else
  return -1;
#endif
}

void Rebuild(Context* ctx, const Frame* old_top) {
  // The innermost frame of each manager wins. Frames at or below the
  // installed snapshot's (run_base) came from another flow: only registered
  // managers' count there (Unregister stops carrying). Frames of destroyed
  // managers never count.
  //
  // Each slot is written once, from its old frame straight to its new one
  // (never through "empty"), so a signal handler interrupting this sees, for
  // every manager, one complete state or the other.
  if (ctx->top() == nullptr) {
    // Back to no values (a pool thread between tasks): clear what the old
    // chain set. Nothing to decide.
    for (const Frame* f = old_top; f != nullptr; f = f->parent()) {
      const uint32_t slot = f->slot();
      if (slot < ctx->capacity() && ctx->Slot(slot) != nullptr) {
        ctx->SetSlot(slot, nullptr);
      }
    }
    return;
  }
  // Slots the new chain decided: a short list for the usual short chains,
  // a bitmap (and, beyond it, a walk) for long ones.
  constexpr int kListed = 16;
  constexpr uint32_t kTracked = 512;
  uint32_t listed[kListed];
  int listed_count = 0;
  bool use_bitmap = false;
  uint64_t decided[kTracked / 64];
  auto mark = [&](uint32_t slot) {
    if (!use_bitmap && listed_count < kListed) {
      listed[listed_count++] = slot;
      return;
    }
    if (!use_bitmap) {
      use_bitmap = true;
      for (uint64_t& word : decided) word = 0;
      for (int i = 0; i < listed_count; ++i) {
        if (listed[i] < kTracked) decided[listed[i] / 64] |= uint64_t{1} << (listed[i] % 64);
      }
    }
    if (slot < kTracked) decided[slot / 64] |= uint64_t{1} << (slot % 64);
  };
  // Whether a frame of ctx's chain above `upto` (all of it: nullptr) has
  // `slot`.
  auto is_decided = [&](uint32_t slot, const Frame* upto) {
    if (!use_bitmap) {
      for (int i = 0; i < listed_count; ++i) {
        if (listed[i] == slot) return true;
      }
      return false;
    }
    if (slot < kTracked) return (decided[slot / 64] >> (slot % 64) & 1) != 0;
    for (const Frame* f = ctx->top(); f != upto; f = f->parent()) {
      if (f->slot() == slot) return true;
    }
    return false;
  };
  bool carried = false;
  for (Frame* f = ctx->top(); f != nullptr; f = f->parent()) {
    if (f == ctx->run_base()) carried = true;
    const uint32_t slot = f->slot();
    if (is_decided(slot, f)) continue;  // an inner frame won
    mark(slot);
    const bool visible =
        carried ? ManagerCarried(f->handle()) : ManagerLive(f->handle());
    // Within the table: the frame was installed here before (restores), or
    // the installing scope reserved its slot.
    ctx->SetSlot(slot, visible ? f : nullptr);
  }
  // Entries the new chain did not decide can only be the old chain's.
  for (const Frame* f = old_top; f != nullptr; f = f->parent()) {
    const uint32_t slot = f->slot();
    if (slot < ctx->capacity() && ctx->Slot(slot) != nullptr &&
        !is_decided(slot, nullptr)) {
      ctx->SetSlot(slot, nullptr);
    }
  }
}

Scope::Scope(Context* ctx, Frame* frame, InstallTag)
    : ctx_(ctx),
      frame_(frame),
      slot_(kNoSlot),
      saved_top_(ctx->top()),
      saved_run_base_(ctx->run_base()),
      prev_scope_(ctx->innermost_scope()) {
  if (frame_ != nullptr && saved_top_ == nullptr &&
      frame_->parent() == nullptr) {
    // One frame into a context with no values (a task's hop to a pool
    // thread): its slot is the only one to decide, and no other is set.
    // Rebuild's steps for this case, in its order.
    const uint32_t slot = frame_->slot();
    ctx_->Reserve(slot);
    ctx_->SetTop(frame_);
    ctx_->set_run_base(frame_);
    ctx_->SetSlot(slot, ManagerCarried(frame_->handle()) ? frame_ : nullptr);
    ctx_->set_innermost_scope(this);
    return;
  }
  if (frame_ != nullptr) {
    for (Frame* f = frame_; f != nullptr; f = f->parent()) ctx_->Reserve(f->slot());
  }
  ctx_->SetTop(frame_);
  ctx_->set_run_base(frame_);
  Rebuild(ctx_, saved_top_);
  ctx_->set_innermost_scope(this);
}

void Scope::EndInstall() noexcept {
  const Frame* installed_top = ctx_->top();
  ctx_->SetTop(saved_top_);
  ctx_->set_run_base(saved_run_base_);
  Rebuild(ctx_, installed_top);
}

void Scope::EndedOutOfOrder() noexcept {
  if (!guard_) {
    for (const Scope* s = ctx_->innermost_scope(); s != nullptr && s != this;
         s = s->prev_scope_) {
      if (s->guard_) AbortGuardOutlivedItsScope();
    }
  }
  // Every newer scope that would restore something of ours restores what we
  // would have restored instead.
  for (Scope* s = ctx_->innermost_scope(); s != nullptr && s != this;
       s = s->prev_scope_) {
    if (s->prev_scope_ == this) s->prev_scope_ = prev_scope_;
    if (s->saved_top_ == frame_ && frame_ != nullptr) s->saved_top_ = saved_top_;
    if (slot_ != kNoSlot && s->slot_ == slot_ && s->saved_slot_ == frame_) {
      s->saved_slot_ = saved_slot_;
    }
    if (slot_ == kNoSlot && s->saved_run_base_ == frame_) {
      s->saved_run_base_ = saved_run_base_;
    }
  }
  // Newer frames may link to ours: it is kept, never freed, on a list of
  // retired frames (a deliberate leak, on a path the strategy documents as
  // unsupported, but reachable, so leak checkers stay quiet).
  if (slot_ != kNoSlot) {
    static std::mutex* mu = new std::mutex;
    static std::vector<Frame*>* retired = new std::vector<Frame*>;
    std::lock_guard<std::mutex> lock(*mu);
    retired->push_back(frame_);
  }
  if (guard_) return;  // the guard reports its own out-of-order end
  static std::atomic<bool> warned{false};
  WarnFiberMisuseOnce(warned,
                      "a SetValues scope ended while a newer scope of another "
                      "flow of execution was active in the same context (its "
                      "values are kept, not freed)");
}

}  // namespace internal
}  // namespace gls
