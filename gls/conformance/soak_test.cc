// gls/conformance/soak_test.cc: a long, busy run of every strategy, after
// which memory and the id pool must be exactly where they started.
//
// What this is for: the leaks the Go GLS libraries kept shipping (an
// unpaired push leaking megabytes a minute, contexts never returned to the
// pool). Per strategy: at least 1,000,000 SetValues scopes, 10,000 gls::Go
// threads and 100,000 captures, with throws, snapshots run on other threads
// and managers created and destroyed; then live heap bytes (counted by this
// binary's own global operator new/delete) and the context pool (created,
// back in the pool) must equal their values before the run, and debug
// builds' live frame count too.
//
// What this is not: a correctness test of values (the differential test is);
// values are checked only enough to know the work really happened.
//
// How "starting level" is taken: gls keeps, by design, memory that grows
// only to a high-water mark (context pool chunks, each context's slot table,
// registry slots, the goid stack table). A warm-up first drives those marks
// above anything the soak reaches (64 flows alive at once, more managers
// than the soak has), then the baseline is read, then the soak runs; all
// work happens on threads that have exited before each reading, so no
// per-thread cache is counted at one reading and not the other.
//
//   bazel test //gls/conformance:soak_test
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "gls/gls.h"
#include "gls/internal/context.h"
#include "gls/internal/frame.h"
#include "strategies/goid/goid_internal.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

