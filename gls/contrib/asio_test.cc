// gls::asio::Propagating (gls/contrib/asio.h) under every strategy: post,
// dispatch, defer, timer and socket completions, and co_spawn'ed coroutines
// after every resumption, on an io_context run by several threads and on an
// asio::thread_pool; threads see no values between handlers; handlers that
// never run release their values.
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it
#include <vector>

#include "boost/asio/bind_executor.hpp"
#include "boost/asio/co_spawn.hpp"
#include "boost/asio/defer.hpp"
#include "boost/asio/detached.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/this_coro.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/asio/write.hpp"
#include "gls/contrib/asio.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

namespace net = boost::asio;
using net::ip::tcp;
using namespace std::chrono_literals;

// Records what each handler saw against what it should have seen; thread-safe.
class Checker {
 public:
  void Expect(const std::string& want, const std::string& got,
              const char* where) {
    checks_.fetch_add(1, std::memory_order_relaxed);
    if (want == got) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.size() < 10) {
      failures_.push_back(std::string(where) + ": want " + want + ", got " + got);
    }
    ++failure_count_;
  }
  int checks() const { return checks_.load(); }
  std::string Report() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out = std::to_string(failure_count_) + " wrong reads";
    for (const auto& f : failures_) out += "\n  " + f;
    return out;
  }
  bool ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_count_ == 0;
  }

 private:
  std::atomic<int> checks_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  int failure_count_ = 0;
};

class AsioTest : public ::testing::TestWithParam<const Strategy*> {
 public:
  // What the test's manager sees here, for coroutines (which cannot be
  // members of the fixture).
  std::string ReadForCoroutine() const { return Read(); }

 protected:
  AsioTest() : mgr_(*GetParam()) {}

  std::string Read() const {
    const Value* v = mgr_.GetValue(key_);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }
  template <typename F>
  void InRequest(const std::string& id, F&& fn) {
    mgr_.SetValues({{key_, id}}, std::forward<F>(fn));
  }
  static void RunThreads(net::io_context& io, int threads) {
    std::vector<std::thread> runners;
    for (int i = 0; i < threads; ++i) runners.emplace_back([&] { io.run(); });
    for (auto& t : runners) t.join();
  }

