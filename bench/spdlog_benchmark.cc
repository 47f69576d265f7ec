// The cost of gls::spdlog_values::Flag on a spdlog log line: the same message
// through a logger whose sink formats every line into a buffer (as a file or
// console sink pays for it) and discards it, with a plain timestamped pattern
// and with the same pattern plus the gls flag printing one typed
// std::string key (a 16-hex-char request id), inside a scope of the build's
// default strategy. Part of //bench:gls_benchmark; the rows:
//   BM_SpdlogFormat/plain_pattern   "[%Y-%m-%d %H:%M:%S.%e] [%l] %v"
//   BM_SpdlogFormat/gls_flag        the same plus "%*"
//
// Run (one line):
//   bazel run -c opt //bench:gls_benchmark -- --benchmark_filter=BM_SpdlogFormat
//     --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <memory>
#include <mutex>
#include <string>

#include "benchmark/benchmark.h"
#include "gls/context_manager.h"
#include "gls/contrib/spdlog.h"
#include "spdlog/details/null_mutex.h"
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

}  // namespace
