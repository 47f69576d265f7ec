// gls/contrib/spdlog_block_pool.h: blocks are distinct, aligned and whole
// while handed out; freed on another thread and reused; the memory kept is
// bounded; a thread's cache goes back when it exits, and the pool works
// during thread exit after that; the allocator serves shared_ptr control
// blocks. Run under ThreadSanitizer and AddressSanitizer too (a free block
// is poisoned there: the use-after-free test checks it).
#include "gls/contrib/spdlog_block_pool.h"

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gls {
namespace spdlog_values {
namespace internal {
namespace {

using Pool = BlockPool<128>;

bool Aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kBlockAlignment == 0;
}

TEST(BlockPoolTest, BlocksAreDistinctAlignedWholeAndReused) {
  std::vector<unsigned char*> blocks;
  std::set<unsigned char*> seen;
  for (int i = 0; i < 1000; ++i) {
    auto* block = static_cast<unsigned char*>(Pool::Allocate());
    ASSERT_TRUE(Aligned(block)) << i;
    ASSERT_TRUE(seen.insert(block).second) << "block handed out twice: " << i;
    std::memset(block, i & 0xff, 128);
    blocks.push_back(block);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t b = 0; b < 128; ++b) {
      ASSERT_EQ(blocks[i][b], static_cast<unsigned char>(i & 0xff)) << i << " " << b;
    }
  }
  void* last = blocks.back();
  for (unsigned char* block : blocks) Pool::Deallocate(block);
  EXPECT_LE(Pool::CachedOnThisThread(), 2 * Pool::kBatch);
  // The last block freed is the first handed out again.
  void* again = Pool::Allocate();
  EXPECT_EQ(again, last);
  Pool::Deallocate(again);
}

// Blocks made on one thread and freed on another, both ways at once, as
// the async logger does: every block's content arrives intact, and no block
// is ever handed out while another thread still has it.
TEST(BlockPoolTest, AllocatedHereFreedThere) {
  constexpr int kPerThread = 20000;
  struct Channel {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<uint64_t*> blocks;
    bool done = false;
  };
  std::mutex live_mutex;
  std::set<void*> live;
  int reused_while_live = 0;
  auto produce = [&](Channel& out, uint64_t tag) {
    for (int i = 0; i < kPerThread; ++i) {
      auto* block = static_cast<uint64_t*>(Pool::Allocate());
      {
        std::lock_guard<std::mutex> lock(live_mutex);
        if (!live.insert(block).second) ++reused_while_live;
      }
      for (int w = 0; w < 16; ++w) block[w] = tag * 1000000 + i * 16 + w;
      std::lock_guard<std::mutex> lock(out.mutex);
      out.blocks.push_back(block);
      out.cv.notify_one();
    }
    std::lock_guard<std::mutex> lock(out.mutex);
    out.done = true;
    out.cv.notify_one();
  };
  int corrupted = 0;
  auto consume = [&](Channel& in, uint64_t tag) {
    int next = 0;
    for (;;) {
      uint64_t* block;
      {
        std::unique_lock<std::mutex> lock(in.mutex);
        in.cv.wait(lock, [&] { return !in.blocks.empty() || in.done; });
        if (in.blocks.empty()) break;
        block = in.blocks.front();
        in.blocks.pop_front();
      }
      for (int w = 0; w < 16; ++w) {
        if (block[w] != tag * 1000000 + next * 16 + w) ++corrupted;
      }
      ++next;
      {
        std::lock_guard<std::mutex> lock(live_mutex);
        live.erase(block);
      }
      Pool::Deallocate(block);
    }
    EXPECT_EQ(next, kPerThread);
  };
  Channel a_to_b, b_to_a;
  {
    std::jthread a([&] {
      std::jthread consumer([&] { consume(b_to_a, 2); });
      produce(a_to_b, 1);
    });
    std::jthread b([&] {
      std::jthread consumer([&] { consume(a_to_b, 1); });
      produce(b_to_a, 2);
    });
  }
  EXPECT_EQ(corrupted, 0);
  EXPECT_EQ(reused_while_live, 0);
  EXPECT_TRUE(live.empty());
}

// A thread that only frees keeps at most 2 * kBatch blocks; the shared list
// at most kMaxSharedBatches batches; the rest goes back to operator delete.
TEST(BlockPoolTest, MemoryKeptIsBounded) {
  using Big = BlockPool<256>;  // a pool of its own, so counts are exact
  constexpr size_t kBlocks = (Big::kMaxSharedBatches + 10) * Big::kBatch;
  std::vector<void*> blocks;
  for (size_t i = 0; i < kBlocks; ++i) blocks.push_back(Big::Allocate());
  std::jthread([&] {
    for (void* block : blocks) Big::Deallocate(block);
    EXPECT_LT(Big::CachedOnThisThread(), 2 * Big::kBatch);
    EXPECT_EQ(Big::SharedBatches(), Big::kMaxSharedBatches);
  }).join();
  EXPECT_EQ(Big::SharedBatches(), Big::kMaxSharedBatches);
  // This thread takes batches back from the shared list.
  std::vector<void*> again;
  for (size_t i = 0; i < 3 * Big::kBatch; ++i) again.push_back(Big::Allocate());
  EXPECT_EQ(Big::SharedBatches(), Big::kMaxSharedBatches - 3);
  for (void* block : again) Big::Deallocate(block);
}

// A thread's cache goes to the shared list when the thread exits.
TEST(BlockPoolTest, AnExitingThreadGivesItsCacheBack) {
  using Own = BlockPool<192>;
  std::vector<void*> blocks;
  for (size_t i = 0; i < Own::kBatch + 5; ++i) blocks.push_back(Own::Allocate());
  for (void* block : blocks) Own::Deallocate(block);  // this thread's cache
  const size_t before = Own::SharedBatches();
  std::jthread([&] {
    std::vector<void*> mine;
    for (size_t i = 0; i < Own::kBatch + 5; ++i) mine.push_back(Own::Allocate());
    for (void* block : mine) Own::Deallocate(block);
    EXPECT_EQ(Own::CachedOnThisThread(), Own::kBatch + 5);
  }).join();
  // One full batch back to the list; the 5 left over to operator delete.
  EXPECT_EQ(Own::SharedBatches(), before + 1);
}

// Allocating and freeing from a thread_local destructor that runs after the
// thread's cache is gone still works (operator new and delete directly).
TEST(BlockPoolTest, WorksWhileTheThreadExits) {
  using Own = BlockPool<320>;
  static std::atomic<int> blocks_used{0};
  struct UsesThePoolAtExit {
    ~UsesThePoolAtExit() {
      void* block = Own::Allocate();
      std::memset(block, 1, 320);
      Own::Deallocate(block);
      ++blocks_used;
    }
  };
  std::jthread([] {
    // Constructed before the cache, so destroyed after it.
    static thread_local UsesThePoolAtExit at_exit;
    (void)&at_exit;
    Own::Deallocate(Own::Allocate());
  }).join();
  EXPECT_EQ(blocks_used.load(), 1);
}

// The allocator: shared_ptr control blocks of any size, pooled up to
// kMaxPooledSize, from std::allocator beyond; arrays from std::allocator.
TEST(PoolAllocatorTest, ServesSharedPtrControlBlocks) {
  struct Small {
    int n;
  };
  struct Large {
    char bytes[kMaxPooledSize + 1];
  };
  int deleted = 0;
  auto deleter = [&](std::nullptr_t) { ++deleted; };
  {
    std::shared_ptr<void> a(nullptr, deleter, PoolAllocator<void>());
    std::shared_ptr<Small> b = std::allocate_shared<Small>(PoolAllocator<Small>(), Small{7});
    std::shared_ptr<Large> c = std::allocate_shared<Large>(PoolAllocator<Large>());
    EXPECT_EQ(b->n, 7);
    c->bytes[kMaxPooledSize] = 1;
    std::jthread([a = std::move(a), b = std::move(b), c = std::move(c)] {}).join();
  }
  EXPECT_EQ(deleted, 1);
  PoolAllocator<int> ints;
  int* array = ints.allocate(100);
  array[99] = 1;
  ints.deallocate(array, 100);
  EXPECT_TRUE(PoolAllocator<int>() == PoolAllocator<char>());
}

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer, touching a free block (past its link word) is
// reported.
TEST(BlockPoolDeathTest, UseAfterFreeIsReportedUnderAsan) {
  EXPECT_DEATH(
      {
        auto* block = static_cast<char*>(Pool::Allocate());
        Pool::Deallocate(block);
        block[64] = 1;
      },
      "use-after-poison");
}
#endif

}  // namespace
}  // namespace internal
}  // namespace spdlog_values
}  // namespace gls
