// The conformance suite with the thread_local strategy.
#include "gls/conformance/conformance_suite.h"
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
  ThreadLocalStrategy().EnsureContext([](internal::Context* ctx) {
    EXPECT_EQ(ThreadLocalStrategy().Current(), ctx);
    EXPECT_EQ(ThreadLocalStrategy().CurrentInline(), ctx);
  });
  EXPECT_EQ(ThreadLocalStrategy().CurrentInline(), nullptr);
}

}  // namespace
}  // namespace gls