  ContextManager mgr_;
  const ContextKey key_ = GenSym();
  Checker checker_;
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

INSTANTIATE_TEST_SUITE_P(Strategies, AsioTest,
                         ::testing::Values(&ThreadLocalStrategy(),
                                           &GoidStrategy(),
                                           &StackTagStrategy()),
                         StrategyName);

TEST_P(AsioTest, PostDispatchDeferSeeTheValuesWhereTheyWereCalled) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto guard = net::make_work_guard(io);
  std::vector<std::thread> runners;
  for (int i = 0; i < 4; ++i) runners.emplace_back([&] { io.run(); });
  constexpr int kRequests = 200;
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = "req-" + std::to_string(i);
    InRequest(id, [&] {
      net::post(ex, [&, id] {
        checker_.Expect(id, Read(), "post");
        // From inside a handler: the handler's values are the caller's.
        net::dispatch(ex, [&, id] {
          checker_.Expect(id, Read(), "dispatch");
          net::defer(ex, [&, id] {
            checker_.Expect(id, Read(), "defer");
            // A nested scope inside a handler, posted from: the inner values.
            InRequest(id + "/sub", [&] {
              net::post(ex, [&, id] {
                checker_.Expect(id + "/sub", Read(), "post from nested scope");
                done.fetch_add(1);
              });
            });
          });
        });
      });
      // Unwrapped: sees the running thread's values, none.
      net::post(io, [&] { checker_.Expect("none", Read(), "plain post"); });
    });
  }
  guard.reset();
  for (auto& t : runners) t.join();
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(checker_.checks(), kRequests * 5);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, DispatchFromTheRunningThreadRunsInline) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  bool inline_ran = false;
  net::post(ex, [&] {
    InRequest("outer", [&] {
      net::dispatch(ex, [&] {
        inline_ran = true;
        checker_.Expect("outer", Read(), "inline dispatch");
      });
      EXPECT_TRUE(inline_ran);
      checker_.Expect("outer", Read(), "after inline dispatch");
    });
  });
  io.run();
  EXPECT_TRUE(inline_ran);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, TimerHandlersSeeTheValuesWhereTheWaitStarted) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  constexpr int kTimers = 100;
  // Timers made outside every scope; each wait starts inside its request.
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < kTimers; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(ex));
  }
  for (int i = 0; i < kTimers; ++i) {
    const std::string id = "timer-" + std::to_string(i);
    InRequest(id, [&] {
      timers[i]->expires_after(std::chrono::milliseconds(i % 7));
      timers[i]->async_wait([&, id](boost::system::error_code ec) {
        EXPECT_FALSE(ec);
        checker_.Expect(id, Read(), "timer");
      });
    });
  }
  // A timer on the plain executor: its handler sees none.
  net::steady_timer plain(io, 1ms);
  InRequest("not-carried", [&] {
    plain.async_wait([&](boost::system::error_code) {
      checker_.Expect("none", Read(), "plain timer");
    });
  });
  RunThreads(io, 4);
  EXPECT_EQ(checker_.checks(), kTimers + 1);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, SocketHandlersSeeTheValuesWhereTheOperationStarted) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  tcp::acceptor acceptor(ex, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();
  constexpr int kConnections = 16;
  std::atomic<int> echoed{0};

  // Server: accepts every connection in scope "server", echoes 5 bytes.
  std::function<void()> accept_next;
  int accepted = 0;
  accept_next = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, tcp::socket peer) {
      ASSERT_FALSE(ec) << ec.message();
      checker_.Expect("server", Read(), "accept");
      auto socket = std::make_shared<tcp::socket>(std::move(peer));
      auto buffer = std::make_shared<std::array<char, 5>>();
      net::async_read(*socket, net::buffer(*buffer),
                      [&, socket, buffer](boost::system::error_code read_ec, size_t) {
                        ASSERT_FALSE(read_ec) << read_ec.message();
                        checker_.Expect("server", Read(), "server read");
                        net::async_write(*socket, net::buffer(*buffer),
                                         [&, socket, buffer](
                                             boost::system::error_code, size_t) {
                                           checker_.Expect("server", Read(),
                                                           "server write");
                                         });
                      });
      if (++accepted < kConnections) accept_next();
    });
  };
  InRequest("server", [&] { accept_next(); });

  // Clients: each connection's operations start in its own request.
  std::vector<std::shared_ptr<tcp::socket>> clients;
  for (int i = 0; i < kConnections; ++i) {
    auto socket = std::make_shared<tcp::socket>(ex);
    clients.push_back(socket);
    const std::string id = "conn-" + std::to_string(i);
    InRequest(id, [&] {
      socket->async_connect(endpoint, [&, socket, id](boost::system::error_code ec) {
        ASSERT_FALSE(ec) << ec.message();
        checker_.Expect(id, Read(), "connect");
        auto buffer = std::make_shared<std::array<char, 5>>(
            std::array<char, 5>{'h', 'e', 'l', 'l', 'o'});
        net::async_write(*socket, net::buffer(*buffer),
                         [&, socket, buffer, id](boost::system::error_code write_ec,
                                                 size_t) {
          ASSERT_FALSE(write_ec) << write_ec.message();
          checker_.Expect(id, Read(), "client write");
          net::async_read(*socket, net::buffer(*buffer),
                          [&, socket, buffer, id](boost::system::error_code read_ec,
                                                  size_t) {
            ASSERT_FALSE(read_ec) << read_ec.message();
            checker_.Expect(id, Read(), "client read");
            echoed.fetch_add(1);
          });
        });
      });
    });
  }
  RunThreads(io, 3);
  EXPECT_EQ(echoed.load(), kConnections);
  EXPECT_EQ(checker_.checks(), kConnections * 6);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// A coroutine that suspends in several ways and checks its values after
