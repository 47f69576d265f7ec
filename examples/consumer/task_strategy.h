// A strategy written outside gls, against gls's public strategy interface
// (@gls//gls:strategy): the running flow of execution is the running "task"
// of the user's own scheduler, which the scheduler names by setting a
// current-task pointer while it runs the task (TaskScope). A thread running
// no task is a task of its own. It passes gls's conformance suite
// (task_strategy_test.cc).
//
// Example:
//
//   gls::ContextManager mgr(TaskStrategy());
//   Task a, b;
//   {
//     TaskScope running(&a);
//     mgr.SetValues({{"user", "alice"}}, [&] {
//       TaskScope switched(&b);            // the scheduler switches to b
//       assert(mgr.GetValue("user") == nullptr);
//     });
//   }
#ifndef CONSUMER_TASK_STRATEGY_H_
#define CONSUMER_TASK_STRATEGY_H_

#include "gls/strategy.h"

// Task: whatever the scheduler runs; gls only needs one pointer in it.
struct Task {
  gls::Context* gls_context = nullptr;
};

// TaskScope: makes `task` the running task of this thread for the scope's
// lifetime (what the scheduler does around each step of a task).
class TaskScope {
 public:
  explicit TaskScope(Task* task);
  ~TaskScope();
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;

 private:
  Task* const previous_;
};

// TaskStrategy(): the strategy; name() is "task".
const gls::Strategy& TaskStrategy();

#endif  // CONSUMER_TASK_STRATEGY_H_
