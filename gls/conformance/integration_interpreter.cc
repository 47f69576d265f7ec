#include "gls/conformance/integration_interpreter.h"

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it

#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/awaitable.hpp"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/co_spawn.hpp"
#include "boost/asio/defer.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "gls/bind.h"
#include "gls/conformance/integration_model.h"
#include "gls/conformance/interpreter.h"
#include "gls/context_manager.h"
#include "gls/contrib/asio.h"
#include "gls/contrib/spdlog.h"
#include "gls/coro.h"
#include "gls/values.h"
#include "spdlog/details/thread_pool.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/base_sink.h"

namespace gls {
namespace conformance {
namespace integration {

namespace net = boost::asio;

namespace {

RunSetup CoreSetup(const RuntimeSetup& setup) {
  // Shared managers A and B per strategy, both registered (no U): the
  // managers ManagerCount / ManagerName describe.
  return MakeRunSetup(setup.strategies, /*fibers=*/false,
                      /*register_fiber_stacks=*/false, /*unregister=*/false);
}

}  // namespace

struct Runtime::Impl {
  explicit Impl(RuntimeSetup s)
      : setup(std::move(s)),
        world(CoreSetup(setup)),
        guard(io.get_executor()),
        pool(static_cast<size_t>(setup.pool_threads)),
        // The kLog steps' lines are formatted on this pool's 2 worker
        // threads, outside every scope (gls's async logger carries them).
        log_pool(std::make_shared<spdlog::details::thread_pool>(1024, 2)) {
    // Started outside every scope: the threads have no values of their own.
    for (int i = 0; i < setup.io_threads; ++i) {
      io_threads.emplace_back([this] { io.run(); });
    }
  }
  ~Impl() {
    guard.reset();
    io.stop();
    for (std::thread& t : io_threads) t.join();
    pool.stop();
    pool.join();
  }