// The counting allocator: every operator new/delete of the binary goes
// through these, which keep the live byte count of what was asked for (the
// size is kept in a header in front of the block, so sized and unsized
// deletes agree and the figure does not depend on malloc's rounding).
namespace {
std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak_bytes{0};

constexpr size_t kHeader = alignof(std::max_align_t);  // holds two size_t

void* Allocate(size_t size, size_t align) {
  const size_t header = align > kHeader ? align : kHeader;
  void* base = nullptr;
  if (align <= kHeader) {
    base = std::malloc(size + header);
  } else if (posix_memalign(&base, align, size + header) != 0) {
    base = nullptr;
  }
  if (base == nullptr) return nullptr;
  char* user = static_cast<char*>(base) + header;
  reinterpret_cast<size_t*>(user)[-1] = size;
  reinterpret_cast<size_t*>(user)[-2] = header;
  const int64_t now = live_bytes.fetch_add(static_cast<int64_t>(size),
                                           std::memory_order_relaxed) +
                      static_cast<int64_t>(size);
  int64_t peak = peak_bytes.load(std::memory_order_relaxed);
  while (now > peak &&
         !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return user;
}

void Free(void* p) noexcept {
  if (p == nullptr) return;
  const size_t size = static_cast<size_t*>(p)[-1];
  const size_t header = static_cast<size_t*>(p)[-2];
  live_bytes.fetch_sub(static_cast<int64_t>(size), std::memory_order_relaxed);
  std::free(static_cast<char*>(p) - header);
}

void* AllocateOrThrow(size_t size, size_t align) {
  void* p = Allocate(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t size) { return AllocateOrThrow(size, 0); }
void* operator new[](size_t size) { return AllocateOrThrow(size, 0); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return Allocate(size, 0);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return Allocate(size, 0);
}
void* operator new(size_t size, std::align_val_t align) {
  return AllocateOrThrow(size, static_cast<size_t>(align));
}
void* operator new[](size_t size, std::align_val_t align) {
  return AllocateOrThrow(size, static_cast<size_t>(align));
}
void* operator new(size_t size, std::align_val_t align,
                   const std::nothrow_t&) noexcept {
  return Allocate(size, static_cast<size_t>(align));
}
void* operator new[](size_t size, std::align_val_t align,
                     const std::nothrow_t&) noexcept {
  return Allocate(size, static_cast<size_t>(align));
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, size_t) noexcept { Free(p); }
void operator delete[](void* p, size_t) noexcept { Free(p); }
void operator delete(void* p, std::align_val_t) noexcept { Free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { Free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { Free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  Free(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  Free(p);
}

namespace gls {
namespace {

constexpr int kSoakThreads = 4;
constexpr int kScopesPerThread = 250'000;  // outer iterations; more scopes nest
constexpr int kGoEvery = 100;              // 2,500 Go per thread: 10,000
constexpr int kCaptureEvery = 10;          // 25,000 per thread: 100,000
constexpr int kRing = 16;                  // snapshots kept alive a while
constexpr int kWarmUpFlows = 64;

struct Counts {
  std::atomic<int64_t> scopes{0};
  std::atomic<int64_t> go_threads{0};
  std::atomic<int64_t> captures{0};
  std::atomic<int64_t> wrong{0};  // values not as set: the work is broken
};

struct Thrown {};

// A string that does not fit std::string's inline buffer, so every copy into
// a frame is a heap allocation the allocator sees.
std::string Payload(int i) {
  return "a request id long enough for the heap #" + std::to_string(i);
}

// One soak thread's work on managers of `strategy`.
void SoakThread(const Strategy& strategy, ContextManager& mgr,
                const TypedKey<int>& typed, int thread, Counts& counts) {
  const ContextKey sym = GenSym();
  std::vector<Snapshot> ring(kRing);
  std::unique_ptr<ContextManager> churn;
  for (int i = 0; i < kScopesPerThread; ++i) {
    if (i % 10'000 == 0) {
      churn.reset();  // its slot goes back to the registry, then is reused
      churn = std::make_unique<ContextManager>(strategy);
    }
    counts.scopes.fetch_add(1, std::memory_order_relaxed);
    mgr.SetValues({{typed, i}, {"request", Payload(i)}}, [&] {
      if (i % kCaptureEvery == 0) {
        ring[(i / kCaptureEvery) % kRing] = Capture();
        counts.captures.fetch_add(1, std::memory_order_relaxed);
      }
      if (i % 3 == 0) {
        counts.scopes.fetch_add(1, std::memory_order_relaxed);
        churn->SetValues({{sym, thread}}, [&] {
          if (churn->GetValue(sym) == nullptr) counts.wrong++;
        });
      }
      if (i % 50 == 0) {
        try {
          counts.scopes.fetch_add(1, std::memory_order_relaxed);
          mgr.SetValues({{typed, -1}}, [] { throw Thrown{}; });
        } catch (const Thrown&) {
        }
      }
      const int* seen = mgr.GetValue(typed);
      if (seen == nullptr || *seen != i) counts.wrong++;
      if (i % kGoEvery == 0) {
        counts.go_threads.fetch_add(1, std::memory_order_relaxed);
        counts.captures.fetch_add(1, std::memory_order_relaxed);  // Go's
        // A Go thread that runs an older snapshot too, so frames captured on
        // this thread are released on that one.
        const Snapshot older = ring[(i / kCaptureEvery + 1) % kRing];
        Go([&] {
          const int* v = mgr.GetValue(typed);
          if (v == nullptr || *v != i) counts.wrong++;
          counts.scopes.fetch_add(1, std::memory_order_relaxed);
          mgr.SetValues({{"in go", Payload(i)}}, [&] {
            older.Run([&] { mgr.GetValue("request"); });
          });
        }).join();
      }
    });
  }
  for (Snapshot& s : ring) s = Snapshot();
}

// Drives gls's high-water marks above the soak's: kWarmUpFlows flows alive
// at once, each with values of more managers than the soak has alive.
void WarmUp(const Strategy& strategy) {
  std::vector<std::unique_ptr<ContextManager>> managers;
  for (int i = 0; i < 3 * kSoakThreads + 4; ++i) {
    managers.push_back(std::make_unique<ContextManager>(strategy));
  }
  std::latch all_inside(kWarmUpFlows);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWarmUpFlows; ++t) {
    threads.emplace_back([&] {
      // Nested scopes of every manager, then wait until every flow is in.
      std::function<void(size_t)> nest = [&](size_t m) {
        if (m == managers.size()) {
          all_inside.arrive_and_wait();
          return;
        }
        managers[m]->SetValues({{"warm", Payload(static_cast<int>(m))}},
                               [&] { nest(m + 1); });
      };
      nest(0);
    });
  }
  for (std::thread& t : threads) t.join();
}

struct Reading {
  int64_t bytes;
  internal::ContextPoolStats pool;
  int64_t frames;
  // The goid stack table's nodes: kept after a stack goes, for the address
  // range it covered (goid_strategy.h, "Bookkeeping memory"), so they grow
  // with the address ranges thread stacks have ever used, not with work.
  int64_t goid_table_bytes;
};

Reading Read() {
  // No thread runs: nobody writes the goid table now.
  return Reading{
      live_bytes.load(), internal::ContextPoolStatsForTesting(),
      internal::LiveFrames(),
      static_cast<int64_t>(goid_internal::GlobalStackTable().node_bytes())};
}

void Soak(const char* name, const Strategy& strategy) {
  // libunwind (linked by stack_tag) unwinds C++ exceptions here; its lazy
  // init races with itself (TSan) when the first throws are concurrent.
  try {
    throw Thrown{};
  } catch (const Thrown&) {
  }
  // Everything on other threads, so the main thread's per-thread caches are
  // the same at both readings (it does no gls work at all).
  std::thread([&] { WarmUp(strategy); }).join();
  const Reading before = Read();
  peak_bytes.store(before.bytes);

  Counts counts;
  {
    std::vector<std::thread> threads;
    // The shared manager and key live on a thread of their own too, and die
    // before the reading.
    std::thread owner([&] {
      ContextManager mgr(strategy);
      const TypedKey<int> typed;
      for (int t = 0; t < kSoakThreads; ++t) {
        threads.emplace_back(
            [&, t] { SoakThread(strategy, mgr, typed, t, counts); });
      }
      for (std::thread& t : threads) t.join();
    });
    owner.join();
  }
  const Reading after = Read();

  std::cout << "soak " << name << ": scopes " << counts.scopes.load()
            << ", Go threads " << counts.go_threads.load() << ", captures "
            << counts.captures.load() << "; live heap bytes before "
            << before.bytes << ", after " << after.bytes << " (leaked "
            << after.bytes - before.bytes << ", of which goid stack table "
            << after.goid_table_bytes - before.goid_table_bytes << "), peak "
            << peak_bytes.load() << "; context pool created "
            << before.pool.created << " -> " << after.pool.created
            << ", back in pool " << before.pool.pooled << " -> "
            << after.pool.pooled << "; live frames " << before.frames
            << " -> " << after.frames << "; goid stack table bytes "
            << before.goid_table_bytes << " -> " << after.goid_table_bytes
            << std::endl;

  EXPECT_EQ(counts.wrong.load(), 0);
  EXPECT_GE(counts.scopes.load(), 1'000'000);
  EXPECT_GE(counts.go_threads.load(), 10'000);
  EXPECT_GE(counts.captures.load(), 100'000);
  // Everything back, but for the goid table's growth to new address ranges
  // (printed above; 0 unless thread stacks landed somewhere new).
  EXPECT_EQ(after.bytes - after.goid_table_bytes,
            before.bytes - before.goid_table_bytes)
      << "heap bytes leaked";
  EXPECT_EQ(after.pool.created, before.pool.created) << "the id pool grew";
  EXPECT_EQ(after.pool.pooled, before.pool.pooled)
      << "contexts not back in the pool";
  EXPECT_EQ(after.frames, before.frames) << "frames leaked";
}

TEST(SoakTest, ThreadLocal) { Soak("thread_local", ThreadLocalStrategy()); }
TEST(SoakTest, StackTag) { Soak("stack_tag", StackTagStrategy()); }
TEST(SoakTest, Goid) { Soak("goid", GoidStrategy()); }

}  // namespace
}  // namespace gls
