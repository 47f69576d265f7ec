// strategies/goid/stack_table.h: the lock-free map from a stack address to
// the registered stack that contains it, which the goid strategy reads on
// every GetValue.
//
// Not part of the public API: //strategies/goid uses it; users register
// stacks through gls::goid::ScopedStack and RegisteredStackAllocator
// (goid_strategy.h).
//
// What this is: a page table for stacks, with 64 KiB "pages" (blocks). A
// 47-bit x86-64 user address is cut into a root index (14 bits), a mid-node
// index (13 bits), a leaf index (4 bits) and a 64 KiB block offset. Each
// leaf entry owns one block and holds either the StackRegion that owns the
// whole block, or, for a block that holds a stack boundary (stacks are page
// aligned at best, and stacks from malloc or boost::pool are not even that
// and are often adjacent), a tagged pointer to a split node: 16 entries for
// the block's 4 KiB pages, each again an owner or a tagged pointer to a
// split node of 16 entries for that page's 256-byte lines, each again an
// owner or a tagged pointer to a split node of 16 entries for that line's
// 16-byte granules. A boundary inside a block so costs at most 48 entries
// to write.
//
// What this is not: a general interval map. Ownership is per 16-byte
// granule; [lo, hi) given to the writers must be 16-byte aligned. Addresses
// at or above 2^47 (5-level paging with high mmap hints) are never owned.
//
// Memory (node_bytes() counts it): a leaf is 128 bytes and covers 1 MiB, so
// stack address space costs 1 KiB of leaf per 8 MiB (leaves shared with
// neighbouring stacks are paid once); a split node is 136 bytes, one per
// block, page or line that ever held a stack boundary (a page-aligned stack
// has one per end); a mid node is 64 KiB and covers 8 GiB, shared by every
// stack in that range (thread stacks and mmapped fiber stacks normally share
// one or two). A fresh 8 MiB thread stack (page aligned) so costs at most
// 9 leaves + 2 split nodes = 1424 bytes; with ends that are not even page
// aligned, at most 9 leaves + 6 split nodes = 1968 bytes
// (stack_table_test's EightMiBStackCostsAtMost2KB). The root (128 KiB, in
// the table object) is zero until touched.
//
// Guarantees:
//   * Lookup() is wait-free, takes no lock, allocates nothing and writes no
//     memory at all: a handful of dependent loads (root, mid, leaf, entry;
//     one more per split level for a block holding a boundary).
//     Async-signal-safe.
//   * Nodes (mid nodes, leaves, split nodes) are never freed while the table
//     lives and a split entry never turns back into a plain one, so a reader
//     that loaded any node pointer can always dereference it, and repeated
//     registrations with the same boundaries allocate nothing. Memory is
//     bounded by the address ranges ever registered (see Memory above).
//   * Writers (Prepare, Assign, CollectRuns) must be serialized by the caller
//     (`mu()`); they publish with release stores, readers load with acquire.
//   * The table never dereferences a StackRegion; region lifetime is the
//     caller's business.
//
// Example:
//
//   StackTable table;
//   {
//     std::lock_guard<std::mutex> lock(table.mu());
//     table.Assign(lo, hi, region);
//   }
//   StackRegion* r = table.Lookup(sp);  // region if lo <= sp < hi
#ifndef STRATEGIES_GOID_STACK_TABLE_H_
#define STRATEGIES_GOID_STACK_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace gls {
class Context;