  const RuntimeSetup setup;
  World world;
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> guard;
  std::vector<std::thread> io_threads;
  net::thread_pool pool;
  std::shared_ptr<spdlog::details::thread_pool> log_pool;
};

RuntimeSetup MakeRuntimeSetup(std::vector<const Strategy*> strategies,
                              bool strands_over_wrapper) {
  RuntimeSetup setup;
  setup.strategies = std::move(strategies);
  setup.options.strategies = static_cast<int>(setup.strategies.size());
  setup.options.strands_over_wrapper = strands_over_wrapper;
  return setup;
}

Runtime::Runtime(RuntimeSetup setup)
    : impl_(std::make_unique<Impl>(std::move(setup))) {}
Runtime::~Runtime() = default;
const RuntimeSetup& Runtime::setup() const { return impl_->setup; }

namespace {

using IoExecutor = net::io_context::executor_type;
using PoolExecutor = net::thread_pool::executor_type;
using WrappedIo = gls::asio::PropagatingExecutor<IoExecutor>;
using WrappedPool = gls::asio::PropagatingExecutor<PoolExecutor>;
// A strand over the wrapped executor (make_strand(Propagating(...))).
using StrandOverWrapper = net::strand<WrappedIo>;
// The wrapper over a strand (Propagating(make_strand(...))).
using WrapperOverStrand =
    gls::asio::PropagatingExecutor<net::strand<IoExecutor>>;

// A spdlog sink that hands every formatted line (without its end of line)
// to a callback, on whatever thread the logger formats it.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LineSink(std::function<void(std::string_view)> on_line)
      : on_line_(std::move(on_line)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string_view line(formatted.data(), formatted.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    on_line_(line);
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> on_line_;
};

class Interpreter {
 public:
  Interpreter(Runtime::Impl& runtime, Program program)
      : rt_(runtime),
        program_(std::move(program)),
        world_(runtime.world),
        strategies_(static_cast<int>(runtime.setup.strategies.size())),
        managers_(ManagerCount(strategies_)),
        registry_(MakeRegistry(strategies_)),
        expect_(Predict(program_, registry_)),
        total_steps_(CountSteps(program_.steps)),
        runs_(new std::atomic<int>[total_steps_]),
        skipped_(new std::atomic<bool>[total_steps_]),
        wrapped_io_(gls::asio::Propagating(runtime.io.get_executor())),
        wrapped_pool_(gls::asio::Propagating(runtime.pool.get_executor())),
        shared_strand_(net::make_strand(wrapped_io_)),
        wrapped_strand_(
            gls::asio::Propagating(net::make_strand(runtime.io.get_executor()))),
        request_strands_(program_.steps.size()) {
    int number = 0;
    Number(program_.steps, number);
    for (int64_t i = 0; i < total_steps_; ++i) {
      runs_[i].store(0, std::memory_order_relaxed);
      skipped_[i].store(false, std::memory_order_relaxed);
    }
    // The kLog steps' logger: gls's asynchronous logger on the runtime's
    // spdlog thread pool (issue 18 bug 2: a plain async logger formats on
    // the worker thread and prints no values), one line per step, formatted
    // there with gls's flag over every key of manager A0 in key order (what
    // ExpectedFlag predicts: the values at the logging call).
    spdlog_values::Flag flag(world_.shared(0));
    for (KeyIndex key = 0; key < kKeys; ++key) {
      switch (KindOfKey(key)) {
        case KeyKind::kString:
          flag.Add(KeyName(key), Key(world_.string_key(key)));
          break;
        case KeyKind::kGenSym:
          flag.Add(KeyName(key), Key(world_.gensym(key - kStringKeys)));
          break;
        case KeyKind::kTypedInt:
          flag.Add(KeyName(key),
                   world_.typed_int(key - kStringKeys - kGenSymKeys));
          break;
        case KeyKind::kTypedString:
          flag.Add(KeyName(key), world_.typed_text(key - kStringKeys -
                                                   kGenSymKeys - kTypedIntKeys));
          break;
      }
    }
    auto sink = std::make_shared<LineSink>(
        [this](std::string_view line) { OnLine(line); });
    // Not registered with spdlog: every program has its own.
    logger_ = spdlog_values::MakeAsyncLogger("gls-integration", sink,
                                             runtime.log_pool);
    logger_->set_formatter(spdlog_values::MakeFormatter("%v%*", flag));
    logger_->set_level(spdlog::level::info);
  }

  // Whether work of the program may still be pending (RunProgram then
  // leaks the interpreter rather than free what that work uses).
  bool abandoned() const { return abandoned_; }

  RunResult Run(std::chrono::milliseconds timeout) {
    for (size_t i = 0; i < program_.steps.size(); ++i) {
      // The request's strand exists before anything of the request runs.
      request_strands_[i].emplace(net::make_strand(wrapped_io_));
      Exec(program_.steps[i], Flow{static_cast<int>(i), /*driver=*/true});
    }
    bool finished;
    int64_t pending;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      finished = work_cv_.wait_for(lock, timeout,
                                   [&] { return outstanding_ == 0; });
      pending = outstanding_;
    }
    if (!finished) {
      abandoned_ = true;
      Diverge(nullptr, Flow{},
              std::to_string(pending) + " pieces of work still pending " +
                  std::to_string(timeout.count()) +
                  " ms after the last request (lost or hung handlers)");
      return Result();
    }
    {
      std::lock_guard<std::mutex> lock(threads_mu_);
      for (std::thread& t : threads_) t.join();
      threads_.clear();
    }
    // Every step ran exactly once, unless it was skipped (with its subtree).
    for (int64_t n = 0; n < total_steps_; ++n) {
      const int runs = runs_[n].load();
      if (skipped_[n].load()) continue;
      if (runs != 1) {
        Diverge(by_number_[n], Flow{},
                runs == 0 ? "never ran (its work was lost)"
                          : "ran " + std::to_string(runs) + " times");
      }
    }
    return Result();
  }

 private:
  // Which flow a step runs on, as far as placement rules care.
  struct Flow {
    int request = -1;     // the top-level step it belongs to
    bool driver = false;  // the program's own thread (may SyncWait)
  };

  // An awaitable (for gls::Task) that resumes the task through `target`.
  struct Hop {
    Interpreter* in;
    Target target;
    Flow flow;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> resume) const;
    void await_resume() const noexcept {}
  };

