// gls::Spawn (gls/coro.h) under every strategy: tasks started without
// waiting, from many request scopes at once on a pool, each see exactly their
// own values after every resumption and the pool threads see none between
// tasks; exceptions reach the error handler in the task's values (or stderr);
// destroying a task suspended for good, queued, or dropped unrun by its
// executor frees its frame, values and pending resumption frame.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/coro.h"
#include "gls/coro_testing.h"
#include "gls/executor.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using ::gls::testing::HopPool;
using ::gls::testing::ManualQueue;
using ::gls::testing::WaitUntil;

class SpawnTest : public ::testing::TestWithParam<const Strategy*> {
 public:
  // The string set for `key` here, "none", or "not a string".
  std::string Read(ContextKey key) const {
    const Value* v = mgr_.GetValue(key);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }
  // Both keys, as "id|sub".
  std::string Both() const { return Read(id_) + "|" + Read(sub_); }

  SpawnTest() : mgr_(*GetParam()) {}
  ContextManager mgr_;
  const ContextKey id_ = GenSym();
  const ContextKey sub_ = GenSym();
  const ContextKey payload_key_ = GenSym();
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, SpawnTest,
                         ::testing::Values(&ThreadLocalStrategy(),
                                           &GoidStrategy(),
                                           &StackTagStrategy()),
                         StrategyName);

// Runs the start at once, inside Spawn.
constexpr auto kRunHere = [](auto start) { start(); };

// Counts its destructions: a local of a task, to see its frame destroyed.
struct Sentinel {
  std::atomic<int>* destroyed;
  ~Sentinel() { destroyed->fetch_add(1); }
};

// --- Many requests, many threads -----------------------------------------

Task<std::string> SubRequest(SpawnTest* t, HopPool* pool, std::string id,
                             int hops, std::atomic<int>* wrong) {
  for (int i = 0; i < hops; ++i) {
    co_await pool->Hop();
    if (t->Both() != id + "|" + id + "/sub") ++*wrong;
  }
  co_return t->Read(t->sub_);
}

Task<std::string> InheritingChild(SpawnTest* t, HopPool* pool) {
  co_await pool->Hop();
  co_return t->Both();
}

// A request's coroutine: hops `hops` times, runs a sub-task with its own
// values (WithValues) and a child that inherits, and checks after every
// resumption that it sees exactly its own values.
Task<void> Request(SpawnTest* t, HopPool* pool, std::string id, int hops,
                   std::atomic<int>* wrong, std::atomic<int>* finished) {
  const std::string mine = id + "|none";
  if (t->Both() != mine) ++*wrong;
  for (int i = 0; i < hops; ++i) {
    co_await pool->Hop();
    if (t->Both() != mine) ++*wrong;
  }
  const Values sub = {{t->sub_, id + "/sub"}};
  const std::string got =
      co_await WithValues(t->mgr_, sub, SubRequest(t, pool, id, hops, wrong));
  if (got != id + "/sub") ++*wrong;
  if (t->Both() != mine) ++*wrong;
  if (co_await InheritingChild(t, pool) != mine) ++*wrong;
  if (t->Both() != mine) ++*wrong;
  finished->fetch_add(1);
}

