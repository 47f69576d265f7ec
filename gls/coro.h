// gls/coro.h: gls::Task<T>, a C++20 coroutine type whose body always runs
// with the values it was created with, wherever and whenever it resumes; and
// gls::Spawn, which starts one on an executor without waiting for it.
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
// pair cannot be written: the values belong to the sub-task object. Any task
// not yet started takes it, any number of times, also one made earlier by a
// factory in a scope that has ended since.
//
//   const gls::Values sub = {{kRequestId, "sub-1"}};
//   co_await gls::WithValues(mgr, sub, SubTask());
//
// (GCC 12 rejects a braced initializer list inside a co_await operand, hence
// the named Values.)
//
// Running a task, three ways:
//   * co_await it from another Task;
//   * gls::SyncWait(task) from ordinary code: blocks until it finishes, on
//     whatever thread it finishes;
//   * gls::Spawn(executor, task): submits the task's start to `executor` and
//     returns at once, as a server starts a request's coroutine and moves on
//     (Asio's co_spawn(ex, ..., detached)). The task runs in its own values
//     (those it was created with, or given by WithValues), and an exception
//     leaving it goes to an error handler (by default one line on stderr).
//     Spawn returns a gls::SpawnedTask: drop it to let the task run on its
//     own, ask it done(), or Destroy() a task suspended for good.
//
//   mgr.SetValues({{kRequestId, id}}, [&] {
//     gls::Spawn(pool_executor, HandleRequest(request));  // returns at once
//   });
//
// What this is not: a scheduler. A Task is lazy: it starts when awaited, on
// the awaiting flow, or when its executor runs its start (Spawn), and resumes
// wherever the awaitables it waits on resume it. Any awaitable works (it is
// wrapped through await_transform). A Task is awaited by one coroutine only;
// not copyable. Spawn does not own the executor, cancel work or join
// anything: a spawned task that never ends is not found or stopped by gls.
//
// Guarantees (each names the test that checks it; coro_test.cc,
// coro_spawn_test.cc, coro_spawn_asio_test.cc, coro_alloc_test.cc):
//   * The body sees exactly the values the task was created with (or given by
//     WithValues) after every resumption, for every registered manager of
//     every strategy; the resumer's own values are back when the task
//     suspends or finishes. (coro_test: SeesItsValuesAfterEveryResumption
//     OnAnotherThread, ManyCoroutinesHoppingConcurrentlyEachSeeTheirOwn,
//     WithValuesGivesASubTaskValuesAcrossItsAwaits, NoOtherCoroutineOnThe
//     ThreadSeesASubTasksValues)
//   * WithValues on a not-yet-started task made in a scope that has ended,
//     applied twice, on a task made outside every scope, or after a manager
//     was unregistered: the task sees its creator's values with the given
//     ones over them (an unregistered manager's: none), and the caller's
//     values are untouched. (coro_test: WithValuesOnATaskMadeInAScopeThat
//     HasEnded, WithValuesTwiceAddsBothOverTheCreatorsValues, WithValuesOnA
//     TaskMadeOutsideEveryScope, WithValuesAfterAManagerOfTheTaskWas
//     Unregistered)
//   * A child task awaited by a parent runs on the parent's stack until it
//     first suspends, so awaiting tasks that finish synchronously costs no
//     stack growth; a chain of asynchronous hops costs a bounded depth per
//     hop. (coro_test: AwaitingTasksThatFinishSynchronouslyDoesNotGrowTheStack)
//   * Allocation: each suspension on an awaitable that is not a gls::Task
//     allocates one small resumption frame (a coroutine frame of ~100
//     bytes), freed when it resumes. Awaiting a gls::Task allocates nothing
//     beyond the task itself. Spawn allocates one small control block (which
//     holds the error handler) beyond the task, plus whatever the executor
//     needs to queue a callable. (coro_alloc_test)
//   * Destroying a Task that never started, or a spawned task suspended on an
//     awaitable that will never resume it (SpawnedTask::Destroy), releases
//     its frame, its values and its pending resumption frame: nothing leaks
//     and nothing stays installed in any flow. (coro_test: DestroyingUnstarted
//     OrSuspendedTasksReleasesTheirValues; coro_spawn_test: Destroying
//     ASpawnedTaskSuspendedForGoodFreesEverything, DestroyWhileTheStartIs
//     StillReturningIsCarriedOutByTheStart; ASan's leak checker)
//   * An exception leaving the body is rethrown to the awaiter (or from
//     SyncWait). (coro_test: ExceptionsReachTheAwaiterWhichKeepsItsValues)
//     One leaving a spawned task is handed to its error handler, in the
//     task's values; never dropped silently, never std::terminate.
//     (coro_spawn_test: ExceptionsLeavingSpawnedTasksGoToTheErrorHandler
//     InTheirValues, DefaultErrorHandlerWritesOneLineToStderr,
//     ErrorHandlerThatThrowsIsReportedToStderr)
//   * Bad input is a std::invalid_argument naming the call and the problem:
//     an empty (moved-from) task given to co_await, SyncWait, WithValues or
//     Spawn, or a task that has already started. (coro_test:
//     BadTasksGiveAClearError)
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
//
//   // Or started on a pool without waiting; errors logged with the id:
//   mgr.SetValues({{kRequestId, "req-7"}}, [&] {
//     gls::Spawn(&pool, Main(), [](std::exception_ptr e) {
//       LogError(Read(kRequestId), e);         // "req-7"
//     });
//   });
#ifndef GLS_CORO_H_
#define GLS_CORO_H_

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
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

