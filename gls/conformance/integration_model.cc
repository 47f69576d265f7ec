#include "gls/conformance/integration_model.h"

#include <utility>

namespace gls {
namespace conformance {
namespace integration {
namespace {

std::vector<std::pair<KeyIndex, ModelValue>> EntriesOf(const Step& step) {
  std::vector<std::pair<KeyIndex, ModelValue>> entries;
  for (const Entry& e : step.entries) entries.emplace_back(e.key, e.value);
  return entries;
}

class Predictor {
 public:
  explicit Predictor(const ModelRegistry& registry) : registry_(registry) {}

  std::vector<StepExpectations> Run(const Program& program) {
    ModelFlow driver;  // the program's thread, outside every scope
    Walk(program.steps, driver);
    return std::move(out_);
  }

 private:
  // A new flow for work submitted from `from`: carried or fresh.
  ModelFlow Carried(const ModelFlow& from) const {
    ModelFlow flow;
    flow.PushRun(registry_, from.Capture());
    return flow;
  }
  static Expectation Sees(const ModelFlow& flow) {
    return Expectation{flow.Capture(), /*thread_base=*/false};
  }

  void Walk(const std::vector<Step>& steps, ModelFlow& flow) {
    for (const Step& step : steps) Visit(step, flow);
  }

  void Visit(const Step& step, ModelFlow& flow) {
    const size_t n = out_.size();
    out_.emplace_back();
    out_[n].at = Sees(flow);
    switch (step.kind) {
      case StepKind::kScope:
        flow.PushValues(registry_, step.manager, EntriesOf(step));
        Walk(step.body, flow);
        flow.Pop();
        return;
      case StepKind::kCheck:
      case StepKind::kCancelTimer:
      case StepKind::kHop:
      case StepKind::kLog:
        return;
      case StepKind::kPost:
      case StepKind::kTimer:
      case StepKind::kCoSpawn: {
        if (Carries(step.target)) {
          ModelFlow work = Carried(flow);
          out_[n].work = Sees(work);
          Walk(step.body, work);
        } else {
          ModelFlow work;  // an executor thread, nothing carried
          // A handler or timer completion starts on the thread between
          // steps; an unwrapped co_spawn's body too, but only its start is
          // checked as such (after a co_await it is still fresh).
          out_[n].work = Expectation{work.Capture(), /*thread_base=*/true};
          Walk(step.body, work);
        }
        return;
      }
      case StepKind::kAwait:
        if (step.await == AwaitKind::kNested) Walk(step.body, flow);
        return;
      case StepKind::kTask:
      case StepKind::kBind: {
        ModelFlow work = Carried(flow);
        out_[n].work = Sees(work);
        Walk(step.body, work);
        return;
      }
      case StepKind::kSubTask: {
        ModelSnapshot creation = flow.Capture();
        if (!step.entries.empty()) {
          // WithValues: a SetValues inside a Run of the creation values,
          // captured.
          ModelFlow with;
          with.PushRun(registry_, creation);
          with.PushValues(registry_, step.manager, EntriesOf(step));
          creation = with.Capture();
        }
        ModelFlow work;
        work.PushRun(registry_, creation);
        out_[n].work = Sees(work);
        Walk(step.body, work);
        return;
      }
    }
  }

  const ModelRegistry& registry_;
  std::vector<StepExpectations> out_;
};

}  // namespace

ModelRegistry MakeRegistry(int strategies) {
  ModelRegistry registry;
  for (int m = 0; m < ManagerCount(strategies); ++m) registry.Create(m / 2);
  return registry;
}

std::vector<StepExpectations> Predict(const Program& program,
                                      const ModelRegistry& registry) {
  return Predictor(registry).Run(program);
}

std::string ExpectedFlag(const ModelSnapshot& values) {
  std::string out;
  const auto manager = values.view.find(0);  // A0
  if (manager == values.view.end()) return out;
  for (const auto& [key, value] : manager->second) {
    out += " " + KeyName(key) + "=";
    if (const int* i = std::get_if<int>(&value)) {
      out += std::to_string(*i);
    } else {
      // The programs' strings ("v12", "t7") need no escaping.
      out += std::get<std::string>(value);
    }
  }
  return out;
}

}  // namespace integration
}  // namespace conformance
}  // namespace gls
