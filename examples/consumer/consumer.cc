// A downstream user's program: one value set, read three calls down and in a
// thread started with gls::Go.
#include <iostream>

#include "gls/gls.h"

namespace {
gls::ContextManager tenant_mgr;

void Handle() { std::cout << "tenant: " << *tenant_mgr.GetValue("tenant") << "\n"; }
void Route() { Handle(); }
}  // namespace

int main() {
  tenant_mgr.SetValues({{"tenant", "acme"}}, [] {
    Route();
    gls::Go(Route).join();
  });
  std::cout << "strategy: " << gls::DefaultStrategy().name() << "\n";
  return 0;
}
