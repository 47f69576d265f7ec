// The correctness matrix of //bench:compare: every system (our strategies and
// the C++ baselines a user would otherwise pick) against every scenario, from
// real runs. Prints one JSON document on stdout:
//   {"correctness": [{"system": ..., "scenario": ..., "result":
//     "pass"|"fail"|"not_applicable", "note": ...}, ...]}
//
// Run: bazel run //bench:correctness
#include <malloc.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdio>
#include <deque>
#include <mutex>
#include <functional>
#include <latch>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it
#include <vector>

#include "absl/functional/function_ref.h"
#include "boost/asio/co_spawn.hpp"
#include "boost/asio/detached.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/this_coro.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/fiber/all.hpp"
#include "boost/thread/tss.hpp"
#include "gls/bind.h"
#include "gls/context_manager.h"
#include "gls/contrib/asio.h"
#include "gls/contrib/fiber.h"
#include "gls/coro.h"
#include "gls/go.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/testing/annotated_fiber.h"
#include "strategies/thread_local/thread_local_strategy.h"
#include "strategies/goid/goid_strategy.h"

namespace {

// One "slot" of a system: a place a scoped value can be set and read.
class Slot {
 public:
  virtual ~Slot() = default;
  // Runs fn with `value` set in this slot; restores on exit (also on throw).
  virtual void Set(int value, absl::FunctionRef<void()> fn) = 0;
  virtual std::optional<int> Get() = 0;
};

// A system: makes independent slots, and maybe carries them into threads.
class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<Slot> NewSlot() = 0;
  // Starts a thread that keeps the caller's values, if the system can.
  virtual bool HasGo() const { return false; }
  virtual std::jthread Go(std::function<void()> fn) {
    throw std::logic_error("no Go");
  }
  // A task for a thread pool that carries the caller's values into the pool
  // thread, if the system has a way to.
  virtual std::function<void()> Carry(std::function<void()> fn) { return fn; }
  virtual bool CanCarry() const { return false; }
  // The executor a user of this system hands to Asio: one that carries
  // values if the system has an adapter, else the io_context's own.
  virtual boost::asio::any_io_executor AsioExecutor(boost::asio::io_context& io) {
    return io.get_executor();
  }
  // What a user of this system does on a thread before running fibers, and
  // to launch one (goid needs to know fiber stacks; harmless for the rest).
  virtual void PrepareFiberThread() {}
  virtual boost::fibers::fiber LaunchFiber(std::function<void()> fn) {
    return boost::fibers::fiber(
        std::allocator_arg,
        gls::goid::RegisteredStackAllocator<boost::fibers::fixedsize_stack>(),
        std::move(fn));
  }
};

// ---- gls strategies ----

class GlsSlot final : public Slot {
 public:
  GlsSlot(const gls::Strategy& s, std::vector<GlsSlot*>* live)
      : mgr_(s), key_(gls::GenSym()), live_(live) {
    live_->push_back(this);
  }
  ~GlsSlot() override { std::erase(*live_, this); }
  void Set(int value, absl::FunctionRef<void()> fn) override {
    mgr_.SetValues({{key_, value}}, [&] { fn(); });
  }
  std::optional<int> Get() override {
    const gls::Value* v = mgr_.GetValue(key_);
    if (v == nullptr) return std::nullopt;
    const int* i = v->TryAs<int>();
    if (i == nullptr) throw std::logic_error("slot holds a value that is not an int");
    return *i;
  }
  gls::ContextManager& mgr() { return mgr_; }

 private:
  gls::ContextManager mgr_;
  gls::ContextKey key_;
  std::vector<GlsSlot*>* live_;  // the system's live slots
};

class GlsSystem final : public System {
 public:
  GlsSystem(std::string name, const gls::Strategy& s) : name_(name), s_(s) {}
  std::string name() const override { return name_; }
  std::unique_ptr<Slot> NewSlot() override {
    return std::make_unique<GlsSlot>(s_, &slots_);
  }
  bool HasGo() const override { return true; }
  std::jthread Go(std::function<void()> fn) override { return gls::Go(fn); }
  bool CanCarry() const override { return true; }
  std::function<void()> Carry(std::function<void()> fn) override {
    return gls::Bind(std::move(fn));
  }
  boost::asio::any_io_executor AsioExecutor(boost::asio::io_context& io) override {
    return gls::asio::Propagating(io.get_executor());
  }
  void PrepareFiberThread() override {
    // Only the thread_local strategy needs the scheduler hook.
    if (&s_ == &gls::ThreadLocalStrategy()) gls::fiber::UseThreadLocalSwitching();
  }
  boost::fibers::fiber LaunchFiber(std::function<void()> fn) override {
    return gls::fiber::Launch(
        std::allocator_arg,
        gls::goid::RegisteredStackAllocator<boost::fibers::fixedsize_stack>(),
        std::move(fn));
  }

