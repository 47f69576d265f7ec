// Must compile: the same, with a value that converts to the key's type.
#include "gls/values.h"

int main() {
  const gls::TypedKey<long> count;
  gls::Values values{{count, 3}, {"untyped", "three"}};
  return static_cast<int>(values.size()) - 2;
}