TEST_P(SpawnTest, SpawnedTasksFromManyRequestsSeeOnlyTheirOwnValues) {
  constexpr int kSpawners = 8;
  constexpr int kPerSpawner = 25;  // 200 tasks
  constexpr int kHops = 5;
  const int64_t frames_before = internal::LiveFrames();
  std::atomic<int> wrong{0}, finished{0}, leaked{0}, checks_between{0};
  {
    // After every function a pool thread runs (a start, a resumption, plain
    // work), it must see no values at all.
    HopPool pool(4, [&] {
      checks_between.fetch_add(1);
      if (Both() != "none|none") leaked.fetch_add(1);
    });
    auto on_pool = [&pool](auto start) { pool.Post(std::move(start)); };
    std::vector<std::vector<SpawnedTask>> kept(kSpawners);
    std::vector<std::thread> spawners;
    for (int i = 0; i < kSpawners; ++i) {
      spawners.emplace_back([&, i] {
        for (int j = 0; j < kPerSpawner; ++j) {
          const std::string id = "r" + std::to_string(i) + "-" + std::to_string(j);
          mgr_.SetValues({{id_, id}}, [&] {
            SpawnedTask spawned =
                Spawn(on_pool, Request(this, &pool, id, kHops, &wrong, &finished));
            // Half kept (to ask done()), half let go at once (detached).
            if (j % 2 == 0) kept[i].push_back(std::move(spawned));
            if (Read(id_) != id) wrong.fetch_add(1);  // Spawn changed nothing here
          });
          pool.Post([] {});  // plain work in between
        }
      });
    }
    for (auto& s : spawners) s.join();
    EXPECT_TRUE(WaitUntil([&] { return finished.load() == kSpawners * kPerSpawner; }))
        << finished.load();
    EXPECT_TRUE(WaitUntil([&] {
      for (auto& v : kept) {
        for (auto& s : v) {
          if (!s.done()) return false;
        }
      }
      return true;
    }));
  }  // the pool's threads are joined: every task has ended
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(leaked.load(), 0);
  EXPECT_GT(checks_between.load(), kSpawners * kPerSpawner * (2 * kHops + 2));
  if (frames_before >= 0) {  // counted in debug builds only
    EXPECT_EQ(internal::LiveFrames(), frames_before);
  }
}

// --- Values: at creation, not at Spawn -------------------------------------

Task<std::string> ReadsNow(SpawnTest* t) { co_return t->Both(); }

TEST_P(SpawnTest, SpawnedTaskRunsInItsCreationValuesNotTheSpawners) {
  std::string seen;
  auto record = [&](SpawnTest* t) -> Task<void> {
    seen = co_await ReadsNow(t);
  };
  Task<void> task = mgr_.SetValues({{id_, std::string("creator")}},
                                   [&] { return record(this); });
  const Values sub = {{sub_, std::string("given")}};
  task = WithValues(mgr_, sub, std::move(task));
  mgr_.SetValues({{id_, std::string("spawner")}}, [&] {
    SpawnedTask spawned = Spawn(kRunHere, std::move(task));
    EXPECT_TRUE(spawned.done());  // it ran inside Spawn and ended there
    EXPECT_EQ(Read(id_), "spawner");
  });
  EXPECT_EQ(seen, "creator|given");
  EXPECT_EQ(Both(), "none|none");
}

// --- Finished before Spawn returns ----------------------------------------

Task<int> HoldsPayloadAndReads(SpawnTest* t, std::string* seen) {
  *seen = t->Both();
  co_return 5;  // discarded
}

TEST_P(SpawnTest, TaskThatEndsBeforeSpawnReturnsIsAlreadyFreed) {
  const int64_t frames_before = internal::LiveFrames();
  auto payload = std::make_shared<int>(1);
  std::string seen;
  mgr_.SetValues({{payload_key_, payload}, {id_, std::string("quick")}}, [&] {
    const long in_scope = payload.use_count();
    SpawnedTask spawned = Spawn(kRunHere, HoldsPayloadAndReads(this, &seen));
    EXPECT_TRUE(spawned.done());
    // The task's frame and values are gone: only the scope's references.
    EXPECT_EQ(payload.use_count(), in_scope);
  });
  EXPECT_EQ(seen, "quick|none");
  EXPECT_EQ(payload.use_count(), 1);
  if (frames_before >= 0) {
    EXPECT_EQ(internal::LiveFrames(), frames_before);
  }
}

// --- Executors of every accepted form ---------------------------------------

struct ExecuteExecutor {
  HopPool* pool;
  void execute(std::function<void()> fn) const { pool->Post(std::move(fn)); }
};
struct PostExecutor {
  HopPool* pool;
  void post(std::function<void()> fn) { pool->Post(std::move(fn)); }
};

Task<void> HopsAndRecords(SpawnTest* t, HopPool* pool, std::string* seen) {
  co_await pool->Hop();
  *seen = t->Both();
}