namespace goid_internal {

// StackRegion
//
// One registered stack. `context` is first so that Current() is one load
// from the region pointer. Only the flow of execution running on this stack
// reads or writes `context`; everything else is fixed at registration.
struct StackRegion {
  Context* context = nullptr;
  uintptr_t lo = 0;  // first owned byte
  uintptr_t hi = 0;  // one past the last owned byte
};

// StackTable
//
// See the file comment.
class StackTable {
 public:
  static constexpr int kBlockBits = 16;  // what a leaf entry covers
  static constexpr int kPageBits = 12;
  static constexpr int kGranuleBits = 4;
  static constexpr int kLeafBits = 4;   // blocks per leaf: 16 (1 MiB)
  static constexpr int kMidBits = 13;   // leaves per mid node: 8192 (8 GiB)
  static constexpr int kAddressBits = 47;
  static constexpr int kRootBits =
      kAddressBits - kBlockBits - kLeafBits - kMidBits;  // 14
  static constexpr uintptr_t kAddressLimit = uintptr_t{1} << kAddressBits;
  static constexpr uintptr_t kGranule = uintptr_t{1} << kGranuleBits;
  static constexpr uintptr_t kPageSize = uintptr_t{1} << kPageBits;
  static constexpr uintptr_t kBlockSize = uintptr_t{1} << kBlockBits;

  constexpr StackTable() = default;
  // Frees every node. Only for tables no reader can still use (tests); the
  // process-wide table is never destroyed.
  ~StackTable();
  StackTable(const StackTable&) = delete;
  StackTable& operator=(const StackTable&) = delete;

