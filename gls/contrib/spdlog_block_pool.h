// gls/contrib/spdlog_block_pool.h: a thread-safe pool of equal-size memory
// blocks, for the record gls's async spdlog logger allocates for each line.
//
// What this is for: memory allocated on one thread and freed on another, at
// a high rate, in small blocks of one size: a line's record is made on the
// logging thread and freed on spdlog's worker. malloc serves that pattern
// poorly (the logging thread's own cache of freed blocks never fills, so
// every allocation takes the arena's slow path). Here each thread keeps a
// small cache of free blocks, and blocks move between threads in batches of
// kBatch through one mutex-protected list: one lock per kBatch blocks.
//
// What this is not: a general-purpose allocator, or part of gls's public
// API (it lives in an internal namespace; the interface may change).
//
// Guarantees:
//   * Allocate and Deallocate may be called from any thread, including while
//     the thread exits (after its cache is gone they use operator new and
//     delete directly); a block may be freed by a thread other than the one
//     that allocated it.
//   * Every block is kBlockSize bytes, aligned to kBlockAlignment (64, a cache
//     line), and not handed out again until it is freed.
//   * Bounded memory: a thread keeps at most 2 * kBatch free blocks, the
//     shared list at most kMaxSharedBatches batches; blocks beyond that, and
//     a thread's cache when it exits, go back to operator delete (or to the
//     shared list while it has room).
//   * Under AddressSanitizer a free block is poisoned but for its first word
//     (the free-list link), so a use after free is still reported.
//
// Example:
//
//   using Pool = gls::spdlog_values::internal::BlockPool<128>;
//   void* block = Pool::Allocate();
//   std::thread([block] { Pool::Deallocate(block); }).join();
//
//   // Or through the allocator, e.g. for a shared_ptr's control block:
//   std::shared_ptr<void> p(nullptr, deleter,
//                           gls::spdlog_values::internal::PoolAllocator<void>());
#ifndef GLS_CONTRIB_SPDLOG_BLOCK_POOL_H_
#define GLS_CONTRIB_SPDLOG_BLOCK_POOL_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define GLS_BLOCK_POOL_POISON(addr, size) ASAN_POISON_MEMORY_REGION(addr, size)
#define GLS_BLOCK_POOL_UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define GLS_BLOCK_POOL_POISON(addr, size) ((void)(addr), (void)(size))
#define GLS_BLOCK_POOL_UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

namespace gls {
namespace spdlog_values {
namespace internal {

// kBlockAlignment: the alignment of every pool block (a cache line, so a
// block shares no line with another block).
inline constexpr size_t kBlockAlignment = 64;

// BlockPool<kBlockSize>
//
// The process-wide pool of kBlockSize-byte blocks (see the file comment).
// All members are static: one pool per block size.
template <size_t kBlockSize>
class BlockPool {
  static_assert(kBlockSize >= sizeof(void*) && kBlockSize % kBlockAlignment == 0,
                "BlockPool: the block size must be a multiple of kBlockAlignment");

 public:
  // kBatch: how many blocks move between a thread and the shared list at once.
  static constexpr size_t kBatch = 32;
  // kMaxSharedBatches: how many batches the shared list keeps at most.
  static constexpr size_t kMaxSharedBatches = 64;

  // Allocate(): a free block. Throws std::bad_alloc if none can be had.
  static void* Allocate() {
    if (ThreadCache* cache = LocalCache()) {
      if (cache->head == nullptr) cache->Refill();
      if (cache->head != nullptr) return cache->Pop();
    }
    return NewBlock();
  }

  // Deallocate(block): gives back a block from Allocate, on any thread.
  static void Deallocate(void* block) noexcept {
    ThreadCache* cache = LocalCache();
    if (cache == nullptr) {
      DeleteBlock(block);
      return;
    }
    cache->Push(block);
    if (cache->count >= 2 * kBatch) cache->Spill();
  }

  // For tests: how many free blocks the calling thread's cache holds, and how
  // many batches the shared list holds.
  static size_t CachedOnThisThread() {
    const ThreadCache* cache = LocalCache();
    return cache == nullptr ? 0 : cache->count;
  }
  static size_t SharedBatches() {
    Shared& shared = GetShared();
    std::lock_guard<std::mutex> lock(shared.mutex);
    return shared.batches.size();
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };

  // The list of full batches every thread shares. Never destroyed: threads
  // may free blocks after static destructors have run.
  struct Shared {
    Shared() { batches.reserve(kMaxSharedBatches); }
    std::mutex mutex;
    std::vector<FreeBlock*> batches;  // each a list of exactly kBatch blocks
  };
  static Shared& GetShared() {
    static Shared* const shared = new Shared();
    return *shared;
  }

