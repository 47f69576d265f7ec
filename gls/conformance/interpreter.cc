#include "gls/conformance/interpreter.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <utility>

#include "boost/context/fixedsize_stack.hpp"
#include "gls/go.h"
#include "gls/snapshot.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/testing/annotated_fiber.h"

namespace gls {
namespace conformance {

RunSetup MakeRunSetup(std::vector<const Strategy*> strategies, bool fibers,
                      bool register_fiber_stacks, bool unregister) {
  RunSetup setup;
  setup.strategies = std::move(strategies);
  setup.register_fiber_stacks = register_fiber_stacks;
  setup.options.strategies = static_cast<int>(setup.strategies.size());
  setup.options.fibers = fibers;
  setup.options.unregister = unregister;
  return setup;
}

std::string Describe(const Value* value) {
  if (value == nullptr) return "not found";
  if (const int* i = value->TryAs<int>()) return std::to_string(*i);
  if (const std::string* s = value->TryAs<std::string>()) return '"' + *s + '"';
  return "<a value of another type>";
}
std::string Describe(const int* value) {
  return value == nullptr ? "not found" : std::to_string(*value);
}
std::string Describe(const std::string* value) {
  return value == nullptr ? "not found" : '"' + *value + '"';
}
std::string Describe(const std::optional<ModelValue>& value) {
  return value.has_value() ? DescribeValue(*value) : "not found";
}

bool Same(const Value* value, const std::optional<ModelValue>& want) {
  if (value == nullptr || !want.has_value()) {
    return value == nullptr && !want.has_value();
  }
  if (const int* i = std::get_if<int>(&*want)) {
    const int* got = value->TryAs<int>();
    return got != nullptr && *got == *i;
  }
  const std::string* got = value->TryAs<std::string>();
  return got != nullptr && *got == std::get<std::string>(*want);
}

World::World(RunSetup setup) : setup_(std::move(setup)) {
  for (int i = 0; i < kStringKeys; ++i) string_keys_.push_back(KeyName(i));
  for (int i = 0; i < kGenSymKeys; ++i) gensyms_.push_back(GenSym());
  typed_ints_.resize(kTypedIntKeys);
  typed_texts_.resize(kTypedStringKeys);
  const int per = SharedManagersPerStrategy(setup_.options.unregister);
  for (const Strategy* strategy : setup_.strategies) {
    for (int i = 0; i < per; ++i) {
      shared_.push_back(std::make_unique<ContextManager>(*strategy));
      if (i == 2) shared_.back()->Unregister();  // U
    }
  }
}

World::~World() = default;

KeyIndex World::IndexOf(const Key& key) const {
  if (!key.is_symbol()) {
    for (int i = 0; i < kStringKeys; ++i) {
      if (string_keys_[i] == key.name()) return i;
    }
    return -1;
  }
  for (int i = 0; i < kGenSymKeys; ++i) {
    if (gensyms_[i].id() == key.symbol()) return kStringKeys + i;
  }
  for (int i = 0; i < kTypedIntKeys; ++i) {
    if (typed_ints_[i].id() == key.symbol()) {
      return kStringKeys + kGenSymKeys + i;
    }
  }
  for (int i = 0; i < kTypedStringKeys; ++i) {
    if (typed_texts_[i].id() == key.symbol()) {
      return kStringKeys + kGenSymKeys + kTypedIntKeys + i;
    }
  }
  return -1;
}

Values World::MakeValues(const std::vector<Entry>& entries) const {
  Values values;
  for (const Entry& e : entries) {
    const Value value = std::holds_alternative<int>(e.value)
                            ? Value(std::get<int>(e.value))
                            : Value(std::get<std::string>(e.value));
    switch (KindOfKey(e.key)) {
      case KeyKind::kString:
        values.Set(Key(string_keys_[e.key]), value);
        break;
      case KeyKind::kGenSym:
        values.Set(Key(gensyms_[e.key - kStringKeys]), value);
        break;
      case KeyKind::kTypedInt:
        values.Set(typed_ints_[e.key - kStringKeys - kGenSymKeys],
                   std::get<int>(e.value));
        break;
      case KeyKind::kTypedString:
        values.Set(typed_texts_[e.key - kStringKeys - kGenSymKeys -
                                kTypedIntKeys],
                   std::get<std::string>(e.value));
        break;
    }
  }
  return values;
}

namespace {

// What a Throw op throws; caught by the innermost catching op or the root of
// the flow.
struct Thrown {};

constexpr size_t kFiberStackSize = 256 * 1024;

// The program's worker thread: runs one task at a time for the program,
// which waits for it (so the program stays one sequence of events).
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Run(const std::function<void()>& task) {
    std::unique_lock<std::mutex> lock(mu_);
    task_ = &task;
    cv_.notify_all();
    cv_.wait(lock, [&] { return task_ == nullptr; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || task_ != nullptr; });
      if (task_ == nullptr) return;  // stop
      const std::function<void()>* task = task_;
      lock.unlock();
      (*task)();
      lock.lock();
      task_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* task_ = nullptr;
  bool stop_ = false;
  std::thread thread_;
};

// A thread_local whose destructor runs a function at thread exit; made at
// the first call on a thread (the order against gls's own thread_locals is
// the order of construction).
struct ThreadExitRunner {
  std::function<void()> fn;
  ~ThreadExitRunner() {
    if (fn) fn();
  }
};
void AtThreadExit(std::function<void()> fn) {
  static thread_local ThreadExitRunner runner;
  runner.fn = std::move(fn);
}

struct FiberGroup;

// One flow of execution of the program, as the interpreter tracks it.
struct Flow {
  ModelFlow model;
  // Ids of the program's other flows that are alive now (the flows this one
  // was started from, which wait for it), for the uniqueness check.
  std::vector<uint64_t> live_ids;
  testing::AnnotatedFiber::Yield* yield = nullptr;  // in a fiber
  FiberGroup* group = nullptr;
  int fiber_index = -1;
};

struct FiberGroup {
  // A suspended fiber's ids (it is alive; nobody may have them).
  std::vector<std::vector<uint64_t>> suspended;
};

class Interpreter {
 public:
  Interpreter(World& world, const Program& program)
      : world_(world),
        program_(program),
        options_(world.setup().options),
        strategies_(static_cast<int>(world.setup().strategies.size())) {
    // The shared managers, with the same ids in every program's registry.
    const int per = SharedManagersPerStrategy(options_.unregister);
    for (int s = 0; s < strategies_; ++s) {
      for (int i = 0; i < per; ++i) {
        const ManagerId id = registry_.Create(s);
        if (i == 2) registry_.Unregister(id);
        shared_ids_.push_back(id);
      }
    }
    int number = 0;
    Number(program.ops, number);
  }

