// Asynchronous spdlog loggers and gls values (gls/contrib/spdlog.h), under
// every strategy: spdlog's own async logger prints no values; the gls async
// logger (MakeAsyncLogger, CreateAsync, AsyncFactory) writes every line, on
// the pool's worker threads, with exactly the values of its logging call,
// through one sink or several, with flush, both overflow policies (a dropped
// line releases its values), the logger or the pool gone while lines are
// queued, and bad input rejected.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gls/contrib/spdlog.h"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "spdlog/async.h"
#include "spdlog/async_logger.h"
#include "spdlog/details/thread_pool.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

// A value that counts its live instances: a line's values are released when
// the count goes back to zero.
struct Tracked {
  static std::atomic<int> live;
  Tracked() { ++live; }
  Tracked(const Tracked&) { ++live; }
  ~Tracked() { --live; }
};
std::atomic<int> Tracked::live{0};

namespace gls {
namespace {

using spdlog_values::Flag;
using spdlog_values::MakeAsyncLogger;
using spdlog_values::MakeFormatter;
using Policy = spdlog::async_overflow_policy;
using Pool = spdlog::details::thread_pool;

constexpr auto kWait = std::chrono::seconds(60);

// A sink that keeps every formatted line, counts flushes, and can hold the
// thread writing to it (spdlog's worker) at its next line until released, so
// a test can fill the queue or change scopes while lines wait.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // The next line's writer waits in the sink until ReleaseWriter().
  void HoldNextWriter() {
    std::lock_guard<std::mutex> lock(state_mutex_);
    gate_closed_ = true;
  }
  // Waits until a writer is held.
  void WaitUntilWriterHeld() {
    std::unique_lock<std::mutex> lock(state_mutex_);
    ASSERT_TRUE(cv_.wait_for(lock, kWait, [&] { return writer_held_; }));
  }
  void ReleaseWriter() {
    std::lock_guard<std::mutex> lock(state_mutex_);
    gate_closed_ = false;
    cv_.notify_all();
  }
  // Waits until `n` lines are written (60 s at most) and returns them all.
  std::vector<std::string> WaitForLines(size_t n) {
    std::unique_lock<std::mutex> lock(state_mutex_);
    cv_.wait_for(lock, kWait, [&] { return lines_.size() >= n; });
    return lines_;
  }
  // Waits until `n` flushes happened and returns, for each, how many lines
  // had been written when it did.
  std::vector<size_t> WaitForFlushes(size_t n) {
    std::unique_lock<std::mutex> lock(state_mutex_);
    cv_.wait_for(lock, kWait, [&] { return flushes_.size() >= n; });
    return flushes_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::unique_lock<std::mutex> lock(state_mutex_);
    if (gate_closed_) {
      writer_held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !gate_closed_; });
      writer_held_ = false;
    }
    lines_.emplace_back(buf.data(), buf.size());
    cv_.notify_all();
  }
  void flush_() override {
    std::lock_guard<std::mutex> lock(state_mutex_);
    flushes_.push_back(lines_.size());
    cv_.notify_all();
  }

 private:
  std::mutex state_mutex_;
  std::condition_variable cv_;
  bool gate_closed_ = false;
  bool writer_held_ = false;
  std::vector<std::string> lines_;
  std::vector<size_t> flushes_;
};

// A sink that throws on every line.
class ThrowingSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg&) override {
    throw std::runtime_error("sink says no");
  }
  void flush_() override {}
};

// A custom flag of the user's own that reads a gls value itself (not
// through gls::spdlog_values::Flag): "<id>" or "<none>".
class OwnFlag final : public spdlog::custom_flag_formatter {
 public:
  OwnFlag(const ContextManager& mgr, const TypedKey<std::string>& key)
      : mgr_(mgr), key_(key) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string* id = mgr_.GetValue(key_);
    const std::string text = id == nullptr ? "<none>" : "<" + *id + ">";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<OwnFlag>(mgr_, key_);
  }

 private:
  const ContextManager& mgr_;
  const TypedKey<std::string>& key_;
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return p.param == nullptr ? "Default" : std::string(p.param->name());
}

