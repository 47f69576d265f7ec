// The loops //bench:instructions counts with callgrind: one gls operation
// per loop, each in a noinline function of its own.
//
// What this is for: instructions retired do not move with the machine's load,
// so the hot paths' costs are compared in instructions (docs/benchmarks.md,
// "Instructions per operation"). bench/instructions.py runs this binary under
// `valgrind --tool=callgrind` twice per row, with N = 3,200 and N = 35,200
// iterations, and divides the difference of the two totals by 32,000: set-up,
// start-up and the first call's one-time costs cancel, and what is left is
// one iteration of the loop (the operation plus the loop's own 3-4
// instructions; compare every row with `raw_thread_local_read`).
//
// What this is not: a timing benchmark (that is //bench:gls_benchmark).
//
// Usage: instruction_loops <row> <strategy> <iterations>
//   instruction_loops --list     prints the rows, one per line
// Strategies: thread_local (the default strategy, `gls::ContextManager mgr;`
// as a user writes it), goid, stack_tag (its reads 8 frames below the scope,
// as in BM_GetValue/stack_tag/depth:8). A row that does not apply to a
// strategy exits with status 2.
//
// Every loop has the shape the issue fixes: a `[[gnu::noinline]]` function
// running N iterations, each result folded into a register accumulator that
// an empty asm statement keeps alive (`asm volatile("" : "+r"(sum))`), and
// every callback an empty noinline function.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "gls/bind.h"
#include "gls/context_manager.h"
#include "gls/contrib/asio.h"
#include "gls/scoped_values.h"
#include "gls/snapshot.h"
#include "gls/strategy.h"
#include "gls/values.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"

