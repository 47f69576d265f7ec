// The conformance suite: each test ports a behaviour jtolds/gls documents or
// tests (context_test.go, the package docs), or one our API adds on top.
#include "gls/conformance/conformance_suite.h"

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/context_manager.h"
#include "gls/go.h"
#include "gls/scoped_values.h"
#include "gls/snapshot.h"
#include "gls/values.h"
#include "gmock/gmock.h"

namespace gls {
namespace conformance {

std::string StrategyName(
    const ::testing::TestParamInfo<const Strategy*>& info) {
  return std::string(info.param->name());
}

namespace {

using ::testing::HasSubstr;

// What the seed's CheckVal compares: the string value for `key`, or "" when
// there is none.
std::string StringValue(const ContextManager& mgr, const Key& key) {
  const Value* value = mgr.GetValue(key);
  if (value == nullptr) return "";
  const std::string* s = value->TryAs<std::string>();
  return s == nullptr ? "<not a string>" : *s;
}

// TestContexts from jtolds/gls's context_test.go, check for check: two
// managers, nested SetValues, a plain thread sees nothing, Go sees all.
TEST_P(ConformanceTest, SeedTestContexts) {
  ContextManager mgr1(strategy());
  ContextManager mgr2(strategy());

  // Checks from any thread; failures are recorded, not thrown, so the
  // threads below report through gtest too.
  auto check = [&](const std::string& m1v1, const std::string& m1v2,
                   const std::string& m2v1, const std::string& m2v2) {
    EXPECT_EQ(StringValue(mgr1, "key1"), m1v1);
    EXPECT_EQ(StringValue(mgr1, "key2"), m1v2);
    EXPECT_EQ(StringValue(mgr2, "key1"), m2v1);
    EXPECT_EQ(StringValue(mgr2, "key2"), m2v2);
  };

  check("", "", "", "");
  mgr2.SetValues({{"key1", "val1c"}}, [&] {
    check("", "", "val1c", "");
    mgr1.SetValues({{"key1", "val1a"}}, [&] {
      check("val1a", "", "val1c", "");
      mgr1.SetValues({{"key2", "val1b"}}, [&] {
        check("val1a", "val1b", "val1c", "");
        std::thread plain([&] { check("", "", "", ""); });
        std::jthread carried = Go([&] { check("val1a", "val1b", "val1c", ""); });
        plain.join();
        carried.join();
        check("val1a", "val1b", "val1c", "");
      });
      check("val1a", "", "val1c", "");
    });
    check("", "", "val1c", "");
  });
  check("", "", "", "");
}

// The MyLog helper of the seed's examples, printing into `out`.
void MyLog(const ContextManager& mgr, ContextKey request_id_key,
           std::ostream& out) {
  if (const Value* request_id = mgr.GetValue(request_id_key)) {
    out << "My request id is: " << *request_id << "\n";
  } else {
    out << "No request id found\n";
  }
}

// ExampleContextManager_SetValues, with its exact output.
TEST_P(ConformanceTest, SeedExampleSetValues) {
  ContextManager mgr(strategy());
  const ContextKey request_id_key = GenSym();
  std::ostringstream out;

  mgr.SetValues({{request_id_key, "12345"}},
                [&] { MyLog(mgr, request_id_key, out); });
  MyLog(mgr, request_id_key, out);

  EXPECT_EQ(out.str(), "My request id is: 12345\nNo request id found\n");
}

// ExampleGo, with its exact output.
TEST_P(ConformanceTest, SeedExampleGo) {
  ContextManager mgr(strategy());
  const ContextKey request_id_key = GenSym();
  std::ostringstream out;

  mgr.SetValues({{request_id_key, "12345"}}, [&] {
    std::thread([&] { MyLog(mgr, request_id_key, out); }).join();
    Go([&] { MyLog(mgr, request_id_key, out); }).join();
  });

  EXPECT_EQ(out.str(), "No request id found\nMy request id is: 12345\n");
}

// "GenSym will return a brand new, never-before-used ContextKey", also when
// many threads ask at once.
TEST_P(ConformanceTest, GenSymIsUniqueUnderConcurrency) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<uint64_t>> ids(kThreads);
  std::latch start(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) ids[t].push_back(GenSym().id());
      });
    }
  }
  std::set<uint64_t> unique;
  for (const auto& v : ids) unique.insert(v.begin(), v.end());
  EXPECT_EQ(unique.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(unique.count(0), 0u) << "0 is the null ContextKey";
  EXPECT_FALSE(GenSym() == GenSym());
}