TEST_P(SpawnTest, SpawnTakesCallableExecutePostPointerAndReferenceExecutors) {
  HopPool pool(2);
  ExecuteExecutor execute{&pool};
  PostExecutor post{&pool};
  std::function<void(std::function<void()>)> function_scheduler =
      [&pool](std::function<void()> fn) { pool.Post(std::move(fn)); };
  std::vector<std::string> seen(7);
  std::vector<SpawnedTask> spawned;
  auto spawn = [&](int i, auto&& executor) {
    mgr_.SetValues({{id_, "ex" + std::to_string(i)}}, [&] {
      spawned.push_back(Spawn(executor, HopsAndRecords(this, &pool, &seen[i])));
    });
  };
  spawn(0, [&pool](auto start) { pool.Post(std::move(start)); });
  spawn(1, function_scheduler);
  spawn(2, execute);
  spawn(3, post);
  spawn(4, &post);
  spawn(5, std::ref(post));
  spawn(6, gls::Propagating(&post));  // binds the start too: harmless
  EXPECT_TRUE(WaitUntil([&] {
    for (auto& s : spawned) {
      if (!s.done()) return false;
    }
    return true;
  }));
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(seen[i], "ex" + std::to_string(i) + "|none") << i;
  }
}

// --- Exceptions --------------------------------------------------------------

Task<int> ThrowsAfterHop(SpawnTest* t, HopPool* pool) {
  co_await pool->Hop();
  throw std::runtime_error("after hop in " + t->Read(t->id_));
  co_return 0;
}
Task<void> ThrowsAtOnce(SpawnTest* t) {
  throw std::runtime_error("at once in " + t->Read(t->id_));
  co_return;
}
Task<void> ThrowsAnInt(HopPool* pool) {
  co_await pool->Hop();
  throw 42;
}

TEST_P(SpawnTest, ExceptionsLeavingSpawnedTasksGoToTheErrorHandlerInTheirValues) {
  HopPool pool(2);
  std::mutex mu;
  std::vector<std::string> reports;  // "what @ values seen by the handler"
  auto on_error = [&](std::exception_ptr error) {
    std::string what;
    try {
      std::rethrow_exception(error);
    } catch (const std::runtime_error& e) {
      what = e.what();
    } catch (int i) {
      what = "int " + std::to_string(i);
    }
    std::lock_guard<std::mutex> lock(mu);
    reports.push_back(what + " @ " + Both());
  };
  auto on_pool = [&pool](auto start) { pool.Post(std::move(start)); };
  std::vector<SpawnedTask> spawned;
  mgr_.SetValues({{id_, std::string("e1")}}, [&] {
    spawned.push_back(Spawn(on_pool, ThrowsAfterHop(this, &pool), on_error));
  });
  mgr_.SetValues({{id_, std::string("e2")}}, [&] {
    spawned.push_back(Spawn(on_pool, ThrowsAtOnce(this), on_error));
  });
  mgr_.SetValues({{id_, std::string("e3")}}, [&] {
    spawned.push_back(Spawn(on_pool, ThrowsAnInt(&pool), on_error));
  });
  // Thrown on the flow running Spawn (the start runs inside it).
  mgr_.SetValues({{id_, std::string("e4")}}, [&] {
    spawned.push_back(Spawn(kRunHere, ThrowsAtOnce(this), on_error));
    // Reported before Spawn returned (the pool's tasks may report around it).
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_NE(std::find(reports.begin(), reports.end(), "at once in e4 @ e4|none"),
              reports.end());
  });
  EXPECT_TRUE(WaitUntil([&] {
    for (auto& s : spawned) {
      if (!s.done()) return false;
    }
    return true;
  }));
  std::sort(reports.begin(), reports.end());
  EXPECT_EQ(reports, (std::vector<std::string>{
                         "after hop in e1 @ e1|none", "at once in e2 @ e2|none",
                         "at once in e4 @ e4|none", "int 42 @ e3|none"}));
}

TEST_P(SpawnTest, DefaultErrorHandlerWritesOneLineToStderr) {
  HopPool pool(1);
  ::testing::internal::CaptureStderr();
  mgr_.SetValues({{id_, std::string("boom")}}, [&] {
    SpawnedTask a = Spawn(kRunHere, ThrowsAtOnce(this));
    EXPECT_TRUE(a.done());
    SpawnedTask b = Spawn(kRunHere, ThrowsAnInt(&pool));
    EXPECT_TRUE(WaitUntil([&] { return b.done(); }));
  });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "gls::Spawn: a spawned gls::Task ended with an exception: "
            "std::runtime_error: at once in boom\n"
            "gls::Spawn: a spawned gls::Task ended with an exception: int\n");
}