  ProgramResult Run() {
    for (size_t i = 0; i < program_.ops.size(); ++i) {
      current_top_level_ = static_cast<int>(i);
      Flow flow;
      // Each top-level op starts from the thread's root flow state.
      try {
        Exec(program_.ops[i], flow);
      } catch (const Thrown&) {
      }
    }
    // Private managers and snapshots die with the program, checked
    // afterwards by nothing but the sanitizers and the soak test.
    for (Slot& slot : slots_) slot = Slot();
    for (Private& p : privates_) p.manager.reset();
    std::lock_guard<std::mutex> lock(mu_);
    result_.ops = ops_.load();
    result_.reads = reads_.load();
    result_.present_reads = present_reads_.load();
    result_.skipped = skipped_.load();
    result_.threads = threads_.load();
    result_.fibers = fibers_.load();
    return result_;
  }

 private:
  struct Private {
    std::unique_ptr<ContextManager> manager;
    ManagerId id = -1;
    int active_scopes = 0;
  };
  struct Slot {
    Snapshot real;
    ModelSnapshot model;
    bool set = false;
  };
  struct Ref {
    ContextManager* manager = nullptr;
    ManagerId id = -1;
    Private* owner = nullptr;  // private managers only
  };

  void Number(const std::vector<Op>& ops, int& number) {
    for (const Op& op : ops) {
      numbers_[&op] = number++;
      Number(op.body, number);
      Number(op.dtor_body, number);
      for (const auto& fiber : op.fibers) Number(fiber, number);
    }
  }

