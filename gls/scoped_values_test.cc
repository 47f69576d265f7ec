// gls::ScopedValues and gls::ScopedSnapshot (gls/scoped_values.h): scopes
// without a callback, under every strategy that can attach (thread_local,
// goid); refused with a clear error under stack_tag; out-of-order ends
// reported and defined; ends in another flow, and guards open across a
// gls::Task's suspension, abort with a message; many threads, each only its
// own values.
#include "gls/scoped_values.h"

#include <atomic>
#include <coroutine>
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

class ScopedValuesTest : public ::testing::TestWithParam<const Strategy*> {
 protected:
  ScopedValuesTest() : mgr_(*GetParam()) {}

  std::string Read(const ContextKey& key) const {
    const Value* v = mgr_.GetValue(key);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }
  std::string A() const { return Read(a_); }
  std::string B() const { return Read(b_); }
  bool HasContext() const { return GetParam()->GetGoroutineId().has_value(); }

  ContextManager mgr_;
  const ContextKey a_ = GenSym();
  const ContextKey b_ = GenSym();
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, ScopedValuesTest,
                         ::testing::Values(&ThreadLocalStrategy(), &GoidStrategy()),
                         StrategyName);

TEST_P(ScopedValuesTest, GuardSetsValuesUntilItIsDestroyed) {
  ASSERT_FALSE(HasContext());
  {
    ScopedValues guard(mgr_, {{a_, std::string("a1")}});
    EXPECT_EQ(A(), "a1");
    EXPECT_TRUE(HasContext());
    const std::optional<uint64_t> id = GetParam()->GetGoroutineId();
    EXPECT_EQ(GetParam()->GetGoroutineId(), id);  // stable inside
  }
  EXPECT_EQ(A(), "none");
  EXPECT_FALSE(HasContext());  // the attached context went back
}

TEST_P(ScopedValuesTest, GuardsAndSetValuesScopesNestInAnyMix) {
  ScopedValues outer(mgr_, {{a_, std::string("outer")}});
  mgr_.SetValues({{b_, std::string("b")}}, [&] {
    EXPECT_EQ(A(), "outer");
    {
      ScopedValues inner(mgr_, {{a_, std::string("inner")}});
      EXPECT_EQ(A(), "inner");
      EXPECT_EQ(B(), "b");
      mgr_.SetValues({{a_, std::string("deepest")}}, [&] { EXPECT_EQ(A(), "deepest"); });
      EXPECT_EQ(A(), "inner");
    }
    EXPECT_EQ(A(), "outer");
    EXPECT_EQ(B(), "b");
  });
  EXPECT_EQ(A(), "outer");
  EXPECT_EQ(B(), "none");
}

TEST_P(ScopedValuesTest, EmptyValuesDoNothing) {
  {
    ScopedValues guard(mgr_, Values());
    EXPECT_FALSE(HasContext());
  }
  EXPECT_FALSE(HasContext());
}

TEST_P(ScopedValuesTest, DestroyedDuringUnwindingRestores) {
  mgr_.SetValues({{a_, std::string("before")}}, [&] {
    try {
      ScopedValues guard(mgr_, {{a_, std::string("inside")}});
      EXPECT_EQ(A(), "inside");
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(A(), "before");
  });
  EXPECT_FALSE(HasContext());
}

TEST_P(ScopedValuesTest, OutOfOrderEndIsReportedAndDefined) {
  std::optional<ScopedValues> outer;
  std::optional<ScopedValues> inner;
  outer.emplace(mgr_, Values{{a_, std::string("outer")}});
  inner.emplace(mgr_, Values{{b_, std::string("inner")}});
  ::testing::internal::CaptureStderr();
  outer.reset();  // before inner: out of order
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("gls: a gls::ScopedValues guard ended while a scope made "
                     "after it on the same flow is still open"),
            std::string::npos)
      << err;
  // The outer guard's values stay visible until the inner guard ends.
  EXPECT_EQ(A(), "outer");
  EXPECT_EQ(B(), "inner");
  inner.reset();
  // Then the values from before the outer guard (none) are back, and the
  // context the outer guard attached goes back to the pool.
  EXPECT_EQ(A(), "none");
  EXPECT_EQ(B(), "none");
  EXPECT_FALSE(HasContext());
}

