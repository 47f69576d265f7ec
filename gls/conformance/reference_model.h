// gls/conformance/reference_model.h: a plain, obviously correct model of
// gls's semantics, the oracle of the differential test.
//
// What this is for: predicting what every GetValue (and GetGoroutineId
// presence) must return, from nothing but the documented rules
// (gls/context_manager.h, gls/snapshot.h, gls/go.h): per flow of execution a
// stack of complete views (manager -> key -> value), each SetValues pushing a
// copy with its values merged in, each Run pushing the snapshot's values of
// the managers that are alive and registered when it starts, each scope end
// popping; a snapshot is a copy of the view. Nothing is shared, nothing is
// reference counted, no cleverness: if it looks slow, that is the point.
//
// What this is not: a second implementation to use anywhere else, nor a
// model of undocumented behaviour. Where the documentation is silent the
// test does not go (see "Not modelled" below), rather than the model
// copying what the implementation happens to do.
//
// Modelled rules (and where they come from):
//   * SetValues(values, fn): `fn` sees the manager's visible values with
//     `values` added or replacing same keys; other managers unchanged; the
//     previous view is back when fn returns or throws. Empty `values` just
//     calls fn (no context is created). (context_manager.h)
//   * A manager's values are seen only through that manager; a destroyed
//     manager's values are never seen again, by any later manager.
//     (context_manager.h "Memory")
//   * Capture(): the running flow's view, every manager's, as it is now.
//     Run(fn) in a snapshot: fn sees, for every alive and registered manager,
//     exactly the snapshot's values (none if it had none), whatever the
//     running flow had; unregistered or destroyed managers show nothing of
//     it. The flow's own view is back afterwards. (snapshot.h)
//   * Go(fn): Run of a Capture taken at the call, on a fresh flow. A fresh
//     flow (new thread, new fiber) starts with no values. (go.h)
//   * Goroutine ids: a flow has a context (GetGoroutineId is not nullopt)
//     while inside a SetValues with values, a Run of a snapshot that had
//     values, or EnsureGoroutineId, of that strategy; while it has one, the
//     id stays the same and differs from every other live flow's.
//     (strategy.h, context_manager.h)
//
// Not modelled (the test never does it; the docs leave it open):
//   * Unregister while any flow of the program is inside a Run: the docs say
//     what a manager "unregistered ... by the time Run starts" shows, not
//     what one unregistered during a Run shows.
//   * Unregistered managers of a strategy none of whose managers is
//     registered, inside a Run: the test keeps a registered manager of
//     every strategy it uses alive for the whole run.
//   * Destroying a manager while a scope of it is active (forbidden).
//
// Guarantees: deterministic; not thread-safe (one ModelRegistry per program,
// driven in program order, which is a total order even when the program's
// flows run on several threads, because every hand-off joins).
#ifndef GLS_CONFORMANCE_REFERENCE_MODEL_H_
#define GLS_CONFORMANCE_REFERENCE_MODEL_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace gls {
namespace conformance {

// The strategies one model tracks contexts for (indices chosen by the test).
inline constexpr int kModelStrategies = 3;

// A value as the model holds it: the test stores only ints and strings.
using ModelValue = std::variant<int, std::string>;
std::string DescribeValue(const ModelValue& value);

// Keys are indices into the test's key universe; managers are ids the model
// hands out, never reused (a destroyed manager's id stays dead).
using KeyIndex = int;
using ManagerId = int;
using ValueMap = std::map<KeyIndex, ModelValue>;
using View = std::map<ManagerId, ValueMap>;

// ModelRegistry
//
// Which managers exist, which are alive and which are registered.
class ModelRegistry {
 public:
  // Create(strategy): a new, registered manager of strategy index `strategy`.
  ManagerId Create(int strategy);
  // Unregister(m): idempotent, as ContextManager::Unregister.
  void Unregister(ManagerId m);
  // Destroy(m): the manager is gone (unregistered too).
  void Destroy(ManagerId m);

  bool alive(ManagerId m) const { return info_.at(m).alive; }
  bool registered(ManagerId m) const { return info_.at(m).registered; }
  // carried(m): alive and registered: what Go and Run carry.
  bool carried(ManagerId m) const { return alive(m) && registered(m); }
  int strategy(ManagerId m) const { return info_.at(m).strategy; }

 private:
  struct Info {
    int strategy;
    bool alive;
    bool registered;
  };
  std::vector<Info> info_;
};

// ModelSnapshot: the running flow's view when captured (unfiltered: the
// filter applies when it is run), and per strategy whether the flow had
// values of it (a snapshot of a flow with none binds no context when run).
struct ModelSnapshot {
  View view;
  std::array<bool, kModelStrategies> has_values{};
};

// ModelFlow
//
// One flow of execution: a stack of complete views. Starts with one empty
// layer (a fresh thread or fiber has no values and no context).
class ModelFlow {
 public:
  ModelFlow() : layers_(1) {}

  // PushValues(registry, m, entries): a SetValues of manager `m` with
  // `entries` applied in order (a later entry replaces an earlier same key,
  // as gls::Values::Set does).
  void PushValues(const ModelRegistry& registry, ManagerId m,
                  const std::vector<std::pair<KeyIndex, ModelValue>>& entries);
  // PushRun(registry, snapshot): a Snapshot::Run starting now.
  void PushRun(const ModelRegistry& registry, const ModelSnapshot& snapshot);
  // PushEnsureId(strategy): an EnsureGoroutineId of that strategy.
  void PushEnsureId(int strategy);
  // Pop(): the innermost of the above ended (returned or threw).
  void Pop();

  // Get(m, key): the value GetValue must return, or nullopt ("not found").
  std::optional<ModelValue> Get(ManagerId m, KeyIndex key) const;
  // Values(m): every value of `m` visible here (GetValues()).
  ValueMap Values(ManagerId m) const;
  // Capture(): a snapshot of this flow now.
  ModelSnapshot Capture() const;
  // HasContext(strategy): GetGoroutineId of that strategy is not nullopt.
  bool HasContext(int strategy) const { return top().has_context[strategy]; }

  // The id first observed in the current context of `strategy`, if any: not
  // semantics, a memo, so later observations within the same context can be
  // checked to be equal (an id does not change while its context is bound).
  std::optional<uint64_t>& ObservedId(int strategy) {
    return layers_.back().observed_id[strategy];
  }

  size_t depth() const { return layers_.size() - 1; }

 private:
  struct Layer {
    View view;
    // The flow's innermost frame of this strategy is not empty (what
    // Capture's "had values" is).
    std::array<bool, kModelStrategies> has_values{};
    std::array<bool, kModelStrategies> has_context{};
    std::array<std::optional<uint64_t>, kModelStrategies> observed_id{};
  };
  const Layer& top() const { return layers_.back(); }
  // A new layer that starts as a copy of the current one (ids observed carry
  // over only where the context stays the same).
  Layer& PushCopy();

  std::vector<Layer> layers_;
};

}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_REFERENCE_MODEL_H_