// Unregister removes a manager from the registry Go uses: its values are not
// carried into Go's thread, while a registered manager's are; the
// unregistered manager still works where it is.
TEST_P(ConformanceTest, UnregisteredManagerIsNotCarriedByGo) {
  ContextManager kept(strategy());
  ContextManager dropped(strategy());
  dropped.Unregister();
  dropped.Unregister();  // idempotent

  kept.SetValues({{"k", "kept"}}, [&] {
    dropped.SetValues({{"k", "dropped"}}, [&] {
      EXPECT_EQ(StringValue(dropped, "k"), "dropped");
      Go([&] {
        EXPECT_EQ(StringValue(kept, "k"), "kept");
        EXPECT_EQ(StringValue(dropped, "k"), "");
      }).join();
    });
  });
}

// A destroyed manager is unregistered too: Go afterwards neither crashes nor
// carries anything of it.
TEST_P(ConformanceTest, DestroyedManagerIsUnregistered) {
  ContextManager kept(strategy());
  kept.SetValues({{"k", "v"}}, [&] {
    { ContextManager temporary(strategy()); }
    Go([&] { EXPECT_EQ(StringValue(kept, "k"), "v"); }).join();
  });
}

// GetGoroutineId says "none" outside every context; EnsureGoroutineId makes
// one for the duration of its callback, which nested calls and SetValues
// share.
TEST_P(ConformanceTest, GoroutineIdLifecycle) {
  EXPECT_EQ(strategy().GetGoroutineId(), std::nullopt);
  std::optional<uint64_t> outer;
  strategy().EnsureGoroutineId([&](uint64_t id) {
    outer = id;
    EXPECT_EQ(strategy().GetGoroutineId(), id);
    strategy().EnsureGoroutineId([&](uint64_t inner) { EXPECT_EQ(inner, id); });
    ContextManager mgr(strategy());
    mgr.SetValues({{"k", 1}}, [&] { EXPECT_EQ(strategy().GetGoroutineId(), id); });
  });
  ASSERT_TRUE(outer.has_value());
  EXPECT_EQ(strategy().GetGoroutineId(), std::nullopt);
}

// Ids come from a pool: a released id is handed out again, so ids stay small
// ("the smallest unique integer ids per-process possible").
TEST_P(ConformanceTest, GoroutineIdsAreReusedFromThePool) {
  uint64_t first = 0, second = 0;
  strategy().EnsureGoroutineId([&](uint64_t id) { first = id; });
  strategy().EnsureGoroutineId([&](uint64_t id) { second = id; });
  EXPECT_EQ(first, second);

  // Concurrent flows have distinct ids; afterwards, those ids are reused
  // rather than the pool growing.
  constexpr int kThreads = 4;
  auto collect_ids = [&] {
    std::set<uint64_t> ids;
    std::mutex mu;
    std::latch all_inside(kThreads);
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        strategy().EnsureGoroutineId([&](uint64_t id) {
          all_inside.arrive_and_wait();  // all ids live at once
          std::lock_guard<std::mutex> lock(mu);
          ids.insert(id);
        });
      });
    }
    threads.clear();  // joins
    return ids;
  };
  const std::set<uint64_t> round1 = collect_ids();
  const std::set<uint64_t> round2 = collect_ids();
  EXPECT_EQ(round1.size(), size_t{kThreads});
  EXPECT_EQ(round2.size(), size_t{kThreads});
  EXPECT_EQ(round1, round2) << "released ids were not reused";
}

// A thread started by Go has a goroutine id of its own.
TEST_P(ConformanceTest, GoThreadHasItsOwnGoroutineId) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", 1}}, [&] {
    const std::optional<uint64_t> parent = strategy().GetGoroutineId();
    ASSERT_TRUE(parent.has_value());
    Go([&] {
      const std::optional<uint64_t> child = strategy().GetGoroutineId();
      ASSERT_TRUE(child.has_value());
      EXPECT_NE(*child, *parent);
    }).join();
  });
}