  void Diverge(const Op& op, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ++result_.divergence_count;
    if (result_.first_divergence_top_level < 0) {
      result_.first_divergence_top_level = current_top_level_;
    }
    if (result_.divergences.size() < kMaxReported) {
      std::ostringstream out;
      out << "op #" << numbers_.at(&op) << " " << DescribeOp(op, options_) << ": "
          << what;
      result_.divergences.push_back(out.str());
    }
  }

  void Skip() { skipped_.fetch_add(1, std::memory_order_relaxed); }

  std::optional<Ref> Resolve(int manager) {
    const int shared = static_cast<int>(shared_ids_.size());
    if (manager < 0) return std::nullopt;
    if (manager < shared) {
      return Ref{&world_.shared(manager), shared_ids_[manager], nullptr};
    }
    if (manager - shared >= kPrivateManagerSlots) return std::nullopt;
    Private& p = privates_[manager - shared];
    if (p.manager == nullptr) return std::nullopt;
    return Ref{p.manager.get(), p.id, &p};
  }

  void ExecList(const std::vector<Op>& ops, Flow& flow) {
    for (const Op& op : ops) Exec(op, flow);
  }

  // Runs `ops` as the whole life of a new flow: a Throw ends it.
  void ExecRoot(const std::vector<Op>& ops, Flow& flow) {
    try {
      ExecList(ops, flow);
    } catch (const Thrown&) {
    }
  }

  void Exec(const Op& op, Flow& flow) {
    ops_.fetch_add(1, std::memory_order_relaxed);
    switch (op.kind) {
      case OpKind::kSet:
        return ExecSet(op, flow);
      case OpKind::kGet: {
        const std::optional<Ref> ref = Resolve(op.manager);
        if (!ref) return Skip();
        return Read(op, flow, *ref, op.key, op.read);
      }
      case OpKind::kCheckAll:
        return CheckAll(op, flow);
      case OpKind::kGoroutineId:
        OwnIds(op, flow, op.strategy);
        return;
      case OpKind::kEnsureId:
        return ExecEnsureId(op, flow);
      case OpKind::kThrow:
        throw Thrown{};
      case OpKind::kGo:
        return ExecGo(op, flow);
      case OpKind::kCapture: {
        Slot& slot = slots_[op.slot];
        slot.real = Capture();
        slot.model = flow.model.Capture();
        slot.set = true;
        return;
      }
      case OpKind::kRunHere:
        return ExecRunHere(op, flow);
      case OpKind::kRunOnWorker:
        return ExecRunOnWorker(op, flow);
      case OpKind::kCreate: {
        Private& p = privates_[op.manager];
        if (p.manager != nullptr) return Skip();
        const int s = op.strategy % strategies_;
        p.manager =
            std::make_unique<ContextManager>(*world_.setup().strategies[s]);
        p.id = registry_.Create(s);
        p.active_scopes = 0;
        return;
      }
      case OpKind::kUnregister: {
        const std::optional<Ref> ref = Resolve(op.manager);
        if (!ref) return Skip();
        // The shared registered managers stay registered (other programs
        // rely on them); an unregistered one may be unregistered again.
        if (ref->owner == nullptr && registry_.registered(ref->id)) {
          return Skip();
        }
        // What a manager unregistered during a Run shows is not documented
        // (reference_model.h): not while any flow of the program is in one.
        if (active_runs_ > 0) return Skip();
        ref->manager->Unregister();
        registry_.Unregister(ref->id);
        return;
      }
      case OpKind::kDestroy: {
        Private& p = privates_[op.manager];
        if (p.manager == nullptr || p.active_scopes > 0) return Skip();
        p.manager.reset();
        registry_.Destroy(p.id);
        p.id = -1;
        return;
      }
      case OpKind::kShortThread:
        return ExecShortThread(op, flow);
      case OpKind::kFibers:
        return ExecFibers(op, flow);
      case OpKind::kYield:
        return ExecYield(op, flow);
    }
  }

