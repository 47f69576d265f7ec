// gls/conformance/differential_test.cc: every strategy against the reference
// model, on the same random programs.
//
// What this is for: evidence that no strategy ever returns a value the
// documented semantics do not allow (another flow's, a stale one, one that
// should have been restored), under load: several programs at once, each on
// its own thread, with Go, captures run on other threads, short threads whose
// thread_local destructors use gls, manager churn and, for stack_tag and
// goid, interleaved fibers. Each strategy runs twice: once with no manager
// ever unregistered (gls's shortcuts for that case are taken) and once with
// Unregister in the mix.
//
// Environment (pass with --test_env=NAME=value):
//   GLS_DIFF_SEED     the seed (default 1; "random" for a fresh one). Every
//                     failure prints the seed to rerun it with.
//   GLS_DIFF_OPS      ops per strategy (default 100000), for long runs.
//   GLS_DIFF_THREADS  programs run at once per phase (default 8).
//
// On a divergence: the seed, the program's index, the first divergences,
// and the program minimized by delta debugging (ops dropped while it still
// fails when run alone), printed as text.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "gls/conformance/harness.h"
#include "gls/conformance/interpreter.h"
#include "gls/conformance/program.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace conformance {
namespace {

struct Case {
  const char* name;
  int index;  // for seeds
  std::vector<const Strategy*> strategies;
  bool fibers;
  bool register_fiber_stacks;
};

struct Totals {
  int64_t ops = 0;
  int64_t reads = 0;
  int64_t present_reads = 0;
  int64_t skipped = 0;
  int64_t threads = 0;
  int64_t fibers = 0;
  int64_t divergences = 0;
};

// Reports a failing program: seed, divergences, and the program minimized
// (run alone on a fresh World each time).
void ReportFailure(const Case& c, const RunSetup& setup, uint64_t run_seed,
                   int phase, int index, const Program& program,
                   const ProgramResult& result, bool minimize) {
  std::ostringstream out;
  out << "DIVERGENCE: strategy " << c.name << ", GLS_DIFF_SEED=" << run_seed
      << ", phase " << (setup.options.unregister ? "with" : "without")
      << " Unregister (round " << phase << "), program " << index << " (seed "
      << program.seed << "): " << result.divergence_count
      << " divergences; first:\n";
  for (const std::string& d : result.divergences) out << "  " << d << "\n";
  if (!minimize) {
    out << "(not minimized: an earlier program of this case was)\n";
    ADD_FAILURE() << out.str();
    return;
  }
  auto fails = [&](const Program& candidate) {
    World world(setup);
    return RunProgram(world, candidate).divergence_count > 0;
  };
  // Everything after the top-level op that diverged first can go at once.
  const Program start = MinimizationStart(
      program, &Program::ops, result.first_divergence_top_level, fails);
  if (!fails(start)) {
    out << "The program does not fail when run alone (a timing-dependent "
           "divergence); not minimized. "
        << CountOps(program.ops) << " ops.\n";
    ADD_FAILURE() << out.str();
    return;
  }
  const Program minimized = Minimize(start, fails, /*max_trials=*/400);
  World world(setup);
  const ProgramResult again = RunProgram(world, minimized);
  out << "Minimized (from " << CountOps(program.ops) << " to "
      << CountOps(minimized.ops) << " ops), run alone it gives:\n";
  for (const std::string& d : again.divergences) out << "  " << d << "\n";
  out << Print(minimized, setup.options);
  ADD_FAILURE() << out.str();
}

void RunCase(const Case& c) {
  // libunwind's lazy one-time init, single-threaded (harness.h).
  WarmUpUnwinder();
  const uint64_t seed = EnvSeed("GLS_DIFF_SEED");
  const int64_t total_ops = EnvInt("GLS_DIFF_OPS", 100000);
  const int threads = static_cast<int>(EnvInt("GLS_DIFF_THREADS", 8));
  const auto start = std::chrono::steady_clock::now();
  Totals totals;
  bool minimized_one = false;  // minimizing takes a while: the first only
  // Phase 0: nobody unregisters (gls's "every manager registered"
  // shortcuts); phase 1: with Unregister. 30% / 70% of the ops.
  for (int phase = 0; phase < 2; ++phase) {
    RunSetup setup = MakeRunSetup(c.strategies, c.fibers,
                                  c.register_fiber_stacks,
                                  /*unregister=*/phase == 1);
    const int64_t phase_ops = phase == 0 ? total_ops * 3 / 10 : total_ops * 7 / 10;
    // Throws end bodies early, so programs run fewer ops than they hold:
    // rounds of fresh programs until the phase has run its share.
    int64_t phase_done = 0;
    for (int round = 0; phase_done < phase_ops; ++round) {
      setup.options.target_ops =
          std::max<int64_t>(1, (phase_ops - phase_done) * 3 / 2 / threads);
      std::vector<Program> programs;
      for (int i = 0; i < threads; ++i) {
        programs.push_back(Generate(
            Mix(seed, c.index, phase * 1000 + round, i), setup.options));
      }
      std::vector<ProgramResult> results(threads);
      {
        World world(setup);
        std::vector<std::thread> runners;
        for (int i = 0; i < threads; ++i) {
          runners.emplace_back(
              [&, i] { results[i] = RunProgram(world, programs[i]); });
        }
        for (std::thread& t : runners) t.join();
      }
      for (int i = 0; i < threads; ++i) {
        const ProgramResult& r = results[i];
        phase_done += r.ops;
        totals.ops += r.ops;
        totals.reads += r.reads;
        totals.present_reads += r.present_reads;
        totals.skipped += r.skipped;
        totals.threads += r.threads;
        totals.fibers += r.fibers;
        totals.divergences += r.divergence_count;
        if (r.divergence_count > 0) {
          ReportFailure(c, setup, seed, phase * 1000 + round, i, programs[i],
                        r, /*minimize=*/!minimized_one);
          minimized_one = true;
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  std::cout << "differential " << c.name << ": GLS_DIFF_SEED=" << seed
            << ", " << threads << " program threads per phase, ops executed "
            << totals.ops << ", values compared " << totals.reads << " (" << totals.present_reads
            << " expected present)"
            << ", ops skipped " << totals.skipped << ", threads started "
            << totals.threads << ", fibers " << totals.fibers
            << ", divergences " << totals.divergences << ", " << seconds
            << " s" << std::endl;
  EXPECT_EQ(totals.divergences, 0) << "GLS_DIFF_SEED=" << seed;
  EXPECT_GE(totals.ops, total_ops);
}

TEST(DifferentialTest, ThreadLocal) {
  RunCase({"thread_local", 0, {&ThreadLocalStrategy()}, false, false});
}

TEST(DifferentialTest, StackTag) {
  // Fibers need the real tags, not the thread_local fallback.
  ASSERT_TRUE(StackTagSelfCheck().ok()) << StackTagSelfCheck();
  RunCase({"stack_tag", 1, {&StackTagStrategy()}, true, false});
}

TEST(DifferentialTest, Goid) {
  RunCase({"goid", 2, {&GoidStrategy()}, true, true});
}

// Managers of all three strategies in the same programs (each flow has a
// context per strategy; Capture and Run carry all of them). Threads only:
// thread_local does not follow fibers.
TEST(DifferentialTest, AllStrategiesTogether) {
  RunCase({"all three together", 3,
           {&ThreadLocalStrategy(), &StackTagStrategy(), &GoidStrategy()},
           false, false});
}

}  // namespace
}  // namespace conformance
}  // namespace gls
