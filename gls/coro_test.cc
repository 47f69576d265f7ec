// gls::Task (gls/coro.h) under every strategy: a coroutine sees the values it
// was created with after every resumption, on any thread; WithValues gives a
// sub-task values no other coroutine on the thread sees, also on a task made
// by a factory whose scope has ended (issue 18, bug 3); awaiting tasks that
// finish synchronously does not grow the stack; destroying suspended or
// unstarted tasks leaks nothing; bad tasks give clear errors. gls::Spawn has
// its own tests (coro_spawn_test.cc).
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
#include "gls/coro_testing.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using ::gls::testing::HopPool;

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

// Bug 3 (issue 18): WithValues on a task made by a factory, after the
// factory's scope ended. WithValues used to replace the task's snapshot
// while running in it, freeing the frames it had installed (ASan:
// heap-use-after-free in Frame::EndScope; default build: a hang).

// Reads key_ and `other` after every one of `hops` hops; returns what it saw
// each time, as "key_/other", all of them the same if nothing went wrong.
Task<std::vector<std::string>> ReadBothAfterHops(CoroTest* t, HopPool* pool,
                                                 ContextManager* other_mgr,
                                                 ContextKey other, int hops) {
  auto both = [&] {
    const Value* v = other_mgr->GetValue(other);
    const std::string* s = v == nullptr ? nullptr : v->TryAs<std::string>();
    return t->Read() + "/" + (v == nullptr ? "none" : s == nullptr ? "?" : *s);
  };
  std::vector<std::string> seen = {both()};
  for (int i = 0; i < hops; ++i) {
    co_await pool->Hop();
    seen.push_back(both());
  }
  co_return seen;
}

// `n` copies of `what`: what a task that saw the same values after each of
// its n - 1 hops returns.
std::vector<std::string> Same(int n, const std::string& what) {
  return std::vector<std::string>(n, what);
}

TEST_P(CoroTest, WithValuesOnATaskMadeInAScopeThatHasEnded) {
  HopPool pool(2);
  const ContextKey sub_key = GenSym();
  for (int round = 0; round < 20; ++round) {
    Task<std::vector<std::string>> task =
        mgr_.SetValues({{key_, std::string("factory")}}, [&] {
          return ReadBothAfterHops(this, &pool, &mgr_, sub_key, 3);
        });
    const Values sub = {{sub_key, std::string("sub")}};
    task = WithValues(mgr_, sub, std::move(task));
    EXPECT_EQ(Read(), "none");  // WithValues left nothing installed here
    EXPECT_EQ(SyncWait(std::move(task)), Same(4, "factory/sub"));
    EXPECT_EQ(Read(), "none");
  }
}

TEST_P(CoroTest, WithValuesTwiceAddsBothOverTheCreatorsValues) {
  HopPool pool(2);
  const ContextKey sub_key = GenSym();
  Task<std::vector<std::string>> task =
      mgr_.SetValues({{key_, std::string("factory")}, {sub_key, std::string("f")}},
                     [&] { return ReadBothAfterHops(this, &pool, &mgr_, sub_key, 3); });
  const Values first = {{key_, std::string("first")}, {sub_key, std::string("one")}};
  const Values second = {{key_, std::string("second")}};
  task = WithValues(mgr_, first, std::move(task));
  task = WithValues(mgr_, second, std::move(task));
  EXPECT_EQ(SyncWait(std::move(task)), Same(4, "second/one"));
  EXPECT_EQ(Read(), "none");
}

TEST_P(CoroTest, WithValuesOnATaskMadeOutsideEveryScope) {
  HopPool pool(2);
  const ContextKey sub_key = GenSym();
  Task<std::vector<std::string>> task =
      ReadBothAfterHops(this, &pool, &mgr_, sub_key, 3);
  const Values sub = {{sub_key, std::string("sub")}};
  task = WithValues(mgr_, sub, std::move(task));
  EXPECT_EQ(SyncWait(std::move(task)), Same(4, "none/sub"));

  // And called inside another scope, which the task does not see.
  Task<std::vector<std::string>> again =
      ReadBothAfterHops(this, &pool, &mgr_, sub_key, 3);
  mgr_.SetValues({{key_, std::string("caller")}},
                 [&] { again = WithValues(mgr_, sub, std::move(again)); });
  EXPECT_EQ(SyncWait(std::move(again)), Same(4, "none/sub"));
}