  void ExecSet(const Op& op, Flow& flow) {
    const std::optional<Ref> ref = Resolve(op.manager);
    if (!ref) return Skip();
    const Values values = world_.MakeValues(op.entries);
    std::vector<std::pair<KeyIndex, ModelValue>> entries;
    for (const Entry& e : op.entries) entries.emplace_back(e.key, e.value);
    const int expected = numbers_.at(&op);
    auto fn = [&]() -> int {
      ActiveScope active(ref->owner);
      flow.model.PushValues(registry_, ref->id, entries);
      PopOnExit pop(flow.model);
      ExecList(op.body, flow);
      return expected;
    };
    auto call = [&] {
      const int got = ref->manager->SetValues(values, fn);
      if (got != expected) {
        Diverge(op, "SetValues returned " + std::to_string(got) +
                        ", fn returned " + std::to_string(expected));
      }
    };
    if (!op.catch_here) return call();
    try {
      call();
    } catch (const Thrown&) {
      CheckAll(op, flow);  // everything back as it was before the scope
    }
  }

  void ExecEnsureId(const Op& op, Flow& flow) {
    const int s = op.strategy % strategies_;
    world_.setup().strategies[s]->EnsureGoroutineId([&](uint64_t id) {
      flow.model.PushEnsureId(s);
      PopOnExit pop(flow.model);
      CheckId(op, flow, s, id);
      ExecList(op.body, flow);
    });
  }

  void ExecGo(const Op& op, Flow& flow) {
    const std::vector<uint64_t> ids = IdsForChild(op, flow);
    const ModelSnapshot snapshot = flow.model.Capture();
    threads_.fetch_add(1, std::memory_order_relaxed);
    RunCount in_run(active_runs_);
    Go([&] {
      Flow child;
      child.live_ids = ids;
      child.model.PushRun(registry_, snapshot);
      ExecRoot(op.body, child);
    }).join();
  }

  void ExecRunHere(const Op& op, Flow& flow) {
    const Slot& slot = slots_[op.slot];
    if (!slot.set) return Skip();
    // Copies: the body may capture into the same slot.
    const Snapshot real = slot.real;
    const ModelSnapshot model = slot.model;
    RunCount in_run(active_runs_);
    auto fn = [&] {
      flow.model.PushRun(registry_, model);
      PopOnExit pop(flow.model);
      ExecList(op.body, flow);
    };
    if (!op.catch_here) return real.Run(fn);
    try {
      real.Run(fn);
    } catch (const Thrown&) {
      CheckAll(op, flow);
    }
  }

  void ExecRunOnWorker(const Op& op, Flow& flow) {
    std::optional<Snapshot> real;
    ModelSnapshot model;
    if (op.slot >= 0) {
      const Slot& slot = slots_[op.slot];
      if (!slot.set) return Skip();
      real = slot.real;
      model = slot.model;
    }
    // The worker is already running a task of this program further up.
    if (worker_busy_) return Skip();
    const std::vector<uint64_t> ids = IdsForChild(op, flow);
    std::optional<RunCount> in_run;
    if (real) in_run.emplace(active_runs_);
    const std::function<void()> task = [&] {
      Flow worker_flow;
      worker_flow.live_ids = ids;
      if (!real) return ExecRoot(op.body, worker_flow);
      real->Run([&] {
        worker_flow.model.PushRun(registry_, model);
        ExecRoot(op.body, worker_flow);
      });
    };
    worker_busy_ = true;
    worker_.Run(task);
    worker_busy_ = false;
  }

