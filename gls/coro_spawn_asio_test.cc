// gls::Spawn onto Boost.Asio executors, under every strategy. //gls:coro
// knows nothing of Asio: it finds `execute(fn)` on io_context's, strands',
// thread_pool's, any_io_executor's and gls::asio::Propagating's executors.
// Every spawned task sees exactly its own values after every resumption (it
// hops through Asio), and the io threads see none between handlers. Also
// what blocking.possibly means for a Spawn from an io thread (the start runs
// inline) and how blocking.never queues it.
#include <atomic>
#include <chrono>
#include <coroutine>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/require.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/thread_pool.hpp"
#include "gls/contrib/asio.h"
#include "gls/coro.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

namespace net = boost::asio;

class SpawnAsioTest : public ::testing::TestWithParam<const Strategy*> {
 public:
  std::string Read() const {
    const Value* v = mgr_.GetValue(key_);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }

  SpawnAsioTest() : mgr_(*GetParam()) {}
  ContextManager mgr_;
  const ContextKey key_ = GenSym();
  std::atomic<int> wrong_{0};
  std::atomic<int> finished_{0};
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, SpawnAsioTest,
                         ::testing::Values(&ThreadLocalStrategy(),
                                           &GoidStrategy(),
                                           &StackTagStrategy()),
                         StrategyName);

// co_await PostTo{ex}: resumes the task through net::post on `ex`.
template <typename Executor>
struct PostTo {
  Executor ex;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    net::post(ex, [h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

// Made by a function, not written as `co_await PostTo<E>{ex}`: GCC 12.2
// destroys an aggregate temporary with a non-trivial member twice when it is
// built inside a co_await operand (with or without gls).
template <typename Executor>
PostTo<Executor> HopTo(const Executor& ex) {
  return PostTo<Executor>{ex};
}

template <typename Executor>
Task<void> HopsThroughAsio(SpawnAsioTest* t, Executor ex, std::string id,
                           int hops) {
  if (t->Read() != id) t->wrong_.fetch_add(1);
  for (int i = 0; i < hops; ++i) {
    co_await HopTo(ex);
    if (t->Read() != id) t->wrong_.fetch_add(1);
  }
  t->finished_.fetch_add(1);
}

// Spawns `requests` tasks, each from its own request scope, onto
// `spawn_onto`; each hops through `hop_onto`. Plain handlers posted to
// `hop_onto` meanwhile must see no values.
template <typename SpawnOnto, typename HopOnto>
void SpawnRequests(SpawnAsioTest* t, const std::string& name,
                   SpawnOnto spawn_onto, HopOnto hop_onto, int requests) {
  for (int i = 0; i < requests; ++i) {
    const std::string id = name + "-" + std::to_string(i);
    t->mgr_.SetValues({{t->key_, id}}, [&] {
      Spawn(spawn_onto, HopsThroughAsio(t, hop_onto, id, 4));
    });
    net::post(hop_onto, [t] {
      if (t->Read() != "none") t->wrong_.fetch_add(1);
    });
  }
}

void RunThreads(net::io_context& io, int threads) {
  std::vector<std::thread> runners;
  for (int i = 0; i < threads; ++i) runners.emplace_back([&] { io.run(); });
  for (auto& r : runners) r.join();
}

TEST_P(SpawnAsioTest, SpawnOntoAnIoContextAStrandAndAnyIoExecutor) {
  net::io_context io;
  constexpr int kRequests = 100;
  auto ex = io.get_executor();
  auto strand = net::make_strand(io);
  net::any_io_executor erased = io.get_executor();
  // Spawned from the main thread, which is not running `io`: queued.
  SpawnRequests(this, "io", ex, ex, kRequests);
  SpawnRequests(this, "strand", strand, strand, kRequests);
  SpawnRequests(this, "any", erased, ex, kRequests);
  SpawnRequests(this, "propagating", gls::asio::Propagating(ex), ex, kRequests);
  RunThreads(io, 4);  // returns when every task has ended
  EXPECT_EQ(finished_.load(), 4 * kRequests);
  EXPECT_EQ(wrong_.load(), 0);
}

TEST_P(SpawnAsioTest, SpawnOntoAThreadPool) {
  net::thread_pool pool(4);
  constexpr int kRequests = 100;
  SpawnRequests(this, "pool", pool.get_executor(), pool.get_executor(), kRequests);
  pool.join();
  EXPECT_EQ(finished_.load(), kRequests);
  EXPECT_EQ(wrong_.load(), 0);
}

Task<void> EndsAtOnce(SpawnAsioTest* t, std::string* seen) {
  *seen = t->Read();
  co_return;
}

TEST_P(SpawnAsioTest, FromAnIoThreadTheStartRunsInlineUnlessBlockingNever) {
  net::io_context io;
  std::string inline_seen, queued_seen;
  bool inline_done_at_return = false, queued_done_at_return = true;
  SpawnedTask queued;
  net::post(io, [&] {
    mgr_.SetValues({{key_, std::string("inline")}}, [&] {
      // blocking.possibly (the default): execute runs the start here.
      SpawnedTask s = Spawn(io.get_executor(), EndsAtOnce(this, &inline_seen));
      inline_done_at_return = s.done();
    });
    mgr_.SetValues({{key_, std::string("queued")}}, [&] {
      queued = Spawn(net::require(io.get_executor(), net::execution::blocking.never),
                     EndsAtOnce(this, &queued_seen));
      queued_done_at_return = queued.done();
    });
  });
  io.run();
  EXPECT_TRUE(inline_done_at_return);
  EXPECT_FALSE(queued_done_at_return);
  EXPECT_TRUE(queued.done());
  EXPECT_EQ(inline_seen, "inline");
  EXPECT_EQ(queued_seen, "queued");
}

}  // namespace
}  // namespace gls