// "SetValues will add new values or replace existing values of the same key
// and will not mutate or change values for previous stack frames."
TEST_P(ConformanceTest, InnerScopeReplacesAndOuterIsUntouched) {
  ContextManager mgr(strategy());
  const ContextKey a = GenSym(), b = GenSym();
  mgr.SetValues({{a, 1}, {b, 2}}, [&] {
    mgr.SetValues({{a, 10}, {"c", 3}}, [&] {
      EXPECT_EQ(*mgr.GetValue(a)->TryAs<int>(), 10);
      EXPECT_EQ(*mgr.GetValue(b)->TryAs<int>(), 2);
      EXPECT_EQ(*mgr.GetValue("c")->TryAs<int>(), 3);
      EXPECT_EQ(mgr.GetValues().size(), 3u);
    });
    EXPECT_EQ(*mgr.GetValue(a)->TryAs<int>(), 1);
    EXPECT_EQ(*mgr.GetValue(b)->TryAs<int>(), 2);
    EXPECT_EQ(mgr.GetValue("c"), nullptr);
  });
  EXPECT_EQ(mgr.GetValue(a), nullptr);
  EXPECT_TRUE(mgr.GetValues().empty());
}

// A string key and a ContextKey never collide, and managers never share
// values.
TEST_P(ConformanceTest, KeysAndManagersAreIndependent) {
  ContextManager m1(strategy()), m2(strategy());
  const ContextKey sym = GenSym();
  m1.SetValues({{sym, "sym"}, {"name", "str"}}, [&] {
    EXPECT_EQ(StringValue(m1, sym), "sym");
    EXPECT_EQ(StringValue(m1, "name"), "str");
    EXPECT_EQ(m2.GetValue(sym), nullptr);
    EXPECT_EQ(m2.GetValue("name"), nullptr);
    EXPECT_EQ(m1.GetValue(GenSym()), nullptr);
  });
}

// When fn throws, the previous values are back before the exception leaves
// SetValues, at every level, and the goroutine id is released.
TEST_P(ConformanceTest, ValuesRestoredAfterException) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", "outer"}}, [&] {
    EXPECT_THROW(mgr.SetValues({{"k", "inner"}, {"other", 1}},
                               [&] {
                                 EXPECT_EQ(StringValue(mgr, "k"), "inner");
                                 throw std::runtime_error("boom");
                               }),
                 std::runtime_error);
    EXPECT_EQ(StringValue(mgr, "k"), "outer");
    EXPECT_EQ(mgr.GetValue("other"), nullptr);
  });
  try {
    mgr.SetValues({{"k", "v"}}, [] { throw 42; });
    ADD_FAILURE() << "the exception did not propagate";
  } catch (int thrown) {
    EXPECT_EQ(thrown, 42);
  }
  EXPECT_EQ(mgr.GetValue("k"), nullptr);
  EXPECT_EQ(strategy().GetGoroutineId(), std::nullopt);
}

// Empty Values: fn just runs, and no context (goroutine id) is created.
TEST_P(ConformanceTest, EmptyValuesJustRunFn) {
  ContextManager mgr(strategy());
  bool ran = false;
  mgr.SetValues({}, [&] {
    ran = true;
    EXPECT_EQ(strategy().GetGoroutineId(), std::nullopt);
  });
  EXPECT_TRUE(ran);
}

// An empty fn is a clear error, not a crash, and nothing already set is
// lost.
TEST_P(ConformanceTest, EmptyFunctionIsAClearError) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", "v"}}, [&] {
    void (*null_fn)() = nullptr;
    try {
      mgr.SetValues({{"k", "other"}}, null_fn);
      ADD_FAILURE() << "no error for a null function";
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("SetValues"));
      EXPECT_THAT(e.what(), HasSubstr("empty"));
    }
    EXPECT_THROW(mgr.SetValues({{"k", "x"}}, std::function<void()>()),
                 std::invalid_argument);
    EXPECT_THROW((void)Go(std::function<void()>()), std::invalid_argument);
    EXPECT_EQ(StringValue(mgr, "k"), "v");
  });
}

// Typed access: the right type gets the value, the wrong type a clear error
// naming both types, a missing key NotFound.
TEST_P(ConformanceTest, TypedAccessReportsErrors) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"n", 7}, {"s", "text"}}, [&] {
    absl::StatusOr<int> n = mgr.GetValue<int>("n");
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 7);

    absl::StatusOr<std::string> wrong = mgr.GetValue<std::string>("n");
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("int"));
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("std::string"));

    absl::StatusOr<int> missing = mgr.GetValue<int>("absent");
    EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(missing.status().message()), HasSubstr("absent"));

    EXPECT_EQ(*mgr.GetValue<std::string>("s"), "text");
  });
}

