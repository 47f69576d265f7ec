// The conformance suite with the thread_local strategy.
#include <string>

#include "gls/conformance/conformance_suite.h"
#include "gls/context_manager.h"
#include "gls/internal/context.h"
#include "gmock/gmock.h"
#include "strategies/testing/annotated_fiber.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using conformance::ConformanceTest;

INSTANTIATE_TEST_SUITE_P(ThreadLocal, ConformanceTest,
                         ::testing::Values(&ThreadLocalStrategy()),
                         conformance::StrategyName);

TEST(ThreadLocalStrategyTest, NameAndThreadSlot) {
  EXPECT_EQ(ThreadLocalStrategy().name(), "thread_local");
  // Current() and the inline read agree, inside and outside a context.
  EXPECT_EQ(ThreadLocalStrategy().Current(), nullptr);
  internal::EnsureContext(ThreadLocalStrategy(), [](Context* ctx) {
    EXPECT_EQ(ThreadLocalStrategy().Current(), ctx);
    EXPECT_EQ(thread_local_internal::CurrentOrNull(), ctx);
  });
  EXPECT_EQ(thread_local_internal::CurrentOrNull(), nullptr);
}

// Two fibers on this thread, each with one scope of `mgr` that switches away
// in its middle; b records what it reads after switching back.
struct TwoFibersMidScope {
  explicit TwoFibersMidScope(ContextManager& mgr)
      : a([&mgr](testing::AnnotatedFiber::Yield& yield) {
          mgr.SetValues({{"k", "a"}}, [&] { yield(); });
        }),
        b([&mgr, this](testing::AnnotatedFiber::Yield& yield) {
          mgr.SetValues({{"k", "b"}}, [&] {
            yield();
            const Value* v = mgr.GetValue("k");
            seen_by_b = v == nullptr ? "none" : *v->TryAs<std::string>();
          });
        }) {}

  // a enters its scope, b nests its own on this thread's context, a's scope
  // ends first (out of order), then b's.
  void Interleave() {
    a.Resume();
    b.Resume();
    a.Resume();
    b.Resume();
  }

  std::string seen_by_b;
  testing::AnnotatedFiber a;
  testing::AnnotatedFiber b;
};

// thread_local cannot tell fibers apart (documented): fibers that switch in
// the middle of their scopes see each other's values. What it must not do is
// crash or hand a context still in use to someone else: scopes ending out of
// order retire the context with a warning naming the likely cause, and no
// scope ever restores a pointer to a scope that has ended (asan checks).
TEST(ThreadLocalStrategyTest, FibersSwitchingMidScopeDoNotCrash) {
  ContextManager mgr(ThreadLocalStrategy());
  TwoFibersMidScope fibers(mgr);
  ::testing::internal::CaptureStderr();
  fibers.Interleave();  // a's outermost scope binds the context b then uses
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(fibers.a.finished() && fibers.b.finished());
  // b lost its value when a's outermost scope unbound the thread's context
  // (the documented limit), but never sees a's, or freed memory.
  EXPECT_EQ(fibers.seen_by_b, "none");
  EXPECT_THAT(warning, ::testing::HasSubstr("Use the stack_tag or goid strategy"));
  // The thread is usable afterwards, with nothing left over.
  EXPECT_EQ(mgr.GetValue("k"), nullptr);
  mgr.SetValues({{"k", "after"}}, [&] {
    EXPECT_EQ(*mgr.GetValue<std::string>("k"), "after");
  });
}

// The same interleaving inside a scope of the thread itself, so the context
// stays bound: b must then restore the thread's own values when it ends, not
// a's ended scope (a use after free before scopes unlinked themselves).
TEST(ThreadLocalStrategyTest, OutOfOrderScopeEndRestoresTheLiveScope) {
  ContextManager mgr(ThreadLocalStrategy());
  TwoFibersMidScope fibers(mgr);
  mgr.SetValues({{"k", "thread"}}, [&] {
    fibers.Interleave();
    EXPECT_EQ(*mgr.GetValue<std::string>("k"), "thread");
  });
  EXPECT_EQ(fibers.seen_by_b, "b");
  EXPECT_EQ(mgr.GetValue("k"), nullptr);
}

}  // namespace
}  // namespace gls
