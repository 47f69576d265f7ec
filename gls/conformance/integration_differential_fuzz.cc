// gls/conformance/integration_differential_fuzz.cc: libFuzzer target over
// the integration differential test's executor programs. Each input is
// decoded into a program (integration_program.h's DecodeProgram: the random
// generator's grammar with every choice read from the bytes, at most 64
// steps and 2 threads) and run, as the integration differential test does,
// against the integration model under each of: the thread_local strategy,
// stack_tag, goid, and managers of all three together. Any divergence prints
// the case, the divergences and the program (as decoded and minimized) and
// aborts, so libFuzzer keeps the input as a crash.
//
// The runtimes (keys, managers, an io_context run by 4 threads, a 2-thread
// asio::thread_pool; one per case) are made once per process and reused by
// every input; each program's strands, timers, logger and threads die with
// it. The four cases of an input run at once, each from its own thread.
//
// Environment: GLS_INTEGRATION_STRANDS_OVER_WRAPPER=0 keeps strands made
// over the wrapped executor (make_strand(Propagating(io)), the composition
// of issue 18's bug 1) out of the programs (default 1: in).
//
// Build and run only under --config=fuzz (tools/fuzz.bazelrc):
//   bazel --output_base="$HOME/.cache/gls_fuzz" run --config=fuzz \
//     //gls/conformance:integration_differential_fuzz -- \
//     -max_total_time=60 -len_control=0 -max_len=256 "$(mktemp -d)"
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gls/conformance/harness.h"
#include "gls/conformance/integration_interpreter.h"
#include "gls/conformance/integration_program.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace {

using gls::conformance::FuzzCases;
using gls::conformance::FuzzTotals;
using gls::conformance::integration::CountSteps;
using gls::conformance::integration::DecodeProgram;
using gls::conformance::integration::Minimize;
using gls::conformance::integration::Print;
using gls::conformance::integration::Program;
using gls::conformance::integration::RunProgram;
using gls::conformance::integration::RunResult;
using gls::conformance::integration::MakeRuntimeSetup;
using gls::conformance::integration::Runtime;

// Below libFuzzer's -timeout=30: a hang is reported as a divergence with
// the program, not as libFuzzer's timeout.
constexpr std::chrono::milliseconds kTimeout(20000);

// The totals each case counts (FuzzTotals' labels, in this order).
enum Total { kPrograms, kSteps, kWork, kReads, kLines };

struct Case {
  const char* name;
  Runtime* runtime;  // never destroyed
  // Totals, printed at exit.
  FuzzTotals totals{{"programs", "steps run", "pieces of work",
                     "values compared", "log lines"}};
};

void AddCase(const char* name, std::vector<const gls::Strategy*> strategies,
             bool strands_over_wrapper) {
  Case* c = new Case{name, new Runtime(MakeRuntimeSetup(
                               std::move(strategies), strands_over_wrapper))};
  FuzzCases<Case>().push_back(c);
}

// Most of 3 runs diverge (as the test's minimizer: see FailsAlone there).
bool Fails(Runtime& runtime, const Program& program) {
  return gls::conformance::FailsInMostOf3([&] {
    return RunProgram(runtime, program, kTimeout).divergence_count > 0;
  });
}

[[noreturn]] void ReportAndAbort(const Case& c, const Program& program,
                                 const RunResult& result) {
  Runtime& runtime = *c.runtime;
  std::string out =
      std::string("integration_differential_fuzz: DIVERGENCE: strategy ") +
      c.name + ", strands over the wrapper " +
      (runtime.setup().options.strands_over_wrapper ? "on" : "off") + ", " +
      std::to_string(result.divergence_count) + " divergences; first:\n";
  for (const std::string& d : result.divergences) out += "  " + d + "\n";
  out += "The program, as decoded:\n" + Print(program);
  std::fprintf(stderr, "%s", out.c_str());
  std::fflush(stderr);
  auto fails = [&](const Program& candidate) {
    return Fails(runtime, candidate);
  };
  if (fails(program)) {
    const Program minimized = Minimize(program, fails, /*max_trials=*/200);
    RunResult again;  // a run that shows the divergence, to print it
    for (int i = 0; i < 10 && again.divergence_count == 0; ++i) {
      again = RunProgram(runtime, minimized, kTimeout);
    }
    out = "Minimized (" + std::to_string(CountSteps(minimized.steps)) +
          " steps), run alone it gives:\n";
    for (const std::string& d : again.divergences) out += "  " + d + "\n";
    out += Print(minimized);
  } else {
    out = "(run again it does not fail in most of 3 runs: timing-dependent; "
          "not minimized)\n";
  }
  std::fprintf(stderr, "%s", out.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // libunwind's lazy one-time init, single-threaded (harness.h).
  gls::conformance::WarmUpUnwinder();
  const char* knob = std::getenv("GLS_INTEGRATION_STRANDS_OVER_WRAPPER");
  const bool strands_over_wrapper =
      knob == nullptr || *knob == '\0' || std::atoi(knob) != 0;
  AddCase("thread_local", {&gls::ThreadLocalStrategy()}, strands_over_wrapper);
  AddCase("stack_tag", {&gls::StackTagStrategy()}, strands_over_wrapper);
  AddCase("goid", {&gls::GoidStrategy()}, strands_over_wrapper);
  AddCase("all three together",
          {&gls::ThreadLocalStrategy(), &gls::StackTagStrategy(),
           &gls::GoidStrategy()},
          strands_over_wrapper);
  std::atexit([] {
    gls::conformance::PrintFuzzTotals<Case>("integration_differential_fuzz");
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The cases run at once, each from its own thread: a program spends most
  // of its time waiting for timers and thread hand-offs.
  const std::vector<Case*>& cases = FuzzCases<Case>();
  std::vector<Program> programs;
  for (Case* c : cases) {
    programs.push_back(DecodeProgram(data, size, c->runtime->setup().options));
  }
  std::vector<RunResult> results(cases.size());
  std::vector<std::thread> runners;
  for (size_t i = 0; i < cases.size(); ++i) {
    runners.emplace_back([&, i] {
      results[i] = RunProgram(*cases[i]->runtime, programs[i], kTimeout);
    });
  }
  for (std::thread& t : runners) t.join();
  for (size_t i = 0; i < cases.size(); ++i) {
    Case* c = cases[i];
    const RunResult& result = results[i];
    if (result.divergence_count > 0) ReportAndAbort(*c, programs[i], result);
    c->totals.Add(kPrograms, 1);
    c->totals.Add(kSteps, result.steps);
    c->totals.Add(kWork, result.work);
    c->totals.Add(kReads, result.reads);
    c->totals.Add(kLines, result.lines);
  }
  return 0;
}
