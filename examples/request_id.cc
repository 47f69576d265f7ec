// The two examples of jtolds/gls's documentation (ExampleContextManager_SetValues
// and ExampleGo), in C++, printing exactly what the Go originals print.
#include <iostream>
#include <thread>

#include "gls/gls.h"

namespace {

gls::ContextManager mgr;
const gls::ContextKey request_id_key = gls::GenSym();

void MyLog() {
  if (const gls::Value* request_id = mgr.GetValue(request_id_key)) {
    std::cout << "My request id is: " << *request_id << std::endl;
  } else {
    std::cout << "No request id found" << std::endl;
  }
}

}  // namespace

int main() {
  // ExampleContextManager_SetValues
  mgr.SetValues({{request_id_key, "12345"}}, [] { MyLog(); });
  MyLog();

  // ExampleGo: a plain thread loses the values, gls::Go keeps them.
  mgr.SetValues({{request_id_key, "12345"}}, [] {
    std::thread(MyLog).join();
    gls::Go(MyLog).join();
  });
  return 0;
}