TEST_P(ScopedValuesTest, OutOfOrderInsideASetValuesScopeRestoresItsValues) {
  mgr_.SetValues({{a_, std::string("scope")}}, [&] {
    std::optional<ScopedValues> outer(std::in_place, mgr_, Values{{a_, std::string("outer")}});
    std::optional<ScopedValues> inner(std::in_place, mgr_, Values{{b_, std::string("inner")}});
    ::testing::internal::CaptureStderr();
    outer.reset();
    EXPECT_NE(::testing::internal::GetCapturedStderr().find("still open"), std::string::npos);
    inner.reset();
    EXPECT_EQ(A(), "scope");
    EXPECT_EQ(B(), "none");
  });
  EXPECT_FALSE(HasContext());
}

TEST_P(ScopedValuesTest, ValuesCapturedInAGuardGoWithTheWork) {
  Snapshot captured;
  std::function<std::string()> bound;
  {
    ScopedValues guard(mgr_, {{a_, std::string("guarded")}});
    captured = Capture();
    bound = Bind([this] { return A(); });
  }
  std::string in_thread;
  std::thread([&] { in_thread = bound(); }).join();
  EXPECT_EQ(in_thread, "guarded");
  EXPECT_EQ(captured.Run([&] { return A(); }), "guarded");
  EXPECT_EQ(A(), "none");
}

// Many threads, each with its own guards (some nested in SetValues, some
// holding a ScopedSnapshot of another thread's capture): every read sees
// exactly the values of its own thread's innermost scope.
TEST_P(ScopedValuesTest, ManyThreadsEachSeeOnlyTheirOwnValues) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 300;
  std::atomic<int> wrong{0};
  std::vector<Snapshot> shared(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    mgr_.SetValues({{b_, "shared-" + std::to_string(t)}}, [&] { shared[t] = Capture(); });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string mine = "t" + std::to_string(t);
      for (int r = 0; r < kRounds; ++r) {
        const std::string round = mine + "-" + std::to_string(r);
        ScopedValues guard(mgr_, {{a_, round}});
        if (A() != round) ++wrong;
        mgr_.SetValues({{b_, mine}}, [&] {
          ScopedValues inner(mgr_, {{a_, round + "-inner"}});
          if (A() != round + "-inner" || B() != mine) ++wrong;
        });
        {
          const int other = (t + r) % kThreads;
          ScopedSnapshot installed(shared[other]);
          if (A() != "none" || B() != "shared-" + std::to_string(other)) ++wrong;
        }
        if (A() != round || B() != "none") ++wrong;
      }
      if (HasContext()) ++wrong;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_P(ScopedValuesTest, ScopedSnapshotShowsExactlyTheSnapshot) {
  Snapshot captured;
  mgr_.SetValues({{a_, std::string("captured")}}, [&] { captured = Capture(); });
  mgr_.SetValues({{a_, std::string("own")}, {b_, std::string("own-b")}}, [&] {
    {
      ScopedSnapshot installed(captured);
      EXPECT_EQ(A(), "captured");
      EXPECT_EQ(B(), "none");  // the snapshot had no b
      ScopedValues more(mgr_, {{b_, std::string("more")}});
      EXPECT_EQ(B(), "more");
    }
    EXPECT_EQ(A(), "own");
    EXPECT_EQ(B(), "own-b");
  });
  // On a flow with no context: attached, then released.
  {
    ScopedSnapshot installed(captured);
    EXPECT_EQ(A(), "captured");
  }
  EXPECT_FALSE(HasContext());
  // An empty snapshot hides the flow's values.
  mgr_.SetValues({{a_, std::string("own")}}, [&] {
    {
      ScopedSnapshot nothing{Snapshot()};
      EXPECT_EQ(A(), "none");
    }
    EXPECT_EQ(A(), "own");
  });
}

using ScopedValuesDeathTest = ScopedValuesTest;
INSTANTIATE_TEST_SUITE_P(Strategies, ScopedValuesDeathTest,
                         ::testing::Values(&ThreadLocalStrategy(), &GoidStrategy()),
                         StrategyName);

TEST_P(ScopedValuesDeathTest, DestroyedOnAnotherThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* guard = new ScopedValues(mgr_, {{a_, std::string("here")}});
        std::thread([guard] { delete guard; }).join();
      },
      "gls: a gls::ScopedValues guard was destroyed in another flow of execution");
}