class SpdlogAsyncTest : public ::testing::TestWithParam<const Strategy*> {
 protected:
  SpdlogAsyncTest()
      : mgr_(GetParam() == nullptr ? std::make_unique<ContextManager>()
                                   : std::make_unique<ContextManager>(*GetParam())) {}
  ~SpdlogAsyncTest() override { EXPECT_EQ(Tracked::live.load(), 0); }
  ContextManager& mgr() { return *mgr_; }

  // "%v%*" with the request id, the thread number and the tenant.
  std::unique_ptr<spdlog::formatter> IdFormatter() {
    return MakeFormatter("%v%*", Flag(mgr())
                                     .Add("id", kRequestId)
                                     .Add("t", kThread)
                                     .Add("tenant", kTenant));
  }

  // `threads` threads each log `lines` lines ("<t>") in a scope of their
  // own (id=req-<t> t=<t> tenant=tenant-<t>) through `logger`, writing
  // into `sink`; every line must carry exactly its thread's values.
  void EachThreadsLinesCarryItsValues(const std::shared_ptr<spdlog::logger>& logger,
                                      LineSink& sink, int threads, int lines) {
    logger->set_formatter(IdFormatter());
    {
      std::vector<std::jthread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          const std::string n = std::to_string(t);
          mgr().SetValues({{kRequestId, "req-" + n}, {kThread, t}, {kTenant, "tenant-" + n}},
                          [&] {
                            for (int i = 0; i < lines; ++i) logger->info("{}", t);
                          });
        });
      }
    }
    const std::vector<std::string> written =
        sink.WaitForLines(static_cast<size_t>(threads * lines));
    ASSERT_EQ(written.size(), static_cast<size_t>(threads * lines));
    std::vector<int> per_thread(threads, 0);
    int right = 0;
    int wrong = 0;
    for (const std::string& line : written) {
      const int t = std::atoi(line.c_str());
      ASSERT_TRUE(t >= 0 && t < threads) << line;
      const std::string n = std::to_string(t);
      const std::string want = n + " id=req-" + n + " t=" + n + " tenant=tenant-" + n + "\n";
      if (line == want) {
        ++right;
      } else if (++wrong <= 5) {
        ADD_FAILURE() << "got \"" << line << "\", want \"" << want << "\"";
      }
      ++per_thread[t];
    }
    EXPECT_EQ(right, threads * lines) << "lines carrying exactly their own values";
    for (int t = 0; t < threads; ++t) EXPECT_EQ(per_thread[t], lines) << "thread " << t;
  }

  std::unique_ptr<ContextManager> mgr_;
  const TypedKey<std::string> kRequestId;
  const TypedKey<int> kThread;
  const ContextKey kTenant = GenSym();
  const TypedKey<Tracked> kTracked;
};

INSTANTIATE_TEST_SUITE_P(Strategies, SpdlogAsyncTest,
                         ::testing::Values(nullptr, &ThreadLocalStrategy(),
                                           &GoidStrategy(), &StackTagStrategy()),
                         StrategyName);

// Issue 18, bug 2: with spdlog's async logger, 0 of these 4,000 lines
// carried their ids.
TEST_P(SpdlogAsyncTest, EightThreadsEachLineCarriesItsOwnIds) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  EachThreadsLinesCarryItsValues(MakeAsyncLogger("async", sink, pool), *sink,
                                 /*threads=*/8, /*lines=*/500);
}

// Several worker threads write lines at once, from a queue small enough that
// the logging threads wait for room (the block policy).
TEST_P(SpdlogAsyncTest, SeveralWorkersAndAFullQueue) {
  auto pool = std::make_shared<Pool>(16, 3);
  auto sink = std::make_shared<LineSink>();
  EachThreadsLinesCarryItsValues(MakeAsyncLogger("async", sink, pool, Policy::block),
                                 *sink, /*threads=*/8, /*lines=*/300);
}

