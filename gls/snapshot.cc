#include "gls/snapshot.h"

#include <algorithm>

namespace gls {

void internal::CaptureAllStrategies(Snapshot& snapshot) noexcept {
  const Strategy* strategies[internal::kMaxStrategies];
  const int n = internal::RegisteredStrategies(strategies);
  const Strategy* default_strategy = &DefaultStrategy();
  for (int i = 0; i < n; ++i) {
    const Context* ctx = internal::CurrentContextOf(
        *strategies[i], strategies[i] == default_strategy);
    if (ctx == nullptr) continue;
    internal::Frame* top = ctx->top();
    if (top == nullptr) continue;
    // Two strategies may share contexts (stack_tag's two walkers read the
    // same tags): one reference is enough.
    internal::Frame** end = snapshot.frames_ + snapshot.count_;
    if (std::find(snapshot.frames_, end, top) != end) continue;
    top->Ref();
    snapshot.frames_[snapshot.count_++] = top;
  }
}

void Snapshot::CopyFramesOf(const Snapshot& other) noexcept {
  for (int i = 0; i < count_; ++i) {
    frames_[i] = other.frames_[i];
    frames_[i]->Ref();
  }
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
    count_ = other.count_;
    for (int i = 0; i < count_; ++i) frames_[i] = other.frames_[i];
    other.count_ = 0;
  }
  return *this;
}

void Snapshot::Clear() noexcept {
  for (int i = 0; i < count_; ++i) internal::Frame::Unref(frames_[i]);
  count_ = 0;
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
  uint32_t matched = 0;
  for (int i = 0; i < n; ++i) {
    const Context* ctx = internal::CurrentContextOf(
        *strategies[i], strategies[i] == default_strategy);
    if (ctx == nullptr || ctx->top() == nullptr) continue;
    const internal::Frame* top = ctx->top();
    int j = 0;
    while (j < count_ && frames_[j] != top) ++j;
    if (j == count_) return false;  // the flow has values the snapshot lacks
    matched |= uint32_t{1} << j;
  }
  return matched == (uint32_t{1} << count_) - 1;
}

void Snapshot::RunSimple(absl::FunctionRef<void()> fn) const {
  internal::Frame* frame = count_ == 1 ? frames_[0] : nullptr;
  if (count_ > 1 ||
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
  Installer(frames_, count_, fn).Install(0);
}

}  // namespace gls
