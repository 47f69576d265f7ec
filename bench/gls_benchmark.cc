// Microbenchmarks of gls's per-call costs, per strategy, with the baselines a
// C++ user would otherwise reach for, in one binary so ratios come from one
// run.
//
// Names: BM_<Op>/<system>[/<param>:<value>], e.g. BM_GetValue/thread_local,
// BM_GetValue/raw_thread_local, BM_GetValue/boost_thread_specific_ptr.
//
// Run (one line):
//   bazel run -c opt //bench:gls_benchmark -- --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "boost/fiber/fss.hpp"
#include "boost/thread/tss.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/fiber/all.hpp"
#include "gls/bind.h"
#include "gls/context_manager.h"
#include "gls/contrib/asio.h"
#include "gls/contrib/fiber.h"
#include "gls/go.h"
#include "gls/snapshot.h"
#include "gls/strategy.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace {

// GetValue of a GenSym key set by an enclosing SetValues: the hot path.
//
// The manager's address and the key are copied into locals before the loop,
// so they live in registers: DoNotOptimize clobbers memory, and re-reading
// the lambda's captures every iteration would be the harness's cost, not
// GetValue's. (The raw_thread_local baseline gets the same treatment.)
void BM_GetValue(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  mgr.SetValues({{key, 42}}, [&] {
    const gls::ContextManager* const m = &mgr;
    const gls::ContextKey k = key;
    for (auto _ : state) {
      benchmark::DoNotOptimize(m->GetValue(k));
    }
  });
}
BENCHMARK_CAPTURE(BM_GetValue, thread_local, &gls::ThreadLocalStrategy());
BENCHMARK_CAPTURE(BM_GetValue, goid, &gls::GoidStrategy());
BENCHMARK_CAPTURE(BM_GetValue, stack_tag, &gls::StackTagStrategy());
BENCHMARK_CAPTURE(BM_GetValue, stack_tag_libunwind, &gls::StackTagLibunwindStrategy());

// GetValue of a TypedKey<int> set by an enclosing SetValues: the typed fast
// path (no run-time type check). Measured as BM_GetValue is.
void BM_GetValueTyped(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::TypedKey<int> key;
  mgr.SetValues({{key, 42}}, [&] {
    if (mgr.GetValue(key) == nullptr) state.SkipWithError("value not found");
    const gls::ContextManager* const m = &mgr;  // in registers, as above
    const gls::TypedKey<int> k = key;
    for (auto _ : state) {
      benchmark::DoNotOptimize(m->GetValue(k));
    }
  });
}
BENCHMARK_CAPTURE(BM_GetValueTyped, thread_local, &gls::ThreadLocalStrategy());
BENCHMARK_CAPTURE(BM_GetValueTyped, goid, &gls::GoidStrategy());
BENCHMARK_CAPTURE(BM_GetValueTyped, stack_tag, &gls::StackTagStrategy());