  RunResult Result() {
    std::lock_guard<std::mutex> lock(mu_);
    RunResult result = result_;
    result.steps = steps_.load();
    result.reads = reads_.load();
    result.present_reads = present_reads_.load();
    result.work = work_.load();
    result.cancels = cancels_.load();
    result.lines = lines_.load();
    result.skipped = skipped_count_.load();
    return result;
  }

  void Number(const std::vector<Step>& steps, int& number) {
    for (const Step& step : steps) {
      numbers_[&step] = number++;
      by_number_.push_back(&step);
      Number(step.body, number);
    }
  }
  int NumberOf(const Step& step) const { return numbers_.at(&step); }
  const Expectation& At(const Step& step) const {
    return expect_[NumberOf(step)].at;
  }

  void Diverge(const Step* step, const Flow& flow, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ++result_.divergence_count;
    if (result_.divergence_count == 1) {
      result_.first_divergence_top_level = flow.request;
    }
    if (result_.divergences.size() < kMaxReported) {
      std::ostringstream out;
      if (step != nullptr) {
        out << "step #" << NumberOf(*step) << " " << DescribeStep(*step)
            << ": ";
      }
      out << what;
      result_.divergences.push_back(out.str());
    }
  }

  // Skips `step` and everything nested in it (a step where it cannot run).
  void Skip(const Step& step) {
    const int first = NumberOf(step);
    const int64_t count = 1 + CountSteps(step.body);
    for (int64_t n = first; n < first + count; ++n) skipped_[n].store(true);
    skipped_count_.fetch_add(count, std::memory_order_relaxed);
  }

  ContextManager& Manager(int manager) const { return world_.shared(manager); }

  StrandOverWrapper& RequestStrand(const Flow& flow) {
    return *request_strands_[flow.request];
  }

  // Calls f(executor) with the executor `target` names, as its own type.
  template <typename F>
  decltype(auto) WithExecutor(Target target, const Flow& flow, F&& f) {
    switch (target) {
      case Target::kIo:
        return f(wrapped_io_);
      case Target::kPool:
        return f(wrapped_pool_);
      case Target::kSharedStrand:
        return f(shared_strand_);
      case Target::kRequestStrand:
        return f(RequestStrand(flow));
      case Target::kWrappedStrand:
        return f(wrapped_strand_);
      case Target::kRawIo:
        return f(rt_.io.get_executor());
      case Target::kRawPool:
        return f(rt_.pool.get_executor());
    }
    return f(rt_.io.get_executor());  // not reached
  }
  // The executor `target` names, erased (as an awaitable's co_awaits take
  // it): any_io_executor forwards the properties the wrapper acts on.
  net::any_io_executor AnyExecutor(Target target, const Flow& flow) {
    return WithExecutor(target, flow, [](const auto& ex) {
      return net::any_io_executor(ex);
    });
  }

  // --- What a flow sees ---------------------------------------------------

