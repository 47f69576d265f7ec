// gls/coro.h: gls::Task<T>, a C++20 coroutine type whose body always runs
// with the values it was started with, wherever and whenever it resumes.
//
// What this is for: a stackless coroutine runs on the stack of whoever
// resumes it: a thread-pool thread, an event loop, another coroutine. Without
// help it sees that resumer's values, not its own (folly #2017 is this bug).
// A gls::Task captures the values of the flow that creates it (calls the
// coroutine function) and runs its body in exactly those values after every
// resumption, including on another thread. Between resumptions nothing of
// the task is installed anywhere, so other coroutines sharing the thread
// never see its values.
//
//   gls::Task<int> Handle(Request r) {
//     co_await ResumeOnPool(pool);   // any awaitable: now on a pool thread
//     MyLog();                       // still the creator's request id
//     co_return 42;
//   }
//
// Values for a sub-task: gls::WithValues(mgr, values, task) makes `task` see
// `values` (over what it captured) in its whole body, across all of its
// co_awaits. There is no "set" and no "restore" to call, so an unbalanced
// pair cannot be written: the values belong to the sub-task object.
//
//   const gls::Values sub = {{kRequestId, "sub-1"}};
//   co_await gls::WithValues(mgr, sub, SubTask());
//
// (GCC 12 rejects a braced initializer list inside a co_await operand, hence
// the named Values.)
//
// Running a task: co_await it from another Task, or gls::SyncWait(task) from
// ordinary code (blocks until it finishes, on whatever thread it finishes).
//
// What this is not: an executor or a scheduler. A Task is lazy: it starts
// when awaited, on the awaiting flow, and resumes wherever the awaitables it
// waits on resume it. Any awaitable works (it is wrapped through
// await_transform). A Task awaited by one coroutine only; not copyable.
//
// Guarantees:
//   * The body sees exactly the values the task was created with (or given by
//     WithValues) after every resumption, for every registered manager of
//     every strategy; the resumer's own values are back when the task
//     suspends or finishes.
//   * A child task awaited by a parent runs on the parent's stack until it
//     first suspends, so awaiting tasks that finish synchronously costs no
//     stack growth; a chain of asynchronous hops costs a bounded depth per hop.
//   * Each suspension on an awaitable that is not a gls::Task allocates one
//     small resumption frame (a coroutine frame of ~100 bytes), freed when it
//     resumes. Awaiting a gls::Task allocates nothing beyond the task itself.
//   * Destroying a Task that never started, or one suspended on an awaitable
//     (which must then never resume it, as for any coroutine), releases its
//     values and its pending resumption frame: nothing leaks and nothing stays
//     installed in any flow.
//   * An exception leaving the body is rethrown to the awaiter (or from
//     SyncWait).
//
// Example:
//
//   gls::Task<std::string> Sub() {
//     co_await HopToAnotherThread();
//     co_return Read(kRequestId);              // "sub" (set for this task)
//   }
//   gls::Task<void> Main() {
//     auto before = Read(kRequestId);          // "main" (creator's values)
//     const gls::Values sub = {{kRequestId, "sub"}};
//     auto s = co_await gls::WithValues(mgr, sub, Sub());
//     auto after = Read(kRequestId);           // "main" again
//   }
//   mgr.SetValues({{kRequestId, "main"}}, [] { gls::SyncWait(Main()); });
#ifndef GLS_CORO_H_
#define GLS_CORO_H_

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "gls/context_manager.h"
#include "gls/snapshot.h"
#include "gls/values.h"

