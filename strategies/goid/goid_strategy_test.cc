// Tests of what the goid strategy adds to the conformance suite: fibers on
// one thread, registered stacks (nested, recycled, abandoned), thread exit
// and stack reuse, fork.
#include "strategies/goid/goid_strategy.h"

#include <alloca.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"
#include "gls/context_manager.h"
#include "gtest/gtest.h"
#include "strategies/testing/annotated_fiber.h"
#include "strategies/goid/goid_internal.h"

namespace gls {
namespace {

using goid::IsRegisteredStack;
using goid::RegisteredStackAllocator;
using goid::ScopedStack;
using goid_internal::GlobalStackTable;
using goid_internal::ReadStackPointer;
using goid_internal::StackTable;
using testing::AnnotatedFiber;
using Yield = AnnotatedFiber::Yield;

const Strategy& S() { return GoidStrategy(); }

// The int value for `key`, or -1000 when there is none.
int IntValue(const ContextManager& mgr, const Key& key) {
  const Value* value = mgr.GetValue(key);
  if (value == nullptr) return -1000;
  const int* i = value->TryAs<int>();
  return i == nullptr ? -2000 : *i;
}

const void* OwnerOf(const void* address) {
  return GlobalStackTable().Lookup(reinterpret_cast<uintptr_t>(address));
}
// Not inlined: its stack pointer is below every frame of the caller's, also
// below an alloca'd buffer that starts right at the caller's stack pointer
// (-c opt inlined it once Lookup changed, and read exactly that).
__attribute__((noinline)) const void* OwnerOfHere() {
  return GlobalStackTable().Lookup(ReadStackPointer());
}

// A stack allocator over memory the test owns: hands out the same buffer
// every time, frees nothing.
struct BufferStack {
  char* lo;
  size_t size;
  boost::context::stack_context allocate() {
    boost::context::stack_context sctx;
    sctx.size = size;
    sctx.sp = lo + size;
    return sctx;
  }
  void deallocate(boost::context::stack_context&) noexcept {}
};

// Heap memory for stacks, page-aligned, plus `offset` bytes (to get
// stacks that do not start on a page boundary).
class StackMemory {
 public:
  explicit StackMemory(size_t size, size_t offset = 0)
      : raw_(static_cast<char*>(
            std::aligned_alloc(4096, (size + offset + 4095) & ~size_t{4095}))),
        lo_(raw_ + offset),
        size_(size) {}
  ~StackMemory() { std::free(raw_); }
  char* lo() const { return lo_; }
  size_t size() const { return size_; }
  char* middle() const { return lo_ + size_ / 2; }

 private:
  char* const raw_;
  char* const lo_;
  const size_t size_;
};

// Runs `fn` on a new thread whose stack is [lo, lo + size), and joins it.
void RunThreadOnStack(char* lo, size_t size, std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstack(&attr, lo, size), 0);
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void* arg) -> void* {
                  (*static_cast<std::function<void()>*>(arg))();
                  return nullptr;
                },
                &fn),
            0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
}

constexpr size_t kFiberStack = 64 * 1024;
constexpr size_t kThreadStack = 1024 * 1024;

// ---------------------------------------------------------------------------
// Fibers on one thread.