// What spdlog.h says a plain async logger prints with the flag: nothing from
// gls values (the worker thread's own, which are none).
TEST_P(SpdlogAsyncTest, PlainAsyncLoggerPrintsNoValues) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = std::make_shared<spdlog::async_logger>("plain", sink, pool);
  logger->set_formatter(IdFormatter());
  mgr().SetValues({{kRequestId, "r1"}, {kThread, 1}, {kTenant, "acme"}}, [&] {
    logger->info("in a scope");
    Go([&] { logger->info("in a gls::Go"); }).join();
  });
  logger->info("outside");
  EXPECT_EQ(sink->WaitForLines(3),
            (std::vector<std::string>{"in a scope\n", "in a gls::Go\n", "outside\n"}));
  // Join the worker before the logger and the sink go. (spdlog's worker drops
  // its reference to a spdlog::async_logger in spdlog's own code, which
  // ThreadSanitizer does not see, so without the join it cannot tell that
  // the worker was done with the sink when this thread destroys it.)
  pool.reset();
}

// Lines wait in the queue while their scopes end and others begin: each is
// written with the values it was logged with, not those of the moment it is
// written; lines outside every scope get none.
TEST_P(SpdlogAsyncTest, ValuesAreThoseOfTheLoggingCall) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", sink, pool);
  logger->set_formatter(IdFormatter());
  sink->HoldNextWriter();
  logger->info("0");  // outside: the worker waits in the sink with this one
  sink->WaitUntilWriterHeld();
  mgr().SetValues({{kRequestId, "outer"}, {kTenant, "acme"}}, [&] {
    logger->info("1");
    mgr().SetValues({{kRequestId, "inner"}, {kThread, 7}}, [&] {
      logger->info("2");
      mgr().SetValues({{kTenant, "globex"}}, [&] { logger->info("3"); });
      Go([&] { logger->info("4"); }).join();
    });
    logger->info("5");
  });
  logger->info("6");
  std::function<void()> bound;
  mgr().SetValues({{kRequestId, "bound"}}, [&] { bound = Bind([&] { logger->info("7"); }); });
  std::jthread([&] { bound(); }).join();
  mgr().SetValues({{kRequestId, "late"}}, [&] {
    sink->ReleaseWriter();  // everything above is written now, in this scope
    EXPECT_EQ(sink->WaitForLines(8),
              (std::vector<std::string>{
                  "0\n",
                  "1 id=outer tenant=acme\n",
                  "2 id=inner t=7 tenant=acme\n",
                  "3 id=inner t=7 tenant=globex\n",
                  "4 id=inner t=7 tenant=acme\n",
                  "5 id=outer tenant=acme\n",
                  "6\n",
                  "7 id=bound\n",
              }));
  });
}

// Each sink's formatter sees the values: the gls flag, a user's own flag
// reading gls values, and a sink whose level filters lines out.
TEST_P(SpdlogAsyncTest, SeveralSinksEachSeeTheValues) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto flag_sink = std::make_shared<LineSink>();
  auto own_sink = std::make_shared<LineSink>();
  auto warn_sink = std::make_shared<LineSink>();
  warn_sink->set_level(spdlog::level::warn);
  auto logger = MakeAsyncLogger("async", {flag_sink, own_sink, warn_sink}, pool);
  logger->set_formatter(IdFormatter());  // every sink
  auto own = std::make_unique<spdlog::pattern_formatter>();
  own->add_flag<OwnFlag>('Q', mgr(), kRequestId).set_pattern("%v %Q");
  own_sink->set_formatter(std::move(own));
  mgr().SetValues({{kRequestId, "r1"}}, [&] {
    logger->info("a");
    logger->warn("b");
  });
  logger->warn("c");
  EXPECT_EQ(flag_sink->WaitForLines(3),
            (std::vector<std::string>{"a id=r1\n", "b id=r1\n", "c\n"}));
  EXPECT_EQ(own_sink->WaitForLines(3),
            (std::vector<std::string>{"a <r1>\n", "b <r1>\n", "c <none>\n"}));
  EXPECT_EQ(warn_sink->WaitForLines(2),
            (std::vector<std::string>{"b id=r1\n", "c\n"}));
}

