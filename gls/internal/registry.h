// gls/internal/registry.h: the registry of managers, the one home of what
// every flow needs to know about them (which are alive, which are carried
// into other flows, which strategies they use).
//
// Not part of the public API. ContextManager's constructor, Unregister and
// destructor are its only writers (RegisterManager, UnregisterManager,
// RemoveManager, under one lock in registry.cc); everything else reads it,
// lock-free and inline, from any thread or signal handler.
//
// What this is not: a list of values. Values live in frames
// (gls/internal/frame.h); the registry only says whose frames count.
#ifndef GLS_INTERNAL_REGISTRY_H_
#define GLS_INTERNAL_REGISTRY_H_

#include <atomic>
#include <cstdint>

#include "gls/strategy.h"

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
  // All of the above in one answer, so a hot path decides with one load:
  // some manager is alive, and every live manager uses the default strategy
  // and is registered. Then a flow's values, what Capture takes of them and
  // what Snapshot::Run must show or hide are all in the default strategy's
  // context, and the flow's own view of them is the carried view.
  std::atomic<bool> simple{false};
};
extern constinit RegistrySummary registry_summary;

// RegistryIsSimple(): RegistrySummary::simple.
inline bool RegistryIsSimple() noexcept {
  return registry_summary.simple.load(std::memory_order_acquire);
}

// AnyUnregisteredLiveManager(): some manager is alive but unregistered (its
// values are visible in its own flow but not carried).
inline bool AnyUnregisteredLiveManager() noexcept {
  return registry_summary.unregistered_live.load(std::memory_order_acquire) !=
         0;
}

// RegisterManager(strategy): a new manager's handle: a free slot, with the
// next generation of that slot, alive and registered. Throws
// std::length_error if managers of more than kMaxStrategies distinct
// strategies were created, or more than 65,536 managers are alive at once.
ManagerHandle RegisterManager(const Strategy* strategy);
// UnregisterManager(handle): stops carrying the manager's values into other
// flows (Capture, Run, Go). Idempotent.
void UnregisterManager(ManagerHandle handle);
// RemoveManager(handle): the manager is destroyed: its frames never count
// again, and its slot is free for a later manager (with a new generation).
void RemoveManager(ManagerHandle handle);

}  // namespace internal
}  // namespace gls

#endif  // GLS_INTERNAL_REGISTRY_H_
