// The cost of gls::spdlog_values::Flag on a spdlog log line: the same message
// through a logger whose sink formats every line into a buffer (as a file or
// console sink pays for it) and discards it, with a plain timestamped pattern
// and with the same pattern plus the gls flag printing one typed
// std::string key (a 16-hex-char request id), inside a scope of the build's
// default strategy. Part of //bench:gls_benchmark; the rows:
//   BM_SpdlogFormat/plain_pattern   "[%Y-%m-%d %H:%M:%S.%e] [%l] %v"
//   BM_SpdlogFormat/gls_flag        the same plus "%*"
//
//
// And what the logging thread pays per line with an asynchronous logger on a
// spdlog thread pool of one worker (queue of 8192 lines, block policy), the
// worker formatting every line into a buffer as above. The worker keeps up:
// lines are logged in bursts of kAsyncBurst, and between bursts, outside the
// timed region, the logging thread waits until the worker has written every
// line, so the queue never fills and no line waits for room. (The worker
// works during the burst too, as it would in a server.)
//   BM_SpdlogAsync/plain_pattern    spdlog::async_logger, the plain pattern
//   BM_SpdlogAsync/gls_flag         gls::spdlog_values::MakeAsyncLogger, the
//                                   pattern plus "%*" (the values of each
//                                   logging call carried to the worker)
//
// Run (one line):
//   bazel run -c opt //bench:gls_benchmark -- --benchmark_filter=BM_Spdlog
//     --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "benchmark/benchmark.h"
#include "gls/context_manager.h"
#include "gls/contrib/spdlog.h"
#include "spdlog/async_logger.h"
#include "spdlog/details/null_mutex.h"
#include "spdlog/details/thread_pool.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/base_sink.h"

namespace {

// A sink that formats each message into a reused buffer and drops it: the
// formatting work of a real sink without its I/O. (spdlog's null_sink skips
// formatting altogether.)
class FormatAndDiscardSink final
    : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  size_t formatted_bytes() const { return formatted_bytes_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buf_.clear();
    formatter_->format(msg, buf_);
    formatted_bytes_ += buf_.size();
    benchmark::DoNotOptimize(buf_.data());
    benchmark::ClobberMemory();
  }
  void flush_() override {}

 private:
  spdlog::memory_buf_t buf_;
  size_t formatted_bytes_ = 0;
};

constexpr char kPlainPattern[] = "[%Y-%m-%d %H:%M:%S.%e] [%l] %v";

void BM_SpdlogFormat(benchmark::State& state, bool with_flag) {
  gls::ContextManager mgr;
  const gls::TypedKey<std::string> request_id;
  auto sink = std::make_shared<FormatAndDiscardSink>();
  spdlog::logger logger("bench", sink);
  if (with_flag) {
    logger.set_formatter(gls::spdlog_values::MakeFormatter(
        std::string(kPlainPattern) + "%*",
        gls::spdlog_values::Flag(mgr).Add("request_id", request_id)));
  } else {
    logger.set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kPlainPattern));
  }
  mgr.SetValues({{request_id, "4bf92f3577b34da6"}}, [&] {
    for (auto _ : state) {
      logger.info("handled GET /api/v1/items in 3 ms");
    }
  });
  state.counters["bytes_per_line"] = benchmark::Counter(
      static_cast<double>(sink->formatted_bytes()) /
      static_cast<double>(state.iterations() == 0 ? 1 : state.iterations()));
}
BENCHMARK_CAPTURE(BM_SpdlogFormat, plain_pattern, false);
BENCHMARK_CAPTURE(BM_SpdlogFormat, gls_flag, true);

// FormatAndDiscardSink for an async logger: counts the lines it has written,
// so the logging thread can wait for the worker.
class CountingFormatSink final
    : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  // Waits until `n` lines in all have been written.
  void WaitForLines(int64_t n) const {
    while (lines_.load(std::memory_order_acquire) < n) std::this_thread::yield();
  }
  int64_t lines() const { return lines_.load(std::memory_order_acquire); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buf_.clear();
    formatter_->format(msg, buf_);
    benchmark::DoNotOptimize(buf_.data());
    benchmark::ClobberMemory();
    lines_.store(lines_.load(std::memory_order_relaxed) + 1,
                 std::memory_order_release);  // one writer: the worker
  }
  void flush_() override {}

 private:
  spdlog::memory_buf_t buf_;
  std::atomic<int64_t> lines_{0};
};

// Lines per burst: well under the queue's 8192, so the queue never fills.
constexpr int64_t kAsyncBurst = 1024;

void BM_SpdlogAsync(benchmark::State& state, bool with_flag) {
  gls::ContextManager mgr;
  const gls::TypedKey<std::string> request_id;
  auto pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
  auto sink = std::make_shared<CountingFormatSink>();
  std::shared_ptr<spdlog::logger> logger;
  if (with_flag) {
    logger = gls::spdlog_values::MakeAsyncLogger("bench", sink, pool);
    logger->set_formatter(gls::spdlog_values::MakeFormatter(
        std::string(kPlainPattern) + "%*",
        gls::spdlog_values::Flag(mgr).Add("request_id", request_id)));
  } else {
    logger = std::make_shared<spdlog::async_logger>("bench", sink, pool);
    logger->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kPlainPattern));
  }
  mgr.SetValues({{request_id, "4bf92f3577b34da6"}}, [&] {
    int64_t logged = 0;
    for (auto _ : state) {
      logger->info("handled GET /api/v1/items in 3 ms");
      if (++logged % kAsyncBurst == 0) {
        state.PauseTiming();
        sink->WaitForLines(logged);
        state.ResumeTiming();
      }
    }
  });
  logger.reset();
  pool.reset();  // joins the worker
  // 1: every line logged was written.
  state.counters["written_per_logged"] = benchmark::Counter(
      static_cast<double>(sink->lines()) /
      static_cast<double>(state.iterations() == 0 ? 1 : state.iterations()));
}
BENCHMARK_CAPTURE(BM_SpdlogAsync, plain_pattern, false);
BENCHMARK_CAPTURE(BM_SpdlogAsync, gls_flag, true);

}  // namespace