TEST_P(ScopedValuesDeathTest, GuardOutlivingTheScopeItWasMadeInAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* kMessage =
      "gls: a SetValues, Snapshot::Run or gls::Bind scope ended while a "
      "gls::ScopedValues or gls::ScopedSnapshot guard made inside it was still open";
  EXPECT_DEATH(
      {
        std::optional<ScopedValues> guard;
        mgr_.SetValues({{a_, std::string("scope")}},
                       [&] { guard.emplace(mgr_, Values{{b_, std::string("guard")}}); });
      },
      kMessage);
  // A bound task on a thread that has values of its own (so the task's Run
  // installs into that thread's context): the guard would outlive the task.
  EXPECT_DEATH(
      {
        std::optional<ScopedSnapshot> guard;
        const Snapshot other = mgr_.SetValues({{b_, std::string("other")}},
                                              [] { return Capture(); });
        auto task = mgr_.SetValues({{a_, std::string("task")}}, [&] {
          return Bind([&] { guard.emplace(other); });
        });
        ScopedValues thread_values(mgr_, {{a_, std::string("thread")}});
        task();
      },
      kMessage);
  // A bound task on a thread with no values (the hop of a task to a pool
  // thread, which under the default thread_local strategy binds the
  // snapshot's shared view): the guard would outlive the task there.
  EXPECT_DEATH(
      {
        std::optional<ScopedValues> guard;
        auto task = mgr_.SetValues({{a_, std::string("task")}}, [&] {
          return Bind([&] { guard.emplace(mgr_, Values{{b_, std::string("guard")}}); });
        });
        std::thread([&] { task(); }).join();
      },
      kMessage);
}

// Suspends and stores the handle: nothing resumes the coroutine, so the
// check at the suspension is the only one that can fire (a pool would resume
// it on another thread, where the guard's end in another flow may abort
// first).
struct Park {
  std::coroutine_handle<>* parked;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *parked = h; }
  void await_resume() const noexcept {}
};

Task<int> SuspendsHoldingAGuard(ContextManager* mgr, ContextKey key,
                                std::coroutine_handle<>* parked) {
  ScopedValues guard(*mgr, {{key, std::string("held")}});
  co_await Park{parked};
  co_return 1;
}

TEST_P(ScopedValuesDeathTest, GuardOpenWhenATaskSuspendsAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::coroutine_handle<> parked;
        SyncWait(SuspendsHoldingAGuard(&mgr_, a_, &parked));
      },
      "gls: a gls::ScopedValues or gls::ScopedSnapshot guard was still open "
      "when a gls::Task suspended");
}

Task<std::string> GuardEndedBeforeTheAwait(ContextManager* mgr, ContextKey key,
                                           testing::HopPool* pool) {
  std::string seen;
  {
    ScopedValues guard(*mgr, {{key, std::string("briefly")}});
    const Value* v = mgr->GetValue(key);
    seen = v == nullptr ? "none" : *v->TryAs<std::string>();
  }
  co_await pool->Hop();
  const Value* after = mgr->GetValue(key);
  seen += after == nullptr ? "/none" : "/" + *after->TryAs<std::string>();
  co_return seen;
}

TEST_P(ScopedValuesTest, GuardEndedBeforeACoAwaitIsFine) {
  testing::HopPool pool(1);
  EXPECT_EQ(SyncWait(GuardEndedBeforeTheAwait(&mgr_, a_, &pool)), "briefly/none");
}

// Under stack_tag a guard cannot exist: a clear error, nothing changed.
TEST(ScopedValuesStackTagTest, RefusedWithAMessageThatSaysWhatToUse) {
  ContextManager mgr(StackTagStrategy());
  const ContextKey key = GenSym();
  auto message = [&](auto make) -> std::string {
    try {
      make();
    } catch (const std::logic_error& e) {
      return e.what();
    }
    return "no exception";
  };
  const std::string outside =
      message([&] { ScopedValues guard(mgr, {{key, std::string("x")}}); });
  EXPECT_EQ(outside.rfind("gls::ScopedValues: the stack_tag strategy cannot hold values "
                          "without a function to run them in",
                          0),
            0u)
      << outside;
  EXPECT_NE(outside.find("use ContextManager::SetValues(values, fn)"), std::string::npos);
  EXPECT_FALSE(StackTagStrategy().GetGoroutineId().has_value());
  mgr.SetValues({{key, std::string("scope")}}, [&] {
    EXPECT_NE(message([&] { ScopedValues guard(mgr, {{key, std::string("x")}}); }),
              "no exception");
    EXPECT_NE(message([&] { ScopedValues guard(mgr, Values()); }), "no exception");
    const Snapshot here = Capture();
    EXPECT_EQ(message([&] { ScopedSnapshot installed(here); })
                  .rfind("gls::ScopedSnapshot: the stack_tag strategy", 0),
              0u);
    EXPECT_EQ(*mgr.GetValue(key)->TryAs<std::string>(), "scope");  // unchanged
  });
}

}  // namespace
}  // namespace gls