// flush() and flush_on() reach every sink, after the lines logged before.
TEST_P(SpdlogAsyncTest, FlushReachesEverySinkAfterTheLinesBefore) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto a = std::make_shared<LineSink>();
  auto b = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", {a, b}, pool);
  logger->set_formatter(IdFormatter());
  mgr().SetValues({{kRequestId, "r1"}}, [&] {
    for (int i = 0; i < 10; ++i) logger->info("{}", i);
    logger->flush();
  });
  EXPECT_EQ(a->WaitForFlushes(1), std::vector<size_t>{10});
  EXPECT_EQ(b->WaitForFlushes(1), std::vector<size_t>{10});
  logger->flush_on(spdlog::level::err);
  logger->info("no flush");
  logger->error("flush");
  EXPECT_EQ(a->WaitForFlushes(2), (std::vector<size_t>{10, 12}));
  EXPECT_EQ(b->WaitForFlushes(2), (std::vector<size_t>{10, 12}));
  EXPECT_EQ(a->WaitForLines(12)[9], "9 id=r1\n");
}

// Block: a full queue makes the logging threads wait; no line is lost.
TEST_P(SpdlogAsyncTest, BlockPolicyLosesNoLine) {
  auto pool = std::make_shared<Pool>(4, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", sink, pool, Policy::block);
  logger->set_formatter(IdFormatter());
  sink->HoldNextWriter();
  logger->info("first");
  sink->WaitUntilWriterHeld();
  std::jthread releaser([&] {
    // Let the four threads fill the queue and wait for room, then release.
    while (pool->queue_size() < 4) std::this_thread::yield();
    sink->ReleaseWriter();
  });
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        mgr().SetValues({{kThread, t}}, [&] {
          for (int i = 0; i < 50; ++i) logger->info("{}", t);
        });
      });
    }
  }
  const std::vector<std::string> lines = sink->WaitForLines(201);
  ASSERT_EQ(lines.size(), 201u);
  EXPECT_EQ(lines[0], "first\n");
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string t(1, lines[i][0]);
    ASSERT_EQ(lines[i], t + " t=" + t + "\n");
  }
  EXPECT_EQ(pool->overrun_counter(), 0u);
}

// Overrun-oldest: lines dropped from a full queue release their values (and
// nothing leaks: the fixture checks every Tracked is gone, ASan's leak check
// the rest); the lines kept carry their own values.
TEST_P(SpdlogAsyncTest, OverrunOldestReleasesDroppedLines) {
  constexpr int kLines = 100;
  auto pool = std::make_shared<Pool>(8, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", sink, pool, Policy::overrun_oldest);
  logger->set_formatter(IdFormatter());
  sink->HoldNextWriter();
  logger->info("first");
  sink->WaitUntilWriterHeld();
  for (int i = 0; i < kLines; ++i) {
    mgr().SetValues({{kThread, i}, {kTracked, Tracked{}}}, [&] { logger->info("{}", i); });
  }
  // Every scope has ended: only queued lines hold Tracked values now, at
  // most one per queue slot (spdlog overwrites a dropped line's slot with
  // the next line posted).
  EXPECT_GT(Tracked::live.load(), 0);
  EXPECT_LE(Tracked::live.load(), 9);
  const size_t dropped = pool->overrun_counter();
  EXPECT_EQ(dropped, static_cast<size_t>(kLines - 8));
  sink->ReleaseWriter();
  const std::vector<std::string> lines = sink->WaitForLines(1 + kLines - dropped);
  ASSERT_EQ(lines.size(), 1 + kLines - dropped);
  for (size_t i = 1; i < lines.size(); ++i) {
    const int n = std::atoi(lines[i].c_str());
    EXPECT_GE(n, static_cast<int>(dropped));
    EXPECT_EQ(lines[i], std::to_string(n) + " t=" + std::to_string(n) + "\n");
  }
  // One more line takes the last dropped line's slot: nothing holds values.
  logger->info("last");
  // Written means every earlier line's message is gone (the worker destroys
  // each before it takes the next).
  EXPECT_EQ(sink->WaitForLines(2 + kLines - dropped).back(), "last\n");
  EXPECT_EQ(Tracked::live.load(), 0);
}

// The last reference to the logger dropped while its lines are queued: the
// lines are still written, with their values, then everything is freed.
TEST_P(SpdlogAsyncTest, LoggerDroppedWithLinesQueued) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", sink, pool);
  logger->set_formatter(IdFormatter());
  const std::weak_ptr<spdlog::logger> weak = logger;
  sink->HoldNextWriter();
  logger->info("first");
  sink->WaitUntilWriterHeld();
  for (int i = 0; i < 20; ++i) {
    mgr().SetValues({{kThread, i}, {kTracked, Tracked{}}}, [&] { logger->info("{}", i); });
  }
  logger.reset();
  EXPECT_FALSE(weak.expired());  // the queued lines keep it
  EXPECT_EQ(Tracked::live.load(), 20);
  sink->ReleaseWriter();
  const std::vector<std::string> lines = sink->WaitForLines(21);
  ASSERT_EQ(lines.size(), 21u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(lines[i + 1], std::to_string(i) + " t=" + std::to_string(i) + "\n");
  }
  pool.reset();  // joins the worker once the queue is empty
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(Tracked::live.load(), 0);
}

