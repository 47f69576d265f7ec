#include "strategies/testing/annotated_fiber.h"

#include <stdexcept>
#include <string>

#include "boost/context/protected_fixedsize_stack.hpp"
#include "gtest/gtest.h"

namespace gls {
namespace testing {
namespace {

TEST(AnnotatedFiberTest, InterleavesAndFinishes) {
  std::string trace;
  AnnotatedFiber a([&](AnnotatedFiber::Yield& yield) {
    trace += "a1 ";
    yield();
    trace += "a2 ";
  });
  AnnotatedFiber b([&](AnnotatedFiber::Yield& yield) {
    trace += "b1 ";
    yield();
    trace += "b2 ";
  });
  a.Resume();
  b.Resume();
  EXPECT_FALSE(a.finished());
  b.Resume();
  a.Resume();
  EXPECT_TRUE(a.finished());
  EXPECT_TRUE(b.finished());
  EXPECT_EQ(trace, "a1 b1 b2 a2 ");
}

TEST(AnnotatedFiberTest, RunsOnTheStackItsAllocatorGave) {
  const char* local_address = nullptr;
  AnnotatedFiber fiber(boost::context::protected_fixedsize_stack(64 * 1024),
                       [&](AnnotatedFiber::Yield&) {
                         char here = 0;
                         local_address = &here;
                         asm volatile("" : : "r"(&here) : "memory");
                       });
  [[maybe_unused]] const char* top =
      static_cast<const char*>(fiber.stack_top());
  fiber.Resume();
  EXPECT_TRUE(fiber.finished());
  // Under ASan's fake stacks a local may live elsewhere.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(local_address, top);
  EXPECT_GE(local_address, top - fiber.stack_size());
#endif
}

TEST(AnnotatedFiberTest, DestroyingASuspendedFiberUnwindsIt) {
  bool unwound = false;
  {
    AnnotatedFiber fiber([&](AnnotatedFiber::Yield& yield) {
      struct Flag {
        bool* flag;
        ~Flag() { *flag = true; }
      } flag{&unwound};
      yield();
    });
    fiber.Resume();
  }
  EXPECT_TRUE(unwound);
}

TEST(AnnotatedFiberTest, ExceptionsReachTheResumer) {
  AnnotatedFiber fiber([](AnnotatedFiber::Yield&) {
    throw std::runtime_error("from the fiber");
  });
  EXPECT_THROW(fiber.Resume(), std::runtime_error);
  EXPECT_TRUE(fiber.finished());
}

}  // namespace
}  // namespace testing
}  // namespace gls
