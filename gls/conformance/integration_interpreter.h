// gls/conformance/integration_interpreter.h: runs an executor program
// (integration_program.h) for real, with gls's integrations, and checks what
// every step sees against the integration model (integration_model.h).
//
// What this is for: the integration differential test and its fuzz target.
// At every step, and at the start of every piece of work a step starts
// (handler, timer completion, awaitable, task, bound callable), and again
// after every scope, SyncWait, inline call and co_await, the interpreter
// reads every key of every manager of the run (untyped: by symbol, by
// string, std::string_view and KeyView; typed: through the TypedKey; and
// GetValue<T> as StatusOr), each manager's GetValues(), and the goroutine id
// presence of each strategy, and compares all of it with the prediction.
// spdlog lines are formatted with gls's flag and compared when they reach
// the sink. At the end it checks that every step ran exactly once (lost or
// duplicated work is a divergence too).
//
// What this is not: a gtest. It never asserts; divergences come back as
// text naming the step's preorder number, so a failing program can be rerun
// while it is minimized.
//
// Guarantees: a Runtime's managers, io_context (run by `io_threads`
// threads) and thread_pool live from its construction to its destruction,
// and every program run on it uses them; programs may run on one Runtime at
// once, each from its own thread. Each program has its own strands, timers,
// logger and threads. RunProgram returns once all the program's work has
// finished, or after `timeout` with the work still pending counted as a
// divergence (the program's state is then kept alive, leaked, so the
// pending work can never touch freed memory).
#ifndef GLS_CONFORMANCE_INTEGRATION_INTERPRETER_H_
#define GLS_CONFORMANCE_INTEGRATION_INTERPRETER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gls/conformance/integration_program.h"
#include "gls/strategy.h"

namespace gls {
namespace conformance {
namespace integration {

struct RuntimeSetup {
  // Index i is the program's strategy i.
  std::vector<const Strategy*> strategies;
  ProgramOptions options;
  int io_threads = 4;
  int pool_threads = 2;
};

// MakeRuntimeSetup(strategies, strands_over_wrapper): the setup of a run
// over `strategies` (options.strategies their count), as the integration
// differential test and its fuzz target make it.
RuntimeSetup MakeRuntimeSetup(std::vector<const Strategy*> strategies,
                              bool strands_over_wrapper);

// Runtime
//
// What the programs of one run share: keys, managers, an io_context run by
// several threads and an asio::thread_pool.
class Runtime {
 public:
  explicit Runtime(RuntimeSetup setup);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RuntimeSetup& setup() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct RunResult {
  int64_t steps = 0;        // steps run
  int64_t reads = 0;        // values compared with the model
  int64_t present_reads = 0;  // of which the model expected a value
  int64_t work = 0;         // pieces of work started (handlers, timers,
                            // awaitables, tasks, bound callables)
  int64_t cancels = 0;      // timer cancels that found a timer
  int64_t lines = 0;        // log lines checked
  int64_t skipped = 0;      // steps skipped (with what is nested in them)
  int64_t divergence_count = 0;
  // The first divergences, as text naming the step's preorder number.
  std::vector<std::string> divergences;
  // The top-level step (request) during which the first divergence was
  // found (-1: none, or not while the program's thread was on a request).
  int first_divergence_top_level = -1;
};

// RunProgram(runtime, program, timeout): runs `program` from the calling
// thread (the program's own thread) on `runtime`, comparing with the model.
RunResult RunProgram(Runtime& runtime, const Program& program,
                     std::chrono::milliseconds timeout =
                         std::chrono::milliseconds(60000));

}  // namespace integration
}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_INTEGRATION_INTERPRETER_H_