// SetValues returns what fn returns.
TEST_P(ConformanceTest, SetValuesReturnsFnResult) {
  ContextManager mgr(strategy());
  std::string result = mgr.SetValues({{"k", "v"}}, [&] {
    return StringValue(mgr, "k") + "!";
  });
  EXPECT_EQ(result, "v!");
  EXPECT_EQ(mgr.SetValues({}, [] { return 5; }), 5);
}

// Go copies the values at the call: later changes in the parent do not reach
// the child, and the child's changes do not reach the parent.
TEST_P(ConformanceTest, GoCopiesValuesAtTheCall) {
  ContextManager mgr(strategy());
  std::latch child_may_read(1);
  std::latch parent_may_read(1);
  mgr.SetValues({{"k", "before"}}, [&] {
    std::jthread child = Go([&] {
      child_may_read.wait();
      EXPECT_EQ(StringValue(mgr, "k"), "before");
      mgr.SetValues({{"k", "child"}}, [&] {
        parent_may_read.count_down();
        EXPECT_EQ(StringValue(mgr, "k"), "child");
      });
    });
    mgr.SetValues({{"k", "after"}}, [&] {
      child_may_read.count_down();
      parent_may_read.wait();
      EXPECT_EQ(StringValue(mgr, "k"), "after");
    });
  });
}

// Go carries values through generations of threads.
TEST_P(ConformanceTest, GoIsTransitive) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", "root"}}, [&] {
    Go([&] {
      Go([&] { EXPECT_EQ(StringValue(mgr, "k"), "root"); }).join();
    }).join();
  });
}

// Many threads, each in its own scopes, see only their own values.
TEST_P(ConformanceTest, ThreadsAreIsolated) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  constexpr int kThreads = 8;
  constexpr int kRounds = 300;
  std::latch start(kThreads);
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int r = 0; r < kRounds; ++r) {
        mgr.SetValues({{key, t * 1000 + r}}, [&] {
          std::this_thread::yield();
          const Value* v = mgr.GetValue(key);
          ASSERT_NE(v, nullptr);
          EXPECT_EQ(*v->TryAs<int>(), t * 1000 + r);
        });
        EXPECT_EQ(mgr.GetValue(key), nullptr);
      }
    });
  }
}

// Deep recursion above and below a scope: values set under 2000 frames are
// read 2000 frames further down.
int ReadAtDepth(const ContextManager& mgr, const Key& key, int depth) {
  if (depth == 0) {
    const Value* v = mgr.GetValue(key);
    return v == nullptr ? -1 : *v->TryAs<int>();
  }
  volatile int keep_frame = depth;  // defeats tail-call conversion
  return ReadAtDepth(mgr, key, depth - 1) + (keep_frame - depth);
}

int SetAtDepth(const ContextManager& mgr_const, const Key& key, int depth) {
  auto& mgr = const_cast<ContextManager&>(mgr_const);
  if (depth == 0) {
    return mgr.SetValues({{key, 99}}, [&] { return ReadAtDepth(mgr, key, 2000); });
  }
  volatile int keep_frame = depth;
  return SetAtDepth(mgr, key, depth - 1) + (keep_frame - depth);
}

TEST_P(ConformanceTest, DeepRecursion) {
  ContextManager mgr(strategy());
  const ContextKey key = GenSym();
  EXPECT_EQ(SetAtDepth(mgr, key, 2000), 99);
  EXPECT_EQ(ReadAtDepth(mgr, key, 10), -1);
}

// Many values in one scope (beyond the linear-search size) are all found.
TEST_P(ConformanceTest, ManyValues) {
  ContextManager mgr(strategy());
  Values values;
  std::vector<ContextKey> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back(GenSym());
    values.Set(keys.back(), i);
    values.Set("name" + std::to_string(i), -i);
  }
  mgr.SetValues(values, [&] {
    for (int i = 0; i < 100; ++i) {
      ASSERT_NE(mgr.GetValue(keys[i]), nullptr) << i;
      EXPECT_EQ(*mgr.GetValue(keys[i])->TryAs<int>(), i);
      EXPECT_EQ(*mgr.GetValue("name" + std::to_string(i))->TryAs<int>(), -i);
    }
    EXPECT_EQ(mgr.GetValue("name100"), nullptr);
  });
}