// The scenario: several fibers on one thread, each inside its own
// SetValues, switching in the middle of their scopes (also of nested ones),
// each reading only its own values; the thread's own scope is untouched.
TEST(GoidStrategyTest, InterleavedFibersOnOneThreadSeeOnlyTheirOwnValues) {
  ContextManager mgr(S());
  const ContextKey key = GenSym();
  constexpr int kFibers = 4;
  constexpr int kRounds = 5;
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(kFiberStack)};
  std::vector<std::optional<uint64_t>> ids(kFibers);
  std::vector<std::unique_ptr<AnnotatedFiber>> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.push_back(
        std::make_unique<AnnotatedFiber>(stacks, [&, i](Yield& yield) {
          EXPECT_EQ(mgr.GetValue(key), nullptr);
          EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
          mgr.SetValues({{key, i}}, [&] {
            ids[i] = S().GetGoroutineId();
            ASSERT_TRUE(ids[i].has_value());
            for (int r = 0; r < kRounds; ++r) {
              yield();
              EXPECT_EQ(IntValue(mgr, key), i);
              EXPECT_EQ(S().GetGoroutineId(), ids[i]);
              mgr.SetValues({{"round", r}}, [&] {
                yield();
                EXPECT_EQ(IntValue(mgr, "round"), r);
                EXPECT_EQ(IntValue(mgr, key), i);
              });
              EXPECT_EQ(mgr.GetValue("round"), nullptr);
            }
          });
          EXPECT_EQ(mgr.GetValue(key), nullptr);
          EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
        }));
  }

  std::optional<uint64_t> main_id;
  int switches = 0;
  mgr.SetValues({{key, -1}}, [&] {
    main_id = S().GetGoroutineId();
    for (bool running = true; running;) {
      running = false;
      for (auto& fiber : fibers) {
        if (fiber->finished()) continue;
        fiber->Resume();
        ++switches;
        running = true;
        EXPECT_EQ(IntValue(mgr, key), -1);
        EXPECT_EQ(mgr.GetValue("round"), nullptr);
        EXPECT_EQ(S().GetGoroutineId(), main_id);
      }
    }
  });
  EXPECT_EQ(switches, kFibers * (2 * kRounds + 1));
  std::set<uint64_t> distinct;
  for (const auto& id : ids) {
    ASSERT_TRUE(id.has_value());
    distinct.insert(*id);
  }
  distinct.insert(*main_id);
  EXPECT_EQ(distinct.size(), size_t{kFibers + 1});
  EXPECT_EQ(mgr.GetValue(key), nullptr);
}

// A value set on the thread's stack is not visible in a fiber on another
// stack, and the fiber's is not visible on the thread, even while the fiber
// is suspended in the middle of its scope.
TEST(GoidStrategyTest, ThreadAndFiberValuesDoNotCross) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(kFiberStack)};
  mgr.SetValues({{"who", 1}}, [&] {
    AnnotatedFiber fiber(stacks, [&](Yield& yield) {
      EXPECT_EQ(mgr.GetValue("who"), nullptr);
      mgr.SetValues({{"who", 2}, {"fiber only", 3}}, [&] {
        yield();
        EXPECT_EQ(IntValue(mgr, "who"), 2);
        EXPECT_EQ(IntValue(mgr, "fiber only"), 3);
      });
      EXPECT_EQ(mgr.GetValue("who"), nullptr);
    });
    fiber.Resume();
    EXPECT_EQ(IntValue(mgr, "who"), 1);
    EXPECT_EQ(mgr.GetValue("fiber only"), nullptr);
    mgr.SetValues({{"who", 10}}, [&] {
      fiber.Resume();
      EXPECT_TRUE(fiber.finished());
      EXPECT_EQ(IntValue(mgr, "who"), 10);
    });
    EXPECT_EQ(IntValue(mgr, "who"), 1);
  });
  EXPECT_EQ(mgr.GetValue("who"), nullptr);
}

// Exceptions inside a fiber's scopes restore its values, on its own stack.
TEST(GoidStrategyTest, ExceptionInAFiberRestoresItsValues) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(kFiberStack)};
  AnnotatedFiber fiber(stacks, [&](Yield& yield) {
    mgr.SetValues({{"k", 1}}, [&] {
      try {
        mgr.SetValues({{"k", 2}}, [&] {
          yield();
          throw std::runtime_error("boom");
        });
      } catch (const std::runtime_error&) {
      }
      EXPECT_EQ(IntValue(mgr, "k"), 1);
    });
    EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
  });
  fiber.Resume();
  fiber.Resume();
  EXPECT_TRUE(fiber.finished());
}

