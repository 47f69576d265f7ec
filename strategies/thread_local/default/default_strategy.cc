// gls::DefaultStrategy() for builds whose //gls:default_strategy is
// //strategies/thread_local:default.
#include "gls/internal/selected_default_strategy.h"

namespace gls {

const Strategy& DefaultStrategy() { return ThreadLocalStrategy(); }

}  // namespace gls
