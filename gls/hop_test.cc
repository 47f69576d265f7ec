// Snapshot::Run's hop onto a thread with no values of its own (a pool
// thread, a new thread), the common hop of a task. Under the default
// strategy thread_local the hop binds the frame's shared, read-only view (a
// pointer swap, no context leased), and the first thing inside that needs a
// context of its own (a SetValues, a guard, a goroutine id) copies the view
// into one from the pool. These tests check that everything a flow can do
// inside such a hop behaves as in any other Run, and that no flow sees
// another's values or ids; with the other default strategies (CI runs
// //gls/... with each) they check the same behaviour of the leased hop.
#include <atomic>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "boost/context/fiber.hpp"
#include "gls/gls.h"
#include "gls/internal/context.h"
#include "gtest/gtest.h"

namespace gls {
namespace {

// Whether the running flow reads a view: what the tests expect of the
// thread_local default strategy's hop, so that they are known to test it.
bool ReadsAView() { return internal::DefaultContextForRead()->is_view(); }

class HopTest : public ::testing::Test {
 protected:
  // A snapshot of one SetValues scope: one parentless frame, the hop's case.
  Snapshot Captured(int value) {
    return mgr_.SetValues({{key_, value}}, [] { return Capture(); });
  }
  const int* Read() const { return mgr_.GetValue(key_); }

  // Runs `fn` on a new thread (nothing bound there) and joins it.
  template <typename F>
  static void OnFreshThread(F&& fn) {
    std::thread(std::forward<F>(fn)).join();
  }

  ContextManager mgr_;
  const TypedKey<int> key_;
  const TypedKey<int> other_key_;
};

TEST_F(HopTest, ReadsCaptureAndNestedRunsSeeTheSnapshot) {
  const Snapshot snapshot = Captured(1);
  const Snapshot other = Captured(2);
  OnFreshThread([&] {
    snapshot.Run([&] {
      if constexpr (internal::kDefaultBindsViews) {
        EXPECT_TRUE(ReadsAView());
      }
      ASSERT_NE(Read(), nullptr);
      EXPECT_EQ(*Read(), 1);
      EXPECT_TRUE(Capture() == snapshot) << "a capture in the hop is the snapshot";
      snapshot.Run([&] { EXPECT_EQ(*Read(), 1); });
      other.Run([&] {
        ASSERT_NE(Read(), nullptr);
        EXPECT_EQ(*Read(), 2);
      });
      ASSERT_NE(Read(), nullptr);
      EXPECT_EQ(*Read(), 1) << "the hop's values are back after a nested Run";
      Snapshot().Run([&] { EXPECT_EQ(Read(), nullptr); });
      EXPECT_EQ(*Read(), 1);
    });
    EXPECT_EQ(Read(), nullptr);
    EXPECT_EQ(GetGoroutineId(), std::nullopt);
    EXPECT_EQ(DefaultStrategy().Current(), nullptr);
  });
}

TEST_F(HopTest, SetValuesInsideAHopAddsToTheSnapshotAndLeavesNothingBehind) {
  const Snapshot snapshot = Captured(1);
  // Warm up this thread's share of the pool, then count: every context a
  // hop materializes goes back.
  OnFreshThread([&] { snapshot.Run([&] { mgr_.SetValues({{other_key_, 0}}, [] {}); }); });
  const uint64_t created_before = internal::ContextPoolStatsForTesting().created;
  for (int round = 0; round < 200; ++round) {
    OnFreshThread([&] {
      Snapshot inner_capture;
      snapshot.Run([&] {
        mgr_.SetValues({{other_key_, round}}, [&] {
          if constexpr (internal::kDefaultBindsViews) {
            EXPECT_FALSE(ReadsAView()) << "a SetValues materializes the view";
          }
          ASSERT_NE(Read(), nullptr);
          EXPECT_EQ(*Read(), 1);
          ASSERT_NE(mgr_.GetValue(other_key_), nullptr);
          EXPECT_EQ(*mgr_.GetValue(other_key_), round);
          inner_capture = Capture();
        });
        EXPECT_EQ(mgr_.GetValue(other_key_), nullptr);
        ASSERT_NE(Read(), nullptr);
        EXPECT_EQ(*Read(), 1);
        EXPECT_TRUE(Capture() == snapshot);
        // A second SetValues in the same hop reuses what the first bound.
        mgr_.SetValues({{key_, 5}}, [&] { EXPECT_EQ(*Read(), 5); });
        EXPECT_EQ(*Read(), 1);
      });
      EXPECT_EQ(Read(), nullptr);
      EXPECT_EQ(DefaultStrategy().Current(), nullptr);
      // What was captured inside carries both values, anywhere.
      inner_capture.Run([&] {
        EXPECT_EQ(*Read(), 1);
        EXPECT_EQ(*mgr_.GetValue(other_key_), round);
      });
    });
  }
  // Threads come and go: each may leave one context in the pool, none is
  // lost, so a few more than before at most (not one per hop).
  EXPECT_LE(internal::ContextPoolStatsForTesting().created, created_before + 8);
}

TEST_F(HopTest, GoroutineIdsInConcurrentHopsOfOneSnapshotDiffer) {
  const Snapshot snapshot = Captured(1);
  constexpr int kThreads = 4;
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> inside{0};
    std::vector<uint64_t> ids(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        snapshot.Run([&] {
          const std::optional<uint64_t> id = GetGoroutineId();
          ASSERT_TRUE(id.has_value()) << "a hop with values has an id";
          // Every hop holds its id while the others take theirs.
          inside.fetch_add(1);
          while (inside.load() < kThreads) std::this_thread::yield();
          EXPECT_EQ(GetGoroutineId(), id) << "an id is stable within the hop";
          EXPECT_EQ(*Read(), 1);
          ids[t] = *id;
        });
        EXPECT_EQ(GetGoroutineId(), std::nullopt);
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), size_t{kThreads})
        << "round " << round;
  }
}