// every resumption.
net::awaitable<void> Session(AsioTest* test, std::string id, Checker* checker,
                             std::atomic<int>* done) {
  auto ex = co_await net::this_coro::executor;
  checker->Expect(id, test->ReadForCoroutine(), "coroutine start");
  net::steady_timer timer(ex);
  for (int round = 0; round < 5; ++round) {
    timer.expires_after(std::chrono::microseconds(round * 100));
    co_await timer.async_wait(net::use_awaitable);
    checker->Expect(id, test->ReadForCoroutine(), "after timer");
    co_await net::post(ex, net::use_awaitable);
    checker->Expect(id, test->ReadForCoroutine(), "after post");
  }
  done->fetch_add(1);
}

TEST_P(AsioTest, CoSpawnedCoroutinesSeeTheirValuesAfterEveryResumption) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  constexpr int kCoroutines = 50;
  std::atomic<int> done{0};
  for (int i = 0; i < kCoroutines; ++i) {
    const std::string id = "coro-" + std::to_string(i);
    InRequest(id, [&] {
      net::co_spawn(ex, Session(this, id, &checker_, &done), net::detached);
    });
  }
  // Plain handlers interleaved with the coroutines see none.
  for (int i = 0; i < 20; ++i) {
    net::post(io, [&] { checker_.Expect("none", Read(), "between coroutines"); });
  }
  RunThreads(io, 4);
  EXPECT_EQ(done.load(), kCoroutines);
  EXPECT_EQ(checker_.checks(), kCoroutines * 11 + 20);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, ThreadPoolPostAndCoSpawn) {
  net::thread_pool pool(4);
  auto ex = gls::asio::Propagating(pool.get_executor());
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) {
    const std::string id = "pool-" + std::to_string(i);
    InRequest(id, [&] {
      net::post(ex, [&, id] {
        checker_.Expect(id, Read(), "thread_pool post");
        done.fetch_add(1);
      });
      if (i % 5 == 0) {
        net::co_spawn(ex, Session(this, id, &checker_, &done), net::detached);
      }
      net::post(pool, [&] { checker_.Expect("none", Read(), "plain pool post"); });
    });
  }
  pool.join();
  EXPECT_EQ(done.load(), 100 + 20);
  EXPECT_EQ(checker_.checks(), 100 * 2 + 20 * 11);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, StrandKeepsOrderAndValues) {
  net::io_context io;
  auto ex = gls::asio::Propagating(net::make_strand(io));
  std::vector<int> order;
  for (int i = 0; i < 50; ++i) {
    InRequest("s" + std::to_string(i), [&] {
      net::post(ex, [&, i] {
        order.push_back(i);
        checker_.Expect("s" + std::to_string(i), Read(), "strand");
      });
    });
  }
  RunThreads(io, 3);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, BoundHandlerKeepsItsAssociatedExecutor) {
  net::io_context io;
  auto strand = net::make_strand(io);
  bool ran = false;
  InRequest("bound", [&] {
    auto handler = net::bind_executor(strand, [&] {
      ran = true;
      checker_.Expect("bound", Read(), "bound handler");
      EXPECT_TRUE(strand.running_in_this_thread());
    });
    net::post(io, gls::Bind(std::move(handler)));
  });
  io.run();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

TEST_P(AsioTest, HandlersDestroyedUnrunReleaseTheirValues) {
  auto payload = std::make_shared<int>(1);
  const ContextKey payload_key = GenSym();
  bool ran = false;
  {
    net::io_context io;
    auto ex = gls::asio::Propagating(io.get_executor());
    net::steady_timer timer(ex, 1h);
    mgr_.SetValues({{payload_key, payload}}, [&] {
      net::post(ex, [&] { ran = true; });
      timer.async_wait([&](boost::system::error_code) { ran = true; });
      net::co_spawn(ex, Session(this, "never", &checker_, nullptr), net::detached);
    });
    EXPECT_GT(payload.use_count(), 1);
    // io_context destroyed without running: every handler is destroyed unrun.
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_EQ(checker_.checks(), 0);  // the coroutine body never started
}

}  // namespace
}  // namespace gls
