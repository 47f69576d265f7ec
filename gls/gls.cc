#include "gls/gls.h"

namespace gls {

ContextManager::ContextManager() : ContextManager(DefaultStrategy()) {}

}  // namespace gls
