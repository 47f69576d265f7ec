// gls::Bind and gls::Propagating (gls/bind.h, gls/executor.h) under every
// strategy of this repository: values cross into pool threads exactly as
// captured, never leak into tasks that were not bound, never flow back, and
// a task that never runs releases what it holds.
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/bind.h"
#include "gls/executor.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

// A minimal third-party-style pool: `post` and `submit`, one or more threads,
// and work still queued at destruction is dropped unrun.
class TestPool {
 public:
  explicit TestPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Loop(); });
    }
  }
  ~TestPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      queue_.clear();  // dropped unrun
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  template <typename F>
  void post(F fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

  template <typename F>
  auto submit(F fn) -> std::future<decltype(fn())> {
    auto task =
        std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto future = task->get_future();
    post([task] { (*task)(); });
    return future;
  }

  // Blocks the pool's threads until Release(): lets a test queue work that
  // is still queued when the pool is destroyed.
  void Hold() {
    post([this] {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return released_ || stopping_; });
    });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  bool released_ = false;
  std::vector<std::thread> threads_;
};

class PropagationTest : public ::testing::TestWithParam<const Strategy*> {
 protected:
  const Strategy& strategy() const { return *GetParam(); }

  // The string value of `key` as `mgr` sees it here, or "none".
  static std::string Read(const ContextManager& mgr, const ContextKey& key) {
    const Value* v = mgr.GetValue(key);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, PropagationTest,
                         ::testing::Values(&ThreadLocalStrategy(),
                                           &GoidStrategy(),
                                           &StackTagStrategy()),
                         StrategyName);

TEST_P(PropagationTest, BoundFunctionRunsWithTheBindersValuesOnAnotherThread) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  std::optional<Bound<std::function<std::string()>>> bound;
  mgr.SetValues({{key, std::string("request-1")}}, [&] {
    bound.emplace(Bind(std::function<std::string()>([&] { return Read(mgr, key); })));
  });
  EXPECT_EQ(Read(mgr, key), "none");
  std::string seen;
  std::thread([&] { seen = (*bound)(); }).join();
  EXPECT_EQ(seen, "request-1");
  // And again, on this thread, outside every scope: still the captured
  // values, and this flow's own (none) afterwards.
  EXPECT_EQ((*bound)(), "request-1");
  EXPECT_EQ(Read(mgr, key), "none");
}

TEST_P(PropagationTest, ChildGetsASnapshotAtBindAndNothingFlowsBack) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  mgr.SetValues({{key, std::string("at-bind")}}, [&] {
    auto bound = Bind([&] {
      const std::string before = Read(mgr, key);
      // What the child sets stays inside the child.
      mgr.SetValues({{key, std::string("set-by-child")}}, [&] {
        EXPECT_EQ(Read(mgr, key), "set-by-child");
      });
      return before;
    });
    mgr.SetValues({{key, std::string("later-in-parent")}}, [&] {
      // A later change in the parent does not reach the bound child...
      EXPECT_EQ(bound(), "at-bind");
      // ...and the child's changes do not reach the parent.
      EXPECT_EQ(Read(mgr, key), "later-in-parent");
    });
    EXPECT_EQ(Read(mgr, key), "at-bind");
  });
}

TEST_P(PropagationTest, RunningChildSeesNoLaterParentChangeAndViceVersa) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  std::latch child_inside(1), parent_changed(1), child_checked(1);
  std::string child_saw, parent_saw;
  std::jthread child;
  mgr.SetValues({{key, std::string("parent-1")}}, [&] {
    child = Go([&] {
      mgr.SetValues({{key, std::string("child")}}, [&] {
        child_inside.count_down();
        parent_changed.wait();
        child_saw = Read(mgr, key);
        child_checked.count_down();
      });
    });
    child_inside.wait();
    mgr.SetValues({{key, std::string("parent-2")}}, [&] {
      parent_changed.count_down();
      child_checked.wait();
      parent_saw = Read(mgr, key);
    });
  });
  child.join();
  EXPECT_EQ(child_saw, "child");
  EXPECT_EQ(parent_saw, "parent-2");
}

TEST_P(PropagationTest, BindAcceptsMoveOnlyCallablesArgumentsAndReferences) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  mgr.SetValues({{key, std::string("v")}}, [&] {
    auto owned = std::make_unique<int>(41);
    auto bound = Bind([owned = std::move(owned), &mgr, &key](int add) {
      return *owned + add + (Read(mgr, key) == "v" ? 0 : 1000);
    });
    auto moved = std::move(bound);  // move-only, and still callable
    EXPECT_EQ(moved(1), 42);
    EXPECT_EQ(moved(2), 43);  // as often as called

    int target = 0;
    auto ref = Bind([&target]() -> int& { return target; });
    ref() = 7;
    EXPECT_EQ(target, 7);
  });
}

