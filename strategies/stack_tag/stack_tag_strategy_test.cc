// stack_tag's own behaviours: the tag round trip, deep stacks, fibers on one
// thread, signal handlers, and that the tags survived this build's optimizer.
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gls/context_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategies/stack_tag/internal/tags.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/testing/annotated_fiber.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using stack_tag_internal::ReadTag;
using stack_tag_internal::RunTagged;
using stack_tag_internal::Walker;
using testing::AnnotatedFiber;

class StackTagWalkerTest : public ::testing::TestWithParam<Walker> {};

INSTANTIATE_TEST_SUITE_P(Walkers, StackTagWalkerTest,
                         ::testing::Values(Walker::kFramePointer,
                                           Walker::kLibunwind),
                         [](const auto& param_info) {
                           return param_info.param == Walker::kFramePointer
                                      ? "frame_pointer"
                                      : "libunwind";
                         });

// The build that ran this test kept the tags intact: no fallback.
TEST(StackTagTest, SelfCheckPassesInThisBuild) {
  EXPECT_TRUE(StackTagSelfCheck().ok()) << StackTagSelfCheck();
  ContextManager mgr(StackTagStrategy());
  mgr.SetValues({{"k", 1}}, [&] {
    // Not the thread_local fallback: the thread slot is untouched.
    EXPECT_EQ(ThreadLocalStrategy().Current(), nullptr);
    EXPECT_NE(StackTagStrategy().Current(), nullptr);
  });
}

// A read is async-signal-safe, so it must not change the errno of the code
// a handler interrupted: the slow paths (libunwind, learning a thread's
// stack, the one-time warning) restore it. Checked on every path a test can
// choose: each walker, inside and outside a tag, on a thread's first read.
TEST_P(StackTagWalkerTest, ReadsLeaveErrnoAlone) {
  auto read_keeps_errno = [](Walker walker) {
    errno = 12345;
    ReadTag(walker);
    return errno == 12345;
  };
  EXPECT_TRUE(read_keeps_errno(GetParam())) << "outside every tag";
  RunTagged(42, [&] {
    EXPECT_TRUE(read_keeps_errno(GetParam())) << "inside a tag";
  });
  std::thread([&] {
    EXPECT_TRUE(read_keeps_errno(GetParam())) << "a thread's first read";
    RunTagged(7, [&] {
      EXPECT_TRUE(read_keeps_errno(GetParam())) << "a thread's first tag";
    });
  }).join();
}

TEST_P(StackTagWalkerTest, IdsRoundTripUpTo64Bits) {
  std::vector<uint64_t> ids = {0, 1, 0x10, 0xff, 0x1000, ~uint64_t{0},
                               uint64_t{1} << 63};
  for (int digit = 0; digit < 16; ++digit) {
    ids.push_back(0x1111111111111111ull * digit);
  }
  for (uint64_t id : ids) {
    std::optional<uint64_t> read;
    RunTagged(id, [&] { read = ReadTag(GetParam()); });
    EXPECT_EQ(read, id) << std::hex << id;
  }
  EXPECT_EQ(ReadTag(GetParam()), std::nullopt);
}

// Thousands of frames between the tag and the read, and above the tag.
std::optional<uint64_t> ReadBelow(int frames, Walker walker) {
  if (frames == 0) return ReadTag(walker);
  volatile int keep = frames;  // no tail call: this frame stays
  std::optional<uint64_t> r = ReadBelow(frames - 1, walker);
  return keep == frames ? r : std::nullopt;
}

std::optional<uint64_t> TagBelow(int frames, uint64_t id, Walker walker) {
  if (frames == 0) {
    std::optional<uint64_t> read;
    RunTagged(id, [&] { read = ReadBelow(3000, walker); });
    return read;
  }
  volatile int keep = frames;
  std::optional<uint64_t> r = TagBelow(frames - 1, id, walker);
  return keep == frames ? r : std::nullopt;
}

TEST_P(StackTagWalkerTest, DeepStacksAboveAndBelowTheTag) {
  EXPECT_EQ(TagBelow(3000, 0xabcdef, GetParam()), 0xabcdefu);
  EXPECT_EQ(ReadBelow(3000, GetParam()), std::nullopt);
}

// The innermost tag wins when tags nest (not produced by the strategy, which
// tags only flows without a context, but the decoder must not mix digits).
TEST_P(StackTagWalkerTest, InnermostTagWins) {
  std::optional<uint64_t> inner;
  RunTagged(0x12, [&] { RunTagged(0x345, [&] { inner = ReadTag(GetParam()); }); });
  EXPECT_EQ(inner, 0x345u);
}