// Resumes `target` (a task's body, inside the Run of its values) until it
// next suspends or finishes; aborts with a message if it suspended with a
// scope guard (gls/scoped_values.h) still open: that guard's values would
// stay installed in this thread's context after the task left it.
inline void ResumeBody(std::coroutine_handle<> target) {
  const int open_guards = internal::open_scope_guards;
  target.resume();
  if (internal::open_scope_guards > open_guards) [[unlikely]] {
    internal::AbortScopeGuardAcrossSuspension();
  }
}

// The snapshot is the resumer's own copy: `target` may finish and free its
// promise (and the snapshot in it) while Run still has the values installed.
inline Resumer MakeResumer(std::coroutine_handle<> target, Snapshot snapshot) {
  snapshot.Run([target] { ResumeBody(target); });
  co_return;
}

// What a finished task hands control to: the awaiting task (resumed in its
// own values), a SyncWait blocked on a condition variable, or the control
// block of a spawned task.
struct SyncWaitState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

class SpawnControl;

struct Continuation {
  std::coroutine_handle<> handle;    // the awaiting task, or null
  const Snapshot* values = nullptr;  // the awaiting task's values
  SyncWaitState* sync = nullptr;     // or the SyncWait waiting
  SpawnControl* spawned = nullptr;   // or the task was spawned
};

// The handshake between a task that finishes and the flow that started it
// synchronously (an awaiter in await_suspend, SyncWait, a spawned task's
// start), which may still be inside the start. kDestroyRequested: a spawned
// task was destroyed (SpawnedTask::Destroy) while its start was still
// running; the start destroys it once it hands off.
enum : int {
  kRunning = 0,
  kAwaiterSuspended = 1,
  kFinished = 2,
  kDestroyRequested = 3,
};

// Throws std::invalid_argument "<where>: <problem>" (a task that cannot be
// started or given values).
[[noreturn]] inline void ThrowBadTask(const char* where, const char* problem) {
  throw std::invalid_argument(std::string(where) + ": " + problem);
}

