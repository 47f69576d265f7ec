// gls values and Boost.Fiber (gls/contrib/fiber.h): fibers launched in a
// scope inherit it; fibers that switch in the middle of their own scopes each
// see only their own values, under thread_local with the ThreadLocalSwitching
// hook and under stack_tag and goid with no hook; thread_local without the
// hook leaks (the documented unsafe case, demonstrated).
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/fiber/all.hpp"
#include "gls/contrib/fiber.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/registered_stack.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

struct FiberSetup {
  const Strategy* strategy;
  bool hook;  // install ThreadLocalSwitching on the fiber thread
  const char* name;
  // stack_tag only: fiber stacks registered (registered_stack.h), so the
  // walks are bounded by them.
  bool stack_tag_registered = false;
};

std::string Read(const ContextManager& mgr, const ContextKey& key) {
  const Value* v = mgr.GetValue(key);
  if (v == nullptr) return "none";
  const std::string* s = v->TryAs<std::string>();
  return s == nullptr ? "not a string" : *s;
}

class FiberTest : public ::testing::TestWithParam<FiberSetup> {
 protected:
  FiberTest() : mgr_(*GetParam().strategy) {}

  // Runs `body` on a fresh thread (each thread picks its fiber scheduler
  // once), with the hook installed if the setup says so.
  void OnFiberThread(const std::function<void()>& body) {
    std::thread([&] {
      if (GetParam().hook) fiber::UseThreadLocalSwitching();
      body();
    }).join();
  }

  // Launches a fiber the way each strategy needs: goid must know the stack.
  template <typename F>
  boost::fibers::fiber LaunchFiber(F&& fn) {
    if (GetParam().strategy == &GoidStrategy()) {
      return fiber::Launch(
          std::allocator_arg,
          goid::RegisteredStackAllocator<boost::fibers::fixedsize_stack>(),
          std::forward<F>(fn));
    }
    if (GetParam().stack_tag_registered) {
      return fiber::Launch(
          std::allocator_arg,
          stack_tag::RegisteredStackAllocator<boost::fibers::fixedsize_stack>(),
          std::forward<F>(fn));
    }
    return fiber::Launch(std::forward<F>(fn));
  }

  ContextManager mgr_;
  const ContextKey key_ = GenSym();
};

std::string SetupName(const ::testing::TestParamInfo<FiberSetup>& p) {
  return p.param.name;
}

INSTANTIATE_TEST_SUITE_P(
    Strategies, FiberTest,
    ::testing::Values(FiberSetup{&ThreadLocalStrategy(), true, "thread_local_hook"},
                      FiberSetup{&StackTagStrategy(), false, "stack_tag"},
                      FiberSetup{&StackTagStrategy(), false,
                                 "stack_tag_registered_stacks", true},
                      FiberSetup{&GoidStrategy(), false, "goid"}),
    SetupName);

TEST_P(FiberTest, LaunchedFibersInheritTheLaunchingScope) {
  OnFiberThread([&] {
    std::vector<boost::fibers::fiber> fibers;
    std::vector<std::string> seen(8);
    mgr_.SetValues({{key_, std::string("launcher")}}, [&] {
      for (int i = 0; i < 8; ++i) {
        fibers.push_back(LaunchFiber([&, i] {
          boost::this_fiber::yield();
          seen[i] = Read(mgr_, key_);
        }));
      }
      // Fibers not launched through gls start with no values.
      fibers.push_back(boost::fibers::fiber([&] {
        EXPECT_EQ(Read(mgr_, key_), "none");
      }));
    });
    for (auto& f : fibers) f.join();
    for (const auto& s : seen) EXPECT_EQ(s, "launcher");
  });
}

