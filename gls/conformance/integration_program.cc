#include "gls/conformance/integration_program.h"

#include <set>
#include <sstream>
#include <utility>

#include "gls/conformance/harness.h"

namespace gls {
namespace conformance {
namespace integration {

int ManagerCount(int strategies) { return 2 * strategies; }

std::string ManagerName(int manager) {
  return std::string(manager % 2 == 0 ? "A" : "B") +
         std::to_string(manager / 2);
}

bool Carries(Target target) {
  return target != Target::kRawIo && target != Target::kRawPool;
}

bool OverWrapper(Target target) {
  return target == Target::kSharedStrand || target == Target::kRequestStrand;
}

std::string TargetName(Target target) {
  switch (target) {
    case Target::kIo:
      return "io";
    case Target::kPool:
      return "pool";
    case Target::kSharedStrand:
      return "shared_strand";
    case Target::kRequestStrand:
      return "request_strand";
    case Target::kWrappedStrand:
      return "wrapped_strand";
    case Target::kRawIo:
      return "raw_io";
    case Target::kRawPool:
      return "raw_pool";
  }
  return "?";
}

namespace {

// Where a step is generated: what may appear there.
struct Place {
  enum class Flow {
    kDriver,     // the program's own thread (requests, SyncWait)
    kWork,       // a handler, a bound callable, a timer completion
    kCoroutine,  // an asio::awaitable's body
    kTask,       // a gls::Task's body
  };
  Flow flow = Flow::kDriver;
  bool body_top = false;  // directly in a coroutine's or task's body: may
                          // co_await (not inside a SetValues in it)
  int scope_depth = 0;
  int work_depth = 0;  // work started from work started from ...
  int task_depth = 0;  // sub-task nesting
};

class Generator {
 public:
  Generator(uint64_t seed, const ProgramOptions& options)
      : choices_(seed), options_(options) {}
  // Decoding: every choice is read from `data` (DecodeProgram).
  Generator(const uint8_t* data, size_t size, const ProgramOptions& options,
            const DecodeLimits& limits)
      : choices_(data, size), options_(options), limits_(limits) {}

  Program Run(uint64_t seed) {
    Program program;
    program.seed = seed;
    if (choices_.decoding()) {
      // Each top-level step reads at least one byte while there are bytes.
      while (choices_.bytes_left() && !OutOfSteps()) {
        program.steps.push_back(RandomTopLevel());
      }
      return program;
    }
    while (emitted_ < options_.target_steps) {
      program.steps.push_back(RandomTopLevel());
    }
    return program;
  }

 private:
  int Uniform(int lo, int hi) { return choices_.Uniform(lo, hi); }  // [lo, hi]
  bool Chance(double p) { return choices_.Chance(p); }
  bool OutOfSteps() const {
    return choices_.decoding() && emitted_ >= limits_.max_steps;
  }
  bool ThreadsLeft() const {
    if (choices_.decoding()) return threads_ < limits_.max_threads;
    // Threads are slow to start (and slower under the sanitizers): about
    // one per hundred steps.
    return threads_ <= emitted_ / 100;
  }

  Target RandomTarget(bool raw_ok) {
    const bool over = options_.strands_over_wrapper;
    const std::pair<Target, int> choices[] = {
        {Target::kIo, 25},
        {Target::kPool, 15},
        {Target::kSharedStrand, over ? 15 : 0},
        {Target::kRequestStrand, over ? 10 : 0},
        {Target::kWrappedStrand, 10},
        {Target::kRawIo, raw_ok ? 8 : 0},
        {Target::kRawPool, raw_ok ? 5 : 0},
    };
    return choices_.Pick(choices);
  }

  // Every value different from every other of the program.
  ModelValue NextValueFor(KeyIndex key) {
    const int n = ++values_;
    switch (KindOfKey(key)) {
      case KeyKind::kTypedInt:
        return n;
      case KeyKind::kTypedString:
        return "t" + std::to_string(n);
      default:
        if (Chance(0.5)) return n;
        return "v" + std::to_string(n);
    }
  }