 private:
  std::string name_;
  const gls::Strategy& s_;
  std::vector<GlsSlot*> slots_;  // live slots
};

// ---- baselines ----

// Raw thread_local: a fixed number of thread_local pointers, one per slot.
thread_local const int* raw_slots[8];
int next_raw_slot = 0;

class RawThreadLocalSlot final : public Slot {
 public:
  // A new slot starts empty on this thread, as a new thread_local would: an
  // earlier scenario (interleaved fibers restoring out of order) may have
  // left a dangling pointer in the reused index.
  RawThreadLocalSlot() : index_(next_raw_slot++ % 8) { raw_slots[index_] = nullptr; }
  void Set(int value, absl::FunctionRef<void()> fn) override {
    const int* previous = raw_slots[index_];
    struct Restore {
      int i;
      const int* p;
      ~Restore() { raw_slots[i] = p; }
    } restore{index_, previous};
    raw_slots[index_] = &value;
    fn();
  }
  std::optional<int> Get() override {
    const int* p = raw_slots[index_];
    return p ? std::optional<int>(*p) : std::nullopt;
  }

 private:
  int index_;
};

template <typename Ptr>
class ScopedPtrSlot final : public Slot {
 public:
  void Set(int value, absl::FunctionRef<void()> fn) override {
    std::optional<int> previous = Get();
    struct Restore {
      Ptr& ptr;
      std::optional<int> p;
      ~Restore() { ptr.reset(p ? new int(*p) : nullptr); }
    } restore{ptr_, previous};
    ptr_.reset(new int(value));
    fn();
  }
  std::optional<int> Get() override {
    int* p = ptr_.get();
    return p ? std::optional<int>(*p) : std::nullopt;
  }

 private:
  Ptr ptr_;
};

template <typename SlotT>
class BaselineSystem final : public System {
 public:
  explicit BaselineSystem(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::unique_ptr<Slot> NewSlot() override { return std::make_unique<SlotT>(); }

 private:
  std::string name_;
};

// ---- scenarios ----

struct Outcome {
  std::string result;  // pass, fail, not_applicable
  std::string note;
};

Outcome Check(bool ok, std::string why_not) {
  return ok ? Outcome{"pass", ""} : Outcome{"fail", why_not};
}

std::string Show(std::optional<int> v) {
  return v ? std::to_string(*v) : "none";
}

Outcome NestedScopes(System& sys) {
  auto slot = sys.NewSlot();
  std::string trace;
  slot->Set(1, [&] {
    trace += Show(slot->Get());
    slot->Set(2, [&] { trace += Show(slot->Get()); });
    trace += Show(slot->Get());
  });
  trace += Show(slot->Get());
  return Check(trace == "121none", "saw " + trace + ", expected 1,2,1,none");
}

Outcome TwoManagers(System& sys) {
  auto a = sys.NewSlot();
  auto b = sys.NewSlot();
  std::string trace;
  a->Set(1, [&] {
    b->Set(2, [&] { trace += Show(a->Get()) + Show(b->Get()); });
    trace += Show(b->Get());
  });
  return Check(trace == "12none", "saw " + trace);
}

Outcome PlainThread(System& sys) {
  auto slot = sys.NewSlot();
  std::optional<int> seen = 0;
  slot->Set(5, [&] { std::thread([&] { seen = slot->Get(); }).join(); });
  return Check(!seen.has_value(), "a plain std::thread saw " + Show(seen));
}

Outcome GoPropagation(System& sys) {
  if (!sys.HasGo()) return {"not_applicable", "no way to start a thread with values"};
  auto slot = sys.NewSlot();
  std::optional<int> seen;
  slot->Set(5, [&] { sys.Go([&] { seen = slot->Get(); }).join(); });
  return Check(seen == 5, "Go's thread saw " + Show(seen));
}

// Go called in a nested scope; the parent leaves that scope before the child
// reads: the child must still see the values of the moment Go was called.
Outcome GoAfterScopeExit(System& sys) {
  if (!sys.HasGo()) return {"not_applicable", "no way to start a thread with values"};
  auto slot = sys.NewSlot();
  std::optional<int> seen;
  std::latch parent_left(1);
  std::jthread child;
  slot->Set(1, [&] {
    slot->Set(2, [&] {
      child = sys.Go([&] {
        parent_left.wait();
        seen = slot->Get();
      });
    });
    parent_left.count_down();
    child.join();
  });
  return Check(seen == 2, "the child saw " + Show(seen) + ", expected 2");
}

Outcome ThreadPool(System& sys) {
  // One pool thread runs tasks; values must reach a task only when carried,
  // and never leak from one task to the next.
  auto slot = sys.NewSlot();
  std::optional<int> carried, leaked = 0;
  {
    std::mutex mu;
    std::condition_variable ready;
    std::deque<std::function<void()>> tasks;
    bool closed = false;
    std::thread pool([&] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(mu);
          ready.wait(lock, [&] { return closed || !tasks.empty(); });
          if (tasks.empty()) return;
          task = std::move(tasks.front());
          tasks.pop_front();
        }
        task();
      }
    });
    auto submit = [&](std::function<void()> task) {
      std::lock_guard<std::mutex> lock(mu);
      tasks.push_back(std::move(task));
      ready.notify_one();
    };
    slot->Set(7, [&] { submit(sys.Carry([&] { carried = slot->Get(); })); });
    submit([&] { leaked = slot->Get(); });
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      ready.notify_one();
    }
    pool.join();
  }
  if (!sys.CanCarry()) {
    return Check(!leaked.has_value(),
                 "a later task saw " + Show(leaked) + " left by an earlier one");
  }
  return Check(carried == 7 && !leaked.has_value(),
               "carried task saw " + Show(carried) + ", next task saw " + Show(leaked));
}