  // Reads every key of every manager every way, each manager's GetValues()
  // and each strategy's goroutine id, and compares with `want`. One
  // divergence per manager that disagrees, showing both views.
  void Check(const Step& step, const char* when, const Expectation& want,
             const Flow& flow) {
    for (int m = 0; m < managers_; ++m) {
      const auto found = want.values.view.find(m);
      const ValueMap* values =
          found == want.values.view.end() ? nullptr : &found->second;
      Disagreements disagree;
      for (KeyIndex key = 0; key < kKeys; ++key) {
        std::optional<ModelValue> expected;
        if (values != nullptr) {
          const auto value = values->find(key);
          if (value != values->end()) expected = value->second;
        }
        CheckKey(m, key, expected, disagree);
      }
      reads_.fetch_add(1, std::memory_order_relaxed);
      const Values got = Manager(m).GetValues();
      if (!SameValues(got, values)) disagree.Add("GetValues()");
      if (disagree.count == 0) continue;
      std::ostringstream out;
      out << when << ": " << ManagerName(m) << " has {";
      for (const Values::Entry& entry : got) {
        const KeyIndex key = world_.IndexOf(entry.first);
        out << " ";
        if (key >= 0) {
          out << KeyName(key);
        } else {
          out << entry.first;
        }
        out << "=" << Describe(&entry.second);
      }
      out << " }, model {";
      if (values != nullptr) {
        for (const auto& [key, value] : *values) {
          out << " " << KeyName(key) << "=" << DescribeValue(value);
        }
      }
      out << " } (" << disagree.count << " reads disagree; the first: "
          << disagree.first << ")";
      Diverge(&step, flow, out.str());
    }
    for (int s = 0; s < strategies_; ++s) {
      const std::optional<uint64_t> id =
          rt_.setup.strategies[s]->GetGoroutineId();
      if (want.values.has_values[s] && !id.has_value()) {
        Diverge(&step, flow,
                std::string(when) + ": GetGoroutineId(strategy " +
                    std::to_string(s) +
                    ") is nullopt in a flow with values of that strategy");
      }
      if (want.thread_base && id.has_value()) {
        Diverge(&step, flow,
                std::string(when) + ": GetGoroutineId(strategy " +
                    std::to_string(s) + ") is " + std::to_string(*id) +
                    " on an executor thread between steps (want nullopt)");
      }
    }
  }

  // What one check of one manager found wrong.
  struct Disagreements {
    int count = 0;
    std::string first;
    void Add(std::string what) {
      if (count++ == 0) first = std::move(what);
    }
  };

  void CheckKey(int m, KeyIndex key, const std::optional<ModelValue>& want,
                Disagreements& disagree) {
    const ContextManager& mgr = Manager(m);
    auto note = [&](const char* how, const std::string& got) {
      disagree.Add(KeyName(key) + " as " + how + ": gls " + got + ", model " +
                   Describe(want));
    };
    auto untyped = [&](const char* how, const Value* got) {
      Counted(want);
      if (!Same(got, want)) note(how, Describe(got));
    };
    auto typed = [&](const char* how, const auto* got) {
      Counted(want);
      if (!Same(got, want)) note(how, Describe(got));
    };
    auto status_or = [&](const char* how, const auto& got) {
      Counted(want);
      if (!SameStatusOr(got, want)) note(how, DescribeStatusOr(got));
    };
    switch (KindOfKey(key)) {
      case KeyKind::kString: {
        const std::string& name = world_.string_key(key);
        untyped("std::string_view", mgr.GetValue(std::string_view(name)));
        untyped("const char*", mgr.GetValue(name.c_str()));
        status_or("StatusOr<int>", mgr.GetValue<int>(KeyView(name)));
        status_or("StatusOr<string>", mgr.GetValue<std::string>(KeyView(name)));
        break;
      }
      case KeyKind::kGenSym: {
        const ContextKey symbol = world_.gensym(key - kStringKeys);
        untyped("ContextKey", mgr.GetValue(symbol));
        if (key % 2 == 0) {
          status_or("StatusOr<int>", mgr.GetValue<int>(KeyView(symbol)));
        } else {
          status_or("StatusOr<string>",
                    mgr.GetValue<std::string>(KeyView(symbol)));
        }
        break;
      }
      case KeyKind::kTypedInt: {
        const TypedKey<int>& typed_key =
            world_.typed_int(key - kStringKeys - kGenSymKeys);
        typed("TypedKey<int>", mgr.GetValue(typed_key));
        const Key as_key(typed_key);
        untyped("KeyView", mgr.GetValue(KeyView(as_key)));
        break;
      }
      case KeyKind::kTypedString: {
        const TypedKey<std::string>& typed_key = world_.typed_text(
            key - kStringKeys - kGenSymKeys - kTypedIntKeys);
        typed("TypedKey<string>", mgr.GetValue(typed_key));
        const Key as_key(typed_key);
        status_or("StatusOr<string>",
                  mgr.GetValue<std::string>(KeyView(as_key)));
        break;
      }
    }
  }