namespace gls {

template <typename T = void>
class Task;

namespace coro_internal {

// A one-shot coroutine that resumes `target` inside Snapshot::Run: every
// resumption of a gls::Task after it suspended on something else goes
// through one. It starts suspended, runs once, and frees itself at the end.
struct Resumer {
  struct promise_type {
    Resumer get_return_object() noexcept {
      return Resumer{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    // Records that the resumer ran: one that never did may be destroyed by
    // the awaiter that made it (a task destroyed while suspended).
    struct Start {
      promise_type* promise;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<>) const noexcept {}
      void await_resume() const noexcept {
        promise->started.store(true, std::memory_order_release);
      }
    };
    Start initial_suspend() noexcept { return Start{this}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }

    std::atomic<bool> started{false};
  };
  std::coroutine_handle<promise_type> handle;
};

// The snapshot is the resumer's own copy: `target` may finish and free its
// promise (and the snapshot in it) while Run still has the values installed.
inline Resumer MakeResumer(std::coroutine_handle<> target, Snapshot snapshot) {
  snapshot.Run([target] { target.resume(); });
  co_return;
}

// What a finished task hands control to: the awaiting task (resumed in its
// own values), or a SyncWait blocked on a condition variable.
struct SyncWaitState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

struct Continuation {
  std::coroutine_handle<> handle;    // the awaiting task, or null
  const Snapshot* values = nullptr;  // the awaiting task's values
  SyncWaitState* sync = nullptr;     // or the SyncWait waiting
};

// The handshake between a task that finishes and its awaiter, which started
// it synchronously and may still be inside await_suspend.
enum : int { kRunning = 0, kAwaiterSuspended = 1, kFinished = 2 };

class PromiseBase {
 public:
  PromiseBase() noexcept : values_(Capture()) {}

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(
        std::coroutine_handle<Promise> self) const noexcept {
      PromiseBase& p = self.promise();
      if (p.state_.exchange(kFinished, std::memory_order_acq_rel) !=
          kAwaiterSuspended) {
        // The awaiter is still in await_suspend: it sees kFinished and
        // carries on without suspending.
        return std::noop_coroutine();
      }
      const Continuation next = p.continuation_;
      if (next.handle == nullptr && next.sync == nullptr) {
        return std::noop_coroutine();  // started by a test, nobody waits
      }
      if (next.sync != nullptr) {
        std::lock_guard<std::mutex> lock(next.sync->mu);
        next.sync->done = true;
        next.sync->cv.notify_all();
        return std::noop_coroutine();
      }
      // The awaiting task resumes in its own values. Its promise stays alive
      // until it resumes, so copying its snapshot here is safe.
      return MakeResumer(next.handle, *next.values).handle;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // Runs the task's body from where it is suspended until it next suspends
  // or finishes, in its values, on the calling flow; then reports whether
  // it finished (true) or the caller must wait for the continuation.
  bool StartAndCheckFinished(std::coroutine_handle<> self,
                             Continuation continuation) {
    continuation_ = continuation;
    values_.Run([self] { self.resume(); });
    return state_.exchange(kAwaiterSuspended, std::memory_order_acq_rel) ==
           kFinished;
  }

  const Snapshot& values() const noexcept { return values_; }
  void set_values(Snapshot values) noexcept { values_ = std::move(values); }

 private:
  Snapshot values_;
  Continuation continuation_;
  std::atomic<int> state_{kRunning};
};

// The awaiter of `awaitable`, as the language would find it.
template <typename A>
decltype(auto) GetAwaiter(A&& awaitable) {
  if constexpr (requires { std::forward<A>(awaitable).operator co_await(); }) {
    return std::forward<A>(awaitable).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(awaitable)); }) {
    return operator co_await(std::forward<A>(awaitable));
  } else {
    return std::forward<A>(awaitable);
  }
}

// Wraps an awaiter that is not a gls::Task: the task is resumed through a
// Resumer, so it runs in its values whoever resumes it.
template <typename Awaiter>
class ForeignAwaiter {
 public:
  ForeignAwaiter(Awaiter&& inner, const Snapshot& values)
      : inner_(std::forward<Awaiter>(inner)), values_(values) {}
  ForeignAwaiter(const ForeignAwaiter&) = delete;
  ForeignAwaiter& operator=(const ForeignAwaiter&) = delete;
  ~ForeignAwaiter() {
    // Resumer made but never run: the task was destroyed while suspended.
    if (resumer_ && !resumer_.promise().started.load(std::memory_order_acquire)) {
      resumer_.destroy();
    }
  }

  bool await_ready() { return inner_.await_ready(); }

  template <typename Promise>
  auto await_suspend(std::coroutine_handle<Promise> self) {
    auto resumer = MakeResumer(self, values_).handle;
    resumer_ = resumer;
    using R = decltype(inner_.await_suspend(resumer));
    if constexpr (std::is_void_v<R>) {
      inner_.await_suspend(resumer);
      // Nothing of *this may be touched now: the resumer may already have
      // resumed the task on another thread.
    } else if constexpr (std::is_same_v<R, bool>) {
      if (!inner_.await_suspend(resumer)) {
        resumer_ = nullptr;
        resumer.destroy();
        return false;  // not suspended: carry on, still in our values
      }
      return true;
    } else {
      return inner_.await_suspend(resumer);
    }
  }