TEST_P(StackTagWalkerTest, ExceptionsUnwindThroughTags) {
  EXPECT_THROW(RunTagged(0xbeef, [] { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(ReadTag(GetParam()), std::nullopt);
}

// Several fibers on one thread, each in its own SetValues scope, switching in
// the middle of their scopes: each reads only its own values, and the thread
// outside the fibers reads its own.
void RunInterleavedFibers(const Strategy& strategy) {
  ContextManager mgr(strategy);
  const ContextKey key = GenSym();
  constexpr int kFibers = 4;
  constexpr int kRounds = 5;
  std::vector<std::unique_ptr<AnnotatedFiber>> fibers;
  std::vector<std::string> errors;
  for (int f = 0; f < kFibers; ++f) {
    fibers.push_back(std::make_unique<AnnotatedFiber>([&, f](AnnotatedFiber::Yield& yield) {
      auto expect = [&](std::optional<int> want, const char* where) {
        const Value* v = mgr.GetValue(key);
        std::optional<int> got;
        if (v != nullptr) got = *v->TryAs<int>();
        if (got != want) {
          errors.push_back("fiber " + std::to_string(f) + " " + where +
                           ": got " + (got ? std::to_string(*got) : "none"));
        }
      };
      expect(std::nullopt, "before its scope");
      yield();
      mgr.SetValues({{key, f}}, [&] {
        for (int r = 0; r < kRounds; ++r) {
          expect(f, "inside its scope");
          yield();  // switch mid-scope
          mgr.SetValues({{key, 100 + f}}, [&] {
            yield();
            expect(100 + f, "in its nested scope");
          });
          expect(f, "after its nested scope");
        }
      });
      yield();
      expect(std::nullopt, "after its scope");
    }));
  }
  mgr.SetValues({{key, -1}}, [&] {
    bool all_done = false;
    for (int step = 0; !all_done; ++step) {
      all_done = true;
      // Resume in an order that changes every step: rotated, and reversed
      // on odd steps.
      for (int i = 0; i < kFibers; ++i) {
        const int rotated = (i + step) % kFibers;
        AnnotatedFiber& fiber =
            *fibers[step % 2 == 0 ? rotated : kFibers - 1 - rotated];
        if (!fiber.finished()) {
          fiber.Resume();
          all_done = false;
        }
        const Value* mine = mgr.GetValue(key);
        if (mine == nullptr || *mine->TryAs<int>() != -1) {
          errors.push_back("the thread lost its own value");
        }
      }
    }
  });
  EXPECT_THAT(errors, ::testing::IsEmpty());
}

TEST(StackTagFiberTest, InterleavedFibersSeeOnlyTheirOwnValues) {
  RunInterleavedFibers(StackTagStrategy());
}

TEST(StackTagFiberTest, InterleavedFibersWithLibunwind) {
  RunInterleavedFibers(StackTagLibunwindStrategy());
}

// GetValue from a signal handler sees the interrupted scope's values (the
// frame-pointer walker reads only stack memory: async-signal-safe once the
// strategy was initialized outside the handler).
ContextManager* signal_mgr = nullptr;
volatile sig_atomic_t signal_seen = -2;

void RecordValue(int) {
  const Value* v = signal_mgr->GetValue("signal");
  signal_seen = v == nullptr ? -1 : *v->TryAs<int>();
}

TEST(StackTagSignalTest, GetValueInSignalHandler) {
  ContextManager mgr(StackTagStrategy());
  signal_mgr = &mgr;
  struct sigaction action = {}, previous = {};
  action.sa_handler = RecordValue;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);
  mgr.SetValues({{"signal", 7}}, [&] { raise(SIGUSR1); });
  EXPECT_EQ(signal_seen, 7);
  raise(SIGUSR1);
  EXPECT_EQ(signal_seen, -1);
  sigaction(SIGUSR1, &previous, nullptr);
  signal_mgr = nullptr;
}

// A profiling timer interrupts scopes as they are entered and left: a
// handler must never read a half-built tag as some other id.
std::atomic<uint64_t> expected_id{~uint64_t{0}};
std::atomic<int> wrong_reads{0};
std::atomic<int> handler_reads{0};

void CheckTagInHandler(int) {
  const std::optional<uint64_t> id = ReadTag(Walker::kFramePointer);
  handler_reads.fetch_add(1, std::memory_order_relaxed);
  if (id.has_value() && *id != expected_id.load(std::memory_order_relaxed)) {
    wrong_reads.fetch_add(1, std::memory_order_relaxed);
  }
}

TEST(StackTagSignalTest, HalfBuiltTagsAreNeverMisread) {
  struct sigaction action = {};
  action.sa_handler = CheckTagInHandler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGPROF, &action, nullptr), 0);
  itimerval timer = {{0, 200}, {0, 200}};  // every 200 us of CPU time
  ASSERT_EQ(setitimer(ITIMER_PROF, &timer, nullptr), 0);
  for (int i = 0; i < 200000 && handler_reads.load() < 500; ++i) {
    const uint64_t id = 0x123456789abcdef0ull + static_cast<uint64_t>(i % 7);
    expected_id.store(id, std::memory_order_relaxed);
    RunTagged(id, [] { asm volatile("" ::: "memory"); });
  }
  itimerval off = {};
  setitimer(ITIMER_PROF, &off, nullptr);
  // Ignore rather than restore the default (terminate): a SIGPROF still
  // pending (TSan defers signals) must not kill the rest of the test run.
  signal(SIGPROF, SIG_IGN);
  EXPECT_EQ(wrong_reads.load(), 0);
  RecordProperty("handler_reads", handler_reads.load());
}

}  // namespace
}  // namespace gls