// ---------------------------------------------------------------------------
// Core v2: snapshots, typed keys, owned values, thread exit.

// A snapshot taken in a scope shows exactly those values wherever it runs,
// after the scope ended, on another thread, as often as it is run.
TEST_P(ConformanceTest, SnapshotRunsWithTheCapturedValuesAnywhere) {
  ContextManager mgr1(strategy()), mgr2(strategy());
  Snapshot snapshot;
  mgr1.SetValues({{"k", "one"}}, [&] {
    mgr2.SetValues({{"k", "two"}}, [&] { snapshot = Capture(); });
  });
  EXPECT_FALSE(snapshot.empty());
  EXPECT_EQ(StringValue(mgr1, "k"), "");
  for (int run = 0; run < 2; ++run) {
    snapshot.Run([&] {
      EXPECT_EQ(StringValue(mgr1, "k"), "one");
      EXPECT_EQ(StringValue(mgr2, "k"), "two");
      EXPECT_TRUE(strategy().GetGoroutineId().has_value());
    });
    EXPECT_EQ(StringValue(mgr1, "k"), "");
  }
  std::vector<std::jthread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, copy = snapshot] {
      copy.Run([&] {
        EXPECT_EQ(StringValue(mgr1, "k"), "one");
        EXPECT_EQ(StringValue(mgr2, "k"), "two");
      });
      EXPECT_EQ(StringValue(mgr2, "k"), "");
    });
  }
}

// Run returns what fn returns, and restores on a throw.
TEST_P(ConformanceTest, SnapshotRunReturnsAndRestoresOnThrow) {
  ContextManager mgr(strategy());
  const Snapshot snapshot =
      mgr.SetValues({{"k", "captured"}}, [] { return Capture(); });
  EXPECT_EQ(snapshot.Run([&] { return StringValue(mgr, "k"); }), "captured");
  mgr.SetValues({{"k", "own"}}, [&] {
    EXPECT_THROW(snapshot.Run([&] {
      EXPECT_EQ(StringValue(mgr, "k"), "captured");
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_EQ(StringValue(mgr, "k"), "own");
  });
  void (*null_fn)() = nullptr;
  EXPECT_THROW(snapshot.Run(null_fn), std::invalid_argument);
}

// Neither side sees the other's later changes.
TEST_P(ConformanceTest, SnapshotIsImmutable) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", "before"}}, [&] {
    const Snapshot snapshot = Capture();
    mgr.SetValues({{"k", "after"}, {"new", 1}}, [&] {
      snapshot.Run([&] {
        EXPECT_EQ(StringValue(mgr, "k"), "before");
        EXPECT_EQ(mgr.GetValue("new"), nullptr);
        mgr.SetValues({{"k", "inside"}}, [&] {
          EXPECT_EQ(StringValue(mgr, "k"), "inside");
        });
      });
      EXPECT_EQ(StringValue(mgr, "k"), "after");
    });
  });
}

// Run shows exactly the snapshot: values the running flow had, of managers
// the snapshot has nothing of, are hidden until Run returns (a pool thread
// running a task never lends it its own values).
TEST_P(ConformanceTest, SnapshotRunHidesTheRunningFlowsOwnValues) {
  ContextManager carried(strategy()), local(strategy());
  const Snapshot snapshot =
      carried.SetValues({{"k", "task"}}, [] { return Capture(); });
  local.SetValues({{"k", "pool"}}, [&] {
    carried.SetValues({{"k", "pool"}}, [&] {
      snapshot.Run([&] {
        EXPECT_EQ(StringValue(carried, "k"), "task");
        EXPECT_EQ(local.GetValue("k"), nullptr);
      });
      Snapshot().Run([&] {
        EXPECT_EQ(carried.GetValue("k"), nullptr);
        EXPECT_EQ(local.GetValue("k"), nullptr);
      });
      EXPECT_EQ(StringValue(carried, "k"), "pool");
      EXPECT_EQ(StringValue(local, "k"), "pool");
    });
  });
}

// Values set inside a Run and captured there carry both layers.
TEST_P(ConformanceTest, CaptureInsideRunCarriesBothLayers) {
  ContextManager mgr(strategy()), other(strategy());
  const Snapshot outer =
      mgr.SetValues({{"a", 1}, {"k", "outer"}}, [] { return Capture(); });
  const Snapshot inner = outer.Run([&] {
    return other.SetValues({{"b", 2}}, [&] {
      return mgr.SetValues({{"k", "inner"}}, [] { return Capture(); });
    });
  });
  Go([&] {
    inner.Run([&] {
      EXPECT_EQ(*mgr.GetValue<int>("a"), 1);
      EXPECT_EQ(StringValue(mgr, "k"), "inner");
      EXPECT_EQ(*other.GetValue<int>("b"), 2);
    });
  }).join();
}