namespace {

// Keeps `value` in a register the compiler must assume is read and written:
// the result of every operation is used, and nothing is hoisted out of the
// loop.
#define GLS_KEEP(value) asm volatile("" : "+r"(value))

[[gnu::noinline]] void EmptyFunction() { asm volatile(""); }

// Written in main, so the compiler cannot fold it to a constant.
thread_local int raw_tls_int = 0;

const gls::TypedKey<int> kTypedKey;
const gls::TypedKey<std::string> kOtherKey;
const gls::ContextKey kContextKey = gls::GenSym();
const gls::ContextKey kRequestId = gls::GenSym();

// The stack_tag rows read this many frames below their scope.
constexpr int kStackTagDepth = 8;

// ---- the loops -------------------------------------------------------------

[[gnu::noinline]] uintptr_t LoopRawThreadLocalRead(int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    // The empty asm with a memory clobber costs no instruction; it keeps the
    // read in the loop (nothing else here stops the compiler hoisting it:
    // before, the row read no TLS at all, the value folded to a constant).
    asm volatile("" ::: "memory");
    sum += static_cast<uintptr_t>(raw_tls_int);
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopGetValueTyped(const gls::ContextManager& mgr,
                                              int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += reinterpret_cast<uintptr_t>(mgr.GetValue(kTypedKey));
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopGetValueContextKey(
    const gls::ContextManager& mgr, int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += reinterpret_cast<uintptr_t>(mgr.GetValue(kContextKey));
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopStdFunctionCall(
    const std::function<void()>& fn, int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn();
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopCapture(int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    gls::Snapshot snapshot = gls::Capture();
    sum += static_cast<uintptr_t>(snapshot.empty());
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopSnapshotRun(const gls::Snapshot& snapshot,
                                            int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    snapshot.Run(&EmptyFunction);
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

using BoundEmpty = gls::Bound<void (*)()>;

[[gnu::noinline]] uintptr_t LoopBoundCall(const BoundEmpty& bound, int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    bound();
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

template <typename Executor>
[[gnu::noinline]] uintptr_t LoopAsioPostPoll(boost::asio::io_context& io,
                                             const Executor& ex, int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    boost::asio::post(ex, &EmptyFunction);
    sum += io.poll();
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopSetValuesPrebuilt(gls::ContextManager& mgr,
                                                  const gls::Values& values,
                                                  int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    mgr.SetValues(values, &EmptyFunction);
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

// Entering and leaving a gls::ScopedValues guard of prebuilt values.
[[gnu::noinline]] uintptr_t LoopScopedValues(gls::ContextManager& mgr,
                                             const gls::Values& values,
                                             int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    {
      gls::ScopedValues guard(mgr, values);
    }
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

[[gnu::noinline]] uintptr_t LoopSetValuesAsWritten(gls::ContextManager& mgr,
                                                   int64_t n) {
  uintptr_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    mgr.SetValues({{kRequestId, "12345"}}, &EmptyFunction);
    ++sum;
    GLS_KEEP(sum);
  }
  return sum;
}

// ---- set-up ----------------------------------------------------------------

// Calls `fn` `depth` noinline frames further down the stack.
template <typename F>
[[gnu::noinline]] uintptr_t AtDepth(int depth, F& fn) {
  if (depth == 0) return fn();
  uintptr_t result = AtDepth(depth - 1, fn);
  asm volatile("" ::: "memory");  // keeps this frame: no tail call
  return result;
}

// The manager a row uses: the default strategy's for thread_local (as a user
// writes it), the named strategy's otherwise. One manager per process, so the
// default strategy's inline fast paths apply where a user's would.
gls::ContextManager& ManagerFor(std::string_view strategy) {
  if (strategy == "goid") {
    static gls::ContextManager* mgr =
        new gls::ContextManager(gls::GoidStrategy());
    return *mgr;
  }
  if (strategy == "stack_tag") {
    static gls::ContextManager* mgr =
        new gls::ContextManager(gls::StackTagStrategy());
    return *mgr;
  }
  static gls::ContextManager* mgr = new gls::ContextManager();
  return *mgr;
}

// The manager's two values, as the rows that run in scope have them.
const gls::Values& TwoValues() {
  static const gls::Values* values = new gls::Values{
      {kTypedKey, 42}, {kContextKey, std::string("12345")}};
  return *values;
}

// Runs `loop` inside the manager's scope (two values), at the strategy's read
// depth.
template <typename Loop>
uintptr_t InScope(std::string_view strategy, Loop loop) {
  uintptr_t result = 0;
  const int depth = strategy == "stack_tag" ? kStackTagDepth : 0;
  ManagerFor(strategy).SetValues(TwoValues(), [&] {
    result = AtDepth(depth, loop);
  });
  return result;
}

struct Row {
  const char* name;
  const char* what;
  // Returns a value derived from the loop, or exits with 2 if the row does
  // not apply to the strategy.
  uintptr_t (*run)(std::string_view strategy, int64_t n);
};

[[noreturn]] void NotApplicable() { std::exit(2); }

const Row kRows[] = {
    {"raw_thread_local_read", "raw thread_local int read (the floor)",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       if (strategy != "thread_local") NotApplicable();
       return LoopRawThreadLocalRead(n);
     }},
    {"get_value_typed", "mgr.GetValue(TypedKey<int>) in scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       const gls::ContextManager& mgr = ManagerFor(strategy);
       return InScope(strategy, [&] { return LoopGetValueTyped(mgr, n); });
     }},
    {"get_value_context_key", "mgr.GetValue(ContextKey) in scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       const gls::ContextManager& mgr = ManagerFor(strategy);
       return InScope(strategy,
                      [&] { return LoopGetValueContextKey(mgr, n); });
     }},
    {"std_function_call", "a std::function<void()> call (baseline for a hop)",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       if (strategy != "thread_local") NotApplicable();
       const std::function<void()> fn = &EmptyFunction;
       return LoopStdFunctionCall(fn, n);
     }},
    {"capture", "gls::Capture() and destroying the Snapshot, in scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       ManagerFor(strategy);
       return InScope(strategy, [&] { return LoopCapture(n); });
     }},
    {"snapshot_run", "snapshot.Run(fn) outside the capturing scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       gls::Snapshot snapshot;
       InScope(strategy, [&]() -> uintptr_t {
         snapshot = gls::Capture();
         return 0;
       });
       return LoopSnapshotRun(snapshot, n);
     }},
    {"bind_call", "calling a gls::Bind(fn) result outside the binding scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       std::optional<BoundEmpty> bound;
       InScope(strategy, [&]() -> uintptr_t {
         bound.emplace(gls::Bind(&EmptyFunction));
         return 0;
       });
       return LoopBoundCall(*bound, n);
     }},
    {"asio_post_plain", "asio::post + io_context::poll per handler, plain",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       if (strategy != "thread_local") NotApplicable();
       boost::asio::io_context io(1);
       auto guard = boost::asio::make_work_guard(io);
       return LoopAsioPostPoll(io, io.get_executor(), n);
     }},
    {"asio_post_propagating",
     "asio::post + io_context::poll per handler, through "
     "gls::asio::Propagating, in scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       boost::asio::io_context io(1);
       auto guard = boost::asio::make_work_guard(io);
       const auto ex = gls::asio::Propagating(io.get_executor());
       return InScope(strategy,
                      [&] { return LoopAsioPostPoll(io, ex, n); });
     }},
    {"set_values_prebuilt", "outermost mgr.SetValues(prebuilt_values, fn)",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       gls::ContextManager& mgr = ManagerFor(strategy);
       return LoopSetValuesPrebuilt(mgr, TwoValues(), n);
     }},
    {"scoped_values_outermost",
     "gls::ScopedValues guard(mgr, prebuilt_values), entered and left, "
     "outermost",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       gls::ContextManager& mgr = ManagerFor(strategy);
       if (!mgr.strategy().CanAttach()) NotApplicable();  // stack_tag
       return LoopScopedValues(mgr, TwoValues(), n);
     }},
    {"scoped_values_in_scope",
     "gls::ScopedValues guard(mgr, prebuilt_values), entered and left, in "
     "scope",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       gls::ContextManager& mgr = ManagerFor(strategy);
       if (!mgr.strategy().CanAttach()) NotApplicable();  // stack_tag
       return InScope(strategy, [&] { return LoopScopedValues(mgr, TwoValues(), n); });
     }},
    {"set_values_as_written",
     "mgr.SetValues({{kKey, \"12345\"}}, fn) as users write it",
     [](std::string_view strategy, int64_t n) -> uintptr_t {
       gls::ContextManager& mgr = ManagerFor(strategy);
       return LoopSetValuesAsWritten(mgr, n);
     }},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Row& row : kRows) std::printf("%s\t%s\n", row.name, row.what);
    return 0;
  }
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: %s <row> <thread_local|goid|stack_tag> <iterations>\n"
                 "       %s --list\n",
                 argv[0], argv[0]);
    return 1;
  }
  raw_tls_int = 42;
  const std::string_view row_name = argv[1];
  const std::string_view strategy = argv[2];
  if (strategy != "thread_local" && strategy != "goid" &&
      strategy != "stack_tag") {
    std::fprintf(stderr, "instruction_loops: unknown strategy '%s'\n", argv[2]);
    return 1;
  }
  char* end = nullptr;
  const long long n = std::strtoll(argv[3], &end, 10);
  if (end == argv[3] || *end != '\0' || n < 0) {
    std::fprintf(stderr, "instruction_loops: bad iteration count '%s'\n",
                 argv[3]);
    return 1;
  }
  for (const Row& row : kRows) {
    if (row_name == row.name) {
      const uintptr_t result = row.run(strategy, n);
      // Printed so that no loop's result is dead.
      std::printf("%s %s %lld %ju\n", row.name, argv[2], n,
                  static_cast<uintmax_t>(result));
      return 0;
    }
  }
  std::fprintf(stderr, "instruction_loops: unknown row '%s' (--list)\n",
               argv[1]);
  return 1;
}
