#include "strategies/testing/annotated_fiber.h"

#include <string>

#include "gtest/gtest.h"

namespace gls {
namespace testing {
namespace {

TEST(AnnotatedFiberTest, InterleavesAndFinishes) {
  std::string trace;
  AnnotatedFiber a([&](AnnotatedFiber& self) {
    trace += "a1 ";
    self.Yield();
    trace += "a2 ";
  });
  AnnotatedFiber b([&](AnnotatedFiber& self) {
    trace += "b1 ";
    self.Yield();
    trace += "b2 ";
  });
  a.Resume();
  b.Resume();
  EXPECT_FALSE(a.done());
  b.Resume();
  a.Resume();
  EXPECT_TRUE(a.done());
  EXPECT_TRUE(b.done());
  EXPECT_EQ(trace, "a1 b1 b2 a2 ");
}

TEST(AnnotatedFiberTest, RunsOnItsOwnStack) {
  const char* local_address = nullptr;
  AnnotatedFiber fiber([&](AnnotatedFiber&) {
    char here = 0;
    local_address = &here;
    asm volatile("" : : "r"(&here) : "memory");
  });
  fiber.Resume();
  // Under ASan's fake stacks a local may live elsewhere; the stack pointer
  // itself is what must be inside the fiber's stack.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_GE(local_address, static_cast<const char*>(fiber.stack_low()));
  EXPECT_LT(local_address, static_cast<const char*>(fiber.stack_high()));
#endif
  EXPECT_TRUE(fiber.done());
}

}  // namespace
}  // namespace testing
}  // namespace gls
