// strategies/goid/stack_table.h: the lock-free map from a stack address to
// the registered stack that contains it, which the goid strategy reads on
// every GetValue.
//
// Not part of the public API: //strategies/goid uses it; users register
// stacks through gls::goid::ScopedStack and RegisteredStackAllocator
// (goid_strategy.h).
//
// What this is: a page table for stacks. A 47-bit x86-64 user address is cut
// into a root index (12 bits), a mid-node index (12 bits), a leaf index (11
// bits) and a 4 KiB page offset. Each leaf entry owns one page and holds
// either the StackRegion that owns the whole page, or, for a page shared by
// two or more stacks (stacks from malloc or boost::pool are not page
// aligned and are often adjacent), a tagged pointer to a split node: 16
// entries for the page's 256-byte lines, each again an owner or a tagged
// pointer to a split node of 16 entries for that line's 16-byte granules.
// A boundary inside a page so costs at most 32 entries to write.
//
// What this is not: a general interval map. Ownership is per 16-byte
// granule; [lo, hi) given to the writers must be 16-byte aligned. Addresses
// at or above 2^47 (5-level paging with high mmap hints) are never owned.
//
// Guarantees:
//   * Lookup() is wait-free, takes no lock, allocates nothing and writes no
//     memory at all: a handful of dependent loads. Async-signal-safe.
//   * Nodes (mid nodes, leaves, split nodes) are never freed while the table
//     lives and a split entry never turns back into a plain one, so a reader
//     that loaded any node pointer can always dereference it, and repeated
//     registrations with the same boundaries allocate nothing. Memory is
//     bounded by the address ranges ever registered: 16 KiB of leaf per 8 MiB
//     of stack address space, plus 136 bytes per page or line that ever held
//     a stack boundary.
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
  static constexpr int kPageBits = 12;
  static constexpr int kGranuleBits = 4;
  static constexpr int kLeafBits = 11;  // pages per leaf: 2048 (8 MiB)
  static constexpr int kMidBits = 12;   // leaves per mid node: 4096 (32 GiB)
  static constexpr int kAddressBits = 47;
  static constexpr int kRootBits =
      kAddressBits - kPageBits - kLeafBits - kMidBits;  // 12
  static constexpr uintptr_t kAddressLimit = uintptr_t{1} << kAddressBits;
  static constexpr uintptr_t kGranule = uintptr_t{1} << kGranuleBits;
  static constexpr uintptr_t kPageSize = uintptr_t{1} << kPageBits;

  constexpr StackTable() = default;
  // Frees every node. Only for tables no reader can still use (tests); the
  // process-wide table is never destroyed.
  ~StackTable();
  StackTable(const StackTable&) = delete;
  StackTable& operator=(const StackTable&) = delete;

  // Lookup(addr): the region owning `addr`, or nullptr. See the guarantees.
  StackRegion* Lookup(uintptr_t addr) const {
    const uintptr_t page = addr >> kPageBits;
    const uintptr_t root_index = page >> (kLeafBits + kMidBits);
    if (root_index >= kRootSize) return nullptr;
    const Mid* mid = root_[root_index].load(std::memory_order_acquire);
    if (mid == nullptr) return nullptr;
    const Leaf* leaf = mid->leaves[(page >> kLeafBits) & (kMidSize - 1)].load(
        std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    uintptr_t entry =
        leaf->pages[page & (kLeafSize - 1)].load(std::memory_order_acquire);
    if (entry & kSplitTag) [[unlikely]] {
      // A shared page: down to its line, then maybe to its granule.
      int shift = kPageBits;
      do {
        shift -= kSplitBits;
        entry =
            Node(entry)->children[(addr >> shift) & (kSplitFanout - 1)].load(
                std::memory_order_acquire);
      } while (entry & kSplitTag);
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
  // (and splits its partially covered pages, keeping their owners), without
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

  // Statistics, for tests: nodes allocated so far.
  size_t leaf_count() const { return leaf_count_; }
  size_t split_node_count() const { return split_node_count_; }

 private:
  static constexpr size_t kRootSize = size_t{1} << kRootBits;
  static constexpr size_t kMidSize = size_t{1} << kMidBits;
  static constexpr size_t kLeafSize = size_t{1} << kLeafBits;
  static constexpr uintptr_t kSplitTag = 1;

  static constexpr int kSplitBits = 4;
  static constexpr int kSplitFanout = 1 << kSplitBits;
  static_assert(kPageBits == kGranuleBits + 2 * kSplitBits,
                "a page splits into lines, a line into granules");

  struct SplitNode {
    std::atomic<uintptr_t> children[kSplitFanout] = {};
    SplitNode* next_allocated = nullptr;  // every split node, for ~StackTable
  };
  struct Leaf {
    std::atomic<uintptr_t> pages[kLeafSize] = {};
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
  // The page slots of the leaf holding page number `page`, creating mid node
  // and leaf if `create`; nullptr if they do not exist and !create.
  std::atomic<uintptr_t>* LeafSlots(uintptr_t page, bool create);
  // Calls fn(slot, page_lo) for each page overlapping [lo, hi) (lo < hi)
  // whose leaf exists or, if `create`, is created.
  template <typename Fn>
  void ForEachPage(uintptr_t lo, uintptr_t hi, bool create, Fn fn);
  // The recursive parts of the writers, for the span of 2^span_bits bytes at
  // span_lo behind `slot` (a page, a line or a granule), clipped to [a, b).
  void AssignSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                  int span_bits, uintptr_t a, uintptr_t b, uintptr_t value);
  void PrepareSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                   int span_bits, uintptr_t a, uintptr_t b);
  void CollectSpan(uintptr_t entry, uintptr_t span_lo, int span_bits,
                   uintptr_t a, uintptr_t b, std::vector<Run>* out) const;

  std::atomic<Mid*> root_[kRootSize] = {};
  std::mutex mu_;
  SplitNode* split_nodes_ = nullptr;  // guarded by mu_
  size_t leaf_count_ = 0;             // guarded by mu_
  size_t split_node_count_ = 0;       // guarded by mu_
};

}  // namespace goid_internal
}  // namespace gls

#endif  // STRATEGIES_GOID_STACK_TABLE_H_