  void Counted(const std::optional<ModelValue>& want) {
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (want) present_reads_.fetch_add(1, std::memory_order_relaxed);
  }

  bool SameValues(const Values& got, const ValueMap* want) const {
    const size_t want_size = want == nullptr ? 0 : want->size();
    if (got.size() != want_size) return false;
    for (const Values::Entry& entry : got) {
      const KeyIndex key = world_.IndexOf(entry.first);
      if (key < 0 || want == nullptr) return false;
      const auto it = want->find(key);
      if (it == want->end() || !Same(&entry.second, it->second)) return false;
    }
    return true;
  }

  // --- Work accounting ----------------------------------------------------

  void BeginWork() {
    std::lock_guard<std::mutex> lock(work_mu_);
    ++outstanding_;
  }
  // The last thing a piece of work does with the interpreter: once the
  // count reaches zero the program's thread may free it.
  void EndWork() {
    std::lock_guard<std::mutex> lock(work_mu_);
    if (--outstanding_ == 0) work_cv_.notify_all();
  }

  // A step is reached: counted and checked.
  void Enter(const Step& step, const Flow& flow) {
    runs_[NumberOf(step)].fetch_add(1, std::memory_order_relaxed);
    steps_.fetch_add(1, std::memory_order_relaxed);
    Check(step, "when reached", At(step), flow);
  }
  // The work a step started begins.
  void StartWork(const Step& step, const char* when, const Flow& flow) {
    work_.fetch_add(1, std::memory_order_relaxed);
    Check(step, when, *expect_[NumberOf(step)].work, flow);
  }
  // A handler, timer completion or bound callable: the whole piece of work.
  void RunWork(const Step& step, const char* when, const Flow& flow) {
    StartWork(step, when, flow);
    ExecList(step.body, flow);
    EndWork();
  }

  // --- Steps --------------------------------------------------------------

  void ExecList(const std::vector<Step>& steps, const Flow& flow) {
    for (const Step& step : steps) Exec(step, flow);
  }

  void Exec(const Step& step, const Flow& flow) {
    switch (step.kind) {
      case StepKind::kAwait:
      case StepKind::kHop:
      case StepKind::kSubTask:
        // Only at the top of an awaitable's or a task's body (where
        // Coroutine / TaskBody run them).
        return Skip(step);
      case StepKind::kTask:
        if (!flow.driver) return Skip(step);
        break;
      default:
        break;
    }
    Enter(step, flow);
    switch (step.kind) {
      case StepKind::kScope:
        Manager(step.manager).SetValues(world_.MakeValues(step.entries), [&] {
          ExecList(step.body, flow);
        });
        Check(step, "after the scope", At(step), flow);
        return;
      case StepKind::kCheck:
        return;
      case StepKind::kPost:
        return ExecPost(step, flow);
      case StepKind::kTimer:
        return ExecTimer(step, flow);
      case StepKind::kCancelTimer: {
        TimerSlot& slot = timers_[step.slot];
        std::lock_guard<std::mutex> lock(slot.mu);
        if (slot.timer != nullptr) {
          slot.timer->cancel();
          cancels_.fetch_add(1, std::memory_order_relaxed);
        }
        return;
      }
      case StepKind::kCoSpawn:
        return ExecCoSpawn(step, flow);
      case StepKind::kTask:
        SyncWait(TaskBody(&step, Flow{flow.request, /*driver=*/false}));
        Check(step, "after SyncWait returned", At(step), flow);
        return;
      case StepKind::kBind:
        return ExecBind(step, flow);
      case StepKind::kLog:
        BeginWork();  // done when the line reaches the sink
        logger_->info("{}", NumberOf(step));
        return;
      case StepKind::kAwait:
      case StepKind::kHop:
      case StepKind::kSubTask:
        return;  // skipped above
    }
  }