// Lines queued when the pool is destroyed are written first (spdlog's pool
// drains its queue); logging after that fails as with spdlog's own async
// logger: spdlog::spdlog_ex("async log: thread pool doesn't exist anymore"),
// handed to the error handler by the call spdlog guards (a formatted line)
// and thrown by those it does not (a line with no arguments, flush: "async
// flush: thread pool doesn't exist anymore").
TEST_P(SpdlogAsyncTest, PoolGoneLinesWrittenThenErrorsAsInSpdlog) {
  for (const bool gls_logger : {true, false}) {
    SCOPED_TRACE(gls_logger ? "gls async logger" : "spdlog::async_logger");
    auto pool = std::make_shared<Pool>(8192, 1);
    auto sink = std::make_shared<LineSink>();
    std::shared_ptr<spdlog::logger> logger =
        gls_logger ? MakeAsyncLogger("async", sink, pool)
                   : std::make_shared<spdlog::async_logger>("async", sink, pool);
    logger->set_formatter(MakeFormatter("%v%*", Flag(mgr()).Add("id", kRequestId)));
    std::vector<std::string> errors;
    logger->set_error_handler([&](const std::string& e) { errors.push_back(e); });
    mgr().SetValues({{kRequestId, "r1"}, {kTracked, Tracked{}}}, [&] {
      for (int i = 0; i < 50; ++i) logger->info("{}", i);
      pool.reset();
      EXPECT_EQ(sink->WaitForLines(50).back(), gls_logger ? "49 id=r1\n" : "49\n");
      logger->info("{}", "after");
      EXPECT_THROW(logger->info("unguarded"), spdlog::spdlog_ex);
      try {
        logger->flush();
        ADD_FAILURE() << "flush did not throw";
      } catch (const spdlog::spdlog_ex& e) {
        EXPECT_STREQ(e.what(), "async flush: thread pool doesn't exist anymore");
      }
    });
    EXPECT_EQ(sink->WaitForLines(0).size(), 50u);  // the pool is gone: nothing more
    EXPECT_EQ(errors, std::vector<std::string>{
                          "async log: thread pool doesn't exist anymore"});
  }
}

// A sink's exception reaches the logger's own error handler, on the worker,
// and the other sinks still get the line.
TEST_P(SpdlogAsyncTest, SinkErrorsGoToTheLoggersErrorHandler) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger(
      "async", {std::make_shared<ThrowingSink>(), sink}, pool);
  logger->set_formatter(IdFormatter());
  std::mutex mutex;
  std::vector<std::string> errors;
  logger->set_error_handler([&](const std::string& e) {
    std::lock_guard<std::mutex> lock(mutex);
    errors.push_back(e);
  });
  mgr().SetValues({{kRequestId, "r1"}}, [&] { logger->info("x"); });
  EXPECT_EQ(sink->WaitForLines(1), std::vector<std::string>{"x id=r1\n"});
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(errors, std::vector<std::string>{"sink says no"});
}

// clone() is a gls async logger too, with the original's sinks and level.
TEST_P(SpdlogAsyncTest, CloneCarriesValuesToo) {
  auto pool = std::make_shared<Pool>(8192, 1);
  auto sink = std::make_shared<LineSink>();
  auto logger = MakeAsyncLogger("async", sink, pool);
  logger->set_formatter(MakeFormatter("%n: %v%*", Flag(mgr()).Add("id", kRequestId)));
  logger->set_level(spdlog::level::warn);
  std::shared_ptr<spdlog::logger> copy = logger->clone("copy");
  logger.reset();
  mgr().SetValues({{kRequestId, "r1"}}, [&] {
    copy->info("filtered");
    copy->warn("x");
  });
  EXPECT_EQ(sink->WaitForLines(1), std::vector<std::string>{"copy: x id=r1\n"});
}