// A fiber destroyed while suspended in a scope is unwound on its own stack:
// its bindings are undone before its stack is deallocated.
TEST(GoidStrategyTest, FiberCancelledMidScopeUnwinds) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(kFiberStack)};
  bool unwound = false;
  void* top = nullptr;
  {
    AnnotatedFiber fiber(stacks, [&](Yield& yield) {
      struct Flag {
        bool* flag;
        ~Flag() { *flag = true; }
      } flag{&unwound};
      mgr.SetValues({{"k", 1}}, [&] { yield(); });
    });
    fiber.Resume();
    top = fiber.stack_top();
    EXPECT_TRUE(IsRegisteredStack(static_cast<char*>(top) - 64));
  }
  EXPECT_TRUE(unwound);
}

// A fiber moved to another thread keeps its values (and its goroutine id),
// and does not see that thread's.
TEST(GoidStrategyTest, FiberMovedToAnotherThreadKeepsItsValues) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(kFiberStack)};
  std::optional<uint64_t> id_before, id_after;
  AnnotatedFiber fiber(stacks, [&](Yield& yield) {
    mgr.SetValues({{"k", 7}}, [&] {
      id_before = S().GetGoroutineId();
      yield();
      id_after = S().GetGoroutineId();
      EXPECT_EQ(IntValue(mgr, "k"), 7);
    });
  });
  std::thread([&] { fiber.Resume(); }).join();
  std::thread([&] {
    mgr.SetValues({{"k", 8}}, [&] {
      fiber.Resume();
      EXPECT_EQ(IntValue(mgr, "k"), 8);
    });
  }).join();
  EXPECT_TRUE(fiber.finished());
  ASSERT_TRUE(id_before.has_value());
  EXPECT_EQ(id_before, id_after);
}

// ---------------------------------------------------------------------------
// Registration.

// A fiber stack that is a buffer inside the running thread's stack: the
// thread's stack is registered first (this thread never set a value before),
// the buffer nests inside it, and hands its range back to the thread when
// the fiber is gone.
TEST(GoidStrategyTest, FiberStackInsideTheThreadStackNests) {
  ContextManager mgr(S());
  std::thread([&] {
    EXPECT_FALSE(
        IsRegisteredStack(reinterpret_cast<void*>(ReadStackPointer())));
    char* buffer = static_cast<char*>(alloca(kFiberStack + 16));
    buffer = reinterpret_cast<char*>(
        (reinterpret_cast<uintptr_t>(buffer) + 15) & ~uintptr_t{15});
    {
      RegisteredStackAllocator<BufferStack> stacks(
          BufferStack{buffer, kFiberStack});
      AnnotatedFiber fiber(stacks, [&](Yield& yield) {
        EXPECT_EQ(mgr.GetValue("k"), nullptr);
        EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
        mgr.SetValues({{"k", 2}}, [&] {
          yield();
          EXPECT_EQ(IntValue(mgr, "k"), 2);
        });
      });
      // The allocator registered the thread's stack, then the buffer.
      const void* thread_region = OwnerOfHere();
      ASSERT_NE(thread_region, nullptr);
      EXPECT_NE(OwnerOf(buffer + kFiberStack / 2), thread_region);
      EXPECT_EQ(OwnerOf(buffer + kFiberStack + 16), thread_region);
      EXPECT_EQ(OwnerOf(buffer - 16), thread_region);
      mgr.SetValues({{"k", 1}}, [&] {
        fiber.Resume();
        EXPECT_EQ(IntValue(mgr, "k"), 1);
        fiber.Resume();
        EXPECT_EQ(IntValue(mgr, "k"), 1);
      });
      EXPECT_TRUE(fiber.finished());
    }
    // The buffer's range is the thread's again.
    EXPECT_EQ(OwnerOf(buffer + kFiberStack / 2), OwnerOfHere());
    EXPECT_EQ(OwnerOf(buffer), OwnerOfHere());
  }).join();
}