TEST_F(HopTest, GuardsInsideAHop) {
  if (!DefaultStrategy().CanAttach()) GTEST_SKIP() << "no guards under this strategy";
  const Snapshot snapshot = Captured(1);
  OnFreshThread([&] {
    snapshot.Run([&] {
      {
        ScopedValues guard(mgr_, {{key_, 7}});
        EXPECT_EQ(*Read(), 7);
      }
      EXPECT_EQ(*Read(), 1);
      {
        ScopedSnapshot nothing{Snapshot()};
        EXPECT_EQ(Read(), nullptr) << "an empty snapshot hides the hop's values";
      }
      EXPECT_EQ(*Read(), 1);
    });
    EXPECT_EQ(Read(), nullptr);
    EXPECT_EQ(DefaultStrategy().Current(), nullptr);
  });
}

TEST_F(HopTest, ThrowingOutOfAHopRestores) {
  const Snapshot snapshot = Captured(1);
  OnFreshThread([&] {
    EXPECT_THROW(snapshot.Run([]() -> void { throw std::runtime_error("in the hop"); }),
                 std::runtime_error);
    EXPECT_EQ(Read(), nullptr);
    EXPECT_THROW(snapshot.Run([&]() -> void {
                   mgr_.SetValues({{other_key_, 2}}, [] {});
                   throw std::runtime_error("after materializing");
                 }),
                 std::runtime_error);
    EXPECT_EQ(Read(), nullptr);
    EXPECT_EQ(mgr_.GetValue(other_key_), nullptr);
    EXPECT_EQ(DefaultStrategy().Current(), nullptr);
    snapshot.Run([&] { EXPECT_EQ(*Read(), 1); });
  });
}

// Many threads hop many requests' snapshots at once, each setting values
// inside: every read is its own request's.
TEST_F(HopTest, ConcurrentHopsOfManyRequestsNeverMix) {
  constexpr int kThreads = 4;
  constexpr int kRequests = 300;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRequests; ++r) {
        const int request = t * kRequests + r;
        const Snapshot snapshot = Captured(request);
        std::thread([&] {
          snapshot.Run([&] {
            if (Read() == nullptr || *Read() != request) wrong.fetch_add(1);
            if (r % 2 == 0) {
              mgr_.SetValues({{other_key_, request}}, [&] {
                if (*Read() != request || *mgr_.GetValue(other_key_) != request) {
                  wrong.fetch_add(1);
                }
              });
            }
            if (Read() == nullptr || *Read() != request) wrong.fetch_add(1);
          });
          if (Read() != nullptr) wrong.fetch_add(1);
        }).join();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Fibers switching inside a hop under the thread_local strategy, which
// does not follow fibers (docs/strategies.md): values may be wrong, memory
// must stay right. Fiber B runs inside fiber A's hop and switches back with
// its own scopes still open in the context its Run materialized from A's
// view; A's hop ends (the context is retired, A's frame pinned), A's
// snapshot goes, and B's scopes then end, restoring states that refer to
// A's frame. Without the pin that frame is freed first (asan reports it).
TEST_F(HopTest, FibersSwitchingInsideAHopUnderThreadLocalStayMemorySafe) {
  if constexpr (!internal::kDefaultBindsViews) {
    GTEST_SKIP() << "only the thread_local strategy binds views";
  }
  namespace ctx = boost::context;
  std::optional<Snapshot> a_snapshot = Captured(1);
  const Snapshot b_snapshot =
      mgr_.SetValues({{other_key_, 2}}, [] { return Capture(); });
  OnFreshThread([&] {
    bool b_finished = false;
    ctx::fiber b{[&](ctx::fiber&& a) {
      b_snapshot.Run([&] {
        mgr_.SetValues({{key_, 3}}, [&] { a = std::move(a).resume(); });
      });
      b_finished = true;
      return std::move(a);
    }};
    a_snapshot->Run([&] { b = std::move(b).resume(); });
    a_snapshot.reset();
    b = std::move(b).resume();
    EXPECT_TRUE(b_finished);
    EXPECT_EQ(Read(), nullptr);
    EXPECT_EQ(DefaultStrategy().Current(), nullptr);
  });
}

}  // namespace
}  // namespace gls