// The handoff of frames between flows under contention: the owner's scopes
// end (and its frames are pinned or freed) while other threads copy, run,
// capture inside and drop snapshots of them. Under ASan and TSan this checks
// the reference counting; everywhere it checks that nobody sees another
// round's values.
TEST_P(ConformanceTest, SnapshotsSurviveTheirScopesUnderContention) {
  ContextManager mgr(strategy());
  constexpr int kRounds = 50;
  constexpr int kThreads = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::jthread> threads;
    std::latch ready(kThreads + 1);
    mgr.SetValues({{"round", round}}, [&] {
      mgr.SetValues({{"inner", round}}, [&] {
        const Snapshot snapshot = Capture();
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&, t, copy = snapshot] {
            ready.arrive_and_wait();
            for (int i = 0; i < 20; ++i) {
              Snapshot again = copy;
              again.Run([&] {
                EXPECT_EQ(*mgr.GetValue<int>("round"), round);
                Snapshot nested = mgr.SetValues({{"t", t}}, [] { return Capture(); });
                nested.Run([&] { EXPECT_EQ(*mgr.GetValue<int>("inner"), round); });
              });
            }
          });
        }
        ready.arrive_and_wait();  // the scopes end while the threads run
      });
    });
    threads.clear();
  }
}

// A manager unregistered or destroyed by the time a snapshot runs is not
// carried, and a new manager that reuses a destroyed one's slot never sees
// the old manager's values.
TEST_P(ConformanceTest, SnapshotCarriesOnlyRegisteredLiveManagers) {
  ContextManager kept(strategy());
  auto dropped = std::make_unique<ContextManager>(strategy());
  auto destroyed = std::make_unique<ContextManager>(strategy());
  Snapshot snapshot;
  kept.SetValues({{"k", "kept"}}, [&] {
    dropped->SetValues({{"k", "dropped"}}, [&] {
      destroyed->SetValues({{"k", "destroyed"}}, [&] { snapshot = Capture(); });
    });
  });
  dropped->Unregister();
  destroyed.reset();
  std::vector<std::unique_ptr<ContextManager>> successors;
  for (int i = 0; i < 4; ++i) {
    successors.push_back(std::make_unique<ContextManager>(strategy()));
  }
  snapshot.Run([&] {
    EXPECT_EQ(StringValue(kept, "k"), "kept");
    EXPECT_EQ(dropped->GetValue("k"), nullptr);
    for (const auto& successor : successors) {
      EXPECT_EQ(successor->GetValue("k"), nullptr);
    }
  });
}

// A scope owns its values: changing the caller's object does not change
// what the code below sees.
TEST_P(ConformanceTest, ScopesOwnTheirValues) {
  ContextManager mgr(strategy());
  Values values{{"k", "original"}};
  mgr.SetValues(values, [&] {
    values.Set("k", "mutated");
    values.Set("extra", 1);
    EXPECT_EQ(StringValue(mgr, "k"), "original");
    EXPECT_EQ(mgr.GetValue("extra"), nullptr);
    mgr.SetValues({{"other", 2}}, [&] {
      values.Set("k", "again");
      EXPECT_EQ(StringValue(mgr, "k"), "original");
    });
  });
}

// Typed keys: set with anything convertible, read back as const T* with no
// type check; typed and untyped keys mix in one SetValues; inner scopes
// override; a ContextKey and a TypedKey never collide.
TEST_P(ConformanceTest, TypedKeys) {
  ContextManager mgr(strategy());
  const TypedKey<std::string> user;
  const TypedKey<int> count;
  const ContextKey untyped = GenSym();
  EXPECT_EQ(mgr.GetValue(user), nullptr);
  mgr.SetValues({{user, "bob"}, {count, 3}, {untyped, 4}, {"name", "n"}}, [&] {
    ASSERT_NE(mgr.GetValue(user), nullptr);
    EXPECT_EQ(*mgr.GetValue(user), "bob");
    EXPECT_EQ(*mgr.GetValue(count), 3);
    EXPECT_EQ(*mgr.GetValue(untyped)->TryAs<int>(), 4);
    EXPECT_EQ(StringValue(mgr, "name"), "n");
    mgr.SetValues({{count, 30}}, [&] {
      EXPECT_EQ(*mgr.GetValue(count), 30);
      EXPECT_EQ(*mgr.GetValue(user), "bob");
      Go([&] { EXPECT_EQ(*mgr.GetValue(count), 30); }).join();
    });
    EXPECT_EQ(*mgr.GetValue(count), 3);
    EXPECT_EQ(mgr.GetValue(TypedKey<int>()), nullptr);
  });
  EXPECT_EQ(mgr.GetValue(count), nullptr);
}

