// A consumer that builds its own code without frame pointers
// (-fomit-frame-pointer, as -O2 does by default on many toolchains) and uses
// the stack_tag strategy, linked statically and dynamically (BUILD.bazel).
//
// What it must get (README, "Using gls from your own Bazel workspace"): a
// right answer, or a loud diagnostic, never a wrong or missing value. gls's
// own code keeps frame pointers whatever the consumer's flags say
// (tools/copts.bzl), so the tag frames stay walkable; the consumer's code
// between a scope and a read may leave anything in %rbp, and a read whose
// walk then misses a live scope on the thread's stack is redone with
// libunwind (stack_tag_strategy.h). The libunwind walker needs no frame
// pointers at all.
//
// The code between the scopes and the reads here is the consumer's own,
// built -O2 -fomit-frame-pointer, with enough live values that the compiler
// uses %rbp as an ordinary register, plus a libc callback (qsort, which
// Debian's glibc builds without frame pointers), an exception, and
// Boost.Context fibers resumed several times, on plain stacks and on stacks
// registered with stack_tag (registered_stack.h).
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/stack_tag/registered_stack.h"
#include "strategies/stack_tag/stack_tag_strategy.h"

namespace {

const gls::TypedKey<int> kRequest;

struct Walker {
  const char* name;
  const gls::Strategy& (*strategy)();
};

class NoFramePointerTest : public ::testing::TestWithParam<Walker> {
 protected:
  NoFramePointerTest() : mgr_(GetParam().strategy()) {}

  int Read() const {
    const int* v = mgr_.GetValue(kRequest);
    return v == nullptr ? -1 : *v;
  }

  gls::ContextManager mgr_;
};

// Keeps many values live across the read, so -fomit-frame-pointer code
// allocates %rbp as a general register around the call.
__attribute__((noinline)) int ReadUnderRegisterPressure(
    const NoFramePointerTest* t, int (*read)(const NoFramePointerTest*),
    volatile int* sink, int n) {
  int a = sink[0], b = sink[1], c = sink[2], d = sink[3], e = sink[4],
      f = sink[5], g = sink[6], h = sink[7], i = sink[8], j = sink[9];
  int seen = -2;
  for (int k = 0; k < n; ++k) {
    a += b * k; b ^= c + k; c += d; d ^= e; e += f * 3; f ^= g; g += h;
    h ^= i + 1; i += j; j ^= a;
    seen = read(t);
    a += seen; c ^= seen;
  }
  sink[0] = a + b + c + d + e + f + g + h + i + j;
  return seen;
}

struct SortContext {
  const NoFramePointerTest* test;
  int (*read)(const NoFramePointerTest*);
  int wrong = 0;
  int expected = 0;
};
thread_local SortContext* sort_context = nullptr;

int CompareAndRead(const void* x, const void* y) {
  if (sort_context->read(sort_context->test) != sort_context->expected) {
    ++sort_context->wrong;
  }
  return *static_cast<const int*>(x) - *static_cast<const int*>(y);
}

class Peer : public NoFramePointerTest {
 public:
  static int ReadOf(const NoFramePointerTest* t) {
    return static_cast<const Peer*>(t)->Read();
  }
};

TEST_P(NoFramePointerTest, SelfCheckPassesOrFailsLoudly) {
  // The frame-pointer walker's own check does not depend on the consumer's
  // flags: gls's code keeps frame pointers.
  EXPECT_TRUE(gls::StackTagSelfCheck().ok()) << gls::StackTagSelfCheck();
}

TEST_P(NoFramePointerTest, ReadsInsideAScopeThroughCodeWithoutFramePointers) {
  volatile int sink[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Read(), -1);
  mgr_.SetValues({{kRequest, 41}}, [&] {
    EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 50), 41);
    mgr_.SetValues({{kRequest, 42}}, [&] {
      EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 50), 42);
    });
    EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 50), 41);
  });
  EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 5), -1);
}

