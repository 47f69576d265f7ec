// gls::Task (gls/coro.h) under every strategy: a coroutine sees the values it
// was created with after every resumption, on any thread; WithValues gives a
// sub-task values no other coroutine on the thread sees; awaiting tasks that
// finish synchronously does not grow the stack; destroying suspended or
// unstarted tasks leaks nothing.
#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/coro.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

// Threads that resume coroutines handed to them: `co_await pool.Hop()`.
class HopPool {
 public:
  explicit HopPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~HopPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  struct HopAwaiter {
    HopPool* pool;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { pool->Post([h] { h.resume(); }); }
    void await_resume() const noexcept {}
  };
  HopAwaiter Hop() { return HopAwaiter{this}; }

  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class CoroTest : public ::testing::TestWithParam<const Strategy*> {
 public:
  std::string Read() const {
    const Value* v = mgr_.GetValue(key_);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }

 protected:
  CoroTest() : mgr_(*GetParam()) {}
  ContextManager mgr_;
  const ContextKey key_ = GenSym();
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, CoroTest,
                         ::testing::Values(&ThreadLocalStrategy(),
                                           &GoidStrategy(),
                                           &StackTagStrategy()),
                         StrategyName);

// Hops between pool threads `hops` times; returns the number of resumptions
// that saw something other than `want`.
Task<int> HopAndCheck(CoroTest* t, HopPool* pool, std::string want, int hops) {
  int wrong = t->Read() == want ? 0 : 1;
  for (int i = 0; i < hops; ++i) {
    co_await pool->Hop();
    if (t->Read() != want) ++wrong;
  }
  co_return wrong;
}

TEST_P(CoroTest, SeesItsValuesAfterEveryResumptionOnAnotherThread) {
  HopPool pool(3);
  int wrong = -1;
  mgr_.SetValues({{key_, std::string("r1")}}, [&] {
    wrong = SyncWait(HopAndCheck(this, &pool, "r1", 20));
  });
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(Read(), "none");
}

TEST_P(CoroTest, ManyCoroutinesHoppingConcurrentlyEachSeeTheirOwn) {
  HopPool pool(3);
  std::atomic<int> wrong{0};
  std::vector<std::thread> starters;
  for (int i = 0; i < 8; ++i) {
    starters.emplace_back([&, i] {
      mgr_.SetValues({{key_, "c" + std::to_string(i)}}, [&] {
        wrong += SyncWait(HopAndCheck(this, &pool, "c" + std::to_string(i), 50));
      });
    });
  }
  // Plain work on the same pool threads meanwhile sees none.
  for (int i = 0; i < 50; ++i) {
    pool.Post([&] {
      if (Read() != "none") ++wrong;
    });
  }
  for (auto& t : starters) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

Task<std::string> ReadAfterHops(CoroTest* t, HopPool* pool, int hops) {
  for (int i = 0; i < hops; ++i) co_await pool->Hop();
  co_return t->Read();
}

Task<std::vector<std::string>> Parent(CoroTest* t, HopPool* pool,
                                      ContextManager* mgr, ContextKey key) {
  std::vector<std::string> seen;
  seen.push_back(t->Read());  // the creator's values
  // A sub-task with its own values across its co_awaits. (The Values are a
  // named local: GCC 12 rejects a braced list inside a co_await operand.)
  const Values sub_values = {{key, std::string("sub")}};
  seen.push_back(co_await WithValues(*mgr, sub_values, ReadAfterHops(t, pool, 3)));
  seen.push_back(t->Read());  // ours again, after resuming from the sub-task
  co_await pool->Hop();
  seen.push_back(t->Read());
  seen.push_back(co_await ReadAfterHops(t, pool, 2));  // inherits ours
  co_return seen;
}

TEST_P(CoroTest, WithValuesGivesASubTaskValuesAcrossItsAwaits) {
  HopPool pool(2);
  std::vector<std::string> seen;
  mgr_.SetValues({{key_, std::string("parent")}}, [&] {
    seen = SyncWait(Parent(this, &pool, &mgr_, key_));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"parent", "sub", "parent", "parent",
                                            "parent"}));
}

// Two coroutines interleaved on one thread: one runs a sub-task with values
// that the other never sees.
Task<int> Observer(CoroTest* t, HopPool* pool, int rounds) {
  int wrong = 0;
  for (int i = 0; i < rounds; ++i) {
    co_await pool->Hop();
    if (t->Read() != "observer") ++wrong;
  }
  co_return wrong;
}

Task<int> SubWithSecret(CoroTest* t, HopPool* pool, int rounds) {
  int wrong = 0;
  for (int i = 0; i < rounds; ++i) {
    co_await pool->Hop();
    if (t->Read() != "secret") ++wrong;
  }
  co_return wrong;
}

Task<int> Setter(CoroTest* t, HopPool* pool, ContextManager* mgr, ContextKey key,
                 int rounds) {
  const Values secret = {{key, std::string("secret")}};
  co_return co_await WithValues(*mgr, secret, SubWithSecret(t, pool, rounds));
}

TEST_P(CoroTest, NoOtherCoroutineOnTheThreadSeesASubTasksValues) {
  HopPool pool(1);  // one thread: the two coroutines interleave on it
  int observer_wrong = -1, setter_wrong = -1;
  std::thread observer([&] {
    mgr_.SetValues({{key_, std::string("observer")}},
                   [&] { observer_wrong = SyncWait(Observer(this, &pool, 200)); });
  });
  std::thread setter([&] {
    mgr_.SetValues({{key_, std::string("setter")}}, [&] {
      setter_wrong = SyncWait(Setter(this, &pool, &mgr_, key_, 200));
    });
  });
  observer.join();
  setter.join();
  EXPECT_EQ(observer_wrong, 0);
  EXPECT_EQ(setter_wrong, 0);
}

Task<int> Leaf(int i) { co_return i; }

Task<long> ManySynchronousChildren(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await Leaf(i);
  co_return sum;
}

TEST_P(CoroTest, AwaitingTasksThatFinishSynchronouslyDoesNotGrowTheStack) {
  constexpr int kChildren = 200000;  // would overflow 8 MiB if frames nested
  long sum = 0;
  mgr_.SetValues({{key_, std::string("s")}},
                 [&] { sum = SyncWait(ManySynchronousChildren(kChildren)); });
  EXPECT_EQ(sum, static_cast<long>(kChildren) * (kChildren - 1) / 2);
}

Task<void> Throws(CoroTest* t, HopPool* pool) {
  co_await pool->Hop();
  if (t->Read() == "thrower") throw std::runtime_error("failed in coroutine");
}

Task<std::string> CatchesChild(CoroTest* t, HopPool* pool) {
  try {
    co_await Throws(t, pool);
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) + " / " + t->Read();
  }
  co_return "no exception";
}