  void RandomEntries(Step& step, int lo, int hi) {
    step.manager = Uniform(0, ManagerCount(options_.strategies) - 1);
    const int n = Uniform(lo, hi);
    for (int i = 0; i < n; ++i) {
      const KeyIndex key = Uniform(0, kKeys - 1);
      step.entries.push_back(Entry{key, NextValueFor(key)});
    }
  }

  std::vector<Step> RandomSteps(const Place& place, int lo, int hi) {
    std::vector<Step> steps;
    const int n = Uniform(lo, hi);
    for (int i = 0; i < n && !OutOfSteps(); ++i) {
      steps.push_back(RandomStep(place));
    }
    return steps;
  }

  // A request: a scope of values no other request has, on the program's
  // thread, whose body starts work.
  Step RandomTopLevel() {
    if (!Chance(0.8)) return RandomStep(Place{});
    ++emitted_;
    Step step;
    step.kind = StepKind::kScope;
    RandomEntries(step, 1, 3);
    Place inner;
    inner.scope_depth = 1;
    step.body = RandomSteps(inner, 1, 6);
    return step;
  }

  Step RandomStep(const Place& place) {
    ++emitted_;
    Step step;
    const bool driver = place.flow == Place::Flow::kDriver;
    const bool can_await =
        place.flow == Place::Flow::kCoroutine && place.body_top;
    const bool can_hop = place.flow == Place::Flow::kTask && place.body_top;
    const bool more_work = place.work_depth < 4;
    const std::pair<StepKind, int> choices[] = {
        {StepKind::kCheck, 6},
        {StepKind::kScope, place.scope_depth < 3 ? 14 : 0},
        {StepKind::kPost, more_work ? 18 : 0},
        {StepKind::kTimer, more_work ? 5 : 0},
        {StepKind::kCancelTimer, 3},
        {StepKind::kCoSpawn, place.work_depth < 3 ? 4 : 0},
        {StepKind::kAwait, can_await ? 30 : 0},
        {StepKind::kTask, driver ? 6 : 0},
        {StepKind::kHop, can_hop ? 30 : 0},
        {StepKind::kSubTask, can_hop && place.task_depth < 3 ? 8 : 0},
        {StepKind::kBind, more_work ? 5 : 0},
        {StepKind::kLog, options_.log ? 5 : 0},
    };
    step.kind = choices_.Pick(choices);
    // What runs in work this step starts: a new flow.
    Place work;
    work.flow = Place::Flow::kWork;
    work.work_depth = place.work_depth + 1;
    switch (step.kind) {
      case StepKind::kCheck:
      case StepKind::kLog:
        break;
      case StepKind::kScope: {
        RandomEntries(step, 1, 3);
        Place inner = place;
        inner.scope_depth++;
        inner.body_top = false;  // no co_await inside SetValues' function
        step.body = RandomSteps(inner, 0, 4);
        break;
      }
      case StepKind::kPost: {
        step.target = RandomTarget(/*raw_ok=*/true);
        const bool raw = !Carries(step.target);
        const std::pair<Submit, int> submits[] = {
            {Submit::kPost, 50},
            {Submit::kDispatch, raw ? 0 : 20},
            {Submit::kDefer, 15},
            {Submit::kBindExecutor, raw ? 0 : 15},
        };
        step.submit = choices_.Pick(submits);
        step.body = RandomSteps(work, 0, 3);
        break;
      }
      case StepKind::kTimer:
        step.target = RandomTarget(/*raw_ok=*/true);
        step.slot = Uniform(0, kTimerSlots - 1);
        step.delay_us = Uniform(0, 20) * 100;
        step.body = RandomSteps(work, 0, 3);
        break;
      case StepKind::kCancelTimer:
        step.slot = Uniform(0, kTimerSlots - 1);
        break;
      case StepKind::kCoSpawn: {
        step.target = RandomTarget(/*raw_ok=*/true);
        Place coroutine = work;
        coroutine.flow = Place::Flow::kCoroutine;
        coroutine.body_top = true;
        step.body = RandomSteps(coroutine, 1, 5);
        break;
      }
      case StepKind::kAwait: {
        const std::pair<AwaitKind, int> kinds[] = {
            {AwaitKind::kPost, 50},
            {AwaitKind::kTimer, 30},
            {AwaitKind::kNested, place.work_depth < 5 ? 20 : 0},
        };
        step.await = choices_.Pick(kinds);
        if (step.await == AwaitKind::kNested) {
          Place nested = place;
          nested.work_depth++;
          step.body = RandomSteps(nested, 1, 4);
        } else {
          step.target = RandomTarget(/*raw_ok=*/true);
          if (step.await == AwaitKind::kTimer) {
            step.delay_us = Uniform(0, 10) * 100;
          }
        }
        break;
      }
      case StepKind::kTask: {
        Place task = work;
        task.flow = Place::Flow::kTask;
        task.body_top = true;
        step.body = RandomSteps(task, 1, 5);
        break;
      }
      case StepKind::kHop:
        step.target = RandomTarget(/*raw_ok=*/true);
        break;
      case StepKind::kSubTask: {
        if (Chance(0.6)) RandomEntries(step, 1, 2);
        Place sub = place;
        sub.task_depth++;
        step.body = RandomSteps(sub, 0, 4);
        break;
      }
      case StepKind::kBind: {
        const std::pair<BindWhere, int> wheres[] = {
            {BindWhere::kRawIo, 35},
            {BindWhere::kRawPool, 25},
            {BindWhere::kThread, ThreadsLeft() ? 10 : 0},
            {BindWhere::kElsewhere, 30},
        };
        step.where = choices_.Pick(wheres);
        if (step.where == BindWhere::kThread) ++threads_;
        step.body = RandomSteps(work, 0, 3);
        break;
      }
    }
    return step;
  }

