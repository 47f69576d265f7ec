// The conformance suite with the goid strategy.
#include "gls/conformance/conformance_suite.h"
#include "gls/internal/context.h"
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
  internal::EnsureContext(GoidStrategy(), [](Context* ctx) {
    EXPECT_EQ(GoidStrategy().Current(), ctx);
    EXPECT_EQ(goid_internal::CurrentContext(), ctx);
  });
  EXPECT_EQ(GoidStrategy().Current(), nullptr);
}

}  // namespace
}  // namespace gls