TEST_P(CoroTest, ExceptionsReachTheAwaiterWhichKeepsItsValues) {
  HopPool pool(2);
  std::string got;
  mgr_.SetValues({{key_, std::string("thrower")}},
                 [&] { got = SyncWait(CatchesChild(this, &pool)); });
  EXPECT_EQ(got, "failed in coroutine / thrower");
  mgr_.SetValues({{key_, std::string("thrower")}}, [&] {
    EXPECT_THROW(SyncWait(Throws(this, &pool)), std::runtime_error);
    EXPECT_EQ(Read(), "thrower");
  });
}

// An awaitable that keeps the handle and never resumes it.
struct Never {
  std::coroutine_handle<>* parked;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { *parked = h; }
  void await_resume() const noexcept {}
};

// An awaitable that decides in await_suspend not to suspend.
struct NotReallySuspending {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) const noexcept { return false; }
  int await_resume() const noexcept { return 7; }
};

Task<int> ParksForever(std::coroutine_handle<>* parked) {
  co_await Never{parked};
  co_return 1;
}

TEST_P(CoroTest, DestroyingUnstartedOrSuspendedTasksReleasesTheirValues) {
  auto payload = std::make_shared<int>(1);
  const ContextKey payload_key = GenSym();
  {
    std::optional<Task<int>> unstarted;
    mgr_.SetValues({{payload_key, payload}}, [&] { unstarted.emplace(Leaf(1)); });
    EXPECT_GT(payload.use_count(), 1);
  }
  EXPECT_EQ(payload.use_count(), 1);

  // Suspended on an awaitable that never resumes it: destroying the task
  // frees its frame, its values and its pending resumption frame (ASan's
  // leak check sees the last).
  std::coroutine_handle<> parked;
  {
    std::optional<Task<int>> suspended;
    mgr_.SetValues({{payload_key, payload}},
                   [&] { suspended.emplace(ParksForever(&parked)); });
    coro_internal::TestPeer::Start(*suspended);
    EXPECT_TRUE(parked);  // it did suspend there
    EXPECT_EQ(mgr_.GetValue(payload_key), nullptr);  // nothing left installed
  }
  EXPECT_EQ(payload.use_count(), 1);
}

Task<int> AwaitsNotReallySuspending(CoroTest* t) {
  int v = co_await NotReallySuspending{};
  co_return t->Read() == "x" ? v : -1;
}

TEST_P(CoroTest, AwaitableThatDeclinesToSuspendContinuesInTheTasksValues) {
  int got = 0;
  mgr_.SetValues({{key_, std::string("x")}},
                 [&] { got = SyncWait(AwaitsNotReallySuspending(this)); });
  EXPECT_EQ(got, 7);
}

// The unsafe cell of docs/propagation.md, shown: a coroutine type that knows
// nothing of gls runs on its resumer's stack and sees the resumer's values.
struct PlainCoroutine {
  struct promise_type {
    PlainCoroutine get_return_object() {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

PlainCoroutine ReadsAfterSuspending(CoroTest* t, std::string* seen) {
  co_await std::suspend_always{};
  *seen = t->Read();
}

TEST_P(CoroTest, CoroutinesThatAreNotGlsTasksSeeTheirResumersValues) {
  std::string seen;
  PlainCoroutine plain;
  mgr_.SetValues({{key_, std::string("creator")}},
                 [&] { plain = ReadsAfterSuspending(this, &seen); });
  plain.handle.resume();  // runs to the co_await
  mgr_.SetValues({{key_, std::string("resumer")}}, [&] { plain.handle.resume(); });
  plain.handle.destroy();
  EXPECT_EQ(seen, "resumer");
}

}  // namespace
}  // namespace gls
