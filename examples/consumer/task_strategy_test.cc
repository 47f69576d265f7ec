// gls's conformance suite, run against a strategy defined outside gls.
#include "gls/conformance/conformance_suite.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "task_strategy.h"

namespace {

using gls::conformance::ConformanceTest;

INSTANTIATE_TEST_SUITE_P(Task, ConformanceTest,
                         ::testing::Values(&TaskStrategy()),
                         gls::conformance::StrategyName);

// What the strategy is for: switching tasks on one thread switches values.
TEST(TaskStrategyTest, EachTaskSeesItsOwnValues) {
  gls::ContextManager mgr(TaskStrategy());
  const gls::TypedKey<std::string> user;
  Task a, b;
  TaskScope run_a(&a);
  mgr.SetValues({{user, "alice"}}, [&] {
    {
      TaskScope run_b(&b);
      EXPECT_EQ(mgr.GetValue(user), nullptr);
      mgr.SetValues({{user, "bob"}}, [&] {
        EXPECT_EQ(*mgr.GetValue(user), "bob");
        TaskScope back_to_a(&a);
        EXPECT_EQ(*mgr.GetValue(user), "alice");
      });
    }
    EXPECT_EQ(*mgr.GetValue(user), "alice");
  });
  EXPECT_EQ(mgr.GetValue(user), nullptr);
}

}  // namespace
