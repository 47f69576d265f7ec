#include "gls/context_manager.h"

#include <atomic>
#include <mutex>
#include <sstream>

#include "absl/container/flat_hash_map.h"

namespace gls {

namespace {

struct Registration {
  const Strategy* strategy;
  size_t index;
};

// The managers gls::Go carries values for, and the source of manager slots.
// Slots are never reused: a destroyed manager's slot stays empty in every
// context, so no later manager can see its leftovers.
class Registry {
 public:
  static Registry& Get() {
    static Registry* registry = new Registry;  // never destroyed
    return *registry;
  }

  size_t Add(const ContextManager* mgr, const Strategy* strategy) {
    const size_t index = next_index_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    managers_[mgr] = Registration{strategy, index};
    return index;
  }

  void Remove(const ContextManager* mgr) {
    std::lock_guard<std::mutex> lock(mu_);
    managers_.erase(mgr);
  }

  std::vector<Registration> Snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Registration> out;
    out.reserve(managers_.size());
    for (const auto& [mgr, reg] : managers_) out.push_back(reg);
    return out;
  }

 private:
  std::atomic<size_t> next_index_{0};
  std::mutex mu_;
  absl::flat_hash_map<const ContextManager*, Registration> managers_;
};

}  // namespace

ContextManager::ContextManager(const Strategy& strategy)
    : strategy_(&strategy), index_(Registry::Get().Add(this, &strategy)) {}

ContextManager::~ContextManager() { Unregister(); }

void ContextManager::Unregister() { Registry::Get().Remove(this); }

void ContextManager::SetValuesImpl(const Values& values,
                                   absl::FunctionRef<void()> fn) {
  if (values.empty()) {
    fn();
    return;
  }
  strategy_->EnsureContext([&](internal::Context* ctx) {
    const Values* visible = ctx->Get(index_);
    if (visible == nullptr) {
      // Nothing to merge: the scope borrows the caller's values, which
      // outlive it.
      internal::ScopedValues scope(ctx, index_, &values);
      fn();
    } else {
      internal::ScopedValues scope(ctx, index_, Values::Merged(*visible, values));
      fn();
    }
  });
}

Values ContextManager::GetValues() const {
  const Values* values = VisibleValues();
  return values == nullptr ? Values() : *values;
}

absl::Status ContextManager::NotFound(const Key& key) {
  std::ostringstream message;
  message << "gls: no value for key " << key
          << " is set in any enclosing SetValues scope";
  return absl::NotFoundError(message.str());
}

namespace internal {

std::vector<CarriedValues> CaptureRegisteredValues() {
  std::vector<CarriedValues> carried;
  for (const Registration& reg : Registry::Get().Snapshot()) {
    const Context* ctx = reg.strategy->CurrentInline();
    const Values* values = ctx == nullptr ? nullptr : ctx->Get(reg.index);
    if (values != nullptr && !values->empty()) {
      carried.push_back(CarriedValues{reg.strategy, reg.index, *values});
    }
  }
  return carried;
}

namespace {
void RunFrom(const std::vector<CarriedValues>& carried, size_t i,
             absl::FunctionRef<void()> fn) {
  if (i == carried.size()) {
    fn();
    return;
  }
  const CarriedValues& c = carried[i];
  c.strategy->EnsureContext([&](Context* ctx) {
    ScopedValues scope(ctx, c.manager_index, &c.values);
    RunFrom(carried, i + 1, fn);
  });
}
}  // namespace

void RunWithValues(const std::vector<CarriedValues>& carried,
                   absl::FunctionRef<void()> fn) {
  RunFrom(carried, 0, fn);
}

}  // namespace internal

}  // namespace gls
