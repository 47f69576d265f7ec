// gls/conformance/conformance_suite.h: the behaviours every strategy must
// have, ported from jtolds/gls's documentation and tests.
//
// Not a public API: test-only. Each strategy's test target links this
// library and instantiates the suite with its strategy:
//
// Example:
//
//   INSTANTIATE_TEST_SUITE_P(ThreadLocal, ConformanceTest,
//                            testing::Values(&gls::ThreadLocalStrategy()),
//                            gls::conformance::StrategyName);
#ifndef GLS_CONFORMANCE_CONFORMANCE_SUITE_H_
#define GLS_CONFORMANCE_CONFORMANCE_SUITE_H_

#include <string>

#include "gls/strategy.h"
#include "gtest/gtest.h"

namespace gls {
namespace conformance {

// The suite: every TEST_P in conformance_suite.cc runs once per instantiated
// strategy.
class ConformanceTest : public ::testing::TestWithParam<const Strategy*> {
 protected:
  const Strategy& strategy() const { return *GetParam(); }
};

// StrategyName: names each instantiation after the strategy.
std::string StrategyName(
    const ::testing::TestParamInfo<const Strategy*>& info);

}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_CONFORMANCE_SUITE_H_
