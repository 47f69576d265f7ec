// The Example blocks of gls's public headers, compiled as user code (-Wall
// -Wextra -Werror) and run, so the comments cannot drift from the API.
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gls/gls.h"
#include "gtest/gtest.h"

namespace {

gls::ContextManager mgr;
const gls::ContextKey kRequestId = gls::GenSym();
std::ostringstream out;

void MyLog() {
  if (const gls::Value* id = mgr.GetValue(kRequestId)) {
    out << "My request id is: " << *id << "\n";
  } else {
    out << "No request id found\n";
  }
}

// gls/gls.h, gls/context_manager.h, gls/go.h
TEST(HeaderExamples, GlsContextManagerAndGo) {
  out.str("");
  mgr.SetValues({{kRequestId, "12345"}}, [] { MyLog(); });
  MyLog();
  mgr.SetValues({{kRequestId, "12345"}}, [] {
    std::jthread plain([] { MyLog(); });
    plain.join();
    gls::Go([] { MyLog(); }).join();
  });
  EXPECT_EQ(out.str(),
            "My request id is: 12345\nNo request id found\n"
            "No request id found\nMy request id is: 12345\n");
}

// gls/values.h
TEST(HeaderExamples, Values) {
  const gls::ContextKey kRequestIdKey = gls::GenSym();
  const gls::TypedKey<int> kTenant;
  gls::Values values{{kRequestIdKey, "12345"}, {kTenant, 7}, {"user", "bob"}};
  const gls::Value* v = values.Find("user");
  std::string user = *v->TryAs<std::string>();
  absl::StatusOr<double> bad = v->As<double>();
  EXPECT_EQ(user, "bob");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(*values.Find(kTenant), 7);
}

// gls/values.h, TypedKey
TEST(HeaderExamples, TypedKey) {
  const gls::TypedKey<std::string> kUser;
  mgr.SetValues({{kUser, "bob"}}, [&] {
    const std::string* user = mgr.GetValue(kUser);
    EXPECT_EQ(*user, "bob");
  });
}

// gls/snapshot.h
TEST(HeaderExamples, Snapshot) {
  out.str("");
  std::vector<std::function<void()>> queue;  // a task queue run later
  mgr.SetValues({{kRequestId, "12345"}}, [&] {
    queue.push_back([snapshot = gls::Capture()] {
      snapshot.Run([] { MyLog(); });
    });
  });
  std::thread([&] { for (auto& task : queue) task(); }).join();
  EXPECT_EQ(out.str(), "My request id is: 12345\n");
}

// gls/strategy.h: a strategy keyed on the running task of a scheduler.
struct Task {
  gls::Context* gls_context = nullptr;
};
thread_local Task* current_task;  // set by the scheduler

class TaskStrategy final : public gls::Strategy {
 public:
  std::string_view name() const override { return "task"; }
  gls::Context* Current() const noexcept override {
    return current_task->gls_context;
  }
  void RunBound(gls::Context* ctx,
                absl::FunctionRef<void()> fn) const override {
    Task* task = current_task;
    task->gls_context = ctx;
    struct Unbind {
      Task* t;
      ~Unbind() { t->gls_context = nullptr; }
    } unbind{task};
    fn();
  }
};

TEST(HeaderExamples, Strategy) {
  gls::ContextManager task_mgr(*new TaskStrategy);
  Task a, b;
  current_task = &a;
  task_mgr.SetValues({{"k", 1}}, [&] {
    current_task = &b;
    EXPECT_EQ(task_mgr.GetValue("k"), nullptr);
    current_task = &a;
    EXPECT_EQ(*task_mgr.GetValue<int>("k"), 1);
  });
  current_task = nullptr;
}

}  // namespace