Outcome InterleavedContextFibers(System& sys) {
  auto slot = sys.NewSlot();
  std::vector<std::string> errors;
  constexpr int kFibers = 3;
  std::vector<std::unique_ptr<gls::testing::AnnotatedFiber>> fibers;
  for (int f = 0; f < kFibers; ++f) {
    // The goid strategy needs to know the fibers' stacks; registering them
    // is harmless for every other system.
    fibers.push_back(std::make_unique<gls::testing::AnnotatedFiber>(
        gls::goid::RegisteredStackAllocator<boost::context::fixedsize_stack>(),
        [&, f](gls::testing::AnnotatedFiber::Yield& yield) {
          slot->Set(f, [&] {
            for (int r = 0; r < 3; ++r) {
              yield();
              if (slot->Get() != f) {
                errors.push_back("fiber " + std::to_string(f) + " saw " +
                                 Show(slot->Get()));
              }
            }
          });
        }));
  }
  for (bool any = true; any;) {
    any = false;
    for (auto& fiber : fibers) {
      if (!fiber->finished()) {
        fiber->Resume();
        any = true;
      }
    }
  }
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

Outcome InterleavedBoostFibers(System& sys) {
  auto slot = sys.NewSlot();
  std::vector<std::string> errors;
  std::vector<boost::fibers::fiber> fibers;
  for (int f = 0; f < 3; ++f) {
    fibers.emplace_back(std::allocator_arg,
                        gls::goid::RegisteredStackAllocator<boost::fibers::fixedsize_stack>(),
                        [&, f] {
      slot->Set(f, [&] {
        for (int r = 0; r < 3; ++r) {
          boost::this_fiber::yield();
          if (slot->Get() != f) {
            errors.push_back("fiber " + std::to_string(f) + " saw " +
                             Show(slot->Get()) +
                             " (no scheduler hook in this scenario; fiber_launch "
                             "installs the thread_local one)");
          }
        }
      });
    });
  }
  for (auto& fiber : fibers) fiber.join();
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

Outcome ExceptionInScope(System& sys) {
  auto slot = sys.NewSlot();
  std::optional<int> after;
  slot->Set(1, [&] {
    try {
      slot->Set(2, [] { throw std::runtime_error("x"); });
    } catch (const std::runtime_error&) {
    }
    after = slot->Get();
  });
  return Check(after == 1 && !slot->Get().has_value(),
               "after the exception the scope saw " + Show(after));
}

int Recurse(Slot& slot, int depth) {
  if (depth == 0) return slot.Get().value_or(-1);
  volatile int keep = depth;
  return Recurse(slot, depth - 1) + (keep - depth);
}

Outcome DeepRecursion(System& sys) {
  auto slot = sys.NewSlot();
  int seen = 0;
  slot->Set(9, [&] { seen = Recurse(*slot, 2000); });
  return Check(seen == 9, "2000 frames down saw " + std::to_string(seen));
}

Slot* signal_slot = nullptr;
volatile sig_atomic_t signal_seen = -2;
void SignalHandler(int) {
  std::optional<int> v = signal_slot->Get();
  signal_seen = v ? *v : -1;
}

Outcome SignalHandlerRead(System& sys) {
  auto slot = sys.NewSlot();
  slot->Set(3, [] {});  // first use outside the handler
  signal_slot = slot.get();
  signal_seen = -2;
  struct sigaction action = {}, previous = {};
  action.sa_handler = SignalHandler;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, &previous);
  slot->Set(3, [] { raise(SIGUSR1); });
  sigaction(SIGUSR1, &previous, nullptr);
  signal_slot = nullptr;
  return Check(signal_seen == 3,
               "the handler saw " + std::to_string(signal_seen) +
                   " (functional check; async-signal-safety: docs/strategies.md)");
}

// Heap bytes one live context costs: `n` threads park, first outside any
// scope, then inside one scope with one value; the heap difference divided by
// `n` is what the system allocates per live context (thread stacks are mmap'd
// and not counted; neither is the thread itself).
double HeapBytesPerLiveContext(System& sys, int n) {
  auto slot = sys.NewSlot();
  slot->Set(0, [] {});  // first-use allocations are not per context
  std::latch outside(n + 1), inside(n + 1), done(1), enter(1);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      slot->Get();  // per-thread first-use costs happen before the baseline
      outside.arrive_and_wait();
      enter.wait();
      slot->Set(i, [&] {
        inside.count_down();
        done.wait();
      });
    });
  }
  outside.arrive_and_wait();
  const size_t before = mallinfo2().uordblks;
  enter.count_down();
  inside.arrive_and_wait();
  const size_t after = mallinfo2().uordblks;
  done.count_down();
  for (auto& t : threads) t.join();
  return (static_cast<double>(after) - static_cast<double>(before)) / n;
}