  static void* NewBlock() {
    return ::operator new(kBlockSize, std::align_val_t{kBlockAlignment});
  }
  static void DeleteBlock(void* block) noexcept {
    // Unsized: clang-14 (--config=fuzz) declares no sized deallocation
    // functions unless -fsized-deallocation.
    ::operator delete(block, std::align_val_t{kBlockAlignment});
  }
  // Deletes the `n` blocks of the list at `head`.
  static void DeleteList(FreeBlock* head, size_t n) noexcept {
    for (; n != 0; --n) {
      FreeBlock* next = head->next;
      GLS_BLOCK_POOL_UNPOISON(head, kBlockSize);
      DeleteBlock(head);
      head = next;
    }
  }

  struct ThreadCache {
    FreeBlock* head = nullptr;
    size_t count = 0;

    void* Pop() noexcept {
      FreeBlock* block = head;
      head = block->next;
      --count;
      GLS_BLOCK_POOL_UNPOISON(block, kBlockSize);
      return block;
    }
    void Push(void* memory) noexcept {
      FreeBlock* block = static_cast<FreeBlock*>(memory);
      block->next = head;
      head = block;
      ++count;
      GLS_BLOCK_POOL_POISON(reinterpret_cast<char*>(block) + sizeof(FreeBlock),
                            kBlockSize - sizeof(FreeBlock));
    }
    // Takes a batch from the shared list, if it has one (the cache is empty).
    void Refill() {
      Shared& shared = GetShared();
      std::lock_guard<std::mutex> lock(shared.mutex);
      if (shared.batches.empty()) return;
      head = shared.batches.back();
      shared.batches.pop_back();
      count = kBatch;
    }
    // Detaches kBatch blocks (the cache has at least that many) and gives
    // them to the shared list, or to operator delete if it is full.
    void Spill() noexcept {
      FreeBlock* batch = head;
      FreeBlock* last = head;
      for (size_t i = 1; i < kBatch; ++i) last = last->next;
      head = last->next;
      last->next = nullptr;
      count -= kBatch;
      if (!GiveToShared(batch)) DeleteList(batch, kBatch);
    }
    static bool GiveToShared(FreeBlock* batch) noexcept {
      Shared& shared = GetShared();
      std::lock_guard<std::mutex> lock(shared.mutex);
      if (shared.batches.size() >= kMaxSharedBatches) return false;
      shared.batches.push_back(batch);  // capacity reserved: no allocation
      return true;
    }

    ~ThreadCache() {
      cache_state = CacheState::kGone;
      while (count >= kBatch) Spill();
      DeleteList(head, count);
      head = nullptr;
      count = 0;
    }
  };

  enum class CacheState : unsigned char { kUnused, kLive, kGone };
  // Trivially destructible, so readable while the thread exits.
  static thread_local CacheState cache_state;
  static thread_local ThreadCache thread_cache;

  static ThreadCache* LocalCache() noexcept {
    if (cache_state != CacheState::kLive) {
      if (cache_state == CacheState::kGone) return nullptr;
      cache_state = CacheState::kLive;
    }
    return &thread_cache;
  }
};

template <size_t kBlockSize>
thread_local typename BlockPool<kBlockSize>::CacheState
    BlockPool<kBlockSize>::cache_state = CacheState::kUnused;
template <size_t kBlockSize>
thread_local typename BlockPool<kBlockSize>::ThreadCache
    BlockPool<kBlockSize>::thread_cache;

// kMaxPooledSize: objects up to this size come from a BlockPool; larger
// ones from std::allocator.
inline constexpr size_t kMaxPooledSize = 4 * kBlockAlignment;

// PoolAllocator<T>
//
// A standard allocator that takes single objects of up to kMaxPooledSize
// bytes from BlockPool<sizeof(T) rounded up to kBlockAlignment>, and
// anything else from std::allocator. Stateless: all instances are equal.
template <typename T>
class PoolAllocator {
 public:
  using value_type = T;

  PoolAllocator() noexcept = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>& /*other*/) noexcept {}

  T* allocate(size_t n) {
    if (n == 1 && Choice::kPooled) {
      return static_cast<T*>(Choice::Pool::Allocate());
    }
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n == 1 && Choice::kPooled) {
      Choice::Pool::Deallocate(p);
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }

  template <typename U>
  friend bool operator==(const PoolAllocator& /*a*/,
                         const PoolAllocator<U>& /*b*/) noexcept {
    return true;
  }

 private:
  // Only instantiated by allocate/deallocate, so PoolAllocator<void> is a
  // valid allocator to rebind from.
  struct Choice {
    static constexpr bool kPooled =
        sizeof(T) <= kMaxPooledSize && alignof(T) <= kBlockAlignment;
    static constexpr size_t kRoundedSize =
        (sizeof(T) + kBlockAlignment - 1) / kBlockAlignment * kBlockAlignment;
    using Pool = BlockPool<kPooled ? kRoundedSize : kBlockAlignment>;
  };
};

}  // namespace internal
}  // namespace spdlog_values
}  // namespace gls

#endif  // GLS_CONTRIB_SPDLOG_BLOCK_POOL_H_
