// Microbenchmarks specific to the goid strategy: reads inside a fiber on a
// pooled (unaligned) stack, Current() alone, and what registering a fiber's
// stack adds to its lifetime. The rows every strategy shares (GetValue,
// SetValues, the baselines) live in //bench:gls_benchmark.
//
// Names follow bench/gls_benchmark.cc: BM_<Op>/<system>.
//   BM_GetValue/goid_fiber                GetValue in a Boost.Context fiber
//   BM_Current/goid                       the strategy's Current() alone
//   BM_FiberLifetime/{plain,registered}   create, run and destroy a fiber on
//                                         a pooled stack, without / with
//                                         RegisteredStackAllocator
//
// Run:
//   bazel run -c opt //strategies/goid:goid_benchmark --
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   (one line)
#include <cstdint>
#include <memory>
#include <utility>

#include "benchmark/benchmark.h"
#include "boost/context/fiber.hpp"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "gls/context_manager.h"
#include "strategies/goid/goid_internal.h"
#include "gls/internal/context.h"
#include "strategies/goid/goid_strategy.h"

namespace {

// The same read inside a fiber whose stack comes from a pool of unaligned
// chunks, so the page under the stack pointer may be shared with a
// neighbouring stack (the split-page path).
void ReadInFiber(benchmark::State& state, gls::ContextManager& mgr,
                 gls::ContextKey key) {
  mgr.SetValues({{key, 42}}, [&] {
    // 1 if the page under the stack pointer also holds a stack boundary
    // (the lookup then goes through split nodes).
    const uintptr_t sp = gls::goid_internal::ReadStackPointer();
    const uintptr_t page = sp & ~uintptr_t{4095};
    const auto& table = gls::goid_internal::GlobalStackTable();
    state.counters["split_page"] =
        table.Lookup(page) != table.Lookup(sp) ||
        table.Lookup(page + 4095) != table.Lookup(sp);
    for (auto _ : state) {
      benchmark::DoNotOptimize(mgr.GetValue(key));
    }
  });
}

void BM_GetValue_GoidFiber(benchmark::State& state) {
  gls::ContextManager mgr(gls::GoidStrategy());
  const gls::ContextKey key = gls::GenSym();
  gls::goid::RegisteredStackAllocator<boost::context::pooled_fixedsize_stack>
      stacks{boost::context::pooled_fixedsize_stack(64 * 1024 + 0x230)};
  boost::context::fiber fiber(std::allocator_arg, stacks,
                              [&](boost::context::fiber&& caller) {
                                ReadInFiber(state, mgr, key);
                                return std::move(caller);
                              });
  fiber = std::move(fiber).resume();
}
BENCHMARK(BM_GetValue_GoidFiber)->Name("BM_GetValue/goid_fiber");

void BM_Current(benchmark::State& state, const gls::Strategy* strategy) {
  gls::internal::EnsureContext(*strategy, [&](gls::Context*) {
    for (auto _ : state) {
      benchmark::DoNotOptimize(strategy->Current());
    }
  });
}
BENCHMARK_CAPTURE(BM_Current, goid, &gls::GoidStrategy());

template <typename StackAllocator>
void FiberLifetime(benchmark::State& state, StackAllocator stacks) {
  for (auto _ : state) {
    boost::context::fiber fiber(std::allocator_arg, stacks,
                                [](boost::context::fiber&& caller) {
                                  benchmark::ClobberMemory();
                                  return std::move(caller);
                                });
    fiber = std::move(fiber).resume();
  }
}
void BM_FiberLifetime_Plain(benchmark::State& state) {
  FiberLifetime(state, boost::context::pooled_fixedsize_stack(64 * 1024));
}
BENCHMARK(BM_FiberLifetime_Plain)->Name("BM_FiberLifetime/plain");
void BM_FiberLifetime_Registered(benchmark::State& state) {
  FiberLifetime(state, gls::goid::RegisteredStackAllocator<
                           boost::context::pooled_fixedsize_stack>{
                           boost::context::pooled_fixedsize_stack(64 * 1024)});
}
BENCHMARK(BM_FiberLifetime_Registered)->Name("BM_FiberLifetime/registered");

}  // namespace

BENCHMARK_MAIN();
