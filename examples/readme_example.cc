// The README's example, verbatim inside main(), built with -Wall -Wextra
// -Werror (examples/BUILD.bazel): user code that includes gls compiles with
// no warnings. Output checked by readme_example_output_test.
#include <iostream>
#include <thread>

#include "gls/gls.h"

gls::ContextManager mgr;
const gls::ContextKey kRequestId = gls::GenSym();
const gls::TypedKey<std::string> kUser;

void MyLog() {
  if (const gls::Value* id = mgr.GetValue(kRequestId)) {
    std::cout << "My request id is: " << *id << "\n";
  } else {
    std::cout << "No request id found\n";
  }
}

int main() {
  mgr.SetValues({{kRequestId, "12345"}}, [] {
    MyLog();                          // My request id is: 12345
    std::thread(MyLog).join();        // No request id found
    gls::Go(MyLog).join();            // My request id is: 12345
  });
  MyLog();                            // No request id found

  // Typed keys, and a snapshot carried to another thread.
  gls::Snapshot snapshot = mgr.SetValues({{kUser, "bob"}}, [] {
    const std::string* user = mgr.GetValue(kUser);  // no type check
    std::cout << "user: " << *user << "\n";          // user: bob
    return gls::Capture();
  });
  std::thread([&] {
    snapshot.Run([] { std::cout << "later: " << *mgr.GetValue(kUser) << "\n"; });
  }).join();                                         // later: bob
  return 0;
}
