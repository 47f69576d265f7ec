// Bad input, each case with what gls does and the message it gives
// (docs/reliability.md, "Bad input"): never a crash without a message, never
// silent corruption, never one flow seeing another's values, and nothing
// already stored lost.
#include <signal.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gls/gls.h"
#include "gls/internal/context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using ::testing::HasSubstr;

struct NamedStrategy {
  const char* name;
  const Strategy& (*get)();
};

class BadInputTest : public ::testing::TestWithParam<NamedStrategy> {
 protected:
  const Strategy& strategy() const { return GetParam().get(); }
};

// 1. A wrong-type read.
TEST_P(BadInputTest, WrongTypeReadNamesBothTypesAndLosesNothing) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"user", std::string("bob")}}, [&] {
    absl::StatusOr<int> as_int = mgr.GetValue<int>("user");
    ASSERT_FALSE(as_int.ok());
    EXPECT_EQ(as_int.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(as_int.status().message()), HasSubstr("int"));
    EXPECT_THAT(std::string(as_int.status().message()), HasSubstr("string"));
    EXPECT_EQ(mgr.GetValue("user")->TryAs<int>(), nullptr);
    // Nothing stored was lost.
    EXPECT_EQ(*mgr.GetValue("user")->TryAs<std::string>(), "bob");
  });
  // Setting a typed key to the wrong type through an untyped Key.
  const TypedKey<int> kCount;
  try {
    Values values{{Key(kCount), std::string("seven")}};
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("TypedKey<int>"));
  }
}

// 2. An empty callable.
TEST_P(BadInputTest, EmptyCallableIsRejectedBeforeAnythingChanges) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"k", 1}}, [&] {
    const std::function<void()> empty;
    try {
      mgr.SetValues({{"k", 2}}, empty);
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("gls::ContextManager::SetValues"));
      EXPECT_THAT(e.what(), HasSubstr("empty"));
    }
    void (*null_fn)() = nullptr;
    EXPECT_THROW((void)Go(null_fn), std::invalid_argument);
    EXPECT_THROW(Capture().Run(empty), std::invalid_argument);
    EXPECT_THROW((void)Bind(empty), std::invalid_argument);
    EXPECT_EQ(*mgr.GetValue("k")->TryAs<int>(), 1);
  });
}

// 3. A manager destroyed while a scope of it is open on another thread. The
// scope runs to its end normally (SetValues touches only the flow's own
// context after the user's function returns), its values reach no manager
// made later in the same slot, and nothing leaks (ASan). Using the destroyed
// object itself is a use-after-free, which ASan reports.
TEST_P(BadInputTest, ManagerDestroyedWhileItsScopeIsOpenElsewhere) {
  auto mgr = std::make_unique<ContextManager>(strategy());
  std::atomic<int> stage{0};
  std::atomic<bool> later_manager_saw_old_value{false};
  std::unique_ptr<ContextManager> later;
  std::thread other([&] {
    mgr->SetValues({{"k", 1}}, [&] {
      stage.store(1);
      while (stage.load() != 2) std::this_thread::yield();
      // The old manager is gone; a new one took its slot.
      if (later->GetValue("k") != nullptr) later_manager_saw_old_value = true;
      later->SetValues({{"k", 2}}, [&] {
        if (*later->GetValue("k")->TryAs<int>() != 2) {
          later_manager_saw_old_value = true;
        }
      });
    });
  });
  while (stage.load() != 1) std::this_thread::yield();
  mgr.reset();
  later = std::make_unique<ContextManager>(strategy());
  stage.store(2);
  other.join();
  EXPECT_FALSE(later_manager_saw_old_value);
  EXPECT_EQ(later->GetValue("k"), nullptr);
}

// 4. Unregister twice: idempotent, and the manager keeps working.
TEST_P(BadInputTest, UnregisterTwiceIsIdempotent) {
  ContextManager mgr(strategy());
  mgr.Unregister();
  mgr.Unregister();
  mgr.SetValues({{"k", 3}}, [&] {
    EXPECT_EQ(*mgr.GetValue("k")->TryAs<int>(), 3);
    bool carried = true;
    Go([&] { carried = mgr.GetValue("k") != nullptr; }).join();
    EXPECT_FALSE(carried);  // an unregistered manager is not carried
  });
}

// 6. Reading from a thread that never had a context.
TEST_P(BadInputTest, ReadFromAThreadThatNeverHadAContext) {
  ContextManager mgr(strategy());
  const TypedKey<int> kTyped;
  std::thread([&] {
    EXPECT_EQ(mgr.GetValue("k"), nullptr);
    EXPECT_EQ(mgr.GetValue(kTyped), nullptr);
    absl::StatusOr<int> v = mgr.GetValue<int>("k");
    EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(v.status().message()),
                HasSubstr("is set in any enclosing SetValues scope"));
    EXPECT_TRUE(mgr.GetValues().empty());
    EXPECT_EQ(strategy().GetGoroutineId(), std::nullopt);
  }).join();
}

// 8. A snapshot run after its managers are gone: the values of the dead
// managers are not shown, to anyone, and the run works.
TEST_P(BadInputTest, SnapshotRunAfterItsManagersAreGone) {
  Snapshot snapshot;
  {
    ContextManager gone(strategy());
    gone.SetValues({{"k", 4}}, [&] { snapshot = Capture(); });
  }
  ContextManager later(strategy());  // may take the dead manager's slot
  bool ran = false;
  snapshot.Run([&] {
    ran = true;
    EXPECT_EQ(later.GetValue("k"), nullptr);
  });
  EXPECT_TRUE(ran);
  // On a thread with no values (the hop that installs the frame inline in
  // the default strategy's context): the dead frame sits in its slot, and
  // the manager that may own that slot now never sees it, in nested scopes
  // of its own, in captures taken inside, or after.
  Snapshot inner;
  std::thread([&] {
    snapshot.Run([&] {
      EXPECT_EQ(later.GetValue("k"), nullptr);
      later.SetValues({{"k", 5}}, [&] {
        EXPECT_EQ(*later.GetValue("k")->TryAs<int>(), 5);
      });
      EXPECT_EQ(later.GetValue("k"), nullptr);
      inner = Capture();
    });
    EXPECT_EQ(later.GetValue("k"), nullptr);
  }).join();
  std::thread([&] {
    inner.Run([&] { EXPECT_EQ(later.GetValue("k"), nullptr); });
  }).join();
}

