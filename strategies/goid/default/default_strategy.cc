// gls::DefaultStrategy() for builds whose //gls:default_strategy is
// //strategies/goid:default.
#include "gls/internal/selected_default_strategy.h"

namespace gls {

const Strategy& DefaultStrategy() { return GoidStrategy(); }

}  // namespace gls