// Three levels: thread, fiber A on the heap, fiber B on a buffer inside A's
// stack.
TEST(GoidStrategyTest, FiberStackInsideAFiberStackNests) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
      boost::context::fixedsize_stack(4 * kFiberStack)};
  AnnotatedFiber outer(stacks, [&](Yield&) {
    mgr.SetValues({{"k", 1}}, [&] {
      char* buffer = static_cast<char*>(alloca(kFiberStack + 16));
      buffer = reinterpret_cast<char*>(
          (reinterpret_cast<uintptr_t>(buffer) + 15) & ~uintptr_t{15});
      const void* outer_region = OwnerOfHere();
      {
        ScopedStack registration(buffer, kFiberStack);
        EXPECT_EQ(OwnerOf(buffer + kFiberStack), outer_region);
        AnnotatedFiber inner(BufferStack{buffer, kFiberStack},
                             [&](Yield& yield) {
                               EXPECT_EQ(mgr.GetValue("k"), nullptr);
                               mgr.SetValues({{"k", 2}}, [&] {
                                 yield();
                                 EXPECT_EQ(IntValue(mgr, "k"), 2);
                               });
                             });
        inner.Resume();
        EXPECT_EQ(IntValue(mgr, "k"), 1);
        inner.Resume();
        EXPECT_TRUE(inner.finished());
      }
      EXPECT_EQ(OwnerOf(buffer + kFiberStack / 2), outer_region);
      EXPECT_EQ(IntValue(mgr, "k"), 1);
    });
  });
  outer.Resume();
  EXPECT_TRUE(outer.finished());
}

// A pooled allocator hands the same stack to the next fiber: it starts with
// no values and no id, though the previous fiber was cancelled in the middle
// of a scope on that very stack.
TEST(GoidStrategyTest, RecycledPooledStackStartsFresh) {
  ContextManager mgr(S());
  RegisteredStackAllocator<boost::context::pooled_fixedsize_stack> stacks{
      boost::context::pooled_fixedsize_stack(kFiberStack)};
  void* first_top = nullptr;
  for (int round = 0; round < 4; ++round) {
    AnnotatedFiber fiber(stacks, [&, round](Yield& yield) {
      EXPECT_EQ(mgr.GetValue("k"), nullptr) << round;
      EXPECT_EQ(S().GetGoroutineId(), std::nullopt) << round;
      mgr.SetValues({{"k", round}}, [&] {
        yield();
        ADD_FAILURE() << "cancelled fibers do not get here";
      });
    });
    fiber.Resume();
    if (round == 0) first_top = fiber.stack_top();
    EXPECT_EQ(fiber.stack_top(), first_top) << "the pool did not recycle";
    EXPECT_TRUE(IsRegisteredStack(static_cast<char*>(fiber.stack_top()) - 64));
  }  // each fiber is cancelled (unwound) here, and its stack recycled
}

// Many fibers alive at once on adjacent, unaligned stacks (boost::pool
// chunks): pages shared by two stacks still tell them apart.
TEST(GoidStrategyTest, AdjacentUnalignedFiberStacks) {
  ContextManager mgr(S());
  const ContextKey key = GenSym();
  constexpr int kFibers = 16;
  // Not a multiple of the page size: stack boundaries fall inside pages.
  RegisteredStackAllocator<boost::context::pooled_fixedsize_stack> stacks{
      boost::context::pooled_fixedsize_stack(kFiberStack + 0x230)};
  std::vector<std::unique_ptr<AnnotatedFiber>> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.push_back(
        std::make_unique<AnnotatedFiber>(stacks, [&, i](Yield& yield) {
          mgr.SetValues({{key, i}}, [&] {
            for (int r = 0; r < 3; ++r) {
              yield();
              EXPECT_EQ(IntValue(mgr, key), i);
            }
          });
        }));
  }
  int shared_pages = 0;
  for (int i = 0; i + 1 < kFibers; ++i) {
    const uintptr_t top = reinterpret_cast<uintptr_t>(fibers[i]->stack_top());
    if (top % 4096 != 0) ++shared_pages;
  }
  EXPECT_GT(shared_pages, 0);
  for (int r = 0; r < 4; ++r) {
    for (auto& fiber : fibers) fiber->Resume();
  }
  for (auto& fiber : fibers) EXPECT_TRUE(fiber->finished());
}