class PromiseBase {
 public:
  PromiseBase() noexcept : values_(Capture()) {}

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(
        std::coroutine_handle<Promise> self) const noexcept;
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // Runs the task's body from where it is suspended until it next suspends
  // or finishes, in its values, on the calling flow; then hands the task off
  // and returns the handshake state it found: kFinished if it finished
  // meanwhile (the caller carries on with it), kDestroyRequested if a
  // spawned task was destroyed meanwhile, else kRunning (the continuation
  // runs when it finishes).
  int StartAndHandOff(std::coroutine_handle<> self, Continuation continuation) {
    started_ = true;
    continuation_ = continuation;
    // Run on a copy, as MakeResumer does: once the body suspends, another
    // flow may destroy the task (a nested task parked, its parent destroyed
    // from another thread) and with it values_, while this Run still
    // restores what it installed from those frames (tsan saw the frame
    // freed under Rebuild in coro_spawn_test).
    const Snapshot values = values_;
    values.Run([self] { ResumeBody(self); });
    return state_.exchange(kAwaiterSuspended, std::memory_order_acq_rel);
  }
  bool StartAndCheckFinished(std::coroutine_handle<> self,
                             Continuation continuation) {
    return StartAndHandOff(self, continuation) == kFinished;
  }

  // For a spawned task being destroyed: if its start is still running,
  // leaves the destruction to it and returns kRunning; otherwise returns the
  // state found (kAwaiterSuspended: suspended, handed off; kFinished: it is
  // ending on its own).
  int RequestDestroyWhileStarting() noexcept {
    int state = kRunning;
    state_.compare_exchange_strong(state, kDestroyRequested,
                                   std::memory_order_acq_rel);
    return state;
  }

  // Throws std::invalid_argument naming `where` unless the task can still
  // be given values or started.
  void CheckNotStarted(const char* where) const {
    if (started_) {
      ThrowBadTask(where,
                   "the gls::Task has already started (a task is started "
                   "once: by co_await, SyncWait or Spawn)");
    }
  }

  const Snapshot& values() const noexcept { return values_; }
  // Only before the task starts, and never from inside values().Run(...):
  // that Run may hold the only references to the frames it installed.
  void set_values(Snapshot values) noexcept { values_ = std::move(values); }

 private:
  Snapshot values_;
  Continuation continuation_;
  std::atomic<int> state_{kRunning};
  bool started_ = false;  // touched only by the task's owner, before handing it on
};