// CreateAsync and AsyncFactory: spdlog's create_async and async_factory,
// registered, on spdlog's global pool, carrying values. The registry is
// process-wide: each name is used once and dropped at the end.
TEST_P(SpdlogAsyncTest, CreateAsyncAndTheFactoryRegisterWithSpdlog) {
  const std::string suffix = "_" + StrategyName({GetParam(), 0});
  const std::string name = "gls_create_async" + suffix;
  auto logger = spdlog_values::CreateAsync<LineSink>(name);
  EXPECT_EQ(spdlog::get(name), logger);
  ASSERT_NE(spdlog::thread_pool(), nullptr);
  EXPECT_THROW(spdlog_values::CreateAsync<LineSink>(name), spdlog::spdlog_ex);
  auto sink = std::dynamic_pointer_cast<LineSink>(logger->sinks().at(0));
  ASSERT_NE(sink, nullptr);
  auto nonblock = spdlog_values::CreateAsyncNonblock<LineSink>(name + "_nb");
  auto nonblock_sink = std::dynamic_pointer_cast<LineSink>(nonblock->sinks().at(0));
  // A spdlog sink helper with the factory, as with spdlog::async_factory.
  const char* tmpdir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmpdir == nullptr ? "/tmp" : tmpdir) +
                           "/gls_async" + suffix + ".log";
  std::remove(path.c_str());
  auto file = spdlog::basic_logger_mt<spdlog_values::AsyncFactory>(name + "_file", path);
  EXPECT_EQ(spdlog::get(name + "_file"), file);
  for (const auto& l : {logger, nonblock, file}) {
    l->set_formatter(MakeFormatter("%n %v%*", Flag(mgr()).Add("id", kRequestId)));
  }
  mgr().SetValues({{kRequestId, "r1"}}, [&] {
    logger->info("x");
    nonblock->info("y");
    file->info("z");
    file->flush();
  });
  EXPECT_EQ(sink->WaitForLines(1), std::vector<std::string>{name + " x id=r1\n"});
  EXPECT_EQ(nonblock_sink->WaitForLines(1),
            std::vector<std::string>{name + "_nb y id=r1\n"});
  spdlog::drop(name);
  spdlog::drop(name + "_nb");
  spdlog::drop(name + "_file");
  file.reset();
  // The flush was queued after the line: wait for it through the file.
  std::string content;
  for (int i = 0; i < 6000 && content.empty(); ++i) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    content = ss.str();
    if (content.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(content, name + "_file z id=r1\n");
}

TEST(SpdlogAsyncBadInputTest, NullPoolNullSinkAndBadPolicyAreRejected) {
  auto pool = std::make_shared<Pool>(16, 1);
  auto sink = std::make_shared<LineSink>();
  auto message_of = [](auto make) -> std::string {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_EQ(message_of([&] { MakeAsyncLogger("x", sink, nullptr); }),
            "gls::spdlog_values::MakeAsyncLogger: the thread pool is null (make "
            "one, or call spdlog::init_thread_pool before passing "
            "spdlog::thread_pool())");
  EXPECT_EQ(message_of([&] { MakeAsyncLogger("x", spdlog::sink_ptr(), pool); }),
            "gls::spdlog_values::MakeAsyncLogger: the sink is null");
  EXPECT_EQ(message_of([&] { MakeAsyncLogger("x", {sink, nullptr, sink}, pool); }),
            "gls::spdlog_values::MakeAsyncLogger: sink 1 (counting from 0) of 3 "
            "is null");
  EXPECT_EQ(message_of([&] { MakeAsyncLogger("x", sink, pool, static_cast<Policy>(7)); }),
            "gls::spdlog_values::MakeAsyncLogger: the overflow policy (7) is "
            "neither block nor overrun_oldest");
  // No sinks at all is a logger that writes nothing, as in spdlog.
  EXPECT_NO_THROW(MakeAsyncLogger("x", std::vector<spdlog::sink_ptr>{}, pool)->info("y"));
}

}  // namespace
}  // namespace gls
