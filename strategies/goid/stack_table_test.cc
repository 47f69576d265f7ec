// Tests of the goid strategy's stack table on made-up addresses (the table
// never touches the memory it maps).
#include "strategies/goid/stack_table.h"

#include <atomic>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace gls {
namespace goid_internal {
namespace {

constexpr uintptr_t kPage = StackTable::kPageSize;
constexpr uintptr_t kGranule = StackTable::kGranule;
// Far from anything real; the table only stores numbers.
constexpr uintptr_t kBase = uintptr_t{0x1234} << 32;

class StackTableTest : public ::testing::Test {
 protected:
  void Assign(uintptr_t lo, uintptr_t hi, StackRegion* region) {
    std::lock_guard<std::mutex> lock(table_->mu());
    table_->Prepare(lo, hi);
    table_->Assign(lo, hi, region);
  }
  std::vector<StackTable::Run> Runs(uintptr_t lo, uintptr_t hi) {
    std::vector<StackTable::Run> runs;
    std::lock_guard<std::mutex> lock(table_->mu());
    table_->CollectRuns(lo, hi, &runs);
    return runs;
  }
  StackRegion* At(uintptr_t addr) const { return table_->Lookup(addr); }

  std::unique_ptr<StackTable> table_ = std::make_unique<StackTable>();
  StackRegion a_, b_, c_;
};

TEST_F(StackTableTest, EmptyTableOwnsNothing) {
  EXPECT_EQ(At(0), nullptr);
  EXPECT_EQ(At(kBase), nullptr);
  EXPECT_EQ(At(StackTable::kAddressLimit - 1), nullptr);
  EXPECT_EQ(At(StackTable::kAddressLimit), nullptr);
  EXPECT_EQ(At(~uintptr_t{0}), nullptr);
  EXPECT_EQ(table_->leaf_count(), 0u);
}

TEST_F(StackTableTest, WholePagesHaveExactBounds) {
  Assign(kBase, kBase + 16 * kPage, &a_);
  EXPECT_EQ(At(kBase - 1), nullptr);
  EXPECT_EQ(At(kBase), &a_);
  EXPECT_EQ(At(kBase + 5 * kPage + 123), &a_);
  EXPECT_EQ(At(kBase + 16 * kPage - 1), &a_);
  EXPECT_EQ(At(kBase + 16 * kPage), nullptr);
  EXPECT_EQ(table_->split_node_count(), 0u);

  Assign(kBase, kBase + 16 * kPage, nullptr);
  EXPECT_EQ(At(kBase), nullptr);
  EXPECT_EQ(At(kBase + 16 * kPage - 1), nullptr);
}

// Stacks from malloc or boost::pool: 16-byte aligned, adjacent, sharing
// pages. Each granule belongs to exactly one of them.
TEST_F(StackTableTest, AdjacentUnalignedStacksShareAPage) {
  const uintptr_t a_lo = kBase + 0x10;
  const uintptr_t boundary = kBase + 3 * kPage + 0x7f0;
  const uintptr_t b_hi = kBase + 6 * kPage + 0x20;
  Assign(a_lo, boundary, &a_);
  Assign(boundary, b_hi, &b_);
  EXPECT_EQ(At(a_lo - 1), nullptr);
  EXPECT_EQ(At(a_lo), &a_);
  EXPECT_EQ(At(boundary - 1), &a_);
  EXPECT_EQ(At(boundary), &b_);
  EXPECT_EQ(At(b_hi - 1), &b_);
  EXPECT_EQ(At(b_hi), nullptr);
  // One 64 KiB block holding the three boundaries, three pages with a
  // boundary (first, shared, last), each boundary also inside a line.
  EXPECT_EQ(table_->split_node_count(), 7u);

  // Unregistering one leaves its neighbour intact, on the shared page too.
  Assign(a_lo, boundary, nullptr);
  EXPECT_EQ(At(a_lo), nullptr);
  EXPECT_EQ(At(boundary - 1), nullptr);
  EXPECT_EQ(At(boundary), &b_);
}

TEST_F(StackTableTest, RangesCrossLeafAndMidBoundaries) {
  const uintptr_t leaf_span = StackTable::kBlockSize
                              << StackTable::kLeafBits;          // 1 MiB
  const uintptr_t mid_span = leaf_span << StackTable::kMidBits;  // 8 GiB
  const uintptr_t lo = kBase + mid_span - leaf_span - 4 * kPage + 0x30;
  const uintptr_t hi = kBase + mid_span + 2 * kPage;
  Assign(lo, hi, &a_);
  for (uintptr_t p = lo; p < hi; p += kPage / 2) EXPECT_EQ(At(p), &a_) << p;
  EXPECT_EQ(At(lo - kGranule), nullptr);
  EXPECT_EQ(At(hi), nullptr);
  EXPECT_EQ(table_->leaf_count(), 3u);
}

TEST_F(StackTableTest, TopOfTheAddressSpace) {
  const uintptr_t hi = StackTable::kAddressLimit;
  Assign(hi - 4 * kPage, hi, &a_);
  EXPECT_EQ(At(hi - 1), &a_);
  EXPECT_EQ(At(hi), nullptr);
}

TEST_F(StackTableTest, ClearingAllocatesNothing) {
  {
    std::lock_guard<std::mutex> lock(table_->mu());
    table_->Assign(kBase + 8 * kPage + 0x40, kBase + 16 * kPage, nullptr);
  }
  EXPECT_EQ(table_->leaf_count(), 0u);
  EXPECT_EQ(table_->split_node_count(), 0u);
}

// The memory target: a registered 8 MiB stack costs at most 2 KiB of table,
// whatever its alignment, once its 8 GiB range has a mid node (shared by
// every stack there; counted apart).
TEST_F(StackTableTest, EightMiBStackCostsAtMost2KB) {
  constexpr uintptr_t kStack = uintptr_t{8} << 20;
  // Another stack in the same 8 GiB, far enough not to share a leaf.
  Assign(kBase + (uintptr_t{4} << 30), kBase + (uintptr_t{4} << 30) + kStack,
         &c_);
  struct Case {
    uintptr_t lo;
    const char* what;
  };
  const Case cases[] = {
      {kBase, "8 MiB aligned"},
      {kBase + (uintptr_t{16} << 20) + 5 * kPage, "page aligned"},
      {kBase + (uintptr_t{32} << 20) + 0xf0, "granule aligned, lo"},
      {kBase + (uintptr_t{48} << 20) + 0x1230, "granule aligned, lo and hi"},
  };
  for (const Case& c : cases) {
    const size_t before = table_->node_bytes();
    const size_t mids = table_->mid_count();
    // A thread stack of 8 MiB; the last case ends off its pages too.
    const uintptr_t hi = c.lo + kStack - (&c == &cases[3] ? 0x560 : 0);
    Assign(c.lo, hi, &a_);
    EXPECT_EQ(table_->mid_count(), mids) << c.what;
    const size_t cost = table_->node_bytes() - before;
    EXPECT_LE(cost, 2048u) << c.what;
    std::printf("8 MiB stack, %s: %zu bytes of table\n", c.what, cost);
    EXPECT_EQ(At(c.lo), &a_);
    EXPECT_EQ(At(hi - 1), &a_);
    EXPECT_EQ(At(hi), nullptr);
    EXPECT_EQ(At(c.lo - kGranule), nullptr);
  }
}

TEST_F(StackTableTest, PrepareChangesNoMapping) {
  Assign(kBase, kBase + 4 * kPage, &a_);
  {
    std::lock_guard<std::mutex> lock(table_->mu());
    table_->Prepare(kBase + kPage + 0x100, kBase + 2 * kPage + 0x200);
  }
  // The block, and the two pages (the ends are line aligned).
  EXPECT_EQ(table_->split_node_count(), 3u);
  for (uintptr_t p = kBase; p < kBase + 4 * kPage; p += kGranule) {
    ASSERT_EQ(At(p), &a_) << p;
  }
}

TEST_F(StackTableTest, RunsDescribeTheMapping) {
  const uintptr_t lo = kBase;
  const uintptr_t hi = kBase + 8 * kPage;
  Assign(lo, hi, &a_);
  Assign(lo + kPage + 0x40, lo + 3 * kPage + 0x80, &b_);
  using Run = StackTable::Run;
  EXPECT_EQ(Runs(lo - kPage, hi + kPage),
            (std::vector<Run>{{lo - kPage, lo, nullptr},
                              {lo, lo + kPage + 0x40, &a_},
                              {lo + kPage + 0x40, lo + 3 * kPage + 0x80, &b_},
                              {lo + 3 * kPage + 0x80, hi, &a_},
                              {hi, hi + kPage, nullptr}}));
  EXPECT_EQ(Runs(lo + 0x10, lo + 0x20),
            (std::vector<Run>{{lo + 0x10, lo + 0x20, &a_}}));
}

// What ScopedStack does for a buffer inside another stack: remember the
// runs, assign, later clear and hand the runs back.
TEST_F(StackTableTest, NestedAssignAndRestore) {
  const uintptr_t lo = kBase;
  const uintptr_t hi = kBase + 8 * kPage;
  Assign(lo, hi, &a_);
  const uintptr_t in_lo = lo + 2 * kPage + 0x230;
  const uintptr_t in_hi = lo + 5 * kPage + 0x10;
  auto saved = Runs(in_lo, in_hi);
  Assign(in_lo, in_hi, &b_);
  EXPECT_EQ(At(in_lo - 1), &a_);
  EXPECT_EQ(At(in_lo), &b_);
  EXPECT_EQ(At(in_hi - 1), &b_);
  EXPECT_EQ(At(in_hi), &a_);

  const size_t leaves = table_->leaf_count();
  const size_t splits = table_->split_node_count();
  {
    std::lock_guard<std::mutex> lock(table_->mu());
    table_->Assign(in_lo, in_hi, nullptr);
    for (const StackTable::Run& run : saved) {
      table_->Assign(run.lo, run.hi, run.owner);
    }
  }
  EXPECT_EQ(table_->leaf_count(), leaves);
  EXPECT_EQ(table_->split_node_count(), splits);
  for (uintptr_t p = lo; p < hi; p += kGranule) ASSERT_EQ(At(p), &a_) << p;
}

// Split nodes (block, page, line) are kept when wholly covered again, and
// reused for the same boundary: pool recycling allocates nothing new.
TEST_F(StackTableTest, SplitNodesAreKeptAndReused) {
  Assign(kBase + 0x10, kBase + 2 * kPage, &a_);
  const size_t nodes = table_->split_node_count();
  EXPECT_EQ(nodes, 3u);
  Assign(kBase, kBase + 4 * kPage, &b_);
  for (uintptr_t p = kBase; p < kBase + 4 * kPage; p += kGranule) {
    ASSERT_EQ(At(p), &b_) << p;
  }
  for (int i = 0; i < 10; ++i) {
    Assign(kBase + 0x10, kBase + 2 * kPage, &c_);
    Assign(kBase + 0x10, kBase + 2 * kPage, nullptr);
  }
  EXPECT_EQ(table_->split_node_count(), nodes);
  EXPECT_EQ(At(kBase), &b_);
  EXPECT_EQ(At(kBase + 0x10), nullptr);
}

// Random assignments over three pages against a plain array of granules.
TEST_F(StackTableTest, MatchesAReferenceModel) {
  constexpr uintptr_t kWindow = 3 * kPage;
  constexpr size_t kGranules = kWindow / kGranule;
  const uintptr_t base = kBase + 5 * kPage;
  std::vector<StackRegion*> model(kGranules, nullptr);
  StackRegion* owners[] = {nullptr, &a_, &b_, &c_};
  uint64_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    return seed >> 33;
  };
  for (int op = 0; op < 3000; ++op) {
    size_t g1 = next() % (kGranules + 1);
    size_t g2 = next() % (kGranules + 1);
    if (g1 > g2) std::swap(g1, g2);
    StackRegion* owner = owners[next() % 4];
    Assign(base + g1 * kGranule, base + g2 * kGranule, owner);
    for (size_t g = g1; g < g2; ++g) model[g] = owner;
    if (op % 100 == 0 || op == 2999) {
      for (size_t g = 0; g < kGranules; ++g) {
        ASSERT_EQ(At(base + g * kGranule + (g % kGranule)), model[g])
            << "op " << op << " granule " << g;
      }
      const auto runs = Runs(base, base + kWindow);
      size_t g = 0;
      for (const StackTable::Run& run : runs) {
        ASSERT_EQ(run.lo, base + g * kGranule);
        for (; base + g * kGranule < run.hi; ++g) {
          ASSERT_EQ(model[g], run.owner);
        }
        if (&run != &runs.back()) {
          ASSERT_NE(run.owner, (&run + 1)->owner);
        }
      }
      ASSERT_EQ(g, kGranules);
    }
  }
  EXPECT_EQ(At(base - 1), nullptr);
  EXPECT_EQ(At(base + kWindow), nullptr);
}

// Readers on one stack keep finding it while a writer keeps registering and
// unregistering its neighbours on the pages it shares with them (split
// pages) and its own pages keep being split. Meaningful under TSan.
TEST_F(StackTableTest, ReadersNeverSeeATornMapping) {
  const uintptr_t lo = kBase + 0x7f0;
  const uintptr_t hi = kBase + 9 * kPage + 0x810;
  Assign(lo, hi, &a_);
  std::atomic<bool> stop{false};
  std::atomic<int> passes{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      do {
        for (uintptr_t p = lo + t * kGranule; p < hi; p += 37 * kGranule) {
          if (At(p) != &a_) {
            ADD_FAILURE() << "lost the owner of " << p;
            return;
          }
        }
        passes.fetch_add(1, std::memory_order_relaxed);
      } while (!stop.load(std::memory_order_relaxed));
    });
  }
  // At least 2000 rounds, and until the readers overlapped with many.
  for (int i = 0; i < 2000 || passes.load(std::memory_order_relaxed) < 200;
       ++i) {
    Assign(lo - 4 * kPage, lo, (i & 1) ? &b_ : nullptr);
    Assign(hi, hi + 3 * kPage + 0x100, (i & 1) ? nullptr : &c_);
  }
  stop = true;
  for (auto& r : readers) r.join();
}

}  // namespace
}  // namespace goid_internal
}  // namespace gls