// A fiber abandoned in the middle of a scope (its frames never run again,
// its binding is never undone) and its memory reused under a new
// registration: the new fiber starts fresh. Also when the old registration
// was never removed (a stale one, nested over).
TEST(GoidStrategyTest, ReusedMemoryOfAnAbandonedFiberStartsFresh) {
  ContextManager mgr(S());
  StackMemory memory(kFiberStack);
  BufferStack stack{memory.lo(), memory.size()};
  std::optional<uint64_t> old_id;
  auto first = std::make_unique<ScopedStack>(memory.lo(), memory.size());
  AnnotatedFiber abandoned(stack, [&](Yield& yield) {
    mgr.SetValues({{"k", 1}}, [&] {
      old_id = S().GetGoroutineId();
      yield();
      ADD_FAILURE() << "an abandoned fiber never resumes";
    });
  });
  abandoned.Resume();
  abandoned.Abandon();
  ASSERT_TRUE(old_id.has_value());
  const void* old_region = OwnerOf(memory.middle());

  auto run_fresh_fiber = [&] {
    AnnotatedFiber fiber(stack, [&](Yield&) {
      EXPECT_EQ(mgr.GetValue("k"), nullptr);
      EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
      mgr.SetValues({{"k", 2}}, [&] { EXPECT_EQ(IntValue(mgr, "k"), 2); });
    });
    fiber.Resume();
    EXPECT_TRUE(fiber.finished());
  };

  // The stale registration is still there: a new one nests over it.
  {
    ScopedStack second(memory.lo(), memory.size());
    EXPECT_NE(OwnerOf(memory.middle()), old_region);
    run_fresh_fiber();
  }
  EXPECT_EQ(OwnerOf(memory.middle()), old_region);

  // Removed and registered again.
  first.reset();
  EXPECT_FALSE(IsRegisteredStack(memory.middle()));
  {
    ScopedStack third(memory.lo(), memory.size());
    run_fresh_fiber();
  }
  EXPECT_FALSE(IsRegisteredStack(memory.middle()));
}

// Without registration, a fiber's GetValue finds nothing (not the thread's
// values) and a SetValues is a clear error rather than a silent mix-up.
TEST(GoidStrategyTest, UnregisteredFiberStack) {
  ContextManager mgr(S());
  mgr.SetValues({{"k", 1}}, [&] {
    AnnotatedFiber fiber(boost::context::fixedsize_stack(kFiberStack),
                         [&](Yield&) {
                           EXPECT_EQ(mgr.GetValue("k"), nullptr);
                           EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
                         });
    fiber.Resume();
  });
}

TEST(GoidStrategyDeathTest, SetValuesOnAnUnregisteredFiberStackDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ContextManager mgr(S());
  EXPECT_DEATH(
      {
        AnnotatedFiber fiber(boost::context::fixedsize_stack(kFiberStack),
                             [&](Yield&) {
                               mgr.SetValues({{"k", 1}}, [] {});
                             });
        fiber.Resume();
      },
      "neither this thread's stack nor a registered fiber stack");
}

// Registering and unregistering from several threads while fibers and
// threads read: exercises the lock-free reads against concurrent writers on
// shared pages (malloc'd stacks of different threads are neighbours).
TEST(GoidStrategyTest, ConcurrentFibersOnManyThreads) {
  ContextManager mgr(S());
  const ContextKey key = GenSym();
  constexpr int kThreads = 4;
  constexpr int kRounds = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RegisteredStackAllocator<boost::context::fixedsize_stack> stacks{
          boost::context::fixedsize_stack(16 * 1024 + 0x50)};
      mgr.SetValues({{key, -t}}, [&] {
        for (int r = 0; r < kRounds; ++r) {
          const int mine = t * 1000 + r;
          AnnotatedFiber a(stacks, [&](Yield& yield) {
            mgr.SetValues({{key, mine}}, [&] {
              yield();
              EXPECT_EQ(IntValue(mgr, key), mine);
            });
          });
          AnnotatedFiber b(stacks, [&](Yield& yield) {
            EXPECT_EQ(mgr.GetValue(key), nullptr);
            yield();
            EXPECT_EQ(mgr.GetValue(key), nullptr);
          });
          a.Resume();
          b.Resume();
          EXPECT_EQ(IntValue(mgr, key), -t);
          a.Resume();
          b.Resume();
        }
      });
    });
  }
  for (auto& thread : threads) thread.join();
}

