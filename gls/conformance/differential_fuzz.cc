// gls/conformance/differential_fuzz.cc: libFuzzer target over the
// differential test's programs. Each input is decoded into a program
// (DecodeProgram in program.h: the random generator's grammar with every
// choice read from the bytes, at most 64 ops, 4 threads and 2 fiber groups)
// and run, as the differential test does, against the reference model and
// each of: the thread_local strategy, stack_tag (with fibers), goid (with
// fibers on registered stacks), and managers of all three together. Any
// divergence prints the case, the divergences and the program (as decoded and
// minimized) and aborts, so libFuzzer keeps the input as a crash.
//
// Input layout: byte 0, bit 0: whether managers get unregistered (the
// differential test's two phases); the rest: the program's choices.
//
// The worlds (keys and shared managers, which programs only read, set scopes
// on and unregister when already unregistered) are made once per process and
// reused by every input, so nothing grows with the number of inputs; each
// program's private managers, snapshots, threads and fibers die with it.
//
// Build and run only under --config=fuzz (tools/fuzz.bazelrc):
//   bazel --output_base="$HOME/.cache/gls_fuzz" run --config=fuzz \
//     //gls/conformance:differential_fuzz -- -max_total_time=60 "$(mktemp -d)"
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "gls/conformance/harness.h"
#include "gls/conformance/interpreter.h"
#include "gls/conformance/program.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace {

using gls::conformance::CountOps;
using gls::conformance::DecodeProgram;
using gls::conformance::FuzzCases;
using gls::conformance::FuzzTotals;
using gls::conformance::MakeRunSetup;
using gls::conformance::Minimize;
using gls::conformance::Print;
using gls::conformance::Program;
using gls::conformance::ProgramResult;
using gls::conformance::RunProgram;
using gls::conformance::RunSetup;
using gls::conformance::World;

// The totals each case counts (FuzzTotals' labels, in this order).
enum Total { kPrograms, kOps, kReads, kThreads, kFibers };

struct Case {
  const char* name;
  std::vector<const gls::Strategy*> strategies;
  World* worlds[2];  // [unregister]; never destroyed
  // Totals, printed at exit.
  FuzzTotals totals{
      {"programs", "ops executed", "values compared", "threads", "fibers"}};
};

void AddCase(const char* name, std::vector<const gls::Strategy*> strategies,
             bool fibers, bool register_fiber_stacks) {
  Case* c = new Case{name, std::move(strategies), {nullptr, nullptr}};
  for (int unregister = 0; unregister < 2; ++unregister) {
    c->worlds[unregister] = new World(MakeRunSetup(
        c->strategies, fibers, register_fiber_stacks, unregister == 1));
  }
  FuzzCases<Case>().push_back(c);
}

[[noreturn]] void ReportAndAbort(const Case& c, World& world,
                                 const Program& program,
                                 const ProgramResult& result) {
  const auto& options = world.setup().options;
  std::string out = std::string("differential_fuzz: DIVERGENCE: strategy ") +
                    c.name + ", " + (options.unregister ? "with" : "without") +
                    " Unregister, " + std::to_string(result.divergence_count) +
                    " divergences; first:\n";
  for (const std::string& d : result.divergences) out += "  " + d + "\n";
  out += "The program, as decoded:\n" + Print(program, options);
  std::fprintf(stderr, "%s", out.c_str());
  std::fflush(stderr);
  auto fails = [&](const Program& candidate) {
    return RunProgram(world, candidate).divergence_count > 0;
  };
  if (fails(program)) {
    const Program minimized = Minimize(program, fails, /*max_trials=*/300);
    const ProgramResult again = RunProgram(world, minimized);
    out = "Minimized (" + std::to_string(CountOps(minimized.ops)) +
          " ops), it gives:\n";
    for (const std::string& d : again.divergences) out += "  " + d + "\n";
    out += Print(minimized, options);
  } else {
    out = "(run again it does not fail: timing-dependent; not minimized)\n";
  }
  std::fprintf(stderr, "%s", out.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Fibers under stack_tag need its real tags, not the thread_local
  // fallback (as the differential test asserts).
  if (!gls::StackTagSelfCheck().ok()) {
    std::fprintf(stderr, "differential_fuzz: stack_tag self-check failed: %s\n",
                 gls::StackTagSelfCheck().ToString().c_str());
    std::abort();
  }
  // libunwind's lazy one-time init, single-threaded (harness.h).
  gls::conformance::WarmUpUnwinder();
  AddCase("thread_local", {&gls::ThreadLocalStrategy()}, false, false);
  AddCase("stack_tag", {&gls::StackTagStrategy()}, true, false);
  AddCase("goid", {&gls::GoidStrategy()}, true, true);
  AddCase("all three together",
          {&gls::ThreadLocalStrategy(), &gls::StackTagStrategy(),
           &gls::GoidStrategy()},
          false, false);
  std::atexit([] {
    gls::conformance::PrintFuzzTotals<Case>("differential_fuzz");
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int unregister = size > 0 ? (data[0] & 1) : 0;
  const uint8_t* choices = size > 0 ? data + 1 : data;
  const size_t choices_size = size > 0 ? size - 1 : 0;
  for (Case* c : FuzzCases<Case>()) {
    World& world = *c->worlds[unregister];
    const Program program =
        DecodeProgram(choices, choices_size, world.setup().options);
    const ProgramResult result = RunProgram(world, program);
    if (result.divergence_count > 0) ReportAndAbort(*c, world, program, result);
    c->totals.Add(kPrograms, 1);
    c->totals.Add(kOps, result.ops);
    c->totals.Add(kReads, result.reads);
    c->totals.Add(kThreads, result.threads);
    c->totals.Add(kFibers, result.fibers);
  }
  return 0;
}
