// The conformance suite with both stack_tag walkers.
#include "gls/conformance/conformance_suite.h"
#include "strategies/stack_tag/stack_tag_strategy.h"

namespace gls {
namespace {

using conformance::ConformanceTest;

INSTANTIATE_TEST_SUITE_P(StackTag, ConformanceTest,
                         ::testing::Values(&StackTagStrategy(),
                                           &StackTagLibunwindStrategy()),
                         conformance::StrategyName);

}  // namespace
}  // namespace gls