TEST_P(SpawnTest, ErrorHandlerThatThrowsIsReportedToStderr) {
  ::testing::internal::CaptureStderr();
  mgr_.SetValues({{id_, std::string("h")}}, [&] {
    SpawnedTask spawned = Spawn(kRunHere, ThrowsAtOnce(this), [](std::exception_ptr) {
      throw std::logic_error("handler broke");
    });
    EXPECT_TRUE(spawned.done());
  });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "gls::Spawn: the error handler of a spawned gls::Task threw "
            "std::logic_error: handler broke while handling std::runtime_error: "
            "at once in h\n");
}

// --- Destroying -------------------------------------------------------------

// Keeps the handle and never resumes it; says when it has it.
struct Never {
  std::atomic<bool>* parked;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {
    parked->store(true);
  }
  void await_resume() const noexcept {}
};

Task<int> ParksInChild(SpawnTest* t, HopPool* pool, std::atomic<bool>* parked,
                       std::atomic<int>* destroyed, std::atomic<int>* wrong) {
  Sentinel sentinel{destroyed};
  co_await pool->Hop();
  if (t->Both() != "d|child") ++*wrong;
  co_await Never{parked};
  co_return 1;
}

Task<void> ParksInANestedTask(SpawnTest* t, HopPool* pool,
                              std::atomic<bool>* parked,
                              std::atomic<int>* destroyed,
                              std::atomic<int>* wrong) {
  Sentinel sentinel{destroyed};
  co_await pool->Hop();
  if (t->Both() != "d|none") ++*wrong;
  const Values child = {{t->sub_, std::string("child")}};
  co_await WithValues(t->mgr_, child,
                      ParksInChild(t, pool, parked, destroyed, wrong));
  ++*wrong;  // never gets here
}

TEST_P(SpawnTest, DestroyingASpawnedTaskSuspendedForGoodFreesEverything) {
  HopPool pool(2);
  auto on_pool = [&pool](auto start) { pool.Post(std::move(start)); };
  const int64_t frames_before = internal::LiveFrames();
  auto payload = std::make_shared<int>(1);
  std::atomic<bool> parked{false};
  std::atomic<int> destroyed{0}, wrong{0};
  SpawnedTask spawned;
  mgr_.SetValues({{payload_key_, payload}, {id_, std::string("d")}}, [&] {
    spawned = Spawn(on_pool,
                    ParksInANestedTask(this, &pool, &parked, &destroyed, &wrong));
  });
  ASSERT_TRUE(WaitUntil([&] { return parked.load(); }));
  EXPECT_FALSE(spawned.done());
  EXPECT_GT(payload.use_count(), 1);
  EXPECT_EQ(destroyed.load(), 0);
  spawned.Destroy();
  // Both tasks' frames are destroyed: here, or (if the start on the pool
  // was still returning when the child parked) by the start as it returns.
  EXPECT_TRUE(WaitUntil([&] { return destroyed.load() == 2; }));
  EXPECT_TRUE(spawned.done());
  // The last copy of the values may be in the resumption frame that resumed
  // the child before it parked, still returning on its pool thread.
  EXPECT_TRUE(WaitUntil([&] { return payload.use_count() == 1; }))
      << payload.use_count();
  if (frames_before >= 0) {
    EXPECT_TRUE(WaitUntil([&] { return internal::LiveFrames() == frames_before; }))
        << internal::LiveFrames() << " vs " << frames_before;
  }
  EXPECT_EQ(wrong.load(), 0);
}

// Parks, then blocks in await_suspend (on the start's flow) until released.
struct ParkAndHold {
  std::atomic<bool>* parked;
  std::atomic<bool>* release;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {
    parked->store(true);
    while (!release->load()) std::this_thread::yield();
  }
  void await_resume() const noexcept {}
};

