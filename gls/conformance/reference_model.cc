#include "gls/conformance/reference_model.h"

#include <sstream>

namespace gls {
namespace conformance {

std::string DescribeValue(const ModelValue& value) {
  std::ostringstream out;
  if (const int* i = std::get_if<int>(&value)) {
    out << *i;
  } else {
    out << '"' << std::get<std::string>(value) << '"';
  }
  return out.str();
}

ManagerId ModelRegistry::Create(int strategy) {
  info_.push_back(Info{strategy, /*alive=*/true, /*registered=*/true});
  return static_cast<ManagerId>(info_.size() - 1);
}

void ModelRegistry::Unregister(ManagerId m) { info_.at(m).registered = false; }

void ModelRegistry::Destroy(ManagerId m) {
  info_.at(m).registered = false;
  info_.at(m).alive = false;
}

ModelFlow::Layer& ModelFlow::PushCopy() {
  layers_.push_back(layers_.back());
  return layers_.back();
}

void ModelFlow::PushValues(
    const ModelRegistry& registry, ManagerId m,
    const std::vector<std::pair<KeyIndex, ModelValue>>& entries) {
  Layer& layer = PushCopy();
  if (entries.empty()) return;  // SetValues with no values just calls fn
  ValueMap& values = layer.view[m];
  for (const auto& [key, value] : entries) values[key] = value;
  const int s = registry.strategy(m);
  layer.has_values[s] = true;
  if (!layer.has_context[s]) layer.observed_id[s].reset();
  layer.has_context[s] = true;
}

void ModelFlow::PushRun(const ModelRegistry& registry,
                        const ModelSnapshot& snapshot) {
  Layer& layer = PushCopy();
  // Exactly the snapshot's values, of the managers still carried; nothing of
  // what the flow had.
  layer.view.clear();
  for (const auto& [m, values] : snapshot.view) {
    if (registry.carried(m) && !values.empty()) layer.view[m] = values;
  }
  for (int s = 0; s < kModelStrategies; ++s) {
    layer.has_values[s] = snapshot.has_values[s];
    if (snapshot.has_values[s] && !layer.has_context[s]) {
      layer.has_context[s] = true;  // a context is bound to install them in
      layer.observed_id[s].reset();
    }
  }
}

void ModelFlow::PushEnsureId(int strategy) {
  Layer& layer = PushCopy();
  if (!layer.has_context[strategy]) {
    layer.has_context[strategy] = true;
    layer.observed_id[strategy].reset();
  }
}

void ModelFlow::Pop() {
  // The base layer is the flow's state outside every scope: never popped.
  if (layers_.size() > 1) layers_.pop_back();
}

std::optional<ModelValue> ModelFlow::Get(ManagerId m, KeyIndex key) const {
  auto it = top().view.find(m);
  if (it == top().view.end()) return std::nullopt;
  auto value = it->second.find(key);
  if (value == it->second.end()) return std::nullopt;
  return value->second;
}

ValueMap ModelFlow::Values(ManagerId m) const {
  auto it = top().view.find(m);
  return it == top().view.end() ? ValueMap() : it->second;
}

ModelSnapshot ModelFlow::Capture() const {
  ModelSnapshot snapshot;
  snapshot.view = top().view;
  snapshot.has_values = top().has_values;
  return snapshot;
}

}  // namespace conformance
}  // namespace gls