  void ExecPost(const Step& step, const Flow& flow) {
    if (!Carries(step.target) && (step.submit == Submit::kDispatch ||
                                  step.submit == Submit::kBindExecutor)) {
      // Not generated: where an inline dispatch through a raw executor runs
      // (and so what it sees) depends on the calling thread.
      return Skip(step);
    }
    BeginWork();
    const Flow work{flow.request, /*driver=*/false};
    auto handler = [this, &step, work] {
      RunWork(step, "at the handler's start", work);
    };
    WithExecutor(step.target, flow, [&](const auto& ex) {
      switch (step.submit) {
        case Submit::kPost:
          net::post(ex, handler);
          return;
        case Submit::kDispatch:
          net::dispatch(ex, handler);
          return;
        case Submit::kDefer:
          net::defer(ex, handler);
          return;
        case Submit::kBindExecutor:
          net::post(rt_.io.get_executor(), net::bind_executor(ex, handler));
          return;
      }
    });
  }

  void ExecTimer(const Step& step, const Flow& flow) {
    BeginWork();
    const Flow work{flow.request, /*driver=*/false};
    std::shared_ptr<net::steady_timer> timer =
        WithExecutor(step.target, flow, [](const auto& ex) {
          return std::make_shared<net::steady_timer>(ex);
        });
    // A timer object is not thread-safe: its wait and a cancel from
    // another flow are serialized by the slot's lock.
    TimerSlot& slot = timers_[step.slot];
    std::lock_guard<std::mutex> lock(slot.mu);
    timer->expires_after(std::chrono::microseconds(step.delay_us));
    // The handler keeps the timer alive until it has run.
    timer->async_wait([this, &step, work, timer](boost::system::error_code) {
      RunWork(step, "at the timer completion's start", work);
    });
    slot.timer = std::move(timer);
  }

  void ExecCoSpawn(const Step& step, const Flow& flow) {
    BeginWork();
    const Flow work{flow.request, /*driver=*/false};
    WithExecutor(step.target, flow, [&](const auto& ex) {
      net::co_spawn(ex, Coroutine(&step, work),
                    [this, &step, work](std::exception_ptr error) {
                      if (error) {
                        Diverge(&step, work, "the awaitable threw");
                      }
                      EndWork();
                    });
    });
  }

  net::awaitable<void> Coroutine(const Step* step, Flow flow) {
    StartWork(*step, "at the awaitable's start", flow);
    co_await CoroutineSteps(&step->body, flow);
  }

  net::awaitable<void> CoroutineSteps(const std::vector<Step>* steps,
                                      Flow flow) {
    for (const Step& step : *steps) {
      if (step.kind != StepKind::kAwait) {
        Exec(step, flow);
        continue;
      }
      Enter(step, flow);
      switch (step.await) {
        case AwaitKind::kPost:
          co_await net::post(AnyExecutor(step.target, flow),
                             net::use_awaitable);
          break;
        case AwaitKind::kTimer: {
          net::steady_timer timer(AnyExecutor(step.target, flow),
                                  std::chrono::microseconds(step.delay_us));
          co_await timer.async_wait(net::use_awaitable);
          break;
        }
        case AwaitKind::kNested:
          co_await CoroutineSteps(&step.body, flow);
          break;
      }
      Check(step, "after the co_await resumed", At(step), flow);
    }
  }

  gls::Task<void> TaskBody(const Step* step, Flow flow) {
    StartWork(*step, "at the task's start", flow);
    for (const Step& sub : step->body) {
      switch (sub.kind) {
        case StepKind::kHop:
          Enter(sub, flow);
          co_await Hop{this, sub.target, flow};
          Check(sub, "after the hop resumed the task", At(sub), flow);
          break;
        case StepKind::kSubTask:
          Enter(sub, flow);
          if (sub.entries.empty()) {
            co_await TaskBody(&sub, flow);
          } else {
            const Values values = world_.MakeValues(sub.entries);
            co_await gls::WithValues(Manager(sub.manager), values,
                                     TaskBody(&sub, flow));
          }
          Check(sub, "after the sub-task finished", At(sub), flow);
          break;
        default:
          Exec(sub, flow);
          break;
      }
    }
  }