  Choices choices_;
  const ProgramOptions options_;
  int64_t emitted_ = 0;
  int values_ = 0;
  int threads_ = 0;
  // Decoding (DecodeProgram) only.
  const DecodeLimits limits_;
};

bool HasBody(const Step& step) {
  switch (step.kind) {
    case StepKind::kScope:
    case StepKind::kPost:
    case StepKind::kTimer:
    case StepKind::kCoSpawn:
    case StepKind::kTask:
    case StepKind::kSubTask:
    case StepKind::kBind:
      return true;
    case StepKind::kAwait:
      return step.await == AwaitKind::kNested;
    default:
      return false;
  }
}

std::string DescribeEntries(const Step& step) {
  return ManagerName(step.manager) + ", {" + DescribeEntries(step.entries) +
         "}";
}

void PrintSteps(const std::vector<Step>& steps, int indent, int& number,
                std::ostringstream& out) {
  const std::string pad(indent * 2, ' ');
  for (const Step& step : steps) {
    out << pad << "#" << number++ << " " << DescribeStep(step);
    if (!HasBody(step)) {
      out << "\n";
    } else if (step.body.empty()) {
      out << " {}\n";
    } else {
      out << " {\n";
      PrintSteps(step.body, indent + 1, number, out);
      out << pad << "}\n";
    }
  }
}

// Copies `steps` without those whose preorder number is in `drop` (and what
// is nested in them). `number` runs over the input's preorder.
std::vector<Step> Without(const std::vector<Step>& steps,
                          const std::set<int>& drop, int& number) {
  std::vector<Step> kept;
  for (const Step& step : steps) {
    const int mine = number++;
    if (drop.count(mine) != 0) {
      number += static_cast<int>(CountSteps(step.body));  // its subtree
      continue;
    }
    Step copy = step;
    copy.body = Without(step.body, drop, number);
    kept.push_back(std::move(copy));
  }
  return kept;
}

}  // namespace

Program Generate(uint64_t seed, const ProgramOptions& options) {
  return Generator(seed, options).Run(seed);
}

Program DecodeProgram(const uint8_t* data, size_t size,
                      const ProgramOptions& options,
                      const DecodeLimits& limits) {
  // The "seed" printed with the program: a hash of the bytes.
  return Generator(data, size, options, limits).Run(HashBytes(data, size));
}

int64_t CountSteps(const std::vector<Step>& steps) {
  int64_t n = 0;
  for (const Step& step : steps) n += 1 + CountSteps(step.body);
  return n;
}

std::string DescribeStep(const Step& step) {
  std::ostringstream out;
  switch (step.kind) {
    case StepKind::kScope:
      out << "SetValues(" << DescribeEntries(step) << ")";
      break;
    case StepKind::kCheck:
      out << "check";
      break;
    case StepKind::kPost:
      switch (step.submit) {
        case Submit::kPost:
          out << "post to " << TargetName(step.target);
          break;
        case Submit::kDispatch:
          out << "dispatch to " << TargetName(step.target);
          break;
        case Submit::kDefer:
          out << "defer to " << TargetName(step.target);
          break;
        case Submit::kBindExecutor:
          out << "post to raw_io, bind_executor(" << TargetName(step.target)
              << ")";
          break;
      }
      break;
    case StepKind::kTimer:
      out << "timer[" << step.slot << "] on " << TargetName(step.target)
          << ", expires after " << step.delay_us << " us, async_wait";
      break;
    case StepKind::kCancelTimer:
      out << "timer[" << step.slot << "].cancel()";
      break;
    case StepKind::kCoSpawn:
      out << "co_spawn awaitable on " << TargetName(step.target);
      break;
    case StepKind::kAwait:
      switch (step.await) {
        case AwaitKind::kPost:
          out << "co_await post(" << TargetName(step.target)
              << ", use_awaitable)";
          break;
        case AwaitKind::kTimer:
          out << "co_await steady_timer(" << TargetName(step.target) << ", "
              << step.delay_us << " us).async_wait(use_awaitable)";
          break;
        case AwaitKind::kNested:
          out << "co_await nested awaitable";
          break;
      }
      break;
    case StepKind::kTask:
      out << "SyncWait(gls::Task)";
      break;
    case StepKind::kHop:
      out << "co_await hop to " << TargetName(step.target);
      break;
    case StepKind::kSubTask:
      if (step.entries.empty()) {
        out << "co_await sub-task";
      } else {
        out << "co_await WithValues(" << DescribeEntries(step)
            << ", sub-task)";
      }
      break;
    case StepKind::kBind:
      out << "gls::Bind, called ";
      switch (step.where) {
        case BindWhere::kRawIo:
          out << "through post(raw_io)";
          break;
        case BindWhere::kRawPool:
          out << "through post(raw_pool)";
          break;
        case BindWhere::kThread:
          out << "on a new std::thread";
          break;
        case BindWhere::kElsewhere:
          out << "here inside SetValues(A0, {str0=\"elsewhere\"})";
          break;
      }
      break;
    case StepKind::kLog:
      out << "log a line (gls flag: A0's keys)";
      break;
  }
  return out.str();
}

std::string Print(const Program& program) {
  std::ostringstream out;
  out << "program seed " << program.seed << ", " << CountSteps(program.steps)
      << " steps (each top-level step is a request on the program's thread; "
         "A<s>/B<s>: managers of strategy s; io/pool = "
         "Propagating(io/pool executor), shared_strand = one "
         "make_strand(Propagating(io)) for all requests, request_strand = "
         "one make_strand(Propagating(io)) per request, wrapped_strand = "
         "Propagating(make_strand(io)), raw_* = unwrapped):\n";
  int number = 0;
  PrintSteps(program.steps, 1, number, out);
  return out.str();
}

namespace {

// Preorder numbers of the steps at `depth` (0: top level).
void NumbersAtDepth(const std::vector<Step>& steps, int depth, int& number,
                    std::vector<int>& out) {
  for (const Step& step : steps) {
    if (depth == 0) {
      out.push_back(number);
      number += static_cast<int>(CountSteps({step}));
    } else {
      ++number;
      NumbersAtDepth(step.body, depth - 1, number, out);
    }
  }
}

// Applies `edit` to the list holding the step numbered `target` and its
// index there; false if there is no such step.
bool EditAt(std::vector<Step>& steps, int target, int& number,
            const std::function<void(std::vector<Step>&, size_t)>& edit) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (number == target) {
      edit(steps, i);
      return true;
    }
    ++number;
    if (EditAt(steps[i].body, target, number, edit)) return true;
  }
  return false;
}

class Minimizer {
 public:
  Minimizer(const Program& program,
            const std::function<bool(const Program&)>& fails, int max_trials)
      : current_(program), fails_(fails), max_trials_(max_trials) {}