// Setting a TypedKey<T> to something that is not a T through the untyped
// path (a Key taken from GetValues, say) is a clear error, and nothing
// already stored is lost.
TEST_P(ConformanceTest, TypedKeyRejectsAWrongTypeAtRunTime) {
  ContextManager mgr(strategy());
  const TypedKey<int> count;
  mgr.SetValues({{count, 3}}, [&] {
    Values copy = mgr.GetValues();
    const Key key = copy.begin()->first;
    try {
      copy.Set(key, Value(std::string("three")));
      ADD_FAILURE() << "no error for a std::string under a TypedKey<int>";
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("TypedKey<int>"));
      EXPECT_THAT(e.what(), HasSubstr("std::string"));
    }
    EXPECT_EQ(*copy.Find(count), 3);
    EXPECT_EQ(*mgr.GetValue(count), 3);
  });
}

// The thread-exit hazard: a thread_local object whose destructor uses gls
// (a logger flushing at thread exit), constructed before or after the
// thread's first gls call, so its destructor runs after or before gls's own
// per-thread cleanup. Afterwards, flows that are live at the same time must
// have distinct ids and see only their own values.
struct UsesGlsAtThreadExit {
  // Arm(): the first use constructs the thread_local (and so orders its
  // destructor against gls's per-thread cleanup).
  void Arm(ContextManager* m, const Strategy* s, std::atomic<int>* r) {
    mgr = m;
    strategy = s;
    ran = r;
  }
  ContextManager* mgr = nullptr;
  const Strategy* strategy = nullptr;
  std::atomic<int>* ran = nullptr;
  ~UsesGlsAtThreadExit() {
    if (mgr == nullptr) return;
    mgr->SetValues({{"user", "exiting"}}, [&] {
      strategy->EnsureGoroutineId([](uint64_t) {});
      if (StringValue(*mgr, "user") == "exiting") ran->fetch_add(1);
    });
    // Twice: the second one reuses whatever the first one released.
    mgr->SetValues({{"user", "exiting"}}, [] {});
  }
};
thread_local UsesGlsAtThreadExit uses_gls_at_thread_exit;

void CheckConcurrentFlowsAreDistinct(const Strategy& strategy,
                                     ContextManager& mgr) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::latch start(kThreads);
  std::mutex mu;
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int r = 0; r < kRounds; ++r) {
        const std::string mine = "user" + std::to_string(t);
        mgr.SetValues({{"user", mine}}, [&] {
          const std::optional<uint64_t> id = strategy.GetGoroutineId();
          ASSERT_TRUE(id.has_value());
          std::this_thread::yield();
          EXPECT_EQ(StringValue(mgr, "user"), mine);
          EXPECT_EQ(strategy.GetGoroutineId(), id);
        });
      }
    });
  }
  threads.clear();
  // And ids of flows live at once are distinct.
  std::set<uint64_t> ids;
  std::latch all_inside(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      strategy.EnsureGoroutineId([&](uint64_t id) {
        all_inside.arrive_and_wait();
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(ids.insert(id).second) << "id " << id << " given twice";
      });
    });
  }
  threads.clear();  // joins before `ids` and the latch go
}

