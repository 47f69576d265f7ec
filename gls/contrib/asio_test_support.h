// gls/contrib/asio_test_support.h: what the Asio composition tests share
// (asio_strand_test.cc, asio_compositions_test.cc). Test code only.
//
// What this is for: checking, for every piece of work Asio runs, that it sees
// exactly the values of the request it belongs to, under every strategy.
// Checker records each read against the value the piece of work should see
// and reports the first wrong ones; AsioFlowTest is a fixture parameterised
// by strategy with one manager and one key, whose requests are scopes with
// one string value (the request's id).
//
// What this is not: a test of anything by itself.
#ifndef GLS_CONTRIB_ASIO_TEST_SUPPORT_H_
#define GLS_CONTRIB_ASIO_TEST_SUPPORT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it
#include <vector>

#include "boost/asio/io_context.hpp"
#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace asio_testing {

// Checker
//
// Records what each piece of work saw against what it should have seen;
// thread-safe. Keeps the first 10 wrong reads for the report.
class Checker {
 public:
  void Expect(const std::string& want, const std::string& got,
              const char* where) {
    checks_.fetch_add(1, std::memory_order_relaxed);
    if (want == got) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.size() < 10) {
      failures_.push_back(std::string(where) + ": want " + want + ", got " +
                          got);
    }
    ++failure_count_;
  }
  int checks() const { return checks_.load(); }
  int failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_count_;
  }
  std::string Report() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out = std::to_string(failure_count_) + " wrong reads of " +
                      std::to_string(checks_.load());
    for (const auto& f : failures_) out += "\n  " + f;
    return out;
  }
  bool ok() { return failures() == 0; }

 private:
  std::atomic<int> checks_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  int failure_count_ = 0;
};

// Countdown
//
// Counts pieces of work done on other threads; a test waits for a number of
// them with a deadline, so a lost handler fails the test with a message
// instead of hanging it until the test runner's timeout.
class Countdown {
 public:
  void Add() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
    }
    cv_.notify_all();
  }
  // WaitFor(target): true once `target` were added; false if 60 s pass
  // first.
  [[nodiscard]] bool WaitFor(int target) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60),
                        [&] { return count_ >= target; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

// StrandSection
//
// Counts pieces of work that ran at the same time as another one on a strand
// (none should). Make one per strand; each handler that runs on the strand
// holds an Enter() while it runs. A handler run inline inside another on the
// same thread (dispatch) is part of the outer one.
class StrandSection {
 public:
  class Entered {
   public:
    explicit Entered(StrandSection* s) : s_(s) {
      if (depth()++ == 0 && s_->inside_.fetch_add(1) != 0) {
        s_->overlaps_.fetch_add(1);
      }
    }
    ~Entered() {
      if (--depth() == 0) s_->inside_.fetch_sub(1);
    }
    Entered(const Entered&) = delete;
    Entered& operator=(const Entered&) = delete;

   private:
    static int& depth() {
      thread_local int d = 0;
      return d;
    }
    StrandSection* s_;
  };
  Entered Enter() { return Entered(this); }
  int overlaps() const { return overlaps_.load(); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<int> overlaps_{0};
};

// AsioFlowTest
//
// A fixture per strategy: mgr_ and key_, Read() (what the running flow sees
// for key_: the id, "none" or "not a string"), InRequest(id, fn) (fn in a
// scope where key_ is id) and RunThreads(io, n).
class AsioFlowTest : public ::testing::TestWithParam<const Strategy*> {
 public:
  std::string Read() const {
    const Value* v = mgr_.GetValue(key_);
    if (v == nullptr) return "none";
    const std::string* s = v->TryAs<std::string>();
    return s == nullptr ? "not a string" : *s;
  }
  template <typename F>
  decltype(auto) InRequest(const std::string& id, F&& fn) {
    return mgr_.SetValues({{key_, id}}, std::forward<F>(fn));
  }
  Checker& checker() { return checker_; }

 protected:
  AsioFlowTest() : mgr_(*GetParam()) {}

  static void RunThreads(boost::asio::io_context& io, int threads) {
    std::vector<std::thread> runners;
    for (int i = 0; i < threads; ++i) runners.emplace_back([&] { io.run(); });
    for (auto& t : runners) t.join();
  }

  // Waits until `done` reaches `want` or 60 s pass (then the test's counts
  // show what was missing). For a handler that holds a strand until the
  // other requests have queued behind it.
  static void WaitFor(const std::atomic<int>& done, int want) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (done.load() < want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  ContextManager mgr_;
  const ContextKey key_ = GenSym();
  Checker checker_;
};

inline std::string StrategyName(
    const ::testing::TestParamInfo<const Strategy*>& p) {
  return std::string(p.param->name());
}

#define GLS_INSTANTIATE_FOR_EVERY_STRATEGY(Suite)                            \
  INSTANTIATE_TEST_SUITE_P(Strategies, Suite,                                \
                           ::testing::Values(&::gls::ThreadLocalStrategy(),  \
                                             &::gls::GoidStrategy(),         \
                                             &::gls::StackTagStrategy()),    \
                           ::gls::asio_testing::StrategyName)

}  // namespace asio_testing
}  // namespace gls

#endif  // GLS_CONTRIB_ASIO_TEST_SUPPORT_H_
