#include "task_strategy.h"

namespace {

// The scheduler's running task, and the task a thread is when it runs none.
// Both trivially destructible: safe from any thread_local destructor.
constinit thread_local Task* current_task = nullptr;
constinit thread_local Task thread_as_task;

Task& Running() {
  return current_task != nullptr ? *current_task : thread_as_task;
}

class TaskStrategyImpl final : public gls::Strategy {
 public:
  std::string_view name() const override { return "task"; }

  gls::Context* Current() const noexcept override {
    return Running().gls_context;
  }

  void RunBound(gls::Context* ctx,
                absl::FunctionRef<void()> fn) const override {
    Task& task = Running();
    struct Unbind {
      Task& task;
      gls::Context* previous;
      ~Unbind() { task.gls_context = previous; }
    } unbind{task, task.gls_context};
    task.gls_context = ctx;
    fn();
  }
};

}  // namespace

TaskScope::TaskScope(Task* task) : previous_(current_task) {
  current_task = task;
}

TaskScope::~TaskScope() { current_task = previous_; }

const gls::Strategy& TaskStrategy() {
  static const TaskStrategyImpl* strategy = new TaskStrategyImpl;
  return *strategy;
}