// ---------------------------------------------------------------------------
// Threads: exit and stack reuse.

// A thread's registration is removed when it exits; a new thread on the same
// stack memory starts with no id and no values, and gets its own.
void CheckThreadStackReuse(size_t offset) {
  ContextManager mgr(S());
  StackMemory memory(kThreadStack, offset);
  std::optional<uint64_t> first_id;
  RunThreadOnStack(memory.lo(), memory.size(), [&] {
    mgr.SetValues({{"k", 1}}, [&] {
      first_id = S().GetGoroutineId();
      EXPECT_TRUE(
          IsRegisteredStack(reinterpret_cast<void*>(ReadStackPointer())));
    });
    // Registered until the thread exits, not just during the scope.
    EXPECT_TRUE(IsRegisteredStack(memory.middle()));
  });
  ASSERT_TRUE(first_id.has_value());
  // Would be a stale registration if exit did not remove it.
  EXPECT_FALSE(IsRegisteredStack(memory.middle()));
  EXPECT_FALSE(IsRegisteredStack(memory.lo()));
  EXPECT_FALSE(IsRegisteredStack(memory.lo() + memory.size() - 16));

  RunThreadOnStack(memory.lo(), memory.size(), [&] {
    EXPECT_FALSE(
        IsRegisteredStack(reinterpret_cast<void*>(ReadStackPointer())));
    EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
    EXPECT_EQ(mgr.GetValue("k"), nullptr);
    mgr.SetValues({{"k", 2}}, [&] { EXPECT_EQ(IntValue(mgr, "k"), 2); });
  });
  EXPECT_FALSE(IsRegisteredStack(memory.middle()));
}

TEST(GoidStrategyTest, NewThreadOnAnExitedThreadsStackStartsFresh) {
  CheckThreadStackReuse(0);
}

TEST(GoidStrategyTest, NewThreadOnAnExitedThreadsUnalignedStackStartsFresh) {
  CheckThreadStackReuse(0x7f0);
}

// The memory target: a thread with an 8 MiB stack costs at most 2 KiB of
// table once registered (leaves and split nodes; a mid node, 64 KiB for
// every stack in an 8 GiB range, is counted apart). Fresh memory, so the
// table has nothing for it yet (unless the allocator hands back addresses an
// earlier test registered: then it costs less).
void CheckEightMiBThreadCost(size_t offset) {
  constexpr size_t kEightMiB = size_t{8} << 20;
  ContextManager mgr(S());
  StackMemory memory(kEightMiB, offset);
  StackTable& table = GlobalStackTable();
  auto shared_bytes = [&] {
    std::lock_guard<std::mutex> lock(table.mu());
    return std::pair(table.node_bytes() - table.mid_node_bytes(),
                     table.mid_node_bytes());
  };
  const auto [before, mid_before] = shared_bytes();
  size_t cost = 0;
  size_t mid_cost = 0;
  RunThreadOnStack(memory.lo(), memory.size(), [&] {
    mgr.SetValues({{"k", 1}}, [&] {
      EXPECT_TRUE(IsRegisteredStack(memory.middle()));
      const auto [after, mid_after] = shared_bytes();
      cost = after - before;
      mid_cost = mid_after - mid_before;
    });
  });
  EXPECT_LE(cost, 2048u);
  std::printf("8 MiB thread stack at offset %#zx: %zu bytes of table "
              "(+ %zu of new mid nodes)\n",
              offset, cost, mid_cost);
}

TEST(GoidStrategyTest, EightMiBThreadStackCostsAtMost2KB) {
  CheckEightMiBThreadCost(0);
  CheckEightMiBThreadCost(0x7f0);
}