TEST_P(ConformanceTest, GlsUsedFromThreadLocalDestructorsInEitherOrder) {
  ContextManager mgr(strategy());
  std::atomic<int> ran{0};
  for (int round = 0; round < 4; ++round) {
    // Constructed before the thread's first gls call: its destructor runs
    // after gls's per-thread cleanup.
    std::thread([&] {
      uses_gls_at_thread_exit.Arm(&mgr, &strategy(), &ran);
      mgr.SetValues({{"user", "early"}}, [] {});
      strategy().EnsureGoroutineId([](uint64_t) {});
    }).join();
    // Constructed after: its destructor runs before gls's cleanup.
    std::thread([&] {
      mgr.SetValues({{"user", "late"}}, [] {});
      strategy().EnsureGoroutineId([](uint64_t) {});
      uses_gls_at_thread_exit.Arm(&mgr, &strategy(), &ran);
    }).join();
    // Only touching gls from the destructor, never before.
    std::thread([&] { uses_gls_at_thread_exit.Arm(&mgr, &strategy(), &ran); })
        .join();
  }
  EXPECT_EQ(ran.load(), 12);
  CheckConcurrentFlowsAreDistinct(strategy(), mgr);
}

// Scope guards (gls/scoped_values.h): where the strategy can attach, a
// guard is a SetValues scope without the callback, in every mix with real
// scopes, Go and snapshots, and each thread sees only its own; where it
// cannot, constructing one throws std::logic_error naming the strategy and
// changes nothing.
TEST_P(ConformanceTest, ScopeGuardsActAsScopesOrAreRefused) {
  ContextManager mgr(strategy());
  if (!strategy().CanAttach()) {
    for (int outside = 0; outside < 2; ++outside) {
      auto attempt = [&] {
        try {
          ScopedValues guard(mgr, {{"k", "guard"}});
        } catch (const std::logic_error& e) {
          EXPECT_THAT(e.what(), HasSubstr(std::string(strategy().name())));
          EXPECT_THAT(e.what(), HasSubstr("SetValues(values, fn)"));
          return;
        }
        ADD_FAILURE() << "a guard was made under " << strategy().name()
                      << ", which cannot attach";
      };
      if (outside == 0) {
        attempt();
        EXPECT_EQ(StringValue(mgr, "k"), "");
      } else {
        mgr.SetValues({{"k", "scope"}}, [&] {
          attempt();
          EXPECT_EQ(StringValue(mgr, "k"), "scope");
        });
      }
    }
    return;
  }
  {
    ScopedValues guard(mgr, {{"k", "guard"}});
    EXPECT_EQ(StringValue(mgr, "k"), "guard");
    EXPECT_TRUE(strategy().GetGoroutineId().has_value());
    Go([&] { EXPECT_EQ(StringValue(mgr, "k"), "guard"); }).join();
    mgr.SetValues({{"k", "scope"}}, [&] {
      ScopedValues inner(mgr, {{"k2", "inner"}});
      EXPECT_EQ(StringValue(mgr, "k"), "scope");
      EXPECT_EQ(StringValue(mgr, "k2"), "inner");
    });
    EXPECT_EQ(StringValue(mgr, "k2"), "");
    const Snapshot other = mgr.SetValues({{"k", "other"}}, [] { return Capture(); });
    {
      ScopedSnapshot installed(other);
      EXPECT_EQ(StringValue(mgr, "k"), "other");
    }
    EXPECT_EQ(StringValue(mgr, "k"), "guard");
  }
  EXPECT_EQ(StringValue(mgr, "k"), "");
  EXPECT_FALSE(strategy().GetGoroutineId().has_value());

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string mine = std::to_string(t) + "/" + std::to_string(i);
        ScopedValues guard(mgr, {{"k", mine}});
        if (StringValue(mgr, "k") != mine) ++wrong;
      }
      if (StringValue(mgr, "k") != "") ++wrong;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Guards ended out of order: reported on stderr; the outer guard's values
// stay until the inner one ends, then the values from before are back.
TEST_P(ConformanceTest, ScopeGuardsEndedOutOfOrderAreDefined) {
  if (!strategy().CanAttach()) GTEST_SKIP() << "the strategy cannot attach";
  ContextManager mgr(strategy());
  std::optional<ScopedValues> outer(std::in_place, mgr, Values{{"a", "outer"}});
  std::optional<ScopedValues> inner(std::in_place, mgr, Values{{"b", "inner"}});
  ::testing::internal::CaptureStderr();
  outer.reset();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("still open"));
  EXPECT_EQ(StringValue(mgr, "a"), "outer");
  EXPECT_EQ(StringValue(mgr, "b"), "inner");
  inner.reset();
  EXPECT_EQ(StringValue(mgr, "a"), "");
  EXPECT_EQ(StringValue(mgr, "b"), "");
  EXPECT_FALSE(strategy().GetGoroutineId().has_value());
}

}  // namespace
}  // namespace conformance
}  // namespace gls