// The exception a finished task ended with, or null.
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
  std::exception_ptr error() const noexcept {
    return result_.index() == 2 ? std::get<2>(result_) : nullptr;
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
  std::exception_ptr error() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

// SpawnControl
//
// What gls::Spawn's pieces share, allocated apart from the task so that the
// task can be destroyed (finished, or SpawnedTask::Destroy) while the
// executor still holds a start. Owners, each holding one reference: the
// SpawnedTask handle, every copy of the start the executor holds, and the
// task's execution from its launch until it ends. The last one frees it
// (and destroys the task if it never launched: an executor that dropped
// its start unrun).
class SpawnControl {
 public:
  // phase(): where the spawned task is.
  enum Phase : int {
    kQueued = 0,    // its start has not run
    kLaunched = 1,  // running, suspended, or finishing
    kEnded = 2,     // finished, destroyed, or cancelled: its frame is freed
  };

  // Adopts `task` (not started) with two owners: the handle and the start.
  SpawnControl(std::coroutine_handle<> task, PromiseBase* promise) noexcept
      : task_(task), promise_(promise) {}
  SpawnControl(const SpawnControl&) = delete;
  SpawnControl& operator=(const SpawnControl&) = delete;

  void AddOwner() noexcept { owners_.fetch_add(1, std::memory_order_relaxed); }
  void ReleaseOwner() noexcept {
    if (owners_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (phase_.load(std::memory_order_acquire) == kQueued) {
      task_.destroy();  // never launched: its values go with it
    }
    delete this;
  }

  bool ended() const noexcept {
    return phase_.load(std::memory_order_acquire) == kEnded;
  }

  // The start, run by the executor: launches the task on the calling flow,
  // unless it was cancelled or another copy of the start launched it.
  void Launch() noexcept {
    int expected = kQueued;
    if (!phase_.compare_exchange_strong(expected, kLaunched,
                                        std::memory_order_acq_rel)) {
      return;
    }
    AddOwner();  // the execution's, until End()
    int found = kFinished;
    try {
      Continuation continuation;
      continuation.spawned = this;
      found = promise_->StartAndHandOff(task_, continuation);
    } catch (...) {
      // Installing the task's values failed (std::bad_alloc growing a
      // context): the body never ran. Reported, then ended unrun.
      Report(std::current_exception());
      found = kFinished;
    }
    // kFinished: it finished on this flow; kDestroyRequested: Destroy() was
    // called while it ran here. Either way nothing else will touch it.
    if (found != kRunning) End();
  }

  // The task finished (after its handshake), or is destroyed for good: frees
  // its frame (values, pending resumption frame and all), then lets go of
  // the execution's ownership.
  void End() noexcept {
    task_.destroy();
    phase_.store(kEnded, std::memory_order_release);
    ReleaseOwner();
  }

  // SpawnedTask::Destroy: see its comment for when this is defined.
  void DestroyFromHandle() noexcept {
    int expected = kQueued;
    if (phase_.compare_exchange_strong(expected, kEnded,
                                       std::memory_order_acq_rel)) {
      task_.destroy();  // never started; the start, if it runs, finds kEnded
    } else if (expected == kLaunched) {
      const int state = promise_->RequestDestroyWhileStarting();
      // kRunning: its start is still running; it destroys the task when it
      // hands off. kFinished: it is ending on its own.
      if (state == kAwaiterSuspended) End();  // suspended for good
    }
    ReleaseOwner();  // the handle's
  }

  // Hands an exception that left the task to the error handler.
  virtual void Report(std::exception_ptr error) noexcept = 0;

 protected:
  virtual ~SpawnControl() = default;

 private:
  std::atomic<int> owners_{2};
  std::atomic<int> phase_{kQueued};
  const std::coroutine_handle<> task_;
  PromiseBase* const promise_;
};

// Writes one line about an exception an error handler threw (coro.cc).
void ReportThrowingErrorHandler(std::exception_ptr from_handler,
                                std::exception_ptr from_task) noexcept;

template <typename OnError>
class SpawnControlFor final : public SpawnControl {
 public:
  SpawnControlFor(std::coroutine_handle<> task, PromiseBase* promise,
                  OnError on_error)
      : SpawnControl(task, promise), on_error_(std::move(on_error)) {}

  void Report(std::exception_ptr error) noexcept override {
    try {
      std::invoke(on_error_, error);
    } catch (...) {
      ReportThrowingErrorHandler(std::current_exception(), error);
    }
  }

 private:
  OnError on_error_;
};

// The callable gls::Spawn submits to the executor. Copyable (for executors
// that keep std::function), each copy an owner of the control block; calling
// any one launches the task once.
class SpawnStart {
 public:
  explicit SpawnStart(SpawnControl* control) noexcept : control_(control) {}
  SpawnStart(const SpawnStart& other) noexcept : control_(other.control_) {
    if (control_ != nullptr) control_->AddOwner();
  }
  SpawnStart(SpawnStart&& other) noexcept
      : control_(std::exchange(other.control_, nullptr)) {}
  SpawnStart& operator=(SpawnStart other) noexcept {
    std::swap(control_, other.control_);
    return *this;
  }
  ~SpawnStart() {
    if (control_ != nullptr) control_->ReleaseOwner();
  }

  void operator()() const noexcept {
    if (control_ != nullptr) control_->Launch();
  }

 private:
  SpawnControl* control_;
};

template <typename Promise>
std::coroutine_handle<> PromiseBase::FinalAwaiter::await_suspend(
    std::coroutine_handle<Promise> self) const noexcept {
  PromiseBase& p = self.promise();
  if (p.continuation_.spawned != nullptr) {
    // Reported here, in the task's values (still installed around its body).
    if (std::exception_ptr error = self.promise().error()) {
      p.continuation_.spawned->Report(error);
    }
  }
  if (p.state_.exchange(kFinished, std::memory_order_acq_rel) !=
      kAwaiterSuspended) {
    // The starter is still in its start: it sees kFinished and carries on
    // (an awaiter without suspending; a spawned task's start ends it).
    return std::noop_coroutine();
  }
  const Continuation next = p.continuation_;
  if (next.spawned != nullptr) {
    // Finished on a flow that resumed it through a Resumer, which runs in
    // its own copy of the values: destroying the task here frees nothing
    // that is installed.
    next.spawned->End();
    return std::noop_coroutine();
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

// What gls::Spawn needs of Task and SpawnedTask beyond their public API.
struct TaskAccess;

}  // namespace coro_internal

class SpawnedTask;

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
      coro_internal::Continuation continuation;
      continuation.handle = awaiter;
      continuation.values = &awaiter_values_;
      return !child_.promise().StartAndCheckFinished(child_, continuation);
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
  friend struct coro_internal::TaskAccess;
  template <typename U>
  friend class coro_internal::Promise;

  explicit Task(std::coroutine_handle<promise_type> handle) noexcept
      : handle_(handle) {}

  // The promise of a task that can still be started or given values; throws
  // std::invalid_argument naming `where` if it is empty or has started.
  promise_type& StartablePromise(const char* where) const {
    if (!handle_) {
      coro_internal::ThrowBadTask(
          where, "the gls::Task is empty (moved from, or already handed on)");
    }
    handle_.promise().CheckNotStarted(where);
    return handle_.promise();
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace coro_internal {

template <typename T>
class Promise : public PromiseBase, public ResultSlot<T> {
 public:
  Task<T> get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise>::from_promise(*this));
  }

  // co_await another gls::Task: started here, resumes us in our values.
  template <typename U>
  typename Task<U>::Awaiter await_transform(Task<U>&& task) {
    task.StartablePromise("co_await gls::Task");
    return typename Task<U>::Awaiter(task.handle_, values());
  }
  template <typename U>
  typename Task<U>::Awaiter await_transform(Task<U>& task) {
    task.StartablePromise("co_await gls::Task");
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

template <typename T>
struct IsReferenceWrapper : std::false_type {};
template <typename T>
struct IsReferenceWrapper<std::reference_wrapper<T>> : std::true_type {};

// The executor `held` stands for: through the pointer or reference_wrapper
// if that is what it is.
template <typename E>
decltype(auto) SpawnTarget(E& held) noexcept {
  using D = std::remove_cv_t<E>;
  if constexpr (std::is_pointer_v<D>) {
    return (*held);
  } else if constexpr (IsReferenceWrapper<D>::value) {
    return (held.get());
  } else {
    return (held);
  }
}
template <typename E>
using SpawnTargetOf =
    std::remove_reference_t<decltype(SpawnTarget(std::declval<E&>()))>;

// The ways gls::Spawn hands an executor (after SpawnTarget) its start, in
// the order it tries them.
template <typename E>
concept SpawnCallable = std::is_invocable_v<E&, SpawnStart>;
template <typename E>
concept SpawnExecute = requires(E& ex, SpawnStart start) {
  ex.execute(std::move(start));
};
template <typename E>
concept SpawnPost = requires(E& ex, SpawnStart start) {
  ex.post(std::move(start));
};

template <typename Held>
void SubmitStart(Held& held, SpawnStart start) {
  auto& ex = SpawnTarget(held);
  using E = std::remove_reference_t<decltype(ex)>;
  if constexpr (SpawnCallable<E>) {
    ex(std::move(start));
  } else if constexpr (SpawnExecute<E>) {
    ex.execute(std::move(start));
  } else if constexpr (SpawnPost<E>) {
    ex.post(std::move(start));
  }
}

}  // namespace coro_internal

// WithValues(mgr, values, task)
//
// `task`, set to run with `values` for `mgr` on top of the values it has now
// (those it was created with, or given by an earlier WithValues), as if its
// whole body ran inside mgr.SetValues(values, ...), across all of its
// co_awaits. Only `task` (and tasks it creates) sees them. `task` may have
// been made anywhere, in a scope that has ended or outside every scope, but
// must not have started. Values of a manager that is unregistered when the
// task runs are not shown (as for any Snapshot). Throws std::invalid_argument
// for an empty or started task, and what SetValues throws for bad values;
// `task` is then destroyed.
template <typename T>
Task<T> WithValues(ContextManager& mgr, const Values& values, Task<T> task) {
  auto& promise = task.StartablePromise("gls::WithValues");
  // Taken inside the task's values, stored only once Run has returned: the
  // snapshot Run installed may hold the only references to its frames (a
  // factory's scope has ended), so replacing it inside Run would free them
  // while installed.
  Snapshot with = promise.values().Run(
      [&] { return mgr.SetValues(values, [] { return Capture(); }); });
  promise.set_values(std::move(with));
  return task;
}

// SyncWait(task)
//
// Starts `task` on the calling flow, waits until it finishes (on whatever
// thread it finishes), and returns its result or rethrows its exception.
// Throws std::invalid_argument for an empty or started task.
template <typename T>
T SyncWait(Task<T> task) {
  auto& promise = task.StartablePromise("gls::SyncWait");
  coro_internal::SyncWaitState state;
  coro_internal::Continuation continuation;
  continuation.sync = &state;
  if (!promise.StartAndCheckFinished(task.handle_, continuation)) {
    std::unique_lock<std::mutex> lock(state.mu);
    state.cv.wait(lock, [&] { return state.done; });
  }
  return promise.TakeResult();
}

// WriteExceptionToStderr
//
// gls::Spawn's default error handler: writes one line to stderr naming the
// exception's type and, for a std::exception, its what():
//   gls::Spawn: a spawned gls::Task ended with an exception: std::runtime_error: boom
// Never throws.
struct WriteExceptionToStderr {
  void operator()(std::exception_ptr error) const noexcept;
};

// SpawnedTask
//
// What gls::Spawn returns: a handle on a spawned task. It does not keep the
// task alive or wait for it: destroying the handle (or never keeping it)
// lets the task run to its end on its own, which then frees itself.
// Move-only.
class SpawnedTask {
 public:
  SpawnedTask() noexcept = default;
  SpawnedTask(SpawnedTask&& other) noexcept
      : control_(std::exchange(other.control_, nullptr)) {}
  SpawnedTask& operator=(SpawnedTask&& other) noexcept {
    if (this != &other) {
      Release();
      control_ = std::exchange(other.control_, nullptr);
    }
    return *this;
  }
  ~SpawnedTask() { Release(); }

  // done(): true once the task has ended (returned, or thrown and its error
  // handler returned) and its frame and values are freed; true for an empty
  // handle (moved from, or after Destroy). Thread-safe.
  bool done() const noexcept {
    return control_ == nullptr || control_->ended();
  }

  // Destroy()
  //
  // Destroys the task now and empties the handle. Defined when the task:
  //   * has not started (its start is still queued on the executor): it
  //     never runs; the start, when the executor runs or drops it, does
  //     nothing;
  //   * is suspended on an awaitable that will never resume it (nested
  //     gls::Tasks included): its frames, values and pending resumption
  //     frame are freed, here or, if its start is still returning on another
  //     thread, by the start as it returns;
  //   * has ended (done()): nothing to do.
  // Undefined, as for any coroutine, when the task may be running or be
  // resumed at the same time or later (it would run in freed memory): a
  // start that is already running when Destroy is called counts as running
  // unless the task then suspends for good or finishes.
  void Destroy() noexcept {
    if (control_ != nullptr) std::exchange(control_, nullptr)->DestroyFromHandle();
  }

 private:
  friend struct coro_internal::TaskAccess;
  explicit SpawnedTask(coro_internal::SpawnControl* control) noexcept
      : control_(control) {}
  void Release() noexcept {
    if (control_ != nullptr) std::exchange(control_, nullptr)->ReleaseOwner();
  }

  coro_internal::SpawnControl* control_ = nullptr;
};

namespace coro_internal {
struct TaskAccess {
  template <typename T, typename OnError>
  static SpawnedTask Adopt(Task<T>& task, OnError on_error) {
    auto& promise = task.StartablePromise("gls::Spawn");
    auto* control = new SpawnControlFor<OnError>(task.handle_, &promise,
                                                 std::move(on_error));
    task.handle_ = {};  // the control block owns the coroutine now
    return SpawnedTask(control);
  }
  static SpawnControl* Control(const SpawnedTask& spawned) noexcept {
    return spawned.control_;
  }
};
}  // namespace coro_internal

// Spawn(executor, task, on_error = WriteExceptionToStderr{})
//
// Starts `task` without waiting for it: submits its start, a nullary
// callable, to `executor` and returns. The executor may be:
//   * a callable scheduler: `executor(fn)` (a lambda, a std::function taking
//     a std::function<void()>): tried first;
//   * an executor with `executor.execute(fn)`: every Asio executor
//     (io_context's, thread_pool's, strands, any_io_executor,
//     gls::asio::Propagating's), found generically, with no dependency on
//     Boost here;
//   * an executor with `executor.post(fn)` (thread pools, gls::Propagating
//     over one);
//   * a pointer or std::reference_wrapper to any of these.
// Anything else fails to compile with a message naming these forms. The
// start is copyable, so std::function-based queues work.
//
// When the executor runs the start, the task runs on that flow until it
// first suspends, then wherever its awaitables resume it, always in its own
// values: those it was created with (or given by WithValues), never the
// executor thread's or Spawn's caller's. Its result, if any, is discarded.
// An executor may run the start inside `executor(fn)`: an Asio io_context
// executor does when Spawn is called on one of its threads (blocking.possibly;
// pass boost::asio::require(ex, boost::asio::execution::blocking.never) to
// always queue); the task may then even have ended before Spawn returns.
//
// An exception leaving the body is passed to `on_error(std::exception_ptr)`
// on the flow where the task ended, in the task's values, before its frame
// is freed. The default writes one line to stderr (WriteExceptionToStderr).
// If `on_error` itself throws, that exception and the task's are written to
// stderr in one line; neither is rethrown and nothing terminates.
//
// If the executor drops the start unrun (destroyed with work queued), the
// task is destroyed unstarted, its values released. If submitting throws,
// Spawn destroys the task unstarted and rethrows. Throws
// std::invalid_argument for an empty or started task.
template <typename Executor, typename T,
          typename OnError = WriteExceptionToStderr>
SpawnedTask Spawn(Executor&& executor, Task<T> task,
                  OnError on_error = OnError{}) {
  using Target =
      coro_internal::SpawnTargetOf<std::remove_reference_t<Executor>>;
  static_assert(coro_internal::SpawnCallable<Target> ||
                    coro_internal::SpawnExecute<Target> ||
                    coro_internal::SpawnPost<Target>,
                "gls::Spawn: the executor must be callable as executor(fn), or "
                "have executor.execute(fn) or executor.post(fn), for a "
                "nullary callable fn (or be a pointer or "
                "std::reference_wrapper to such an executor)");
  static_assert(std::is_invocable_v<OnError&, std::exception_ptr>,
                "gls::Spawn: the error handler must be callable with a "
                "std::exception_ptr");
  internal::CheckCallable(on_error, "gls::Spawn (the error handler)");
  SpawnedTask spawned =
      coro_internal::TaskAccess::Adopt(task, std::move(on_error));
  // The start owns the control block's second reference.
  coro_internal::SubmitStart(
      executor, coro_internal::SpawnStart(
                    coro_internal::TaskAccess::Control(spawned)));
  return spawned;
}

}  // namespace gls

#endif  // GLS_CORO_H_
