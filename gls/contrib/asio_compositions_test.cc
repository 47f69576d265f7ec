// gls::asio::Propagating (gls/contrib/asio.h) in the compositions servers
// write, under every strategy: where one piece of Asio machinery runs work
// submitted by many requests, or runs it after the submitting call has
// returned, every piece of work sees exactly its own request's values.
// Each test runs at least 100 concurrent requests on at least 4 threads
// and checks every handler: bind_executor, dispatch that runs inline,
// any_io_executor erasure, async_read/async_write and their intermediate
// steps, async_compose, co_spawn onto a shared strand, asio::thread_pool,
// use_future, timers cancelled by another request, work guards, and the
// compositions with no gls type in them (which carry nothing).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it
#include <vector>

#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/co_spawn.hpp"
#include "boost/asio/compose.hpp"
#include "boost/asio/defer.hpp"
#include "boost/asio/detached.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/io_context_strand.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/this_coro.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/asio/use_future.hpp"
#include "boost/asio/write.hpp"
#include "gls/contrib/asio.h"
#include "gls/contrib/asio_test_support.h"
#include "gls/gls.h"
#include "gtest/gtest.h"

namespace gls {
namespace {

namespace net = boost::asio;
using net::ip::tcp;
using asio_testing::AsioFlowTest;
using asio_testing::Checker;
using asio_testing::StrandSection;
using namespace std::chrono_literals;

constexpr int kRequests = 100;
constexpr int kThreads = 4;

std::string Id(const char* prefix, int i) {
  return prefix + std::string("-") + std::to_string(i);
}

using AsioCompositionsTest = AsioFlowTest;
GLS_INSTANTIATE_FOR_EVERY_STRATEGY(AsioCompositionsTest);

// bind_executor: the executor a handler is bound to runs it, and decides
// what it sees. Bound to a strand made from the wrapper, or to the wrapper,
// a handler of an operation on a plain I/O object sees the values where the
// operation started; bound to a plain strand, a handler of an operation on
// a wrapped I/O object sees none (nothing in the handler's executor carries
// values; gls::Bind(handler) would).
TEST_P(AsioCompositionsTest, BindExecutorDecidesWhatTheHandlerSees) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  auto plain_strand = net::make_strand(io.get_executor());
  StrandSection section;
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    net::post(io, [&, i] {
      const std::string id = Id("bind", i);
      InRequest(id, [&] {
        auto plain_timer = std::make_shared<net::steady_timer>(
            io.get_executor(), std::chrono::milliseconds(i % 3));
        plain_timer->async_wait(net::bind_executor(
            shared, [&, id, plain_timer](boost::system::error_code) {
              auto entered = section.Enter();
              EXPECT_TRUE(shared.running_in_this_thread());
              checker_.Expect(id, Read(), "plain timer, bound to shared strand");
              done.fetch_add(1);
            }));
        auto plain_timer2 = std::make_shared<net::steady_timer>(
            io.get_executor(), std::chrono::milliseconds(i % 4));
        plain_timer2->async_wait(net::bind_executor(
            ex, [&, id, plain_timer2](boost::system::error_code) {
              checker_.Expect(id, Read(), "plain timer, bound to the wrapper");
              done.fetch_add(1);
            }));
        auto wrapped_timer = std::make_shared<net::steady_timer>(
            ex, std::chrono::milliseconds(i % 5));
        wrapped_timer->async_wait(net::bind_executor(
            plain_strand, [&, wrapped_timer](boost::system::error_code) {
              checker_.Expect("none", Read(),
                              "wrapped timer, bound to a plain strand");
              done.fetch_add(1);
            }));
        // Posted to the plain io_context, bound to the shared strand.
        net::post(io, net::bind_executor(shared, [&, id] {
                    auto entered = section.Enter();
                    checker_.Expect(id, Read(), "plain post, bound to strand");
                    done.fetch_add(1);
                  }));
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(done.load(), kRequests * 4);
  EXPECT_EQ(section.overlaps(), 0);
  EXPECT_EQ(checker_.checks(), kRequests * 4);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// dispatch runs the function inline when the caller is already where the
// executor would run it (a handler on the io_context, a handler on the
// strand): it runs in the caller's values, those of a nested scope if the
// call is made in one; the caller's values are intact after it.
TEST_P(AsioCompositionsTest, DispatchThatRunsInlineSeesTheCallersValues) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  StrandSection section;
  std::atomic<int> inline_runs{0};
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = Id("dispatch", i);
    InRequest(id, [&] {
      // From a thread that is not running the io_context: queued.
      net::dispatch(ex, [&, id] {
        checker_.Expect(id, Read(), "dispatch from outside, queued");
        bool ran = false;
        net::dispatch(ex, [&, id] {
          ran = true;
          checker_.Expect(id, Read(), "dispatch inside a handler");
        });
        if (ran) inline_runs.fetch_add(1);
        InRequest(id + "/sub", [&] {
          bool sub_ran = false;
          net::dispatch(ex, [&, id] {
            sub_ran = true;
            checker_.Expect(id + "/sub", Read(),
                            "dispatch inside a handler, nested scope");
          });
          if (sub_ran) inline_runs.fetch_add(1);
        });
        checker_.Expect(id, Read(), "handler after its inline dispatches");
        net::post(shared, [&, id] {
          auto entered = section.Enter();
          bool strand_ran = false;
          net::dispatch(shared, [&, id] {
            auto inner = section.Enter();
            strand_ran = true;
            checker_.Expect(id, Read(), "dispatch inside the strand");
          });
          if (strand_ran) inline_runs.fetch_add(1);
          checker_.Expect(id, Read(), "strand handler after its dispatch");
        });
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(inline_runs.load(), kRequests * 3);
  EXPECT_EQ(section.overlaps(), 0);
  EXPECT_EQ(checker_.checks(), kRequests * 6);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// A coroutine that checks its values after every kind of resumption; on a
// strand, that each of its segments runs on the strand, alone.
template <typename Strand>
net::awaitable<void> Hopper(AsioFlowTest* test, std::string id,
                            const Strand* strand, StrandSection* section,
                            std::atomic<int>* done) {
  auto ex = co_await net::this_coro::executor;
  auto check = [&](const char* where) {
    test->checker().Expect(id, test->Read(), where);
    if (strand != nullptr) {
      auto entered = section->Enter();
      EXPECT_TRUE(strand->running_in_this_thread()) << where;
    }
  };
  check("coroutine start");
  net::steady_timer timer(ex);
  for (int round = 0; round < 4; ++round) {
    timer.expires_after(std::chrono::microseconds(round * 150));
    co_await timer.async_wait(net::use_awaitable);
    check("after a timer");
    co_await net::post(ex, net::use_awaitable);
    check("after a post");
    co_await net::dispatch(ex, net::use_awaitable);
    check("after a dispatch");
  }
  done->fetch_add(1);
}
constexpr int kHopperChecks = 1 + 4 * 3;

// any_io_executor: the wrapper erased into Asio's polymorphic executor keeps
// its behaviour for posts, dispatch, defer, timers and co_spawn; so does a
// strand made from the wrapper and then erased.
TEST_P(AsioCompositionsTest, ErasedIntoAnyIoExecutor) {
  net::io_context io;
  net::any_io_executor erased = gls::asio::Propagating(io.get_executor());
  net::any_io_executor erased_strand =
      net::make_strand(gls::asio::Propagating(io.get_executor()));
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    net::post(io, [&, i] {
      const std::string id = Id("any", i);
      InRequest(id, [&] {
        net::post(erased, [&, id] {
          checker_.Expect(id, Read(), "post to any_io_executor");
          net::dispatch(erased, [&, id] {
            checker_.Expect(id, Read(), "dispatch to any_io_executor");
          });
          net::defer(erased, [&, id] {
            checker_.Expect(id, Read(), "defer to any_io_executor");
          });
        });
        net::post(erased_strand, [&, id] {
          checker_.Expect(id, Read(), "post to erased strand");
        });
        auto timer = std::make_shared<net::steady_timer>(
            erased, std::chrono::milliseconds(i % 4));
        timer->async_wait([&, id, timer](boost::system::error_code) {
          checker_.Expect(id, Read(), "timer on any_io_executor");
        });
        net::co_spawn(erased,
                      Hopper<net::strand<net::io_context::executor_type>>(
                          this, id, nullptr, nullptr, &done),
                      net::detached);
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(checker_.checks(), kRequests * (5 + kHopperChecks));
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// A loopback TCP connection: two connected sockets with the given
// executors.
template <typename Ex1, typename Ex2>
std::pair<tcp::socket, tcp::socket> ConnectedPair(tcp::acceptor& acceptor,
                                                  const Ex1& ex1,
                                                  const Ex2& ex2) {
  tcp::socket client(ex1);
  client.connect(acceptor.local_endpoint());
  tcp::socket server(ex2);
  acceptor.accept(server);
  return {std::move(client), std::move(server)};
}

// async_write and async_read run as many intermediate steps as they need;
// the completion condition is called at each one (from the step's handler)
// and limits each step to 4 KB, so each operation on 64 KB has at least 16.
// Every step sees the values where the operation started: writers on the
// wrapper, readers on one strand shared by all connections.
TEST_P(AsioCompositionsTest, AsyncReadAndWriteStepsSeeTheirOperationsValues) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  constexpr std::size_t kBytes = 64 * 1024;
  constexpr std::size_t kStep = 4 * 1024;
  struct Connection {
    tcp::socket writer;
    tcp::socket reader;
    std::vector<char> out = std::vector<char>(kBytes, 'x');
    std::vector<char> in = std::vector<char>(kBytes);
  };
  std::vector<std::unique_ptr<Connection>> connections;
  for (int i = 0; i < kRequests; ++i) {
    auto [writer, reader] = ConnectedPair(acceptor, ex, shared);
    connections.push_back(std::unique_ptr<Connection>(
        new Connection{std::move(writer), std::move(reader)}));
  }
  StrandSection section;
  std::atomic<int> write_steps{0}, read_steps{0}, completed{0};
  for (int i = 0; i < kRequests; ++i) {
    Connection* c = connections[i].get();
    net::post(io, [&, i, c] {
      const std::string id = Id("io", i);
      InRequest(id, [&] {
        net::async_write(
            c->writer, net::buffer(c->out),
            [&, id](boost::system::error_code ec, std::size_t n) -> std::size_t {
              write_steps.fetch_add(1);
              checker_.Expect(id, Read(), "async_write step");
              return ec ? 0 : std::min(kStep, kBytes - n);
            },
            [&, id](boost::system::error_code ec, std::size_t n) {
              EXPECT_FALSE(ec) << ec.message();
              EXPECT_EQ(n, kBytes);
              checker_.Expect(id, Read(), "async_write handler");
              completed.fetch_add(1);
            });
        net::async_read(
            c->reader, net::buffer(c->in),
            [&, id](boost::system::error_code ec, std::size_t n) -> std::size_t {
              read_steps.fetch_add(1);
              checker_.Expect(id, Read(), "async_read step");
              return ec ? 0 : std::min(kStep, kBytes - n);
            },
            [&, id](boost::system::error_code ec, std::size_t n) {
              auto entered = section.Enter();
              EXPECT_FALSE(ec) << ec.message();
              EXPECT_EQ(n, kBytes);
              checker_.Expect(id, Read(), "async_read handler on the strand");
              completed.fetch_add(1);
            });
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(completed.load(), 2 * kRequests);
  // 64 KB in steps of at most 4 KB: the condition is called when the
  // operation starts and after each step but the last, 16 times at least,
  // 15 of them from intermediate handlers.
  EXPECT_GE(write_steps.load(), kRequests * 16);
  EXPECT_GE(read_steps.load(), kRequests * 16);
  EXPECT_EQ(section.overlaps(), 0);
  EXPECT_EQ(checker_.checks(),
            write_steps.load() + read_steps.load() + 2 * kRequests);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// An operation written with async_compose: it waits on its timer, posts to
// itself, waits again, and completes; each step checks its values.
template <typename Timer, typename Token>
auto AsyncThreeSteps(Timer& timer, AsioFlowTest* test, std::string id,
                     Token&& token) {
  enum class Step { kStart, kAfterWait, kAfterPost, kAfterSecondWait };
  return net::async_compose<Token, void(boost::system::error_code, int)>(
      [&timer, test, id, step = Step::kStart](
          auto& self, boost::system::error_code ec = {}) mutable {
        if (ec) return self.complete(ec, 0);
        switch (step) {
          case Step::kStart:
            step = Step::kAfterWait;
            test->checker().Expect(id, test->Read(), "async_compose start");
            timer.expires_after(1ms);
            return timer.async_wait(std::move(self));
          case Step::kAfterWait:
            step = Step::kAfterPost;
            test->checker().Expect(id, test->Read(), "async_compose after wait");
            return net::post(std::move(self));
          case Step::kAfterPost:
            step = Step::kAfterSecondWait;
            test->checker().Expect(id, test->Read(), "async_compose after post");
            timer.expires_after(0ms);
            return timer.async_wait(std::move(self));
          case Step::kAfterSecondWait:
            test->checker().Expect(id, test->Read(),
                                   "async_compose after second wait");
            return self.complete(ec, 3);
        }
      },
      token, timer);
}

// async_compose over timers on the wrapper, and over timers on one strand
// shared by every request.
TEST_P(AsioCompositionsTest, AsyncComposeStepsSeeTheirOperationsValues) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < 2 * kRequests; ++i) {
    timers.push_back(i % 2 == 0 ? std::make_unique<net::steady_timer>(ex)
                                : std::make_unique<net::steady_timer>(shared));
  }
  std::atomic<int> done{0};
  for (int i = 0; i < 2 * kRequests; ++i) {
    net::post(io, [&, i] {
      const std::string id = Id(i % 2 == 0 ? "compose" : "compose-strand", i);
      InRequest(id, [&] {
        AsyncThreeSteps(*timers[i], this, id,
                        [&, id](boost::system::error_code ec, int steps) {
                          EXPECT_FALSE(ec) << ec.message();
                          EXPECT_EQ(steps, 3);
                          checker_.Expect(id, Read(), "async_compose handler");
                          done.fetch_add(1);
                        });
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(done.load(), 2 * kRequests);
  EXPECT_EQ(checker_.checks(), 2 * kRequests * 5);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// Coroutines of many requests co_spawn'ed onto one strand, hopping through
// timers, posts and dispatches: each sees its own values after every
// resumption, on the strand, alone; the completion handler sees the values
// where co_spawn was called.
TEST_P(AsioCompositionsTest, CoSpawnOntoASharedStrand) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  StrandSection section;
  std::atomic<int> done{0}, completions{0};
  for (int i = 0; i < kRequests; ++i) {
    net::post(io, [&, i] {
      const std::string id = Id("coro", i);
      InRequest(id, [&] {
        net::co_spawn(shared,
                      Hopper(this, id, &shared, &section, &done),
                      [&, id](std::exception_ptr e) {
                        EXPECT_FALSE(e);
                        checker_.Expect(id, Read(), "co_spawn completion");
                        completions.fetch_add(1);
                      });
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(completions.load(), kRequests);
  EXPECT_EQ(section.overlaps(), 0);
  EXPECT_EQ(checker_.checks(), kRequests * (kHopperChecks + 1));
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// asio::thread_pool: posts to the wrapped pool executor, dispatch inline on
// a pool thread, a strand over it shared by every request, and coroutines
// co_spawn'ed onto that strand.
TEST_P(AsioCompositionsTest, ThreadPoolAndASharedStrandOverIt) {
  net::thread_pool pool(kThreads);
  auto ex = gls::asio::Propagating(pool.get_executor());
  auto shared = net::make_strand(ex);
  StrandSection section;
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    net::post(pool, [&, i] {
      const std::string id = Id("pool", i);
      InRequest(id, [&] {
        net::post(ex, [&, id] {
          checker_.Expect(id, Read(), "pool post");
          bool ran = false;
          net::dispatch(ex, [&, id] {
            ran = true;
            checker_.Expect(id, Read(), "pool dispatch inside a handler");
          });
          checker_.Expect("inline", ran ? "inline" : "queued",
                          "pool dispatch runs inline");
        });
        net::post(shared, [&, id] {
          auto entered = section.Enter();
          checker_.Expect(id, Read(), "post to the pool's shared strand");
        });
        if (i % 4 == 0) {
          net::co_spawn(shared, Hopper(this, id, &shared, &section, &done),
                        net::detached);
        }
        net::post(pool, [&] { checker_.Expect("none", Read(), "plain pool post"); });
      });
    });
  }
  // Every request and coroutine has been started once the counts say so;
  // join waits for what they started.
  pool.join();
  EXPECT_EQ(done.load(), kRequests / 4);
  EXPECT_EQ(section.overlaps(), 0);
  EXPECT_EQ(checker_.checks(), kRequests * 5 + (kRequests / 4) * kHopperChecks);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// use_future: a function given to use_future(fn) runs where the completion
// is delivered. Posted through the wrapper or the shared strand, that is in
// the poster's values. For an I/O operation it is use_future's own executor,
// inline on the thread that completes the operation, which is not a gls
// executor: fn sees that thread's values (none); use_future(gls::Bind(fn))
// carries the starter's. A plain use_future's future carries no values.
TEST_P(AsioCompositionsTest, UseFuture) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  auto guard = net::make_work_guard(io);
  std::vector<std::thread> runners;
  for (int i = 0; i < kThreads; ++i) runners.emplace_back([&] { io.run(); });

  struct Futures {
    std::string id;
    std::future<std::string> post, strand_post, timer, bound_timer;
    std::future<void> plain;
  };
  std::vector<Futures> futures(kRequests);
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < kRequests; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(ex));
  }
  auto read = [this] { return Read(); };
  auto read_ec = [this](boost::system::error_code) { return Read(); };
  gls::asio_testing::Countdown started;
  for (int i = 0; i < kRequests; ++i) {
    // Requests start on the io threads, concurrently.
    net::post(io, [&, i] {
      Futures& f = futures[i];
      f.id = Id("future", i);
      InRequest(f.id, [&] {
        f.post = net::post(ex, net::use_future(read));
        f.strand_post = net::post(shared, net::use_future(read));
        timers[i]->expires_after(std::chrono::milliseconds(i % 3));
        f.timer = timers[i]->async_wait(net::use_future(read_ec));
        f.plain = net::post(ex, net::use_future);
      });
      started.Add();
    });
  }
  if (!started.WaitFor(kRequests)) {
    io.stop();  // the runners return, so the test ends instead of hanging
    for (auto& t : runners) t.join();
    FAIL() << started.count() << " of " << kRequests
           << " requests started in 60 s";
  }
  for (int i = 0; i < kRequests; ++i) {
    Futures& f = futures[i];
    checker_.Expect(f.id, f.post.get(), "post(ex, use_future(fn))");
    checker_.Expect(f.id, f.strand_post.get(), "post(strand, use_future(fn))");
    checker_.Expect("none", f.timer.get(), "timer with use_future(fn)");
    f.plain.get();
  }
  // The same timers again, the function bound with gls::Bind.
  gls::asio_testing::Countdown restarted;
  for (int i = 0; i < kRequests; ++i) {
    net::post(io, [&, i] {
      Futures& f = futures[i];
      InRequest(f.id, [&] {
        timers[i]->expires_after(std::chrono::milliseconds(i % 3));
        f.bound_timer =
            timers[i]->async_wait(net::use_future(gls::Bind(read_ec)));
      });
      restarted.Add();
    });
  }
  if (!restarted.WaitFor(kRequests)) {
    io.stop();  // the runners return, so the test ends instead of hanging
    for (auto& t : runners) t.join();
    FAIL() << restarted.count() << " of " << kRequests
           << " requests started in 60 s";
  }
  for (int i = 0; i < kRequests; ++i) {
    checker_.Expect(futures[i].id, futures[i].bound_timer.get(),
                    "timer with use_future(gls::Bind(fn))");
  }
  guard.reset();
  for (auto& t : runners) t.join();
  EXPECT_EQ(checker_.checks(), kRequests * 4);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// A timer started by one request and cancelled by another: its handler runs
// (operation_aborted) in the values of the request that started the wait,
// never the canceller's. Timers on the wrapper and on a shared strand.
TEST_P(AsioCompositionsTest, TimerCancelledByAnotherRequest) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < 2 * kRequests; ++i) {
    timers.push_back(i % 2 == 0 ? std::make_unique<net::steady_timer>(ex)
                                : std::make_unique<net::steady_timer>(shared));
  }
  std::atomic<int> aborted{0};
  for (int i = 0; i < 2 * kRequests; ++i) {
    net::post(io, [&, i] {
      const std::string starter = Id("starter", i);
      InRequest(starter, [&] {
        timers[i]->expires_after(1h);
        timers[i]->async_wait([&, starter](boost::system::error_code ec) {
          EXPECT_EQ(ec, net::error::operation_aborted);
          checker_.Expect(starter, Read(), "cancelled timer's handler");
          aborted.fetch_add(1);
        });
      });
      // Another request, on whichever thread takes it, cancels the wait.
      net::post(io, [&, i] {
        const std::string canceller = Id("canceller", i);
        InRequest(canceller, [&] {
          EXPECT_EQ(timers[i]->cancel(), 1u);
          checker_.Expect(canceller, Read(), "canceller after cancel");
        });
      });
    });
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(aborted.load(), 2 * kRequests);
  EXPECT_EQ(checker_.checks(), 2 * kRequests * 2);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// Work guards: make_work_guard(ex) made in one request's scope keeps ex as
// it was given (Asio 1.74 keeps the executor and tracks the work with a
// separate one), so work posted through guard.get_executor() runs in the
// values of the flow that posts it: another request's, or none outside
// every scope. The same for a guard of the shared strand.
TEST_P(AsioCompositionsTest, WorkGuardExecutorsShowNoOneTheGuardMakersValues) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  auto [guard, strand_guard] = InRequest("guard-maker", [&] {
    return std::make_pair(net::make_work_guard(ex),
                          net::make_work_guard(shared));
  });
  EXPECT_FALSE(guard.get_executor().carries_snapshot());
  EXPECT_FALSE(strand_guard.get_executor().carries_snapshot());
  std::vector<std::thread> runners;
  for (int i = 0; i < kThreads; ++i) runners.emplace_back([&] { io.run(); });
  gls::asio_testing::Countdown done;
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = Id("guarded", i);
    // From the main thread and from io threads, concurrently.
    auto start = [&, id] {
      InRequest(id, [&] {
        net::post(guard.get_executor(), [&, id] {
          checker_.Expect(id, Read(), "post through the guard's executor");
          done.Add();
        });
        net::post(strand_guard.get_executor(), [&, id] {
          checker_.Expect(id, Read(), "post through the strand guard's");
          done.Add();
        });
      });
      net::post(guard.get_executor(), [&] {
        checker_.Expect("none", Read(), "post through the guard, no scope");
        done.Add();
      });
    };
    if (i % 2 == 0) {
      start();
    } else {
      net::post(io, start);
    }
  }
  if (!done.WaitFor(kRequests * 3)) {
    io.stop();  // the runners return, so the test ends instead of hanging
    for (auto& t : runners) t.join();
    FAIL() << done.count() << " of " << kRequests * 3
           << " handlers ran in 60 s";
  }
  guard.reset();
  strand_guard.reset();
  for (auto& t : runners) t.join();
  EXPECT_EQ(checker_.checks(), kRequests * 3);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

// What Asio uses to mark a started operation, an executor asked for
// outstanding_work.tracked, carries the values of the moment it was asked
// for: everything executed through it runs in them (that is how a
// completion runs in its starter's values). A strand made from such an
// executor carries nothing: it binds each function to its submitter.
TEST_P(AsioCompositionsTest, TrackedExecutorsCarryAndStrandsMadeFromThemDoNot) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  {
    // Both count as outstanding work while they exist: io.run() returns
    // after they are gone and what was submitted through them has run.
    auto tracked = InRequest("tracker", [&] {
      return net::prefer(ex, net::execution::outstanding_work.tracked);
    });
    EXPECT_TRUE(tracked.carries_snapshot());
    auto strand_of_tracked = net::make_strand(tracked);
    EXPECT_FALSE(strand_of_tracked.carries_snapshot());
    for (int i = 0; i < kRequests; ++i) {
      const std::string id = Id("other", i);
      InRequest(id, [&] {
        net::execution::execute(tracked, [&] {
          checker_.Expect("tracker", Read(), "executed through tracked");
        });
        net::post(strand_of_tracked, [&, id] {
          checker_.Expect(id, Read(), "strand made from a tracked executor");
        });
      });
    }
  }
  RunThreads(io, kThreads);
  EXPECT_EQ(checker_.checks(), kRequests * 2);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

net::awaitable<void> PlainCoroutine(AsioFlowTest* test, std::atomic<int>* done) {
  auto ex = co_await net::this_coro::executor;
  test->checker().Expect("none", test->Read(), "plain coroutine start");
  net::steady_timer timer(ex, 1ms);
  co_await timer.async_wait(net::use_awaitable);
  test->checker().Expect("none", test->Read(), "plain coroutine resumed");
  done->fetch_add(1);
}

// With no gls type in the composition, nothing is carried: work posted,
// dispatched, timed, stranded (strand, io_context::strand) or co_spawn'ed
// from inside a request's scope sees the running thread's values, none.
TEST_P(AsioCompositionsTest, CompositionsWithNoGlsTypeCarryNothing) {
  net::io_context io;
  net::thread_pool pool(2);
  auto plain_strand = net::make_strand(io.get_executor());
  net::io_context::strand legacy_strand(io);
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    net::post(io, [&, i] {
      InRequest(Id("plain", i), [&] {
        net::post(io, [&] { checker_.Expect("none", Read(), "plain post"); });
        net::post(plain_strand,
                  [&] { checker_.Expect("none", Read(), "plain strand"); });
        net::post(legacy_strand, [&] {
          checker_.Expect("none", Read(), "io_context::strand");
        });
        net::post(pool, [&] { checker_.Expect("none", Read(), "plain pool"); });
        auto timer = std::make_shared<net::steady_timer>(io, 1ms);
        timer->async_wait([&, timer](boost::system::error_code) {
          checker_.Expect("none", Read(), "plain timer");
        });
        net::co_spawn(io, PlainCoroutine(this, &done), net::detached);
      });
    });
  }
  RunThreads(io, kThreads);
  pool.join();
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(checker_.checks(), kRequests * 7);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

}  // namespace
}  // namespace gls
