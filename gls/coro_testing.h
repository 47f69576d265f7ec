// gls/coro_testing.h: executors for gls::Task tests (coro_test,
// coro_spawn_test, coro_alloc_test). Test-only.
//
// HopPool: threads that run posted functions and resume coroutines handed to
// them (`co_await pool.Hop()`), with an optional check run on the pool
// thread after every function, between tasks. ManualQueue: an executor that
// only queues, so a test decides when (or whether) a start runs.
#ifndef GLS_CORO_TESTING_H_
#define GLS_CORO_TESTING_H_

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace gls {
namespace testing {

class HopPool {
 public:
  // `between_tasks`, if given, runs on the pool thread after each function.
  explicit HopPool(int threads, std::function<void()> between_tasks = nullptr)
      : between_tasks_(std::move(between_tasks)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~HopPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  HopPool(const HopPool&) = delete;
  HopPool& operator=(const HopPool&) = delete;

  struct HopAwaiter {
    HopPool* pool;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { pool->Post([h] { h.resume(); }); }
    void await_resume() const noexcept {}
  };
  // co_await pool.Hop(): resumes the coroutine on a pool thread.
  HopAwaiter Hop() { return HopAwaiter{this}; }

  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
      fn = nullptr;  // whatever it held goes before the check
      if (between_tasks_) between_tasks_();
    }
  }

  const std::function<void()> between_tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// An executor with `post(fn)` that only queues: RunAll() runs what is
// queued, Drop() destroys it unrun.
class ManualQueue {
 public:
  void post(std::function<void()> fn) { queue_.push_back(std::move(fn)); }
  size_t size() const { return queue_.size(); }
  void RunAll() {
    std::vector<std::function<void()>> now = std::move(queue_);
    queue_.clear();
    for (auto& fn : now) fn();
  }
  void Drop() { queue_.clear(); }

 private:
  std::vector<std::function<void()>> queue_;
};

// Polls `done` until it is true or `timeout` passes; returns its last value.
template <typename Pred>
bool WaitUntil(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace testing
}  // namespace gls

#endif  // GLS_CORO_TESTING_H_