// Handlers posted to an io_context run by two threads, each from its own
// scope: every handler must see its poster's value, and a handler posted
// without the system's adapter must see none.
Outcome AsioPost(System& sys) {
  auto slot = sys.NewSlot();
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> runners;
  for (int i = 0; i < 2; ++i) runners.emplace_back([&] { io.run(); });
  auto ex = sys.AsioExecutor(io);
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(std::move(e));
  };
  std::latch done(100);
  for (int i = 0; i < 50; ++i) {
    slot->Set(i, [&] {
      boost::asio::post(ex, [&, i] {
        if (slot->Get() != i) fail("handler posted in scope " + std::to_string(i) + " saw " + Show(slot->Get()));
        done.count_down();
      });
      boost::asio::post(io, [&] {
        if (slot->Get().has_value()) fail("a plain handler saw " + Show(slot->Get()));
        done.count_down();
      });
    });
  }
  done.wait();
  guard.reset();
  for (auto& t : runners) t.join();
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

boost::asio::awaitable<void> CheckedSession(Slot* slot, int want,
                                            std::function<void(std::string)> fail) {
  auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (int round = 0; round < 3; ++round) {
    timer.expires_after(std::chrono::microseconds(100 * round));
    co_await timer.async_wait(boost::asio::use_awaitable);
    if (slot->Get() != want) fail("coroutine " + std::to_string(want) + " saw " + Show(slot->Get()) + " after a timer");
    co_await boost::asio::post(ex, boost::asio::use_awaitable);
    if (slot->Get() != want) fail("coroutine " + std::to_string(want) + " saw " + Show(slot->Get()) + " after a post");
  }
}