Task<void> ParksDuringItsStart(std::atomic<bool>* parked, std::atomic<bool>* release,
                               std::atomic<int>* destroyed) {
  Sentinel sentinel{destroyed};
  co_await ParkAndHold{parked, release};
}

TEST_P(SpawnTest, DestroyWhileTheStartIsStillReturningIsCarriedOutByTheStart) {
  HopPool pool(1);
  auto on_pool = [&pool](auto start) { pool.Post(std::move(start)); };
  const int64_t frames_before = internal::LiveFrames();
  auto payload = std::make_shared<int>(1);
  std::atomic<bool> parked{false}, release{false};
  std::atomic<int> destroyed{0};
  SpawnedTask spawned;
  mgr_.SetValues({{payload_key_, payload}}, [&] {
    spawned = Spawn(on_pool, ParksDuringItsStart(&parked, &release, &destroyed));
  });
  ASSERT_TRUE(WaitUntil([&] { return parked.load(); }));
  // The start is still inside the task's first resumption, on the pool
  // thread, with the task's values installed: Destroy leaves it to the start.
  spawned.Destroy();
  EXPECT_EQ(destroyed.load(), 0);
  EXPECT_GT(payload.use_count(), 1);
  release.store(true);
  EXPECT_TRUE(WaitUntil([&] { return destroyed.load() == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return payload.use_count() == 1; }))
      << payload.use_count();
  if (frames_before >= 0) {
    EXPECT_TRUE(WaitUntil([&] { return internal::LiveFrames() == frames_before; }));
  }
}

Task<void> SetsFlag(bool* ran) {
  *ran = true;
  co_return;
}

TEST_P(SpawnTest, DestroyBeforeTheStartRunsMeansItNeverRuns) {
  ManualQueue queue;
  auto payload = std::make_shared<int>(1);
  bool ran = false;
  SpawnedTask spawned;
  mgr_.SetValues({{payload_key_, payload}},
                 [&] { spawned = Spawn(&queue, SetsFlag(&ran)); });
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_FALSE(spawned.done());
  EXPECT_EQ(payload.use_count(), 2);  // the task's values
  spawned.Destroy();
  EXPECT_EQ(payload.use_count(), 1);  // freed at once
  queue.RunAll();                     // the start finds it destroyed
  EXPECT_FALSE(ran);
}

TEST_P(SpawnTest, AStartTheExecutorDropsUnrunReleasesTheTask) {
  ManualQueue queue;
  auto payload = std::make_shared<int>(1);
  bool ran = false;
  mgr_.SetValues({{payload_key_, payload}},
                 [&] { Spawn(&queue, SetsFlag(&ran)); });  // handle let go
  EXPECT_EQ(payload.use_count(), 2);
  queue.Drop();
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_FALSE(ran);

  // With the handle kept: destroyed unstarted once both are gone.
  SpawnedTask kept;
  mgr_.SetValues({{payload_key_, payload}},
                 [&] { kept = Spawn(&queue, SetsFlag(&ran)); });
  queue.Drop();
  EXPECT_FALSE(kept.done());  // it never ran
  EXPECT_EQ(payload.use_count(), 2);
  kept = SpawnedTask();
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_FALSE(ran);
}

// A queue that copies each start (std::function copies), then runs both
// copies: the task runs once.
TEST_P(SpawnTest, CopiesOfTheStartLaunchTheTaskOnce) {
  std::vector<std::function<void()>> queue;
  int runs = 0;
  auto count = [&]() -> Task<void> {
    ++runs;
    co_return;
  };
  SpawnedTask spawned = Spawn(
      [&](std::function<void()> start) {
        queue.push_back(start);
        queue.push_back(start);
      },
      count());
  for (auto& fn : queue) fn();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(spawned.done());
}

TEST_P(SpawnTest, ASubmissionThatThrowsDestroysTheTaskAndRethrows) {
  auto payload = std::make_shared<int>(1);
  bool ran = false;
  mgr_.SetValues({{payload_key_, payload}}, [&] {
    EXPECT_THROW(Spawn([](auto) { throw std::runtime_error("queue full"); },
                       SetsFlag(&ran)),
                 std::runtime_error);
  });
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace gls
