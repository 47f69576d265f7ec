// gls::DefaultStrategy() for builds whose //gls:default_strategy is
// //strategies/stack_tag:default.
#include "gls/internal/selected_default_strategy.h"

namespace gls {

const Strategy& DefaultStrategy() { return StackTagStrategy(); }

}  // namespace gls