  void ExecBind(const Step& step, const Flow& flow) {
    BeginWork();
    const Flow work{flow.request, /*driver=*/false};
    auto bound = gls::Bind([this, &step, work] {
      RunWork(step, "at the bound callable's start", work);
    });
    switch (step.where) {
      case BindWhere::kRawIo:
        net::post(rt_.io.get_executor(), std::move(bound));
        return;
      case BindWhere::kRawPool:
        net::post(rt_.pool.get_executor(), std::move(bound));
        return;
      case BindWhere::kThread: {
        std::lock_guard<std::mutex> lock(threads_mu_);
        threads_.emplace_back(std::move(bound));
        return;
      }
      case BindWhere::kElsewhere: {
        const Values elsewhere = {
            {Key(world_.string_key(0)), Value(std::string("elsewhere"))}};
        Manager(0).SetValues(elsewhere, [&] { bound(); });
        Check(step, "after the bound callable returned", At(step), flow);
        return;
      }
    }
  }

  // A formatted line "<step number><flag output>" reached the sink.
  void OnLine(std::string_view line) {
    lines_.fetch_add(1, std::memory_order_relaxed);
    size_t digits = 0;
    int number = 0;
    while (digits < line.size() && line[digits] >= '0' &&
           line[digits] <= '9') {
      number = number * 10 + (line[digits] - '0');
      ++digits;
    }
    if (digits == 0 || number >= total_steps_) {
      Diverge(nullptr, Flow{},
              "a log line that names no step: \"" + std::string(line) + "\"");
    } else {
      const Step& step = *by_number_[number];
      const std::string got(line.substr(digits));
      const std::string want = ExpectedFlag(At(step).values);
      if (got != want) {
        Diverge(&step, Flow{},
                "log line's gls flag printed \"" + got + "\", model \"" +
                    want + "\"");
      }
    }
    EndWork();
  }

  struct TimerSlot {
    std::mutex mu;
    std::shared_ptr<net::steady_timer> timer;
  };

  Runtime::Impl& rt_;
  const Program program_;
  World& world_;
  const int strategies_;
  const int managers_;
  const ModelRegistry registry_;
  const std::vector<StepExpectations> expect_;
  const int64_t total_steps_;
  std::unordered_map<const Step*, int> numbers_;
  std::vector<const Step*> by_number_;
  std::unique_ptr<std::atomic<int>[]> runs_;
  std::unique_ptr<std::atomic<bool>[]> skipped_;

  const WrappedIo wrapped_io_;
  const WrappedPool wrapped_pool_;
  StrandOverWrapper shared_strand_;
  WrapperOverStrand wrapped_strand_;
  // One per request (top-level step), made by the program's thread before
  // the request starts; never resized.
  std::vector<std::optional<StrandOverWrapper>> request_strands_;
  TimerSlot timers_[kTimerSlots];
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;  // guarded by threads_mu_

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  int64_t outstanding_ = 0;  // guarded by work_mu_
  bool abandoned_ = false;

  std::atomic<int64_t> steps_{0};
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> present_reads_{0};
  std::atomic<int64_t> work_{0};
  std::atomic<int64_t> cancels_{0};
  std::atomic<int64_t> lines_{0};
  std::atomic<int64_t> skipped_count_{0};
  std::mutex mu_;
  RunResult result_;  // guarded by mu_
};

void Interpreter::Hop::await_suspend(std::coroutine_handle<> resume) const {
  // Copies: once posted, the task may resume, finish and free this.
  Interpreter* const interpreter = in;
  const Target where = target;
  const Flow from = flow;
  interpreter->WithExecutor(where, from, [resume](const auto& ex) {
    net::post(ex, [resume] { resume.resume(); });
  });
}

}  // namespace

RunResult RunProgram(Runtime& runtime, const Program& program,
                     std::chrono::milliseconds timeout) {
  auto interpreter = std::make_unique<Interpreter>(runtime.impl(), program);
  RunResult result = interpreter->Run(timeout);
  // Work still pending uses the interpreter (its steps, strands, timers):
  // keep it alive for good rather than let that work touch freed memory.
  if (interpreter->abandoned()) (void)interpreter.release();
  return result;
}

}  // namespace integration
}  // namespace conformance
}  // namespace gls