  Program Run() {
    // Until a whole pass changes nothing: drop subtrees level by level
    // (hierarchical delta debugging), then put scopes' bodies in their
    // place, then drop single values.
    for (bool changed = true; changed && Left();) {
      changed = false;
      for (int depth = 0; Left(); ++depth) {
        std::vector<int> level;
        int number = 0;
        NumbersAtDepth(current_.steps, depth, number, level);
        if (level.empty()) break;
        changed |= ReduceLevel(depth);
      }
      changed |= Hoist();
      changed |= DropValues();
    }
    return current_;
  }

 private:
  bool Left() const { return trials_ < max_trials_; }
  bool Try(Program candidate) {
    ++trials_;
    if (!fails_(candidate)) return false;
    current_ = std::move(candidate);
    return true;
  }

  // ddmin over the steps at `depth`.
  bool ReduceLevel(int depth) {
    std::vector<int> level;
    return DeltaDebug(
        [&] {
          level.clear();
          int number = 0;
          NumbersAtDepth(current_.steps, depth, number, level);
          return static_cast<int>(level.size());
        },
        [&] { return Left(); },
        [&](int begin, int end) {
          std::set<int> drop(level.begin() + begin, level.begin() + end);
          Program candidate;
          candidate.seed = current_.seed;
          int n = 0;
          candidate.steps = Without(current_.steps, drop, n);
          return Try(std::move(candidate));
        });
  }

