#include "gls/context_manager.h"

#include <atomic>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace gls {

namespace {

// The managers gls::Go and gls::Capture carry values for, and the source of
// manager slots.
//
// A slot's state word: generation << 2 | live << 1 | registered. Readers
// (Rebuild, on any thread) load it without a lock; the chunks it lives in are
// published once and never move or die. A destroyed manager's slot goes back
// on a free list and its next owner gets the next generation, so frames of
// the old manager (still held by a Snapshot) never match the new one.
class Registry {
 public:
  static constexpr uint32_t kChunkBits = internal::ManagerStates::kChunkBits;
  static constexpr uint32_t kChunkSize = internal::ManagerStates::kChunkSize;
  static constexpr uint32_t kMaxChunks = internal::ManagerStates::kMaxChunks;
  static constexpr uint64_t kRegistered = internal::ManagerStates::kRegistered;
  static constexpr uint64_t kLive = internal::ManagerStates::kLive;

  static Registry& Get() {
    static Registry* registry = new Registry;  // never destroyed
    return *registry;
  }

  internal::ManagerHandle Add(const Strategy* strategy) {
    std::lock_guard<std::mutex> lock(mu_);
    const int strategy_index = StrategyIndexLocked(strategy);
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      if (next_slot_ >= kChunkSize * kMaxChunks) {
        throw std::length_error(
            "gls::ContextManager: more than 65536 managers are alive at once");
      }
      slot = next_slot_++;
      const uint32_t chunk = slot >> kChunkBits;
      if (chunks_[chunk].load(std::memory_order_relaxed) == nullptr) {
        chunks_[chunk].store(new std::atomic<uint64_t>[kChunkSize](),
                             std::memory_order_release);
      }
    }
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t generation = (state.load(std::memory_order_relaxed) >> 2) + 1;
    state.store(generation << 2 | kLive | kRegistered, std::memory_order_release);
    strategy_of_slot_.resize(std::max<size_t>(strategy_of_slot_.size(), slot + 1));
    strategy_of_slot_[slot] = strategy_index;
    if (live_[strategy_index].fetch_add(1, std::memory_order_relaxed) == 0) {
      Summary().live_strategies.fetch_or(uint32_t{1} << strategy_index,
                                         std::memory_order_release);
    }
    if (registered_[strategy_index].fetch_add(1, std::memory_order_relaxed) == 0) {
      Summary().registered_strategies.fetch_or(uint32_t{1} << strategy_index,
                                               std::memory_order_release);
    }
    if (strategy == &DefaultStrategy()) {
      Summary().default_strategy_bit.store(uint32_t{1} << strategy_index,
                                           std::memory_order_release);
    }
    return generation << 32 | slot;
  }