INSTANTIATE_TEST_SUITE_P(
    Strategies, BadInputTest,
    ::testing::Values(NamedStrategy{"thread_local", ThreadLocalStrategy},
                      NamedStrategy{"stack_tag", StackTagStrategy},
                      NamedStrategy{"goid", GoidStrategy}),
    [](const ::testing::TestParamInfo<NamedStrategy>& param_info) {
      return std::string(param_info.param.name);
    });

// 5. Exhaustion of the id spaces. Managers: a clear exception, and the live
// managers keep working.
TEST(BadInputIdSpaceTest, MoreThan65536LiveManagersThrow) {
  std::vector<std::unique_ptr<ContextManager>> managers;
  managers.reserve(65536);
  std::string message;
  try {
    for (int i = 0; i <= 65536; ++i) {
      managers.push_back(std::make_unique<ContextManager>());
    }
  } catch (const std::length_error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("more than 65536 managers are alive at once"));
  ASSERT_FALSE(managers.empty());
  ContextManager& last = *managers.back();
  last.SetValues({{"k", 5}}, [&] { EXPECT_EQ(*last.GetValue("k")->TryAs<int>(), 5); });
  managers.clear();
  ContextManager after;  // slots come back
  after.SetValues({{"k", 6}}, [&] { EXPECT_EQ(*after.GetValue("k")->TryAs<int>(), 6); });
}

// Contexts (goroutine ids): 2^26 live at once aborts with a message naming
// the likely leak. The limit is lowered for the test.
void HoldMoreLiveContextsThanTheLimit() {
  const internal::ContextPoolStats stats = internal::ContextPoolStatsForTesting();
  internal::SetContextLimitForTesting(stats.created);
  ContextManager mgr;
  const int threads = static_cast<int>(stats.pooled) + 4;
  std::atomic<int> in_scope{0};
  std::vector<std::thread> running;
  for (int i = 0; i < threads; ++i) {
    running.emplace_back([&] {
      mgr.SetValues({{"k", 1}}, [&] {
        in_scope.fetch_add(1);
        while (in_scope.load() < threads) std::this_thread::yield();
      });
    });
  }
  for (auto& t : running) t.join();
}

TEST(BadInputIdSpaceDeathTest, TooManyLiveContextsAbortWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(HoldMoreLiveContextsThanTheLimit(),
               "gls: more than [0-9]+ contexts are live at once; is a "
               "SetValues scope or Go thread leaking\\?");
}

// 7. SetValues from inside a signal handler that interrupted gls's own
// SetValues bookkeeping on that thread (here, deterministically: the copy of
// a value into the scope raises the signal). gls aborts with a message
// rather than corrupt the thread's half-changed state. GetValue in a handler
// is supported (strategies/testing/signal_handler_test.cc).
ContextManager* handler_manager = nullptr;

void HandlerThatSetsValues(int) {
  handler_manager->SetValues({{"in_handler", 1}}, [] {});
}

bool raise_when_copied = false;

struct RaisesWhenCopied {
  RaisesWhenCopied() = default;
  RaisesWhenCopied(const RaisesWhenCopied&) {
    if (raise_when_copied) raise(SIGUSR1);
  }
  RaisesWhenCopied& operator=(const RaisesWhenCopied&) = default;
};

void SetValuesWhoseCopyRaises() {
  ContextManager mgr;
  handler_manager = &mgr;
  // Built before raising is armed: only the copy into the scope raises.
  const Values values{{"k", RaisesWhenCopied()}};
  struct sigaction action = {};
  action.sa_handler = HandlerThatSetsValues;
  sigaction(SIGUSR1, &action, nullptr);
  raise_when_copied = true;
  mgr.SetValues(values, [] {});
}

TEST(BadInputSignalHandlerDeathTest, SetValuesInAHandlerThatInterruptedSetValues) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan defers signals to its own safe points, so the "
                  "handler never interrupts gls's bookkeeping under it";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(SetValuesWhoseCopyRaises(),
               "gls: SetValues was called while gls was changing this "
               "thread's values \\(from a signal handler");
}

// ... and a handler that interrupted ordinary code may set values: nothing
// of gls's was half-changed (allocation in a handler remains the caller's
// risk: SetValues is not async-signal-safe).
TEST(BadInputSignalHandlerTest, SetValuesInAHandlerOutsideGlsWorks) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan reports the allocation in the handler, which is the "
                  "documented caveat: SetValues is not async-signal-safe";
#endif
  static ContextManager mgr;
  static int seen = 0;
  handler_manager = &mgr;
  struct sigaction action = {};
  action.sa_handler = [](int) {
    mgr.SetValues({{"k", 8}}, [] { seen = *mgr.GetValue("k")->TryAs<int>(); });
  };
  struct sigaction old = {};
  sigaction(SIGUSR2, &action, &old);
  mgr.SetValues({{"k", 7}}, [] {
    raise(SIGUSR2);
    EXPECT_EQ(*mgr.GetValue("k")->TryAs<int>(), 7);
  });
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(seen, 8);
}

}  // namespace
}  // namespace gls
