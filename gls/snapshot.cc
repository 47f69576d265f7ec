#include "gls/snapshot.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>

namespace gls {

// Several strategies' frames, shared by every copy of the snapshot. Never
// changed after Capture builds it; each frame holds one reference, dropped
// with the last reference to the block. In a block of the per-thread frame
// cache (internal::AllocateFrameBlock), so Capture allocates nothing in a
// steady state.
struct internal::MultiFrames {
  std::atomic<uint32_t> refs{1};
  int count = 0;
  Frame* frames[kMaxStrategies];
};

uintptr_t internal::CaptureAllStrategies() noexcept {
  const Strategy* strategies[internal::kMaxStrategies];
  const int n = internal::RegisteredStrategies(strategies);
  const Strategy* default_strategy = &DefaultStrategy();
  Frame* frames[kMaxStrategies];
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const Context* ctx = internal::CurrentContextOf(
        *strategies[i], strategies[i] == default_strategy);
    if (ctx == nullptr) continue;
    internal::Frame* top = ctx->top();
    if (top == nullptr) continue;
    // Two strategies may share contexts (stack_tag's two walkers read the
    // same tags): one reference is enough.
    if (std::find(frames, frames + count, top) != frames + count) continue;
    frames[count++] = top;
  }
  if (count == 0) return 0;
  if (count == 1) {
    frames[0]->Ref();
    return reinterpret_cast<uintptr_t>(frames[0]);
  }
  static_assert(sizeof(MultiFrames) <= kFrameBlockSize);
  static_assert(alignof(MultiFrames) > Snapshot::kMultiTag);
  void* block = AllocateFrameBlock();
  if (block == nullptr) {
    // Out of memory, and Capture is noexcept: keep the first strategy's
    // values rather than none, and say so.
    WarnCaptureOutOfMemory();
    frames[0]->Ref();
    return reinterpret_cast<uintptr_t>(frames[0]);
  }
  MultiFrames* multi = ::new (block) MultiFrames;
  multi->count = count;
  for (int i = 0; i < count; ++i) {
    frames[i]->Ref();
    multi->frames[i] = frames[i];
  }
  return reinterpret_cast<uintptr_t>(multi) | Snapshot::kMultiTag;
}

void Snapshot::RefMulti(uintptr_t rep) noexcept {
  reinterpret_cast<internal::MultiFrames*>(rep & ~kMultiTag)
      ->refs.fetch_add(1, std::memory_order_relaxed);
}

bool Snapshot::MultiEqual(uintptr_t a, uintptr_t b) noexcept {
  const auto* x = reinterpret_cast<const internal::MultiFrames*>(a & ~kMultiTag);
  const auto* y = reinterpret_cast<const internal::MultiFrames*>(b & ~kMultiTag);
  return x->count == y->count &&
         std::equal(x->frames, x->frames + x->count, y->frames);
}