  // A step replaced by its body. A SetValues' body is valid anywhere the
  // scope was; other bodies may hold steps that cannot run in the new
  // place (a co_await outside an awaitable), which the interpreter skips.
  bool Hoist() {
    bool any = false;
    for (int target = 0; Left() && target < CountSteps(current_.steps);
         ++target) {
      Program candidate = current_;
      int number = 0;
      bool applies = false;
      EditAt(candidate.steps, target, number,
             [&](std::vector<Step>& list, size_t i) {
               if (!HasBody(list[i])) return;
               applies = true;
               std::vector<Step> body = std::move(list[i].body);
               list.erase(list.begin() + static_cast<ptrdiff_t>(i));
               list.insert(list.begin() + static_cast<ptrdiff_t>(i),
                           body.begin(), body.end());
             });
      if (applies && Try(std::move(candidate))) {
        any = true;
        --target;  // the same number is now the body's first step
      }
    }
    return any;
  }

  // One value of a scope or WithValues dropped (at least one stays).
  bool DropValues() {
    bool any = false;
    for (int target = 0; Left() && target < CountSteps(current_.steps);
         ++target) {
      for (size_t e = 0; Left();) {
        Program candidate = current_;
        int number = 0;
        bool applies = false;
        EditAt(candidate.steps, target, number,
               [&](std::vector<Step>& list, size_t i) {
                 std::vector<Entry>& entries = list[i].entries;
                 if (entries.size() < 2 || e >= entries.size()) return;
                 applies = true;
                 entries.erase(entries.begin() + static_cast<ptrdiff_t>(e));
               });
        if (!applies) break;
        if (Try(std::move(candidate))) {
          any = true;  // the next value is now at index e
        } else {
          ++e;
        }
      }
    }
    return any;
  }

  Program current_;
  const std::function<bool(const Program&)>& fails_;
  const int max_trials_;
  int trials_ = 0;
};

}  // namespace

Program Minimize(const Program& program,
                 const std::function<bool(const Program&)>& fails,
                 int max_trials) {
  return Minimizer(program, fails, max_trials).Run();
}

}  // namespace integration
}  // namespace conformance
}  // namespace gls
