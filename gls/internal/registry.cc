#include "gls/internal/registry.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace gls {
namespace internal {

constinit ManagerStates manager_states;
constinit RegistrySummary registry_summary;

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
  static Registry& Get() {
    static Registry* registry = new Registry;  // never destroyed
    return *registry;
  }

  ManagerHandle Add(const Strategy* strategy) {
    std::lock_guard<std::mutex> lock(mu_);
    const int strategy_index = StrategyIndexLocked(strategy);
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      if (next_slot_ >= ManagerStates::kChunkSize * ManagerStates::kMaxChunks) {
        throw std::length_error(
            "gls::ContextManager: more than 65536 managers are alive at once");
      }
      slot = next_slot_++;
      const uint32_t chunk = slot >> ManagerStates::kChunkBits;
      if (chunks_[chunk].load(std::memory_order_relaxed) == nullptr) {
        chunks_[chunk].store(
            new std::atomic<uint64_t>[ManagerStates::kChunkSize](),
            std::memory_order_release);
      }
    }
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t generation =
        (state.load(std::memory_order_relaxed) >> 2) + 1;
    state.store(
        generation << 2 | ManagerStates::kLive | ManagerStates::kRegistered,
        std::memory_order_release);
    strategy_of_slot_.resize(
        std::max<size_t>(strategy_of_slot_.size(), slot + 1));
    strategy_of_slot_[slot] = strategy_index;
    if (live_[strategy_index].fetch_add(1, std::memory_order_relaxed) == 0) {
      Summary().live_strategies.fetch_or(uint32_t{1} << strategy_index,
                                         std::memory_order_release);
    }
    if (registered_[strategy_index].fetch_add(1, std::memory_order_relaxed) ==
        0) {
      Summary().registered_strategies.fetch_or(uint32_t{1} << strategy_index,
                                               std::memory_order_release);
    }
    if (strategy == &DefaultStrategy()) {
      Summary().default_strategy_bit.store(uint32_t{1} << strategy_index,
                                           std::memory_order_release);
    }
    UpdateSimpleLocked();
    return generation << 32 | slot |
           (strategy == &DefaultStrategy() ? 0 : kNotDefaultStrategy);
  }

  void Unregister(ManagerHandle handle) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t slot = SlotOf(handle);
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t now = state.load(std::memory_order_relaxed);
    if ((now >> 2) != GenerationOf(handle) ||
        (now & ManagerStates::kRegistered) == 0) {
      return;
    }
    state.store(now & ~ManagerStates::kRegistered, std::memory_order_release);
    const int strategy_index = strategy_of_slot_[slot];
    if (registered_[strategy_index].fetch_sub(1, std::memory_order_relaxed) ==
        1) {
      Summary().registered_strategies.fetch_and(
          ~(uint32_t{1} << strategy_index), std::memory_order_release);
    }
    Summary().unregistered_live.fetch_add(1, std::memory_order_release);
    UpdateSimpleLocked();
  }

  void Remove(ManagerHandle handle) {
    Unregister(handle);
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t slot = SlotOf(handle);
    std::atomic<uint64_t>& state = State(slot);
    const uint64_t now = state.load(std::memory_order_relaxed);
    state.store(now & ~ManagerStates::kLive, std::memory_order_release);
    Summary().unregistered_live.fetch_sub(1, std::memory_order_release);
    const int strategy_index = strategy_of_slot_[slot];
    if (live_[strategy_index].fetch_sub(1, std::memory_order_relaxed) == 1) {
      Summary().live_strategies.fetch_and(~(uint32_t{1} << strategy_index),
                                          std::memory_order_release);
    }
    free_slots_.push_back(slot);
    UpdateSimpleLocked();
  }

  // The strategies with registered managers, or (`live`) with live ones.
  int Strategies(const Strategy* out[kMaxStrategies], bool live) const {
    const std::atomic<int>* counts = live ? live_ : registered_;
    int n = 0;
    for (int i = 0; i < kMaxStrategies; ++i) {
      const Strategy* s = strategies_[i].load(std::memory_order_acquire);
      if (s == nullptr) break;
      if (counts[i].load(std::memory_order_relaxed) > 0) out[n++] = s;
    }
    return n;
  }

 private:
  // RegistrySummary::simple, from the other answers (they changed under the
  // lock just now).
  void UpdateSimpleLocked() {
    RegistrySummary& summary = Summary();
    const uint32_t bit =
        summary.default_strategy_bit.load(std::memory_order_relaxed);
    const bool simple =
        bit != 0 &&
        summary.registered_strategies.load(std::memory_order_relaxed) == bit &&
        (summary.live_strategies.load(std::memory_order_relaxed) & ~bit) == 0 &&
        summary.unregistered_live.load(std::memory_order_relaxed) == 0;
    summary.simple.store(simple, std::memory_order_release);
  }

  std::atomic<uint64_t>& State(uint32_t slot) {
    return chunks_[slot >> ManagerStates::kChunkBits].load(
        std::memory_order_relaxed)[slot & (ManagerStates::kChunkSize - 1)];
  }

  int StrategyIndexLocked(const Strategy* strategy) {
    for (int i = 0; i < kMaxStrategies; ++i) {
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
  std::vector<uint32_t> free_slots_;   // guarded by mu_
  uint32_t next_slot_ = 0;             // guarded by mu_
  std::vector<int> strategy_of_slot_;  // guarded by mu_
  // The states live in manager_states.chunks, where inline readers load
  // them.
  std::atomic<std::atomic<uint64_t>*> (&chunks_)[ManagerStates::kMaxChunks] =
      manager_states.chunks;
  std::atomic<const Strategy*> strategies_[kMaxStrategies] = {};
  std::atomic<int> registered_[kMaxStrategies] = {};
  std::atomic<int> live_[kMaxStrategies] = {};

  static RegistrySummary& Summary() { return registry_summary; }
};

}  // namespace

ManagerHandle RegisterManager(const Strategy* strategy) {
  return Registry::Get().Add(strategy);
}

void UnregisterManager(ManagerHandle handle) {
  Registry::Get().Unregister(handle);
}

void RemoveManager(ManagerHandle handle) { Registry::Get().Remove(handle); }

int RegisteredStrategies(const Strategy* out[kMaxStrategies]) noexcept {
  return Registry::Get().Strategies(out, /*live=*/false);
}

int LiveStrategies(const Strategy* out[kMaxStrategies]) noexcept {
  return Registry::Get().Strategies(out, /*live=*/true);
}

}  // namespace internal
}  // namespace gls