  void Unregister(internal::ManagerHandle handle) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t slot = internal::SlotOf(handle);
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t now = state.load(std::memory_order_relaxed);
    if ((now >> 2) != internal::GenerationOf(handle) || (now & kRegistered) == 0) {
      return;
    }
    state.store(now & ~kRegistered, std::memory_order_release);
    const int strategy_index = strategy_of_slot_[slot];
    if (registered_[strategy_index].fetch_sub(1, std::memory_order_relaxed) == 1) {
      Summary().registered_strategies.fetch_and(~(uint32_t{1} << strategy_index),
                                                std::memory_order_release);
    }
    Summary().unregistered_live.fetch_add(1, std::memory_order_release);
  }

  void Remove(internal::ManagerHandle handle) {
    Unregister(handle);
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t slot = internal::SlotOf(handle);
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t now = state.load(std::memory_order_relaxed);
    state.store(now & ~kLive, std::memory_order_release);
    Summary().unregistered_live.fetch_sub(1, std::memory_order_release);
    const int strategy_index = strategy_of_slot_[slot];
    if (live_[strategy_index].fetch_sub(1, std::memory_order_relaxed) == 1) {
      Summary().live_strategies.fetch_and(~(uint32_t{1} << strategy_index),
                                          std::memory_order_release);
    }
    free_slots_.push_back(slot);
  }

  // The strategies with registered managers, or (`live`) with live ones.
  int Strategies(const Strategy* out[internal::kMaxStrategies], bool live) const {
    const std::atomic<int>* counts = live ? live_ : registered_;
    int n = 0;
    for (int i = 0; i < internal::kMaxStrategies; ++i) {
      const Strategy* s = strategies_[i].load(std::memory_order_acquire);
      if (s == nullptr) break;
      if (counts[i].load(std::memory_order_relaxed) > 0) out[n++] = s;
    }
    return n;
  }

 private:
  std::atomic<uint64_t>& State(uint32_t slot) {
    return chunks_[slot >> kChunkBits].load(std::memory_order_relaxed)
        [slot & (kChunkSize - 1)];
  }

  int StrategyIndexLocked(const Strategy* strategy) {
    for (int i = 0; i < internal::kMaxStrategies; ++i) {
      const Strategy* s = strategies_[i].load(std::memory_order_relaxed);
      if (s == strategy) return i;
      if (s == nullptr) {
        strategies_[i].store(strategy, std::memory_order_release);
        return i;
      }
    }
    throw std::length_error(
        "gls::ContextManager: managers of more than 8 distinct strategies "
        "were created; strategies are meant to be a few immortal singletons");
  }

  std::mutex mu_;
  std::vector<uint32_t> free_slots_;       // guarded by mu_
  uint32_t next_slot_ = 0;                 // guarded by mu_
  std::vector<int> strategy_of_slot_;      // guarded by mu_
  // The states live in internal::manager_states, for inline readers.
  std::atomic<std::atomic<uint64_t>*> (&chunks_)[kMaxChunks] =
      internal::manager_states.chunks;
  std::atomic<const Strategy*> strategies_[internal::kMaxStrategies] = {};
  std::atomic<int> registered_[internal::kMaxStrategies] = {};
  std::atomic<int> live_[internal::kMaxStrategies] = {};

  static internal::RegistrySummary& Summary() { return internal::registry_summary; }
};

}  // namespace

namespace internal {

constinit ManagerStates manager_states;

int RegisteredStrategies(const Strategy* out[kMaxStrategies]) noexcept {
  return Registry::Get().Strategies(out, /*live=*/false);
}

int LiveStrategies(const Strategy* out[kMaxStrategies]) noexcept {
  return Registry::Get().Strategies(out, /*live=*/true);
}

constinit RegistrySummary registry_summary;

}  // namespace internal

ContextManager::ContextManager() : ContextManager(DefaultStrategy()) {}

ContextManager::ContextManager(const Strategy& strategy)
    : strategy_(&strategy),
      handle_(Registry::Get().Add(&strategy) |
              (&strategy == &DefaultStrategy() ? 0
                                               : internal::kNotDefaultStrategy)) {}

ContextManager::~ContextManager() { Registry::Get().Remove(handle_); }

void ContextManager::Unregister() { Registry::Get().Unregister(handle_); }

void ContextManager::SetValuesImpl(const Values& values,
                                   absl::FunctionRef<void()> fn) {
  if (values.empty()) {
    fn();
    return;
  }
  internal::SetValuesBookkeeping bookkeeping;
  auto in_context = [&](Context* ctx) {
    // NewFrameIn(ctx, values), written out: through the call, GCC 12
    // allocates registers worse here (+6 instructions per SetValues,
    // //bench:instructions).
    const uint32_t slot = internal::SlotOf(handle_);
    ctx->Reserve(slot);
    const internal::Frame* visible = ctx->Slot(slot);
    if (visible != nullptr && visible->handle() != handle_) visible = nullptr;
    internal::Frame* frame = internal::Frame::New(
        handle_, strategy_, visible == nullptr ? nullptr : &visible->values(),
        values, ctx->top());
    internal::Scope scope(ctx, frame);
    bookkeeping.Pause();
    fn();
    bookkeeping.Resume();
  };
  if (Context* ctx = CurrentContext()) {
    in_context(ctx);
    return;
  }
  internal::ContextLease lease;
  if (is_default()) {
    internal::DefaultRunBound(lease.get(), [&] { in_context(lease.get()); });
  } else {
    strategy_->RunBound(lease.get(), [&] { in_context(lease.get()); });
  }
}

Values ContextManager::GetValues() const {
  const internal::Frame* frame = VisibleFrame();
  return frame == nullptr ? Values() : frame->values();
}

absl::Status ContextManager::NotFound(KeyView key) {
  std::ostringstream message;
  message << "gls: no value for key " << key
          << " is set in any enclosing SetValues scope";
  return absl::NotFoundError(message.str());
}

}  // namespace gls
