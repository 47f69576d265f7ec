// A downstream user's program: one value set, read three calls down, in a
// thread started with gls::Go, and under a strategy of its own.
#include <iostream>

#include "gls/gls.h"
#include "task_strategy.h"

namespace {
gls::ContextManager tenant_mgr;
const gls::TypedKey<std::string> kTenant;

void Handle() { std::cout << "tenant: " << *tenant_mgr.GetValue(kTenant) << "\n"; }
void Route() { Handle(); }
}  // namespace

int main() {
  tenant_mgr.SetValues({{kTenant, "acme"}}, [] {
    Route();
    gls::Go(Route).join();
  });
  std::cout << "strategy: " << gls::DefaultStrategy().name() << "\n";

  gls::ContextManager task_mgr(TaskStrategy());
  Task a, b;
  TaskScope running_a(&a);
  task_mgr.SetValues({{"task", "a"}}, [&] {
    TaskScope running_b(&b);
    std::cout << "task b sees: "
              << (task_mgr.GetValue("task") == nullptr ? "nothing" : "a's value")
              << "\n";
  });
  return 0;
}
