// gls/conformance/integration_differential_test.cc: gls's integrations
// (gls/contrib/asio.h, gls/bind.h, gls/coro.h, gls/contrib/spdlog.h) against
// the integration model, on random executor programs, under every strategy.
//
// What this is for: evidence that no piece of work a server starts ever
// sees values other than its own flow's: another request's, none when it
// should have some, or some on an executor thread between steps. Programs
// (integration_program.h) are streams of requests, each a SetValues scope of
// values no other request has, starting work on an io_context run by 4
// threads, an asio::thread_pool, a strand shared by every request, a strand
// per request and a wrapper over a strand; timers (some cancelled by other
// flows), co_spawn'ed awaitables, gls::Tasks hopping between executors,
// gls::Bind callables run elsewhere, and spdlog lines. Several programs run
// at once on one io_context and pool. Every step's reads are compared with
// the model's prediction (integration_model.h), which does not depend on
// scheduling.
//
// Environment (pass with --test_env=NAME=value):
//   GLS_INTEGRATION_SEED     the seed (default 1; "random" for a fresh one).
//                            Every failure prints the seed to rerun it with.
//   GLS_INTEGRATION_STEPS    steps per strategy (default 12000).
//   GLS_INTEGRATION_THREADS  programs run at once (default 2).
//   GLS_INTEGRATION_STRANDS_OVER_WRAPPER
//                            1 (default): programs use strands made over the
//                            wrapped executor (make_strand(Propagating(io)),
//                            shared and per request); 0: they do not (the
//                            composition of issue 18's bug 1).
//
// On a divergence: the seed, the program's index, the first divergences,
// and the program minimized by delta debugging (steps dropped while it
// still fails when run alone), printed as text.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gls/conformance/harness.h"
#include "gls/conformance/integration_interpreter.h"
#include "gls/conformance/integration_program.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace conformance {
namespace integration {
namespace {

struct Case {
  const char* name;
  int index;  // for seeds
  std::vector<const Strategy*> strategies;
};

struct Totals {
  int64_t steps = 0;
  int64_t reads = 0;
  int64_t present_reads = 0;
  int64_t work = 0;
  int64_t cancels = 0;
  int64_t lines = 0;
  int64_t skipped = 0;
  int64_t divergences = 0;
};

constexpr std::chrono::milliseconds kTimeout(120000);

// A divergence that needs a particular interleaving may not show on every
// run: a candidate counts as failing if most of 3 runs (alone) diverge
// (FailsInMostOf3, harness.h).
bool FailsAlone(Runtime& runtime, const Program& program) {
  return FailsInMostOf3([&] {
    return RunProgram(runtime, program, kTimeout).divergence_count > 0;
  });
}

// Reports a failing program: seed, divergences, and the program minimized.
void ReportFailure(const Case& c, Runtime& runtime, uint64_t run_seed,
                   int round, int index, const Program& program,
                   const RunResult& result, bool minimize) {
  std::ostringstream out;
  out << "DIVERGENCE: strategy " << c.name
      << ", GLS_INTEGRATION_SEED=" << run_seed << ", strands over the wrapper "
      << (runtime.setup().options.strands_over_wrapper ? "on" : "off")
      << ", round " << round << ", program " << index << " (seed "
      << program.seed << "): " << result.divergence_count
      << " divergences; first:\n";
  for (const std::string& d : result.divergences) out << "  " << d << "\n";
  if (!minimize) {
    out << "(not minimized: an earlier program of this case was)\n";
    ADD_FAILURE() << out.str();
    return;
  }
  auto fails = [&](const Program& candidate) {
    return FailsAlone(runtime, candidate);
  };
  // Requests after the one where the first divergence was found can go at
  // once (if it still fails without them).
  const Program start = MinimizationStart(
      program, &Program::steps, result.first_divergence_top_level, fails);
  if (!fails(start)) {
    out << "The program does not fail when run alone (in most of 3 runs); "
           "not minimized. "
        << CountSteps(program.steps) << " steps.\n";
    ADD_FAILURE() << out.str();
    return;
  }
  const Program minimized = Minimize(start, fails, /*max_trials=*/300);
  RunResult again;  // a run that shows the divergence, to print it
  for (int i = 0; i < 10 && again.divergence_count == 0; ++i) {
    again = RunProgram(runtime, minimized, kTimeout);
  }
  out << "Minimized (from " << CountSteps(program.steps) << " to "
      << CountSteps(minimized.steps) << " steps), run alone it gives:\n";
  for (const std::string& d : again.divergences) out << "  " << d << "\n";
  out << Print(minimized);
  ADD_FAILURE() << out.str();
}

void RunCase(const Case& c) {
  // libunwind's lazy one-time init, single-threaded (harness.h).
  WarmUpUnwinder();
  const uint64_t seed = EnvSeed("GLS_INTEGRATION_SEED");
  const int64_t total_steps = EnvInt("GLS_INTEGRATION_STEPS", 12000);
  const int threads =
      static_cast<int>(std::max<int64_t>(1, EnvInt("GLS_INTEGRATION_THREADS", 2)));
  const RuntimeSetup setup = MakeRuntimeSetup(
      c.strategies,
      /*strands_over_wrapper=*/EnvInt("GLS_INTEGRATION_STRANDS_OVER_WRAPPER",
                                      1) != 0);
  const auto start = std::chrono::steady_clock::now();
  Totals totals;
  bool minimized_one = false;  // minimizing takes a while: the first only
  {
    Runtime runtime(setup);
    // Rounds of fresh programs, `threads` at once, until the case has run
    // its steps.
    for (int round = 0; totals.steps < total_steps; ++round) {
      ProgramOptions options = setup.options;
      options.target_steps =
          std::max<int64_t>(1, (total_steps - totals.steps) / threads);
      // Programs of at most 3000 steps: several rounds, so a failure is
      // found (and minimized) in a program of a reasonable size.
      options.target_steps = std::min<int64_t>(options.target_steps, 3000);
      std::vector<Program> programs;
      for (int i = 0; i < threads; ++i) {
        programs.push_back(Generate(Mix(seed, c.index, round, i), options));
      }
      std::vector<RunResult> results(threads);
      std::vector<std::thread> runners;
      for (int i = 0; i < threads; ++i) {
        runners.emplace_back([&, i] {
          results[i] = RunProgram(runtime, programs[i], kTimeout);
        });
      }
      for (std::thread& t : runners) t.join();
      for (int i = 0; i < threads; ++i) {
        const RunResult& r = results[i];
        totals.steps += r.steps;
        totals.reads += r.reads;
        totals.present_reads += r.present_reads;
        totals.work += r.work;
        totals.cancels += r.cancels;
        totals.lines += r.lines;
        totals.skipped += r.skipped;
        totals.divergences += r.divergence_count;
        if (r.divergence_count > 0) {
          ReportFailure(c, runtime, seed, round, i, programs[i], r,
                        /*minimize=*/!minimized_one);
          minimized_one = true;
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  std::cout << "integration differential " << c.name
            << ": GLS_INTEGRATION_SEED=" << seed << ", " << threads
            << " programs at once, strands over the wrapper "
            << (setup.options.strands_over_wrapper ? "on" : "off")
            << ", steps run " << totals.steps << ", pieces of work "
            << totals.work << ", values compared " << totals.reads << " ("
            << totals.present_reads << " expected present), log lines "
            << totals.lines << ", timer cancels " << totals.cancels
            << ", steps skipped " << totals.skipped << ", divergences "
            << totals.divergences << ", " << seconds << " s" << std::endl;
  EXPECT_EQ(totals.divergences, 0) << "GLS_INTEGRATION_SEED=" << seed;
  EXPECT_GE(totals.steps, total_steps);
}

TEST(IntegrationDifferentialTest, ThreadLocal) {
  RunCase({"thread_local", 0, {&ThreadLocalStrategy()}});
}

TEST(IntegrationDifferentialTest, StackTag) {
  RunCase({"stack_tag", 1, {&StackTagStrategy()}});
}

TEST(IntegrationDifferentialTest, Goid) {
  RunCase({"goid", 2, {&GoidStrategy()}});
}

// Managers of all three strategies in the same programs: every piece of
// work carries (and every check reads) all of them.
TEST(IntegrationDifferentialTest, AllStrategiesTogether) {
  RunCase({"all three together", 3,
           {&ThreadLocalStrategy(), &StackTagStrategy(), &GoidStrategy()}});
}

}  // namespace
}  // namespace integration
}  // namespace conformance
}  // namespace gls
