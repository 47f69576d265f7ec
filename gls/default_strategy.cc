// Binds gls::DefaultStrategy() to the strategy named by the build setting
// //gls:default_strategy; BUILD.bazel passes the matching define.
#include "gls/strategy.h"

#if defined(GLS_DEFAULT_STRATEGY_GOID)
#include "strategies/goid/goid_strategy.h"
#define GLS_DEFAULT_STRATEGY GoidStrategy
#elif defined(GLS_DEFAULT_STRATEGY_STACK_TAG)
#include "strategies/stack_tag/stack_tag_strategy.h"
#define GLS_DEFAULT_STRATEGY StackTagStrategy
#elif defined(GLS_DEFAULT_STRATEGY_THREAD_LOCAL)
#include "strategies/thread_local/thread_local_strategy.h"
#define GLS_DEFAULT_STRATEGY ThreadLocalStrategy
#else
#error "no GLS_DEFAULT_STRATEGY_<NAME> define: see //gls:default_strategy"
#endif

namespace gls {

const Strategy& DefaultStrategy() { return GLS_DEFAULT_STRATEGY(); }

}  // namespace gls