// co_spawn'ed coroutines on an io_context run by two threads, each spawned in
// its own scope: after every resumption each must see its own value.
Outcome AsioCoroutine(System& sys) {
  auto slot = sys.NewSlot();
  boost::asio::io_context io;
  auto ex = sys.AsioExecutor(io);
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(std::move(e));
  };
  for (int i = 0; i < 20; ++i) {
    slot->Set(i, [&] {
      boost::asio::co_spawn(ex, CheckedSession(slot.get(), i, fail), boost::asio::detached);
    });
  }
  std::vector<std::thread> runners;
  for (int i = 0; i < 2; ++i) runners.emplace_back([&] { io.run(); });
  for (auto& t : runners) t.join();
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

// Boost.Fibers launched inside a scope must start with its value, then set
// their own and switch away in the middle of it: each sees only its own.
Outcome FiberLaunch(System& sys) {
  auto slot = sys.NewSlot();
  std::vector<std::string> errors;
  std::thread([&] {
    sys.PrepareFiberThread();
    std::vector<boost::fibers::fiber> fibers;
    for (int f = 0; f < 3; ++f) {
      slot->Set(100 + f, [&] {
        fibers.push_back(sys.LaunchFiber([&, f] {
          boost::this_fiber::yield();
          if (slot->Get() != 100 + f) {
            errors.push_back("fiber launched in scope " + std::to_string(100 + f) + " saw " + Show(slot->Get()));
          }
          slot->Set(f, [&] {
            for (int r = 0; r < 3; ++r) {
              boost::this_fiber::yield();
              if (slot->Get() != f) {
                errors.push_back("fiber " + std::to_string(f) + " saw " + Show(slot->Get()));
              }
            }
          });
        }));
      });
    }
    for (auto& fiber : fibers) fiber.join();
  }).join();
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

// Resumes the awaiting coroutine on a new thread.
struct HopToNewThread {
  std::vector<std::thread>* threads;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { threads->emplace_back([h] { h.resume(); }); }
  void await_resume() const noexcept {}
};

gls::Task<std::string> HopAndRead(Slot* slot, int want, std::vector<std::thread>* threads) {
  for (int hop = 0; hop < 3; ++hop) {
    co_await HopToNewThread{threads};
    if (slot->Get() != want) {
      co_return "after hop " + std::to_string(hop) + " the coroutine saw " + Show(slot->Get());
    }
  }
  co_return "";
}

// A C++20 coroutine (gls::Task) that resumes on other threads must see the
// value of the scope that created it after every resumption.
Outcome CoroutineThreadHop(System& sys) {
  auto slot = sys.NewSlot();
  std::vector<std::thread> threads;
  threads.reserve(3);
  std::string error;
  slot->Set(4, [&] { error = gls::SyncWait(HopAndRead(slot.get(), 4, &threads)); });
  // SyncWait returns as the last hop thread finishes the coroutine.
  for (auto& t : threads) t.join();
  return Check(error.empty(), error);
}

// A pool thread runs carried tasks that set values of their own, one that
// throws inside its scope, and plain tasks in between: no plain task may see
// anything.
Outcome ExecutorNoLeak(System& sys) {
  auto slot = sys.NewSlot();
  boost::asio::io_context io;
  auto ex = sys.AsioExecutor(io);
  std::vector<std::string> errors;
  for (int i = 0; i < 10; ++i) {
    slot->Set(i, [&] {
      boost::asio::post(ex, [&, i] {
        slot->Set(1000 + i, [&] {
          if (i % 3 == 0) throw std::runtime_error("task failed");
        });
      });
      boost::asio::post(io, [&] {
        if (slot->Get().has_value()) errors.push_back("a plain task saw " + Show(slot->Get()));
      });
    });
  }
  std::thread runner([&] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::runtime_error&) {
        // A task's exception leaves io.run(); the thread goes on serving.
      }
    }
  });
  runner.join();
  if (slot->Get().has_value()) errors.push_back("the submitter saw " + Show(slot->Get()));
  return Check(errors.empty(), errors.empty() ? "" : errors.front());
}

// Heap bytes a thread costs once it has used the system: `n` threads park
// before any use, then each enters and leaves one scope and parks again
// (outside every scope, as a pool thread between requests); the heap
// difference divided by `n` is what stays allocated per thread: its context
// and, for goid, its stack's registration.
double HeapBytesPerThread(System& sys, int n) {
  auto slot = sys.NewSlot();
  slot->Set(0, [] {});  // process-wide first-use allocations
  std::latch before(n + 1), after(n + 1), done(1), use(1);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      before.arrive_and_wait();
      use.wait();
      slot->Set(i, [] {});
      after.arrive_and_wait();
      done.wait();
    });
  }
  before.arrive_and_wait();
  const size_t heap_before = mallinfo2().uordblks;
  use.count_down();
  after.arrive_and_wait();
  const size_t heap_after = mallinfo2().uordblks;
  done.count_down();
  for (auto& t : threads) t.join();
  return (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / n;
}