// gls::Capture() (and destroying the snapshot) inside nested scopes of
// `managers` managers with 8 values each: O(1), so flat across the sweep.
void BM_Capture(benchmark::State& state, const gls::Strategy* strategy) {
  const int managers = static_cast<int>(state.range(0));
  std::vector<std::unique_ptr<gls::ContextManager>> mgrs;
  for (int i = 0; i < managers; ++i) {
    mgrs.push_back(std::make_unique<gls::ContextManager>(*strategy));
  }
  gls::Values values;
  for (int v = 0; v < 8; ++v) values.Set(gls::GenSym(), v);
  // Nests a scope of every manager, then measures at the innermost.
  auto nest = [&](auto& self, int i) -> void {
    if (i == managers) {
      for (auto _ : state) {
        gls::Snapshot snapshot = gls::Capture();
        benchmark::DoNotOptimize(snapshot);
      }
      return;
    }
    mgrs[i]->SetValues(values, [&] { self(self, i + 1); });
  };
  nest(nest, 0);
}
BENCHMARK_CAPTURE(BM_Capture, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_Capture/thread_local")
    ->ArgName("managers")->Arg(1)->Arg(4)->Arg(16);

// GetValue with `depth` frames between the SetValues scope and the read: the
// cost per frame of the stack-walking strategies.
__attribute__((noinline)) void ReadAtDepth(benchmark::State& state,
                                           const gls::ContextManager& mgr,
                                           gls::ContextKey key, int depth) {
  if (depth > 0) {
    ReadAtDepth(state, mgr, key, depth - 1);
    benchmark::ClobberMemory();  // keeps this frame: no tail call
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(mgr.GetValue(key));
  }
}

void BM_GetValueAtDepth(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  mgr.SetValues({{key, 42}}, [&] {
    if (mgr.GetValue(key) == nullptr) state.SkipWithError("value not found");
    ReadAtDepth(state, mgr, key, static_cast<int>(state.range(0)));
  });
}
#define GLS_DEPTH_SWEEP ArgName("depth")->Arg(0)->Arg(8)->Arg(64)->Arg(512)
BENCHMARK_CAPTURE(BM_GetValueAtDepth, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_GetValue/thread_local")
    ->GLS_DEPTH_SWEEP;
BENCHMARK_CAPTURE(BM_GetValueAtDepth, goid, &gls::GoidStrategy())
    ->Name("BM_GetValue/goid")
    ->GLS_DEPTH_SWEEP;
BENCHMARK_CAPTURE(BM_GetValueAtDepth, stack_tag, &gls::StackTagStrategy())
    ->Name("BM_GetValue/stack_tag")
    ->GLS_DEPTH_SWEEP;
BENCHMARK_CAPTURE(BM_GetValueAtDepth, stack_tag_libunwind,
                  &gls::StackTagLibunwindStrategy())
    ->Name("BM_GetValue/stack_tag_libunwind")
    ->GLS_DEPTH_SWEEP;

// GetValue of a key no scope set, inside a context (the miss path).
void BM_GetValueMiss(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  const gls::ContextKey absent = gls::GenSym();
  mgr.SetValues({{key, 42}}, [&] {
    for (auto _ : state) {
      benchmark::DoNotOptimize(mgr.GetValue(absent));
    }
  });
}
BENCHMARK_CAPTURE(BM_GetValueMiss, thread_local, &gls::ThreadLocalStrategy());
BENCHMARK_CAPTURE(BM_GetValueMiss, stack_tag, &gls::StackTagStrategy());
BENCHMARK_CAPTURE(BM_GetValueMiss, goid, &gls::GoidStrategy());
BENCHMARK_CAPTURE(BM_GetValueMiss, stack_tag_libunwind, &gls::StackTagLibunwindStrategy());

// GetValue with no scope active at all, on a freshly started std::thread
// (the thread's first gls reads are warm-up; the timed loop runs on it): what
// a log line outside every request costs. Registered as
// BM_GetValueOutsideScope/<strategy>.
void BM_GetValueOutsideScope(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  std::thread([&] {
    for (int i = 0; i < 16; ++i) benchmark::DoNotOptimize(mgr.GetValue(key));
    for (auto _ : state) {
      benchmark::DoNotOptimize(mgr.GetValue(key));
    }
  }).join();
}
BENCHMARK_CAPTURE(BM_GetValueOutsideScope, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_GetValueOutsideScope/thread_local")->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueOutsideScope, stack_tag, &gls::StackTagStrategy())
    ->Name("BM_GetValueOutsideScope/stack_tag")->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueOutsideScope, goid, &gls::GoidStrategy())
    ->Name("BM_GetValueOutsideScope/goid")->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueOutsideScope, stack_tag_libunwind,
                  &gls::StackTagLibunwindStrategy())
    ->Name("BM_GetValueOutsideScope/stack_tag_libunwind")->UseRealTime();

// The floor: one read of a thread_local pointer.
thread_local int* raw_thread_local_value = nullptr;
void BM_GetValue_RawThreadLocal(benchmark::State& state) {
  int value = 42;
  raw_thread_local_value = &value;
  for (auto _ : state) {
    benchmark::DoNotOptimize(raw_thread_local_value);
  }
  raw_thread_local_value = nullptr;
}
BENCHMARK(BM_GetValue_RawThreadLocal)->Name("BM_GetValue/raw_thread_local");

// What a C++ user would otherwise use for a per-thread value.
void BM_GetValue_BoostThreadSpecificPtr(benchmark::State& state) {
  static boost::thread_specific_ptr<int> value;
  value.reset(new int(42));
  for (auto _ : state) {
    benchmark::DoNotOptimize(value.get());
  }
  value.reset();
}
BENCHMARK(BM_GetValue_BoostThreadSpecificPtr)
    ->Name("BM_GetValue/boost_thread_specific_ptr");

// One SetValues with one value (GenSym key), outside any context: takes a
// goroutine id from the pool, installs the value, runs an empty function,
// restores and releases. The Values are built once, outside the loop.
void BM_SetValues(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::Values values{{gls::GenSym(), 42}};
  for (auto _ : state) {
    mgr.SetValues(values, [] { benchmark::ClobberMemory(); });
  }
}
BENCHMARK_CAPTURE(BM_SetValues, thread_local, &gls::ThreadLocalStrategy());
BENCHMARK_CAPTURE(BM_SetValues, stack_tag, &gls::StackTagStrategy());
BENCHMARK_CAPTURE(BM_SetValues, goid, &gls::GoidStrategy());
BENCHMARK_CAPTURE(BM_SetValues, stack_tag_libunwind, &gls::StackTagLibunwindStrategy());

// SetValues as users write it: the Values built in the loop from a key and a
// short string literal, `mgr.SetValues({{kRequestId, "12345"}}, fn)`, outside
// any context. BM_SetValues builds its Values once, outside the loop.
void BM_SetValuesAsWritten(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  for (auto _ : state) {
    mgr.SetValues({{key, "12345"}}, [] { benchmark::ClobberMemory(); });
  }
}
BENCHMARK_CAPTURE(BM_SetValuesAsWritten, thread_local, &gls::ThreadLocalStrategy());
BENCHMARK_CAPTURE(BM_SetValuesAsWritten, stack_tag, &gls::StackTagStrategy());
BENCHMARK_CAPTURE(BM_SetValuesAsWritten, goid, &gls::GoidStrategy());
BENCHMARK_CAPTURE(BM_SetValuesAsWritten, stack_tag_libunwind,
                  &gls::StackTagLibunwindStrategy());

// SetValues with `values` values inside an enclosing scope with one value:
// copies the enclosing value into the new scope too.
void BM_SetValuesNested(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::Values outer{{gls::GenSym(), 1}};
  gls::Values inner;
  for (int64_t i = 0; i < state.range(0); ++i) inner.Set(gls::GenSym(), 2);
  mgr.SetValues(outer, [&] {
    for (auto _ : state) {
      mgr.SetValues(inner, [] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK_CAPTURE(BM_SetValuesNested, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_SetValuesNested/thread_local")
    ->ArgName("values")->Arg(1)->Arg(8);
BENCHMARK_CAPTURE(BM_SetValuesNested, stack_tag, &gls::StackTagStrategy())
    ->Name("BM_SetValuesNested/stack_tag")
    ->ArgName("values")->Arg(1)->Arg(8);
BENCHMARK_CAPTURE(BM_SetValuesNested, goid, &gls::GoidStrategy())
    ->Name("BM_SetValuesNested/goid")
    ->ArgName("values")->Arg(1)->Arg(8);
BENCHMARK_CAPTURE(BM_SetValuesNested, stack_tag_libunwind,
                  &gls::StackTagLibunwindStrategy())
    ->Name("BM_SetValuesNested/stack_tag_libunwind")
    ->ArgName("values")->Arg(1)->Arg(8);

// GetValue hit from 1 and 2 threads at once, each in its own scope: items
// per second (all threads) shows how reads scale.
// The manager all threads of one run share: made in Setup, before any thread
// starts, and destroyed in Teardown, after all have finished; the threads
// only read it.
gls::ContextManager* parallel_mgr = nullptr;
gls::ContextKey parallel_key;
template <const gls::Strategy& (*kStrategy)()>
void ParallelSetup(const benchmark::State&) {
  parallel_mgr = new gls::ContextManager(kStrategy());
  parallel_key = gls::GenSym();
}
void ParallelTeardown(const benchmark::State&) {
  delete parallel_mgr;
  parallel_mgr = nullptr;
}

void BM_GetValueParallel(benchmark::State& state, const gls::Strategy*) {
  gls::ContextManager& mgr = *parallel_mgr;
  const gls::ContextKey key = parallel_key;
  mgr.SetValues({{key, 42}}, [&] {
    for (auto _ : state) {
      benchmark::DoNotOptimize(mgr.GetValue(key));
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_GetValueParallel, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_GetValueParallel/thread_local")
    ->Setup(ParallelSetup<&gls::ThreadLocalStrategy>)->Teardown(ParallelTeardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueParallel, stack_tag, &gls::StackTagStrategy())
    ->Name("BM_GetValueParallel/stack_tag")
    ->Setup(ParallelSetup<&gls::StackTagStrategy>)->Teardown(ParallelTeardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueParallel, goid, &gls::GoidStrategy())
    ->Name("BM_GetValueParallel/goid")
    ->Setup(ParallelSetup<&gls::GoidStrategy>)->Teardown(ParallelTeardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_GetValueParallel, stack_tag_libunwind,
                  &gls::StackTagLibunwindStrategy())
    ->Name("BM_GetValueParallel/stack_tag_libunwind")
    ->Setup(ParallelSetup<&gls::StackTagLibunwindStrategy>)->Teardown(ParallelTeardown)->Threads(1)->Threads(2)->UseRealTime();

// Starting a thread that keeps the context (gls::Go) versus a plain thread,
// from inside a scope with one value; both joined.
void BM_Spawn(benchmark::State& state, const gls::Strategy* strategy) {
  gls::ContextManager mgr(*strategy);
  const gls::ContextKey key = gls::GenSym();
  const bool use_go = state.range(0) == 1;
  mgr.SetValues({{key, 42}}, [&] {
    for (auto _ : state) {
      if (use_go) {
        gls::Go([&] { benchmark::DoNotOptimize(mgr.GetValue(key)); }).join();
      } else {
        std::thread([&] { benchmark::DoNotOptimize(mgr.GetValue(key)); }).join();
      }
    }
  });
}
BENCHMARK_CAPTURE(BM_Spawn, thread_local, &gls::ThreadLocalStrategy())
    ->Name("BM_Spawn/thread_local")->ArgName("go")->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Spawn, stack_tag, &gls::StackTagStrategy())
    ->Name("BM_Spawn/stack_tag")->ArgName("go")->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Spawn, goid, &gls::GoidStrategy())
    ->Name("BM_Spawn/goid")->ArgName("go")->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Spawn, stack_tag_libunwind, &gls::StackTagLibunwindStrategy())
    ->Name("BM_Spawn/stack_tag_libunwind")->ArgName("go")->Arg(0)->Arg(1);

// The fiber-aware peer: Boost.Fiber's fiber_specific_ptr, read on the
// thread's main fiber.
void BM_GetValue_BoostFiberSpecificPtr(benchmark::State& state) {
  static boost::fibers::fiber_specific_ptr<int> value;
  value.reset(new int(42));
  for (auto _ : state) {
    benchmark::DoNotOptimize(value.get());
  }
  value.reset(nullptr);
}
BENCHMARK(BM_GetValue_BoostFiberSpecificPtr)
    ->Name("BM_GetValue/boost_fiber_specific_ptr");

// ---- Crossing boundaries (gls/bind.h, gls/contrib/asio.h, gls/contrib/fiber.h)

// Runs `fn` inside a scope of two managers (default strategy) with four
// values each, the shape of a request's context. Managers and values are
// made once.
template <typename F>
void InRequestScope(F&& fn) {
  static gls::ContextManager* const managers[2] = {new gls::ContextManager(),
                                                    new gls::ContextManager()};
  static const gls::Values* const values[2] = {
      new gls::Values{{gls::GenSym(), 0}, {gls::GenSym(), 1}, {gls::GenSym(), 2}, {gls::GenSym(), 3}},
      new gls::Values{{gls::GenSym(), 0}, {gls::GenSym(), 1}, {gls::GenSym(), 2}, {gls::GenSym(), 3}}};
  managers[0]->SetValues(*values[0], [&] { managers[1]->SetValues(*values[1], fn); });
}

// Posts to an io_context and runs the handlers, as a server's request code
// and event loop do: 32 posts from inside a request scope, then the 32
// handlers run by the loop outside it (on this thread). Through the
// io_context's own executor ("plain": the handlers see no values) or through
// gls::asio::Propagating ("propagating": each handler runs in the request's
// values and the loop's are restored after). Time per iteration (32 posts
// and runs, plus entering the scope once).
template <bool kPropagating>
void BM_AsioPost(benchmark::State& state) {
  constexpr int kBatch = 32;
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);  // poll_one never stops it
  auto plain = io.get_executor();
  auto propagating = gls::asio::Propagating(io.get_executor());
  int64_t ran = 0;
  for (auto _ : state) {
    InRequestScope([&] {
      for (int i = 0; i < kBatch; ++i) {
        if constexpr (kPropagating) {
          boost::asio::post(propagating, [&ran] { ++ran; });
        } else {
          boost::asio::post(plain, [&ran] { ++ran; });
        }
      }
    });
    for (int i = 0; i < kBatch; ++i) benchmark::DoNotOptimize(io.poll_one());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  if (ran != static_cast<int64_t>(state.iterations()) * kBatch) {
    state.SkipWithError("handlers lost");
  }
}
BENCHMARK(BM_AsioPost<false>)->Name("BM_AsioPost/plain");
BENCHMARK(BM_AsioPost<true>)->Name("BM_AsioPost/propagating");

// Wrapping a small lambda and invoking it once, from a request scope: in a
// std::function, or with gls::Bind (captures the values; the call runs in
// them). "elsewhere": bound in the scope, called outside it, so the call
// must install the values and restore after.
void BM_BindInvoke_StdFunction(benchmark::State& state) {
  int64_t calls = 0;
  InRequestScope([&] {
    for (auto _ : state) {
      std::function<void()> f([&calls] { ++calls; });
      f();
      benchmark::DoNotOptimize(calls);
    }
  });
}
BENCHMARK(BM_BindInvoke_StdFunction)->Name("BM_BindInvoke/std_function");

void BM_BindInvoke_Gls(benchmark::State& state) {
  int64_t calls = 0;
  InRequestScope([&] {
    for (auto _ : state) {
      auto f = gls::Bind([&calls] { ++calls; });
      f();
      benchmark::DoNotOptimize(calls);
    }
  });
}
BENCHMARK(BM_BindInvoke_Gls)->Name("BM_BindInvoke/thread_local");

void BM_BindInvokeElsewhere_Gls(benchmark::State& state) {
  int64_t calls = 0;
  std::optional<gls::Bound<std::function<void()>>> bound;
  InRequestScope([&] { bound.emplace(gls::Bind(std::function<void()>([&calls] { ++calls; }))); });
  for (auto _ : state) {
    auto f = *bound;  // a copy: what a task queue hands a worker
    f();
    benchmark::DoNotOptimize(calls);
  }
}
BENCHMARK(BM_BindInvokeElsewhere_Gls)->Name("BM_BindInvoke/thread_local_elsewhere");

// Two fibers on one thread passing control back and forth with yield; one
// iteration is one yield (two fiber switches). "thread_local_hook" runs the
// same under gls::fiber::ThreadLocalSwitching. Each runs on its own thread,
// which picks its scheduling algorithm once.
template <bool kHook>
void BM_FiberSwitch(benchmark::State& state) {
  std::thread([&] {
    if (kHook) gls::fiber::UseThreadLocalSwitching();
    bool stop = false;
    boost::fibers::fiber partner([&] {
      while (!stop) boost::this_fiber::yield();
    });
    for (auto _ : state) boost::this_fiber::yield();
    stop = true;
    partner.join();
  }).join();
}
BENCHMARK(BM_FiberSwitch<false>)->Name("BM_FiberSwitch/plain")->UseRealTime();
BENCHMARK(BM_FiberSwitch<true>)->Name("BM_FiberSwitch/thread_local_hook")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