TEST_P(NoFramePointerTest, ReadsInALibcCallback) {
  std::vector<int> numbers(200);
  for (size_t i = 0; i < numbers.size(); ++i) {
    numbers[i] = static_cast<int>((i * 7919) % 211);
  }
  SortContext context{this, Peer::ReadOf, 0, 7};
  sort_context = &context;
  mgr_.SetValues({{kRequest, 7}}, [&] {
    std::qsort(numbers.data(), numbers.size(), sizeof(int), CompareAndRead);
  });
  sort_context = nullptr;
  EXPECT_EQ(context.wrong, 0);
}

TEST_P(NoFramePointerTest, ReadsAfterAnException) {
  volatile int sink[10] = {};
  mgr_.SetValues({{kRequest, 5}}, [&] {
    try {
      mgr_.SetValues({{kRequest, 6}}, [&] {
        EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 3), 6);
        throw std::runtime_error("request failed");
      });
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 3), 5);
  });
  EXPECT_EQ(Read(), -1);
}

// Three fibers in their own scopes, resumed in turn from a scope of the
// thread's, reading through code without frame pointers each time; the
// fibers' stacks come from `stacks`.
template <typename StackAllocator>
std::vector<int> ReadAfterFiberResumes(NoFramePointerTest* test,
                                       gls::ContextManager& mgr,
                                       StackAllocator stacks) {
  namespace ctx = boost::context;
  volatile int sink[10] = {};
  std::vector<int> seen;
  std::vector<ctx::fiber> fibers;
  for (int id = 0; id < 3; ++id) {
    fibers.emplace_back(std::allocator_arg, stacks,
                        [test, &mgr, id, &seen, &sink](ctx::fiber&& main) {
      mgr.SetValues({{kRequest, 100 + id}}, [&] {
        for (int round = 0; round < 3; ++round) {
          seen.push_back(ReadUnderRegisterPressure(test, Peer::ReadOf, sink, 2));
          main = std::move(main).resume();
        }
      });
      return std::move(main);
    });
  }
  mgr.SetValues({{kRequest, 1}}, [&] {
    for (int round = 0; round < 4; ++round) {
      for (auto& fiber : fibers) {
        if (fiber) fiber = std::move(fiber).resume();
      }
      seen.push_back(ReadUnderRegisterPressure(test, Peer::ReadOf, sink, 2));
    }
  });
  return seen;
}

const std::vector<int> kFiberReads = {100, 101, 102, 1, 100, 101, 102, 1,
                                      100, 101, 102, 1, 1};

TEST_P(NoFramePointerTest, ReadsAfterFiberResumes) {
  EXPECT_EQ(ReadAfterFiberResumes(this, mgr_, boost::context::fixedsize_stack()),
            kFiberReads);
}

// The same on stacks registered with stack_tag: walks bounded by the
// fibers' stacks, and misses caught through each stack's own record.
TEST_P(NoFramePointerTest, ReadsAfterFiberResumesOnRegisteredStacks) {
  EXPECT_EQ(ReadAfterFiberResumes(
                this, mgr_,
                gls::stack_tag::RegisteredStackAllocator<
                    boost::context::fixedsize_stack>()),
            kFiberReads);
}

TEST_P(NoFramePointerTest, ReadsOnOtherThreads) {
  volatile int sink[10] = {};
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      mgr_.SetValues({{kRequest, 1000 + t}}, [&] {
        for (int i = 0; i < 200; ++i) {
          if (ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 1) != 1000 + t) {
            ++wrong[t];
          }
        }
      });
      gls::Go([&] {
        if (ReadUnderRegisterPressure(this, Peer::ReadOf, sink, 1) != -1) ++wrong[t];
      }).join();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(
    Walkers, NoFramePointerTest,
    ::testing::Values(Walker{"frame_pointer", gls::StackTagStrategy},
                      Walker{"libunwind", gls::StackTagLibunwindStrategy}),
    [](const ::testing::TestParamInfo<Walker>& info) {
      return std::string(info.param.name);
    });

}  // namespace