struct Scenario {
  const char* name;
  Outcome (*run)(System&);
};

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::vector<std::unique_ptr<System>> systems;
  systems.push_back(std::make_unique<GlsSystem>("thread_local", gls::ThreadLocalStrategy()));
  systems.push_back(std::make_unique<GlsSystem>("stack_tag", gls::StackTagStrategy()));
  systems.push_back(std::make_unique<GlsSystem>("stack_tag_libunwind",
                                                gls::StackTagLibunwindStrategy()));
  systems.push_back(std::make_unique<GlsSystem>("goid", gls::GoidStrategy()));
  systems.push_back(std::make_unique<BaselineSystem<RawThreadLocalSlot>>("raw_thread_local"));
  systems.push_back(std::make_unique<BaselineSystem<ScopedPtrSlot<boost::thread_specific_ptr<int>>>>(
      "boost_thread_specific_ptr"));
  systems.push_back(std::make_unique<BaselineSystem<ScopedPtrSlot<boost::fibers::fiber_specific_ptr<int>>>>(
      "boost_fiber_specific_ptr"));

  const Scenario scenarios[] = {
      {"nested_scopes", NestedScopes},
      {"two_managers", TwoManagers},
      {"plain_thread", PlainThread},
      {"go_propagation", GoPropagation},
      {"go_after_scope_exit", GoAfterScopeExit},
      {"thread_pool", ThreadPool},
      {"boost_context_fibers", InterleavedContextFibers},
      {"boost_fibers", InterleavedBoostFibers},
      {"exception", ExceptionInScope},
      {"deep_recursion", DeepRecursion},
      {"signal_handler", SignalHandlerRead},
      {"asio_post", AsioPost},
      {"asio_coroutine", AsioCoroutine},
      {"fiber_launch", FiberLaunch},
      {"coroutine_thread_hop", CoroutineThreadHop},
      {"executor_no_leak", ExecutorNoLeak},
  };

  std::ostringstream json;
  json << "{\"correctness\": [";
  bool first = true;
  for (auto& sys : systems) {
    for (const Scenario& scenario : scenarios) {
      std::cerr << "correctness: " << sys->name() << " / " << scenario.name << "\n";
      Outcome outcome;
      try {
        outcome = scenario.run(*sys);
      } catch (const std::exception& e) {
        outcome = {"fail", std::string("threw: ") + e.what()};
      }
      json << (first ? "" : ",") << "\n  {\"system\": \"" << sys->name()
           << "\", \"scenario\": \"" << scenario.name << "\", \"result\": \""
           << outcome.result << "\", \"note\": \"" << JsonEscape(outcome.note)
           << "\"}";
      first = false;
    }
  }
  json << "\n], \"memory\": [";
  first = true;
  const int threads = quick ? 32 : 256;
  for (auto& sys : systems) {
    std::cerr << "memory: " << sys->name() << "\n";
    const double bytes = HeapBytesPerLiveContext(*sys, threads);
    json << (first ? "" : ",") << "\n  {\"system\": \"" << sys->name()
         << "\", \"workload\": \"MemoryPerContext\", \"params\": {}, "
         << "\"median_ns\": null, \"value\": " << bytes
         << ", \"repetitions\": 1, \"unit\": \"bytes\", \"live_contexts\": "
         << threads << "}";
    first = false;
  }
  for (auto& sys : systems) {
    std::cerr << "memory per thread: " << sys->name() << "\n";
    const double bytes = HeapBytesPerThread(*sys, threads);
    json << ",\n  {\"system\": \"" << sys->name()
         << "\", \"workload\": \"MemoryPerThread\", \"params\": {}, "
         << "\"median_ns\": null, \"value\": " << bytes
         << ", \"repetitions\": 1, \"unit\": \"bytes\", \"threads\": "
         << threads << "}";
  }
  json << "\n]}\n";
  std::cout << json.str();
  return 0;
}