  decltype(auto) await_resume() { return inner_.await_resume(); }

 private:
  Awaiter inner_;
  const Snapshot& values_;
  std::coroutine_handle<Resumer::promise_type> resumer_;
};

template <typename T>
class Promise;

// For gls's own tests: starts a task without waiting for it.
struct TestPeer;

}  // namespace coro_internal

// Task<T>
//
// See the file comment. Move-only; destroying it destroys the coroutine
// (started or not).
template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = coro_internal::Promise<T>;

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // The awaiter for `co_await task` in another gls::Task: starts this task on
  // the awaiting flow and resumes the awaiter, in its own values, when this
  // task finishes.
  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> child,
                     const Snapshot& awaiter_values)
        : child_(child), awaiter_values_(awaiter_values) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      // false: the child finished synchronously; carry on without suspending.
      return !child_.promise().StartAndCheckFinished(
          child_, coro_internal::Continuation{awaiter, &awaiter_values_, nullptr});
    }
    T await_resume() { return child_.promise().TakeResult(); }

   private:
    std::coroutine_handle<promise_type> child_;
    const Snapshot& awaiter_values_;
  };

 private:
  friend class coro_internal::Promise<T>;
  template <typename U>
  friend Task<U> WithValues(ContextManager& mgr, const Values& values,
                            Task<U> task);
  template <typename U>
  friend U SyncWait(Task<U> task);
  friend struct coro_internal::TestPeer;
  template <typename U>
  friend class coro_internal::Promise;

  explicit Task(std::coroutine_handle<promise_type> handle) noexcept
      : handle_(handle) {}

  std::coroutine_handle<promise_type> handle_;
};

namespace coro_internal {

template <typename T>
class ResultSlot {
 public:
  void return_value(T value) { result_.template emplace<1>(std::move(value)); }
  void unhandled_exception() noexcept {
    result_.template emplace<2>(std::current_exception());
  }
  T TakeResult() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class ResultSlot<void> {
 public:
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void TakeResult() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

template <typename T>
class Promise : public PromiseBase, public ResultSlot<T> {
 public:
  Task<T> get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise>::from_promise(*this));
  }

  // co_await another gls::Task: started here, resumes us in our values.
  template <typename U>
  typename Task<U>::Awaiter await_transform(Task<U>&& task) noexcept {
    return typename Task<U>::Awaiter(task.handle_, values());
  }
  template <typename U>
  typename Task<U>::Awaiter await_transform(Task<U>& task) noexcept {
    return typename Task<U>::Awaiter(task.handle_, values());
  }
  // co_await anything else: resumed through a Resumer, in our values.
  template <typename A>
  auto await_transform(A&& awaitable) {
    using Awaiter = decltype(GetAwaiter(std::forward<A>(awaitable)));
    return ForeignAwaiter<Awaiter>(GetAwaiter(std::forward<A>(awaitable)),
                                   values());
  }
};

}  // namespace coro_internal

namespace coro_internal {
struct TestPeer {
  template <typename T>
  static void Start(Task<T>& task) {
    task.handle_.promise().StartAndCheckFinished(task.handle_, Continuation{});
  }
};
}  // namespace coro_internal

// WithValues(mgr, values, task)
//
// `task`, set to run with `values` for `mgr` on top of the values it was
// created with (as if its whole body ran inside mgr.SetValues(values, ...)),
// across all of its co_awaits. Only `task` (and tasks it creates) sees them.
// Throws what SetValues throws for bad values; `task` must not have started.
template <typename T>
Task<T> WithValues(ContextManager& mgr, const Values& values, Task<T> task) {
  auto& promise = task.handle_.promise();
  promise.values().Run([&] {
    mgr.SetValues(values, [&] { promise.set_values(Capture()); });
  });
  return task;
}

// SyncWait(task)
//
// Starts `task` on the calling flow, waits until it finishes (on whatever
// thread it finishes), and returns its result or rethrows its exception.
template <typename T>
T SyncWait(Task<T> task) {
  coro_internal::SyncWaitState state;
  auto& promise = task.handle_.promise();
  if (!promise.StartAndCheckFinished(
          task.handle_, coro_internal::Continuation{nullptr, nullptr, &state})) {
    std::unique_lock<std::mutex> lock(state.mu);
    state.cv.wait(lock, [&] { return state.done; });
  }
  return promise.TakeResult();
}

}  // namespace gls

#endif  // GLS_CORO_H_
