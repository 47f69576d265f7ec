// stack_tag walks on fiber stacks registered through registered_stack.h.
//
// A walk on a registered stack never reads outside it, whatever junk code
// without frame pointers left in %rbp: a link past the stack's top sends the
// read to libunwind (right answer, counted), where on an unregistered stack
// the same link faults. A junk link that leads the walk past a live scope on
// a registered stack is caught through the stack's own record of its
// innermost scope, also after the fiber moved to another thread. Reads
// outside every scope on a registered fiber stay on the frame-pointer path.
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"
#include "gls/context_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategies/stack_tag/internal/tags.h"
#include "strategies/stack_tag/junk_call_test_util.h"
#include "strategies/stack_tag/registered_stack.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/testing/annotated_fiber.h"

namespace gls {
namespace {

#if defined(__x86_64__)

using stack_tag::RegisteredStackAllocator;
using stack_tag::ScopedStack;
using stack_tag_internal::FramePointerFallbacks;
using stack_tag_internal::MissedScopesCaught;
using stack_tag_internal::RegisteredStackAt;
using stack_tag_internal::WalksLeftRegisteredStack;
using stack_tag_internal::WalksOnUnknownStacks;
using stack_tag_test::JunkCall;
using testing::AnnotatedFiber;

// A Boost.Context stack allocator whose stacks have unreadable memory
// (PROT_NONE) right above their top: a walk that leaves such a stack upward
// faults there.
class GuardedAboveStack {
 public:
  static constexpr size_t kSize = 256 * 1024;
  static constexpr size_t kGuard = 64 * 1024;