  void ExecShortThread(const Op& op, Flow& flow) {
    const std::vector<uint64_t> ids = IdsForChild(op, flow);
    threads_.fetch_add(1, std::memory_order_relaxed);
    std::thread thread([&] {
      auto at_exit = [this, &op, &ids] {
        // The thread's own flow is over: the destructor starts with nothing.
        Flow exit_flow;
        exit_flow.live_ids = ids;
        ExecRoot(op.dtor_body, exit_flow);
      };
      if (!op.dtor_after_use) AtThreadExit(at_exit);
      Flow thread_flow;
      thread_flow.live_ids = ids;
      if (op.dtor_after_use) {
        // Make sure gls's per-thread state exists before the thread_local
        // (so it is destroyed after ours): one scope per strategy.
        for (int s = 0; s < strategies_; ++s) {
          world_.shared(s * SharedManagersPerStrategy(options_.unregister))
              .SetValues({{"warm up", 1}}, [] {});
        }
      }
      ExecRoot(op.body, thread_flow);
      if (op.dtor_after_use) AtThreadExit(at_exit);
    });
    thread.join();
  }

  void ExecFibers(const Op& op, Flow& flow) {
    if (!options_.fibers || flow.yield != nullptr) return Skip();
    const std::vector<uint64_t> ids = IdsForChild(op, flow);
    FiberGroup group;
    group.suspended.resize(op.fibers.size());
    std::vector<std::unique_ptr<testing::AnnotatedFiber>> fibers;
    boost::context::fixedsize_stack plain(kFiberStackSize);
    goid::RegisteredStackAllocator<boost::context::fixedsize_stack> registered(
        plain);
    for (size_t i = 0; i < op.fibers.size(); ++i) {
      auto body = [&, i](testing::AnnotatedFiber::Yield& yield) {
        Flow fiber_flow;
        fiber_flow.live_ids = ids;
        fiber_flow.yield = &yield;
        fiber_flow.group = &group;
        fiber_flow.fiber_index = static_cast<int>(i);
        ExecRoot(op.fibers[i], fiber_flow);
      };
      if (world_.setup().register_fiber_stacks) {
        fibers.push_back(
            std::make_unique<testing::AnnotatedFiber>(registered, body));
      } else {
        fibers.push_back(std::make_unique<testing::AnnotatedFiber>(plain, body));
      }
      fibers_.fetch_add(1, std::memory_order_relaxed);
    }
    for (int step : op.schedule) {
      if (step < 0) {
        CheckAll(op, flow);  // the resumer's own values are untouched
      } else if (step < static_cast<int>(fibers.size()) &&
                 !fibers[step]->finished()) {
        fibers[step]->Resume();
      }
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
    CheckAll(op, flow);
  }

  void ExecYield(const Op& op, Flow& flow) {
    if (flow.yield == nullptr) return Skip();
    std::vector<uint64_t> mine;
    for (int s = 0; s < strategies_; ++s) {
      if (std::optional<uint64_t> id = OwnIds(op, flow, s)) mine.push_back(*id);
    }
    flow.group->suspended[flow.fiber_index] = mine;
    (*flow.yield)();
    flow.group->suspended[flow.fiber_index].clear();
  }

  // Checks the flow's goroutine id of strategy `s` against the model
  // (present or not), the id seen before in the same context, and the ids of
  // the program's other live flows; returns it.
  std::optional<uint64_t> OwnIds(const Op& op, Flow& flow, int s) {
    const std::optional<uint64_t> id =
        world_.setup().strategies[s]->GetGoroutineId();
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (id.has_value() != flow.model.HasContext(s)) {
      Diverge(op, "GetGoroutineId(strategy " + std::to_string(s) + ") is " +
                      (id ? std::to_string(*id) : "nullopt") + ", model: " +
                      (flow.model.HasContext(s) ? "an id" : "nullopt"));
      return id;
    }
    if (id) CheckId(op, flow, s, *id);
    return id;
  }

  void CheckId(const Op& op, Flow& flow, int s, uint64_t id) {
    std::optional<uint64_t>& seen = flow.model.ObservedId(s);
    if (seen && *seen != id) {
      Diverge(op, "goroutine id changed within one context: " +
                      std::to_string(*seen) + " then " + std::to_string(id));
    }
    seen = id;
    std::vector<uint64_t> others = flow.live_ids;
    if (flow.group != nullptr) {
      for (size_t i = 0; i < flow.group->suspended.size(); ++i) {
        if (static_cast<int>(i) == flow.fiber_index) continue;
        const auto& theirs = flow.group->suspended[i];
        others.insert(others.end(), theirs.begin(), theirs.end());
      }
    }
    if (std::find(others.begin(), others.end(), id) != others.end()) {
      Diverge(op, "goroutine id " + std::to_string(id) +
                      " is also another live flow's");
    }
  }

  // The ids no flow started from here may have: this flow's and those it
  // already had to avoid.
  std::vector<uint64_t> IdsForChild(const Op& op, Flow& flow) {
    std::vector<uint64_t> ids = flow.live_ids;
    for (int s = 0; s < strategies_; ++s) {
      if (std::optional<uint64_t> id = OwnIds(op, flow, s)) ids.push_back(*id);
    }
    if (flow.group != nullptr) {
      for (const auto& theirs : flow.group->suspended) {
        ids.insert(ids.end(), theirs.begin(), theirs.end());
      }
    }
    return ids;
  }

  void Read(const Op& op, Flow& flow, const Ref& ref, KeyIndex key,
            ReadKind read) {
    reads_.fetch_add(1, std::memory_order_relaxed);
    const std::optional<ModelValue> want = flow.model.Get(ref.id, key);
    if (want) present_reads_.fetch_add(1, std::memory_order_relaxed);
    const ContextManager& mgr = *ref.manager;
    const KeyKind kind = KindOfKey(key);
    auto mismatch = [&](const std::string& got) {
      Diverge(op, "gls: " + got + ", model: " + Describe(want) + " (read " +
                      KeyName(key) + " of manager id " +
                      std::to_string(ref.id) + ")");
    };
    // The key as a gls::Key, for the untyped reads of any key kind.
    Key as_key = KeyOf(key);
    switch (read) {
      case ReadKind::kStringView:
        if (kind == KeyKind::kString) {
          const std::string& name = world_.string_key(key);
          const Value* a = mgr.GetValue(std::string_view(name));
          const Value* b = mgr.GetValue(name);
          const Value* c = mgr.GetValue(name.c_str());
          if (!Same(a, want) || a != b || a != c) {
            mismatch(Describe(a) + " / " + Describe(b) + " / " + Describe(c));
          }
          return;
        }
        [[fallthrough]];
      case ReadKind::kValuePtr: {
        const Value* v = kind == KeyKind::kGenSym
                             ? mgr.GetValue(world_.gensym(key - kStringKeys))
                             : mgr.GetValue(KeyView(as_key));
        if (!Same(v, want)) mismatch(Describe(v));
        return;
      }
      case ReadKind::kTypedPtr:
        if (kind == KeyKind::kTypedInt) {
          const int* v =
              mgr.GetValue(world_.typed_int(key - kStringKeys - kGenSymKeys));
          if (!Same(v, want)) mismatch(Describe(v));
          return;
        }
        if (kind == KeyKind::kTypedString) {
          const std::string* v = mgr.GetValue(world_.typed_text(
              key - kStringKeys - kGenSymKeys - kTypedIntKeys));
          if (!Same(v, want)) mismatch(Describe(v));
          return;
        }
        return Read(op, flow, ref, key, ReadKind::kValuePtr);
      case ReadKind::kStatusOrInt:
        return CheckStatusOr<int>(mgr.GetValue<int>(KeyView(as_key)), want,
                                  mismatch);
      case ReadKind::kStatusOrString:
        return CheckStatusOr<std::string>(
            mgr.GetValue<std::string>(KeyView(as_key)), want, mismatch);
    }
  }

  // A StatusOr read (SameStatusOr): NotFound when absent, the value when a
  // T, a FailedPrecondition naming both types when present as another.
  template <typename T, typename Mismatch>
  static void CheckStatusOr(const absl::StatusOr<T>& got,
                            const std::optional<ModelValue>& want,
                            const Mismatch& mismatch) {
    if (!SameStatusOr(got, want)) mismatch(DescribeStatusOr(got));
  }

  Key KeyOf(KeyIndex key) const {
    switch (KindOfKey(key)) {
      case KeyKind::kString:
        return Key(world_.string_key(key));
      case KeyKind::kGenSym:
        return Key(world_.gensym(key - kStringKeys));
      case KeyKind::kTypedInt:
        return Key(world_.typed_int(key - kStringKeys - kGenSymKeys));
      case KeyKind::kTypedString:
        return Key(world_.typed_text(key - kStringKeys - kGenSymKeys -
                                     kTypedIntKeys));
    }
    return Key("?");
  }

  // Every key of every live manager, each typed key also through its typed
  // read, and each manager's GetValues() as a whole.
  void CheckAll(const Op& op, Flow& flow) {
    const int total = static_cast<int>(shared_ids_.size()) + kPrivateManagerSlots;
    for (int m = 0; m < total; ++m) {
      const std::optional<Ref> ref = Resolve(m);
      if (!ref) continue;
      for (KeyIndex key = 0; key < kKeys; ++key) {
        Read(op, flow, *ref, key, ReadKind::kValuePtr);
        const KeyKind kind = KindOfKey(key);
        if (kind == KeyKind::kTypedInt || kind == KeyKind::kTypedString) {
          Read(op, flow, *ref, key, ReadKind::kTypedPtr);
        }
      }
      reads_.fetch_add(1, std::memory_order_relaxed);
      const Values got = ref->manager->GetValues();
      const ValueMap want = flow.model.Values(ref->id);
      bool same = got.size() == want.size();
      for (const Values::Entry& entry : got) {
        const KeyIndex key = world_.IndexOf(entry.first);
        auto it = want.find(key);
        if (key < 0 || it == want.end() || !Same(&entry.second, it->second)) {
          same = false;
        }
      }
      if (!same) {
        std::ostringstream out;
        out << "GetValues() of manager id " << ref->id << " has " << got.size()
            << " entries {";
        for (const Values::Entry& entry : got) {
          out << " " << entry.first << "=" << entry.second;
        }
        out << " }, model " << want.size() << " {";
        for (const auto& [key, value] : want) {
          out << " " << KeyName(key) << "=" << DescribeValue(value);
        }
        out << " }";
        Diverge(op, out.str());
      }
    }
  }

  // Scope bookkeeping, exception-safe.
  struct PopOnExit {
    // A constructor, not aggregate init: clang-14 (--config=fuzz) has no
    // parenthesized aggregate initialization.
    explicit PopOnExit(ModelFlow& f) : flow(f) {}
    ModelFlow& flow;
    ~PopOnExit() { flow.Pop(); }
  };
  struct ActiveScope {
    explicit ActiveScope(Private* p) : p_(p) {
      if (p_ != nullptr) ++p_->active_scopes;
    }
    ~ActiveScope() {
      if (p_ != nullptr) --p_->active_scopes;
    }
    Private* const p_;
  };
  struct RunCount {
    explicit RunCount(int& count) : count_(count) { ++count_; }
    ~RunCount() { --count_; }
    int& count_;
  };

  World& world_;
  const Program& program_;
  const ProgramOptions options_;
  const int strategies_;
  ModelRegistry registry_;
  std::vector<ManagerId> shared_ids_;
  Private privates_[kPrivateManagerSlots];
  Slot slots_[kSnapshotSlots];
  // Flows of the program inside a Run (Go, RunHere, the worker's Run).
  int active_runs_ = 0;
  bool worker_busy_ = false;
  Worker worker_;
  std::unordered_map<const Op*, int> numbers_;
  int current_top_level_ = -1;

  std::atomic<int64_t> ops_{0};
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> present_reads_{0};
  std::atomic<int64_t> skipped_{0};
  std::atomic<int64_t> threads_{0};
  std::atomic<int64_t> fibers_{0};
  std::mutex mu_;
  ProgramResult result_;  // guarded by mu_
};

}  // namespace

ProgramResult RunProgram(World& world, const Program& program) {
  return Interpreter(world, program).Run();
}

}  // namespace conformance
}  // namespace gls