TEST_P(FiberTest, FibersSwitchingMidScopeSeeOnlyTheirOwnValues) {
  OnFiberThread([&] {
    constexpr int kFibers = 6;
    constexpr int kRounds = 50;
    int wrong = 0;
    std::vector<boost::fibers::fiber> fibers;
    for (int f = 0; f < kFibers; ++f) {
      fibers.push_back(LaunchFiber([&, f] {
        const std::string mine = "fiber-" + std::to_string(f);
        mgr_.SetValues({{key_, mine}}, [&] {
          for (int r = 0; r < kRounds; ++r) {
            boost::this_fiber::yield();  // switch away in the middle of it
            if (Read(mgr_, key_) != mine) ++wrong;
            mgr_.SetValues({{key_, mine + "/inner"}}, [&] {
              boost::this_fiber::yield();
              if (Read(mgr_, key_) != mine + "/inner") ++wrong;
            });
          }
        });
        if (Read(mgr_, key_) != "none") ++wrong;
      }));
    }
    // The thread's main fiber has its own scope and switches too.
    mgr_.SetValues({{key_, std::string("main")}}, [&] {
      for (int r = 0; r < kRounds; ++r) {
        boost::this_fiber::yield();
        if (Read(mgr_, key_) != "main") ++wrong;
      }
      for (auto& f : fibers) f.join();
      if (Read(mgr_, key_) != "main") ++wrong;
    });
    EXPECT_EQ(Read(mgr_, key_), "none");
    EXPECT_EQ(wrong, 0);
  });
}

TEST_P(FiberTest, BlockingSwitchesKeepValuesToo) {
  // Switches through a channel and a mutex rather than yield.
  OnFiberThread([&] {
    boost::fibers::buffered_channel<int> to_b(2), to_a(2);
    std::vector<std::string> errors;
    auto a = LaunchFiber([&] {
      mgr_.SetValues({{key_, std::string("a")}}, [&] {
        for (int i = 0; i < 20; ++i) {
          to_b.push(i);
          int got = 0;
          to_a.pop(got);
          if (Read(mgr_, key_) != "a") errors.push_back("a saw " + Read(mgr_, key_));
        }
      });
    });
    auto b = LaunchFiber([&] {
      mgr_.SetValues({{key_, std::string("b")}}, [&] {
        for (int i = 0; i < 20; ++i) {
          int got = 0;
          to_b.pop(got);
          if (Read(mgr_, key_) != "b") errors.push_back("b saw " + Read(mgr_, key_));
          to_a.push(got);
        }
      });
    });
    a.join();
    b.join();
    EXPECT_TRUE(errors.empty()) << errors.size() << " wrong reads, first: "
                                << (errors.empty() ? "" : errors[0]);
  });
}

TEST_P(FiberTest, ChildGetsASnapshotAtLaunchAndNothingFlowsBack) {
  OnFiberThread([&] {
    std::string child_first, child_later, parent_after_child_set;
    boost::fibers::fiber child;
    mgr_.SetValues({{key_, std::string("parent-1")}}, [&] {
      child = LaunchFiber([&] {
        child_first = Read(mgr_, key_);
        mgr_.SetValues({{key_, std::string("child")}}, [&] {
          boost::this_fiber::yield();  // the parent reads while we are set
          boost::this_fiber::yield();
        });
        child_later = Read(mgr_, key_);
      });
      mgr_.SetValues({{key_, std::string("parent-2")}}, [&] {
        boost::this_fiber::yield();  // the child starts, sees parent-1
        parent_after_child_set = Read(mgr_, key_);
        child.join();
      });
    });
    EXPECT_EQ(child_first, "parent-1");
    EXPECT_EQ(child_later, "parent-1");
    EXPECT_EQ(parent_after_child_set, "parent-2");
  });
}

// The unsafe cell of docs/propagation.md, shown: thread_local without the
// hook lets a fiber that switched away mid-scope leak its values to the next
// fiber on the thread.
TEST(FiberWithoutHookTest, ThreadLocalWithoutTheHookLeaksBetweenFibers) {
  ContextManager mgr(ThreadLocalStrategy());
  const ContextKey key = GenSym();
  std::string b_saw;
  std::thread([&] {
    boost::fibers::fiber a([&] {
      mgr.SetValues({{key, std::string("a")}}, [] {
        boost::this_fiber::yield();
      });
    });
    boost::fibers::fiber b([&] { b_saw = Read(mgr, key); });
    a.join();
    b.join();
  }).join();
  EXPECT_EQ(b_saw, "a");
}

TEST(FiberHookTest, HookedThreadWithoutFibersBehavesAsBefore) {
  ContextManager mgr(ThreadLocalStrategy());
  const ContextKey key = GenSym();
  std::thread([&] {
    fiber::UseThreadLocalSwitching();
    mgr.SetValues({{key, std::string("t")}}, [&] {
      EXPECT_EQ(Read(mgr, key), "t");
      Go([&] { EXPECT_EQ(Read(mgr, key), "t"); }).join();
    });
    EXPECT_EQ(Read(mgr, key), "none");
  }).join();
}

}  // namespace
}  // namespace gls