void Snapshot::ReleaseMulti(uintptr_t rep) noexcept {
  auto* multi = reinterpret_cast<internal::MultiFrames*>(rep & ~kMultiTag);
  if (multi->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  for (int i = 0; i < multi->count; ++i) {
    internal::Frame::Unref(multi->frames[i]);
  }
  multi->~MultiFrames();
  internal::FreeFrameBlock(multi);
}

int Snapshot::Frames(internal::Frame* out[internal::kMaxStrategies]) const
    noexcept {
  if ((rep_ & kMultiTag) == 0) {
    out[0] = single();
    return rep_ == 0 ? 0 : 1;
  }
  const auto* multi =
      reinterpret_cast<const internal::MultiFrames*>(rep_ & ~kMultiTag);
  std::copy(multi->frames, multi->frames + multi->count, out);
  return multi->count;
}

Snapshot& Snapshot::operator=(const Snapshot& other) noexcept {
  if (this != &other) {
    Snapshot copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Snapshot& Snapshot::operator=(Snapshot&& other) noexcept {
  if (this != &other) {
    Clear();
    rep_ = other.rep_;
    other.rep_ = 0;
  }
  return *this;
}

void Snapshot::Clear() noexcept {
  const uintptr_t rep = rep_;
  rep_ = 0;
  if (rep == 0) return;
  if ((rep & kMultiTag) == 0) {
    internal::Frame::Unref(reinterpret_cast<internal::Frame*>(rep));
  } else {
    ReleaseMulti(rep);
  }
}

namespace {

// Installs frames[i..] each in its own strategy's context (nesting), then
// empties every other registered strategy's context that has values, then
// calls fn.
class Installer {
 public:
  Installer(internal::Frame* const* frames, int count,
            absl::FunctionRef<void()> fn)
      : frames_(frames), count_(count), fn_(fn) {
    // Every strategy with live managers: an unregistered manager's values
    // in this flow are hidden too (Run shows exactly the snapshot's).
    strategy_count_ = internal::LiveStrategies(strategies_);
  }

  void Install(int i) {
    if (i == count_) {
      Hide(0);
      return;
    }
    internal::Frame* frame = frames_[i];
    internal::EnsureContext(*frame->strategy(), [&](Context* ctx) {
      internal::Scope scope(ctx, frame, internal::Scope::InstallTag{});
      Install(i + 1);
    });
  }

 private:
  bool Installed(const Context* ctx) const {
    const internal::Frame* top = ctx->top();
    return std::find(frames_, frames_ + count_, top) != frames_ + count_;
  }

  void Hide(int j) {
    for (; j < strategy_count_; ++j) {
      Context* ctx = strategies_[j]->Current();
      if (ctx != nullptr && !ctx->IsEmpty() && !Installed(ctx)) {
        internal::Scope scope(ctx, nullptr, internal::Scope::InstallTag{});
        Hide(j + 1);
        return;
      }
    }
    fn_();
  }

  internal::Frame* const* frames_;
  const int count_;
  absl::FunctionRef<void()> fn_;
  const Strategy* strategies_[internal::kMaxStrategies];
  int strategy_count_ = 0;
};

}  // namespace

bool Snapshot::SeenByRunningFlowSlow() const noexcept {
  const Strategy* strategies[internal::kMaxStrategies];
  const int n = internal::RegisteredStrategies(strategies);
  const Strategy* default_strategy = &DefaultStrategy();
  internal::Frame* frames[internal::kMaxStrategies];
  const int count = Frames(frames);
  uint32_t matched = 0;
  for (int i = 0; i < n; ++i) {
    const Context* ctx = internal::CurrentContextOf(
        *strategies[i], strategies[i] == default_strategy);
    if (ctx == nullptr || ctx->top() == nullptr) continue;
    const internal::Frame* top = ctx->top();
    int j = 0;
    while (j < count && frames[j] != top) ++j;
    if (j == count) return false;  // the flow has values the snapshot lacks
    matched |= uint32_t{1} << j;
  }
  return matched == (uint32_t{1} << count) - 1;
}

void Snapshot::RunSimple(absl::FunctionRef<void()> fn) const {
  internal::Frame* frame = single();
  if ((rep_ & kMultiTag) != 0 ||
      (frame != nullptr && frame->strategy() != &DefaultStrategy())) {
    // Captured while managers of other strategies were alive (all destroyed
    // since): their frames are installed, and show nothing.
    RunGeneral(fn);
    return;
  }
  if (frame == nullptr) {
    // Read, not materialized: a bound view always has values.
    if (internal::DefaultContextForRead()->IsEmpty()) {
      fn();  // no values here and none to install
      return;
    }
  }
  internal::EnsureContextOf(DefaultStrategy(), /*is_default=*/true,
                            [&](Context* ctx) {
                              internal::Scope scope(
                                  ctx, frame, internal::Scope::InstallTag{});
                              fn();
                            });
}

void Snapshot::RunGeneral(absl::FunctionRef<void()> fn) const {
  internal::Frame* frames[internal::kMaxStrategies];
  const int count = Frames(frames);
  Installer(frames, count, fn).Install(0);
}

}  // namespace gls