// A thread that exits from the middle of a scope (pthread_exit unwinds) and
// leaves nothing behind for the next thread on its stack.
TEST(GoidStrategyTest, ThreadExitingMidScopeLeavesNothingBehind) {
  ContextManager mgr(S());
  StackMemory memory(kThreadStack);
  RunThreadOnStack(memory.lo(), memory.size(), [&] {
    mgr.SetValues({{"k", 1}}, [&] { pthread_exit(nullptr); });
  });
  EXPECT_FALSE(IsRegisteredStack(memory.middle()));
  RunThreadOnStack(memory.lo(), memory.size(), [&] {
    EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
    EXPECT_EQ(mgr.GetValue("k"), nullptr);
  });
}

// Default threads, one after another: glibc usually hands the second the
// first one's cached stack. Either way it sees nothing of the first.
TEST(GoidStrategyTest, CachedThreadStacksStartFresh) {
  ContextManager mgr(S());
  auto stack_of_this_thread = [] {
    pthread_attr_t attr;
    void* addr = nullptr;
    size_t size = 0;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    return addr;
  };
  void* first_stack = nullptr;
  void* second_stack = nullptr;
  std::thread([&] {
    first_stack = stack_of_this_thread();
    mgr.SetValues({{"k", 1}}, [] {});
  }).join();
  std::thread([&] {
    second_stack = stack_of_this_thread();
    EXPECT_EQ(S().GetGoroutineId(), std::nullopt);
    EXPECT_EQ(mgr.GetValue("k"), nullptr);
    EXPECT_FALSE(
        IsRegisteredStack(reinterpret_cast<void*>(ReadStackPointer())));
  }).join();
  ::testing::Test::RecordProperty("stack_reused", first_stack == second_stack);
}

// A thread_local destructor that runs after the strategy's own (the thread's
// stack is already unregistered) can still set and read values.
struct LateUser {
  ContextManager* mgr = nullptr;
  int* seen = nullptr;
  bool* registered_after = nullptr;
  ~LateUser() {
    if (mgr == nullptr) return;
    mgr->SetValues({{"late", 5}}, [&] { *seen = IntValue(*mgr, "late"); });
    *registered_after =
        IsRegisteredStack(reinterpret_cast<void*>(ReadStackPointer()));
  }
};

TEST(GoidStrategyTest, ThreadLocalDestructorsRunningLateCanStillSetValues) {
  ContextManager mgr(S());
  int seen = 0;
  bool registered_after = true;
  std::thread([&] {
    static thread_local LateUser late;  // constructed before the registration
    late.mgr = &mgr;
    late.seen = &seen;
    late.registered_after = &registered_after;
    mgr.SetValues({{"k", 1}}, [] {});  // registers; destroyed before `late`
  }).join();
  EXPECT_EQ(seen, 5);
  EXPECT_FALSE(registered_after);
}

// After fork(), the child's new threads may run on the stacks of the threads
// that did not survive the fork (glibc caches them): those registrations are
// gone, even for a thread that was in the middle of a scope.
TEST(GoidStrategyTest, ForkChildDropsTheRegistrationsOfDeadThreads) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan does not support starting threads after a "
                  "multithreaded fork";
#endif
  ContextManager mgr(S());
  std::mutex mu;
  std::condition_variable cv;
  bool inside = false, forked = false;
  void* thread_sp = nullptr;
  std::thread worker([&] {
    mgr.SetValues({{"k", 1}}, [&] {
      std::unique_lock<std::mutex> lock(mu);
      thread_sp = reinterpret_cast<void*>(ReadStackPointer());
      inside = true;
      cv.notify_all();
      cv.wait(lock, [&] { return forked; });
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return inside; });
  }
  mgr.SetValues({{"main", 1}}, [&] {
    ASSERT_TRUE(IsRegisteredStack(thread_sp));
    const pid_t pid = fork();
    if (pid == 0) {
      int failures = 0;
      if (IsRegisteredStack(thread_sp)) failures |= 1;
      // The forking thread keeps its registration and its values.
      if (IntValue(mgr, "main") != 1) failures |= 2;
      std::thread([&] {
        if (S().GetGoroutineId().has_value()) failures |= 4;
        if (mgr.GetValue("k") != nullptr) failures |= 8;
      }).join();
      _exit(failures);
    }
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    forked = true;
  }
  cv.notify_all();
  worker.join();
}

}  // namespace
}  // namespace gls
