// The allocation figures gls/coro.h states, counted with a replacement
// operator new (//gls/testing:counting_allocator): a gls::Task's frame, one
// resumption frame per suspension on an awaitable that is not a gls::Task,
// nothing for awaiting a gls::Task beyond its frame, and one control block
// for gls::Spawn. Counted in a scope, after a warm-up (the first scope or Run
// on a thread may grow its context; see gls/snapshot.h).
#include <coroutine>
#include <cstdint>
#include <string>

#include "gls/coro.h"
#include "gls/gls.h"
#include "gls/testing/counting_allocator.h"
#include "gtest/gtest.h"

namespace gls {
namespace {

using ::gls::testing::AllocationsDuring;

ContextManager& Manager() {
  static ContextManager* mgr = new ContextManager();
  return *mgr;
}
const ContextKey kKey = GenSym();

// Resumes the awaiting coroutine at once, inside await_suspend: a real
// suspension (through a resumption frame) with no thread or queue involved.
struct ResumeAtOnce {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { h.resume(); }
  int await_resume() const noexcept { return 1; }
};

Task<int> Suspends(int times) {
  int sum = 0;
  for (int i = 0; i < times; ++i) sum += co_await ResumeAtOnce{};
  co_return sum + (Manager().GetValue(kKey) != nullptr ? 1000 : 0);
}

Task<int> Leaf(int i) { co_return i; }

Task<int> AwaitsLeaves(int n) {
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await Leaf(1);
  co_return sum;
}

template <typename F>
int64_t AllocationsInAScope(F&& fn) {
  int64_t n = -1;
  Manager().SetValues({{kKey, 1}}, [&] {
    fn();  // warm-up
    n = AllocationsDuring(fn);
  });
  return n;
}

TEST(CoroAllocTest, EachForeignSuspensionAllocatesOneResumptionFrame) {
  int result = 0;
  EXPECT_EQ(AllocationsInAScope([&] { result = SyncWait(Suspends(0)); }), 1);
  EXPECT_EQ(result, 1000);  // it ran in the scope's values
  EXPECT_EQ(AllocationsInAScope([&] { result = SyncWait(Suspends(10)); }), 1 + 10);
  EXPECT_EQ(result, 1010);
}

TEST(CoroAllocTest, AwaitingATaskAllocatesOnlyItsFrame) {
  int result = 0;
  EXPECT_EQ(AllocationsInAScope([&] { result = SyncWait(AwaitsLeaves(20)); }),
            1 + 20);
  EXPECT_EQ(result, 20);
}

TEST(CoroAllocTest, SpawnAllocatesOneControlBlockBeyondTheTask) {
  auto run_here = [](auto start) { start(); };
  EXPECT_EQ(AllocationsInAScope([&] { Spawn(run_here, Suspends(0)); }), 1 + 1);
  EXPECT_EQ(AllocationsInAScope([&] { Spawn(run_here, Suspends(5)); }), 1 + 1 + 5);
}

}  // namespace
}  // namespace gls
