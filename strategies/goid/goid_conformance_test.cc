// The conformance suite with the goid strategy.
#include "gls/conformance/conformance_suite.h"
#include "strategies/goid/goid_strategy.h"

namespace gls {
namespace {

using conformance::ConformanceTest;

INSTANTIATE_TEST_SUITE_P(Goid, ConformanceTest,
                         ::testing::Values(&GoidStrategy()),
                         conformance::StrategyName);

TEST(GoidStrategyConformanceTest, NameAndCurrent) {
  EXPECT_EQ(GoidStrategy().name(), "goid");
  EXPECT_EQ(GoidStrategy().Current(), nullptr);
  GoidStrategy().EnsureContext([](internal::Context* ctx) {
    EXPECT_EQ(GoidStrategy().Current(), ctx);
    EXPECT_EQ(GoidStrategy().CurrentInline(), ctx);
  });
  EXPECT_EQ(GoidStrategy().Current(), nullptr);
}

}  // namespace
}  // namespace gls