TEST_P(CoroTest, WithValuesAfterAManagerOfTheTaskWasUnregistered) {
  HopPool pool(2);
  ContextManager gone(*GetParam());
  const ContextKey gone_key = GenSym();
  Task<std::vector<std::string>> task = gone.SetValues(
      {{gone_key, std::string("gone")}}, [&] {
        return mgr_.SetValues({{key_, std::string("factory")}}, [&] {
          return ReadBothAfterHops(this, &pool, &gone, gone_key, 3);
        });
      });
  gone.Unregister();  // its values are no longer carried anywhere
  const ContextKey sub_key = GenSym();
  const Values sub = {{sub_key, std::string("sub")}};
  task = WithValues(mgr_, sub, std::move(task));
  EXPECT_EQ(SyncWait(std::move(task)), Same(4, "factory/none"));

  // WithValues for the unregistered manager itself: not carried either.
  Task<std::vector<std::string>> other = mgr_.SetValues(
      {{key_, std::string("factory")}},
      [&] { return ReadBothAfterHops(this, &pool, &gone, gone_key, 3); });
  const Values gone_values = {{gone_key, std::string("sub")}};
  other = WithValues(gone, gone_values, std::move(other));
  EXPECT_EQ(SyncWait(std::move(other)), Same(4, "factory/none"));
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
  const int64_t frames_before = internal::LiveFrames();
  {
    std::optional<Task<int>> unstarted;
    mgr_.SetValues({{payload_key, payload}}, [&] { unstarted.emplace(Leaf(1)); });
    EXPECT_GT(payload.use_count(), 1);
  }
  EXPECT_EQ(payload.use_count(), 1);

  // Suspended on an awaitable that never resumes it: destroying the task
  // frees its frame, its values and its pending resumption frame (which
  // holds a copy of the values, so the count shows it; ASan's leak check
  // sees it too).
  std::coroutine_handle<> parked;
  {
    auto run_here = [](auto start) { start(); };
    SpawnedTask suspended;
    mgr_.SetValues({{payload_key, payload}}, [&] {
      suspended = Spawn(run_here, ParksForever(&parked));
    });
    EXPECT_TRUE(parked);  // it did suspend there
    EXPECT_FALSE(suspended.done());
    EXPECT_EQ(mgr_.GetValue(payload_key), nullptr);  // nothing left installed
    EXPECT_GT(payload.use_count(), 1);
    suspended.Destroy();
    EXPECT_TRUE(suspended.done());
  }
  EXPECT_EQ(payload.use_count(), 1);
  if (frames_before >= 0) {  // counted in debug builds only
    EXPECT_EQ(internal::LiveFrames(), frames_before);
  }
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

// Bad tasks: empty (moved from) or already started, given to co_await,
// SyncWait, WithValues or Spawn: a std::invalid_argument naming the call.
std::string ErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no std::invalid_argument";
}

Task<std::string> AwaitsTwiceThenGivesValues(ContextManager* mgr, ContextKey key) {
  Task<int> child = Leaf(3);
  co_await child;  // started (and finished) here
  std::string errors;
  try {
    co_await child;
  } catch (const std::invalid_argument& e) {
    errors += e.what();
  }
  errors += " | ";
  try {
    const Values values = {{key, 1}};
    child = WithValues(*mgr, values, std::move(child));
  } catch (const std::invalid_argument& e) {
    errors += e.what();
  }
  errors += " | ";
  try {
    Task<int> moved = std::move(child);
    co_await child;
  } catch (const std::invalid_argument& e) {
    errors += e.what();
  }
  co_return errors;
}

TEST_P(CoroTest, BadTasksGiveAClearError) {
  const std::string kEmpty = "the gls::Task is empty (moved from, or already handed on)";
  const std::string kStarted =
      "the gls::Task has already started (a task is started once: by "
      "co_await, SyncWait or Spawn)";
  auto empty = [] {
    Task<int> t = Leaf(1);
    Task<int> taken = std::move(t);
    return t;
  };
  EXPECT_EQ(ErrorOf([&] { SyncWait(empty()); }), "gls::SyncWait: " + kEmpty);
  const Values values = {{key_, std::string("v")}};
  EXPECT_EQ(ErrorOf([&] { (void)WithValues(mgr_, values, empty()); }),
            "gls::WithValues: " + kEmpty);
  auto run_here = [](auto start) { start(); };
  EXPECT_EQ(ErrorOf([&] { Spawn(run_here, empty()); }), "gls::Spawn: " + kEmpty);
  void (*null_handler)(std::exception_ptr) = nullptr;
  EXPECT_EQ(ErrorOf([&] { Spawn(run_here, Leaf(1), null_handler); }),
            "gls::Spawn (the error handler): the function to call is empty (null)");
  EXPECT_EQ(SyncWait(AwaitsTwiceThenGivesValues(&mgr_, key_)),
            "co_await gls::Task: " + kStarted + " | gls::WithValues: " + kStarted +
                " | co_await gls::Task: " + kEmpty);
}

}  // namespace
}  // namespace gls
