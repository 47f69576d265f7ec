// Must not compile: a TypedKey<int> set to a string. typed_key_compile_test
// checks that the compiler rejects it with gls's message.
#include "gls/values.h"

int main() {
  const gls::TypedKey<int> count;
  gls::Values values{{count, "three"}};
  return static_cast<int>(values.size());
}