  boost::context::stack_context allocate() {
    void* block = mmap(nullptr, kSize + kGuard, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) throw std::bad_alloc();
    char* top = static_cast<char*>(block) + kSize;
    if (mprotect(top, kGuard, PROT_NONE) != 0) {
      munmap(block, kSize + kGuard);
      throw std::bad_alloc();
    }
    boost::context::stack_context sctx;
    sctx.sp = top;
    sctx.size = kSize;
    return sctx;
  }
  void deallocate(boost::context::stack_context& sctx) noexcept {
    munmap(static_cast<char*>(sctx.sp) - kSize, kSize + kGuard);
  }
};

// What GetValue("k") saw from a callback called by code without frame
// pointers, and how many of the reads there were redone with libunwind.
struct JunkRead {
  const ContextManager* mgr = nullptr;
  std::optional<int> seen;
  uint64_t redone = 0;
};

// GetValue("k") from a callback of code without frame pointers whose %rbp
// is a fake frame linking to `link`.
__attribute__((noinline)) void ReadThroughJunkLink(uintptr_t link,
                                                   JunkRead* read) {
  JunkCall call{[](void* p) {
                  auto* r = static_cast<JunkRead*>(p);
                  const Value* v = r->mgr->GetValue("k");
                  r->seen = v == nullptr ? std::nullopt
                                         : std::optional<int>(*v->TryAs<int>());
                },
                read, 0, 1, link};
  const uint64_t before = FramePointerFallbacks() + MissedScopesCaught();
  gls_test_call_without_frame_pointer(&call);
  read->redone = FramePointerFallbacks() + MissedScopesCaught() - before;
}

// Reads inside and outside a scope on a fiber on a GuardedAboveStack,
// through a junk link into the guard above the stack.
template <typename Allocator>
void ReadThroughLinkIntoTheGuard(Allocator stacks, JunkRead* outside,
                                 JunkRead* inside) {
  ContextManager mgr(StackTagStrategy());
  outside->mgr = inside->mgr = &mgr;
  AnnotatedFiber* self = nullptr;
  AnnotatedFiber fiber(stacks, [&](AnnotatedFiber::Yield&) {
    const uintptr_t into_guard =
        reinterpret_cast<uintptr_t>(self->stack_top()) + 1024;
    ReadThroughJunkLink(into_guard, outside);
    mgr.SetValues({{"k", 9}}, [&] { ReadThroughJunkLink(into_guard, inside); });
  });
  self = &fiber;
  fiber.Resume();
}

TEST(StackTagFiberBoundsTest, JunkLinkPastTheTopOfARegisteredStackNeverLeavesIt) {
  JunkRead outside, inside;
  ReadThroughLinkIntoTheGuard(RegisteredStackAllocator<GuardedAboveStack>(),
                              &outside, &inside);
  EXPECT_EQ(outside.seen, std::nullopt);
  // Outside every scope the stack's record says no scope was missed.
  EXPECT_EQ(outside.redone, 0u);
  EXPECT_EQ(inside.seen, 9);
  EXPECT_EQ(inside.redone, 1u);
}

// The control: the same reads on an unregistered stack follow the link into
// the guard and fault (the documented limit of unregistered stacks). Shows
// that the test above would fail without the bounds.
TEST(StackTagFiberBoundsDeathTest, JunkLinkPastTheTopOfAnUnregisteredStackFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto read_unregistered = [] {
    JunkRead outside, inside;
    ReadThroughLinkIntoTheGuard(GuardedAboveStack(), &outside, &inside);
    std::exit(0);
  };
  // Killed by SIGSEGV, or, under a sanitizer, its report and exit code.
  auto did_not_finish = [](int status) {
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  };
  EXPECT_EXIT(read_unregistered(), did_not_finish, "");
}

// A junk link from inside a scope to a live frame above it (the fiber's own
// function): the walk goes on from there to the stack's end and never meets
// the tag. The stack's record of its innermost scope catches the miss and
// the read is redone with libunwind; the record lives with the stack, so
// this holds after the fiber moved to another thread, where the thread that
// entered the scope no longer runs it.
TEST(StackTagFiberBoundsTest, LinkPastALiveScopeIsCaughtAfterTheFiberMoved) {
  ContextManager mgr(StackTagStrategy());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks(
      boost::context::fixedsize_stack(256 * 1024));
  JunkRead same_thread{&mgr, std::nullopt}, other_thread{&mgr, std::nullopt};
  AnnotatedFiber fiber(stacks, [&](AnnotatedFiber::Yield& yield) {
    const uintptr_t above_scope =
        reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    mgr.SetValues({{"k", 9}}, [&] {
      ReadThroughJunkLink(above_scope, &same_thread);
      yield();  // resumed by another thread
      ReadThroughJunkLink(above_scope, &other_thread);
    });
  });
  fiber.Resume();
  std::thread([&] { fiber.Resume(); }).join();
  EXPECT_TRUE(fiber.finished());
  EXPECT_EQ(same_thread.seen, 9);
  EXPECT_EQ(same_thread.redone, 1u);
  EXPECT_EQ(other_thread.seen, 9);
  EXPECT_EQ(other_thread.redone, 1u);
}

// Reads outside every scope, and inside one, on registered fibers: answered
// by the frame-pointer walk alone (no libunwind), bounded (not counted as
// walks on unknown stacks).
TEST(StackTagFiberBoundsTest, ReadsOnARegisteredFiberStayOnTheFastPath) {
  ContextManager mgr(StackTagStrategy());
  RegisteredStackAllocator<boost::context::pooled_fixedsize_stack> stacks;
  for (int round = 0; round < 3; ++round) {  // recycled stacks, registered afresh
    int found_outside = 0;
    bool right_inside = true;
    uint64_t fallbacks = 0, unknown = 0, left = 0;
    AnnotatedFiber fiber(stacks, [&](AnnotatedFiber::Yield&) {
      const uint64_t fallbacks_before = FramePointerFallbacks();
      const uint64_t unknown_before = WalksOnUnknownStacks();
      const uint64_t left_before = WalksLeftRegisteredStack();
      for (int i = 0; i < 100; ++i) {
        if (mgr.GetValue("k") != nullptr) ++found_outside;
        mgr.SetValues({{"k", i}}, [&] {
          const Value* v = mgr.GetValue("k");
          right_inside = right_inside && v != nullptr && *v->TryAs<int>() == i;
        });
      }
      fallbacks = FramePointerFallbacks() - fallbacks_before;
      unknown = WalksOnUnknownStacks() - unknown_before;
      left = WalksLeftRegisteredStack() - left_before;
    });
    fiber.Resume();
    EXPECT_EQ(found_outside, 0);
    EXPECT_TRUE(right_inside);
    EXPECT_EQ(fallbacks, 0u) << "reads on a registered fiber used libunwind";
    EXPECT_EQ(unknown, 0u);
    // The reads outside every scope (GetValue, and SetValues looking up the
    // enclosing context) ended where the chain left the fiber's stack.
    EXPECT_EQ(left, 200u);
  }
}

// An unregistered fiber's walks are counted as walks on unknown stacks.
TEST(StackTagFiberBoundsTest, WalksOnAnUnregisteredFiberAreCounted) {
  ContextManager mgr(StackTagStrategy());
  uint64_t unknown = 0;
  AnnotatedFiber fiber([&](AnnotatedFiber::Yield&) {
    const uint64_t before = WalksOnUnknownStacks();
    mgr.SetValues({{"k", 1}}, [&] { EXPECT_NE(mgr.GetValue("k"), nullptr); });
    unknown = WalksOnUnknownStacks() - before;
  });
  fiber.Resume();
  EXPECT_GE(unknown, 1u);
}

TEST(StackTagFiberBoundsTest, RegistrationCoversTheStackForItsLifetime) {
  alignas(16) static char buffer[64 * 1024];
  const char* middle = buffer + sizeof buffer / 2;
  EXPECT_EQ(RegisteredStackAt(middle).hi, 0u);
  {
    ScopedStack registered(buffer, sizeof buffer);
    const stack_tag_internal::StackRange range = RegisteredStackAt(middle);
    EXPECT_EQ(range.lo, reinterpret_cast<uintptr_t>(buffer));
    EXPECT_EQ(range.hi, reinterpret_cast<uintptr_t>(buffer) + sizeof buffer);
    EXPECT_EQ(RegisteredStackAt(buffer + sizeof buffer).hi, 0u);
  }
  EXPECT_EQ(RegisteredStackAt(middle).hi, 0u);

  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks(
      boost::context::fixedsize_stack(128 * 1024));
  boost::context::stack_context sctx = stacks.allocate();
  // An address, never dereferenced (also after the stack is freed).
  const uintptr_t inside = reinterpret_cast<uintptr_t>(sctx.sp) - 100;
  EXPECT_EQ(RegisteredStackAt(reinterpret_cast<const void*>(inside)).hi,
            reinterpret_cast<uintptr_t>(sctx.sp) & ~uintptr_t{15});
  stacks.deallocate(sctx);
  // The memory may already belong to something else; it is not a stack.
  EXPECT_EQ(RegisteredStackAt(reinterpret_cast<const void*>(inside)).hi, 0u);
}

TEST(StackTagFiberBoundsTest, BadRangesAreRejectedWithTheirReason) {
  alignas(16) static char buffer[64];
  auto message = [](const void* lo, size_t size) {
    try {
      ScopedStack registered(lo, size);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_THAT(message(nullptr, 4096), ::testing::HasSubstr("null, empty"));
  EXPECT_THAT(message(buffer, 0), ::testing::HasSubstr("null, empty"));
  EXPECT_THAT(message(reinterpret_cast<void*>(~uintptr_t{0} - 64), 4096),
              ::testing::HasSubstr("wraps around"));
  EXPECT_THAT(message(reinterpret_cast<void*>(uintptr_t{1} << 48), 4096),
              ::testing::HasSubstr("above 2^47"));
  EXPECT_THAT(message(buffer + 1, 8), ::testing::HasSubstr("no aligned 16"));
  // Nothing was registered by the failures.
  EXPECT_EQ(RegisteredStackAt(buffer).hi, 0u);
}

// fork() while another thread registers and unregisters stacks: the child
// can register too (the registration lock is not inherited held).
TEST(StackTagFiberBoundsTest, ChildOfAForkCanRegisterStacks) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "fork() of a multithreaded process under TSan";
#else
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    alignas(16) static char churned[64 * 1024];
    while (!stop.load(std::memory_order_relaxed)) {
      ScopedStack registered(churned, sizeof churned);
    }
  });
  int failures = 0;
  for (int i = 0; i < 50; ++i) {
    // The child's end of the pipe closes when it exits: the parent waits
    // for that (poll), not for a fixed time.
    int exited[2];
    ASSERT_EQ(pipe(exited), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(exited[0]);
      alignas(16) static char child_stack[64 * 1024];
      {
        ScopedStack registered(child_stack, sizeof child_stack);
        if (RegisteredStackAt(child_stack + 100).hi == 0) _exit(2);
      }
      _exit(0);
    }
    // A child stuck on the lock is killed after 2 s; the first failure ends
    // the test.
    close(exited[1]);
    pollfd child_gone = {exited[0], POLLIN, 0};
    if (poll(&child_gone, 1, 2000) == 0) kill(pid, SIGKILL);
    close(exited[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
      break;
    }
  }
  stop = true;
  churn.join();
  EXPECT_EQ(failures, 0)
      << "a forked child could not register a stack (stuck on the "
         "registration lock its parent held at the fork?)";
#endif
}

#endif  // __x86_64__

}  // namespace
}  // namespace gls