  // Lookup(addr): the region owning `addr`, or nullptr. See the guarantees.
  StackRegion* Lookup(uintptr_t addr) const {
    const uintptr_t block = addr >> kBlockBits;
    const uintptr_t root_index = block >> (kLeafBits + kMidBits);
    if (root_index >= kRootSize) return nullptr;
    const Mid* mid = root_[root_index].load(std::memory_order_acquire);
    if (mid == nullptr) return nullptr;
    const Leaf* leaf = mid->leaves[(block >> kLeafBits) & (kMidSize - 1)].load(
        std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    uintptr_t entry =
        leaf->blocks[block & (kLeafSize - 1)].load(std::memory_order_acquire);
    if (entry & kSplitTag) {
      // A block holding a boundary (common: the top block of a thread's
      // stack, where shallow frames run): down to its page, ...
      entry = Node(entry)
                  ->children[(addr >> kPageBits) & (kSplitFanout - 1)]
                  .load(std::memory_order_acquire);
      if (entry & kSplitTag) [[unlikely]] {
        // ... a page holding a boundary: down to its line, then maybe to
        // its granule.
        int shift = kPageBits;
        do {
          shift -= kSplitBits;
          entry =
              Node(entry)->children[(addr >> shift) & (kSplitFanout - 1)].load(
                  std::memory_order_acquire);
        } while (entry & kSplitTag);
      }
    }
    return reinterpret_cast<StackRegion*>(entry);
  }

  // mu(): the writers' lock. Readers never take it.
  std::mutex& mu() { return mu_; }

  // Assign(lo, hi, region): every granule of [lo, hi) is owned by `region`
  // (nullptr: by nobody) from now on. `lo` and `hi` are multiples of
  // kGranule, lo <= hi <= kAddressLimit. Allocates nodes as needed (throws
  // std::bad_alloc, leaving a prefix of the range assigned). Allocates
  // nothing after a Prepare over [lo, hi), nor when undoing an earlier
  // Assign over the same or a covering range (assigning back what was there
  // before, or nullptr). Requires mu().
  void Assign(uintptr_t lo, uintptr_t hi, StackRegion* region);

  // Prepare(lo, hi): allocates every node a later Assign over [lo, hi) needs
  // (and splits its partially covered blocks, pages and lines, keeping their owners), without
  // changing what any address maps to. After it, that Assign allocates
  // nothing and cannot throw. Throws std::bad_alloc (the mapping is still
  // unchanged). Requires mu().
  void Prepare(uintptr_t lo, uintptr_t hi);

  // Run: a maximal stretch [lo, hi) of addresses with the same owner.
  struct Run {
    uintptr_t lo;
    uintptr_t hi;
    StackRegion* owner;  // may be nullptr
    friend bool operator==(const Run&, const Run&) = default;
  };

  // CollectRuns(lo, hi, out): appends to `out` the runs covering [lo, hi),
  // in address order. Same requirements on lo/hi as Assign. Requires mu().
  void CollectRuns(uintptr_t lo, uintptr_t hi, std::vector<Run>* out) const;

  // Statistics, for tests: nodes allocated so far, and their bytes (mid
  // nodes, leaves and split nodes; not the table object with its root).
  // Read under mu() or while no writer runs.
  size_t leaf_count() const { return leaf_count_; }
  size_t split_node_count() const { return split_node_count_; }
  size_t mid_count() const { return mid_count_; }
  size_t mid_node_bytes() const { return mid_count_ * sizeof(Mid); }
  size_t node_bytes() const {
    return mid_count_ * sizeof(Mid) + leaf_count_ * sizeof(Leaf) +
           split_node_count_ * sizeof(SplitNode);
  }

 private:
  static constexpr size_t kRootSize = size_t{1} << kRootBits;
  static constexpr size_t kMidSize = size_t{1} << kMidBits;
  static constexpr size_t kLeafSize = size_t{1} << kLeafBits;
  static constexpr uintptr_t kSplitTag = 1;

  static constexpr int kSplitBits = 4;
  static constexpr int kSplitFanout = 1 << kSplitBits;
  static_assert(kBlockBits == kPageBits + kSplitBits &&
                    kPageBits == kGranuleBits + 2 * kSplitBits,
                "a block splits into pages, a page into lines, a line into "
                "granules");

  struct SplitNode {
    std::atomic<uintptr_t> children[kSplitFanout] = {};
    SplitNode* next_allocated = nullptr;  // every split node, for ~StackTable
  };
  struct Leaf {
    std::atomic<uintptr_t> blocks[kLeafSize] = {};
  };
  struct Mid {
    std::atomic<Leaf*> leaves[kMidSize] = {};
  };

  static const SplitNode* Node(uintptr_t entry) {
    return reinterpret_cast<const SplitNode*>(entry & ~kSplitTag);
  }
  static SplitNode* MutableNode(uintptr_t entry) {
    return reinterpret_cast<SplitNode*>(entry & ~kSplitTag);
  }

  // Splits the plain entry behind `slot` into a node whose children all keep
  // its owner; returns the new (tagged) entry.
  uintptr_t Split(std::atomic<uintptr_t>* slot);
  // The block slots of the leaf holding block number `block`, creating mid
  // node and leaf if `create`; nullptr if they do not exist and !create.
  std::atomic<uintptr_t>* LeafSlots(uintptr_t block, bool create);
  // Calls fn(slot, block_lo) for each block overlapping [lo, hi) (lo < hi)
  // whose leaf exists or, if `create`, is created.
  template <typename Fn>
  void ForEachBlock(uintptr_t lo, uintptr_t hi, bool create, Fn fn);
  // The recursive parts of the writers, for the span of 2^span_bits bytes at
  // span_lo behind `slot` (a block, a page, a line or a granule), clipped to
  // [a, b).
  void AssignSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                  int span_bits, uintptr_t a, uintptr_t b, uintptr_t value);
  void PrepareSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                   int span_bits, uintptr_t a, uintptr_t b);
  void CollectSpan(uintptr_t entry, uintptr_t span_lo, int span_bits,
                   uintptr_t a, uintptr_t b, std::vector<Run>* out) const;

  std::atomic<Mid*> root_[kRootSize] = {};
  std::mutex mu_;
  SplitNode* split_nodes_ = nullptr;  // guarded by mu_
  size_t mid_count_ = 0;              // guarded by mu_
  size_t leaf_count_ = 0;             // guarded by mu_
  size_t split_node_count_ = 0;       // guarded by mu_
};

}  // namespace goid_internal
}  // namespace gls

#endif  // STRATEGIES_GOID_STACK_TABLE_H_