TEST_P(PropagationTest, BindRestoresTheCallersValuesWhenTheFunctionThrows) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  std::optional<Bound<std::function<void()>>> bound;
  mgr.SetValues({{key, std::string("captured")}}, [&] {
    bound.emplace(Bind(std::function<void()>([&] {
      EXPECT_EQ(Read(mgr, key), "captured");
      throw std::runtime_error("task failed");
    })));
  });
  mgr.SetValues({{key, std::string("caller")}}, [&] {
    EXPECT_THROW((*bound)(), std::runtime_error);
    EXPECT_EQ(Read(mgr, key), "caller");
  });
}

TEST(BindTest, NullFunctionIsRejectedWithAMessage) {
  void (*null_fn)() = nullptr;
  try {
    (void)Bind(null_fn);
    FAIL() << "Bind accepted a null function pointer";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("gls::Bind"), std::string::npos);
  }
  EXPECT_THROW((void)Bind(std::function<void()>()), std::invalid_argument);
}

TEST_P(PropagationTest, BoundTaskOutlivingItsManagerShowsNothing) {
  auto mgr = std::make_unique<ContextManager>(strategy());
  const ContextKey key = GenSym();
  std::unique_ptr<ContextManager> successor;
  std::optional<Bound<std::function<std::string()>>> bound;
  mgr->SetValues({{key, std::string("v")}}, [&] {
    bound.emplace(Bind(std::function<std::string()>(
        [&] { return Read(*successor, key); })));
  });
  mgr.reset();
  // Likely to reuse the destroyed manager's slot (under a new generation):
  // it must not see the dead manager's captured values.
  successor = std::make_unique<ContextManager>(strategy());
  EXPECT_EQ((*bound)(), "none");
}

TEST_P(PropagationTest, ExecutorWrapperCarriesTheSubmittersValues) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  TestPool pool(2);
  auto executor = Propagating(&pool);
  std::vector<std::future<std::string>> bound_results, plain_results;
  for (int i = 0; i < 50; ++i) {
    mgr.SetValues({{key, "request-" + std::to_string(i)}}, [&] {
      bound_results.push_back(executor.submit([&] { return Read(mgr, key); }));
      plain_results.push_back(pool.submit([&] { return Read(mgr, key); }));
    });
  }
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(bound_results[i].get(), "request-" + std::to_string(i));
    // A task that was not bound sees the pool thread's values: none, even
    // right after a bound task ran on that thread.
    EXPECT_EQ(plain_results[i].get(), "none");
  }
}

TEST_P(PropagationTest, PoolThreadSeesNoValuesBetweenBoundTasks) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  TestPool pool(1);  // one thread: every task runs on the same flow
  auto executor = Propagating(std::ref(pool));
  std::vector<std::string> seen;
  std::mutex mu;
  for (int i = 0; i < 20; ++i) {
    mgr.SetValues({{key, "r" + std::to_string(i)}}, [&] {
      executor.post([&] {
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(Read(mgr, key));
      });
    });
    pool.post([&] {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(Read(mgr, key));
    });
  }
  pool.submit([] { return 0; }).get();
  ASSERT_EQ(seen.size(), 40u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(seen[2 * i], "r" + std::to_string(i));
    EXPECT_EQ(seen[2 * i + 1], "none");
  }
}

TEST_P(PropagationTest, TaskDroppedByADestroyedPoolReleasesItsValues) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  auto payload = std::make_shared<int>(5);
  bool ran = false;
  {
    TestPool pool(1);
    pool.Hold();  // the pool's one thread waits, so the next task stays queued
    auto executor = Propagating(&pool);
    mgr.SetValues({{key, payload}}, [&] { executor.post([&] { ran = true; }); });
    EXPECT_GT(payload.use_count(), 1);  // the queued task holds the values
  }  // destroyed with the task queued: dropped unrun
  EXPECT_FALSE(ran);
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_EQ(mgr.GetValue(key), nullptr);
}

TEST_P(PropagationTest, StdAsyncWithBind) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  std::future<std::string> bound, plain;
  mgr.SetValues({{key, std::string("async")}}, [&] {
    bound = std::async(std::launch::async, Bind([&] { return Read(mgr, key); }));
    plain = std::async(std::launch::async, [&] { return Read(mgr, key); });
  });
  EXPECT_EQ(bound.get(), "async");
  EXPECT_EQ(plain.get(), "none");
}

}  // namespace
}  // namespace gls
