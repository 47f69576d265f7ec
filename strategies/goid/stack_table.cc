#include "strategies/goid/stack_table.h"

#include <algorithm>

namespace gls {
namespace goid_internal {

StackTable::~StackTable() {
  for (auto& slot : root_) {
    Mid* mid = slot.load(std::memory_order_relaxed);
    if (mid == nullptr) continue;
    for (auto& leaf : mid->leaves) delete leaf.load(std::memory_order_relaxed);
    delete mid;
  }
  while (split_nodes_ != nullptr) {
    SplitNode* next = split_nodes_->next_allocated;
    delete split_nodes_;
    split_nodes_ = next;
  }
}

std::atomic<uintptr_t>* StackTable::LeafSlots(uintptr_t block, bool create) {
  std::atomic<Mid*>& mid_slot = root_[block >> (kLeafBits + kMidBits)];
  Mid* mid = mid_slot.load(std::memory_order_relaxed);
  if (mid == nullptr) {
    if (!create) return nullptr;
    mid = new Mid;
    // Release: a reader that sees the node sees it zeroed.
    mid_slot.store(mid, std::memory_order_release);
    ++mid_count_;
  }
  std::atomic<Leaf*>& leaf_slot =
      mid->leaves[(block >> kLeafBits) & (kMidSize - 1)];
  Leaf* leaf = leaf_slot.load(std::memory_order_relaxed);
  if (leaf == nullptr) {
    if (!create) return nullptr;
    leaf = new Leaf;
    leaf_slot.store(leaf, std::memory_order_release);
    ++leaf_count_;
  }
  return leaf->blocks;
}

template <typename Fn>
void StackTable::ForEachBlock(uintptr_t lo, uintptr_t hi, bool create,
                              Fn fn) {
  uintptr_t block = lo >> kBlockBits;
  const uintptr_t last_block = (hi - 1) >> kBlockBits;
  while (block <= last_block) {
    const uintptr_t leaf_last =
        std::min(last_block, (block | (kLeafSize - 1)));
    if (std::atomic<uintptr_t>* slots = LeafSlots(block, create)) {
      for (; block <= leaf_last; ++block) {
        fn(&slots[block & (kLeafSize - 1)], block << kBlockBits);
      }
    }
    block = leaf_last + 1;
  }
}

uintptr_t StackTable::Split(std::atomic<uintptr_t>* slot) {
  const uintptr_t entry = slot->load(std::memory_order_relaxed);
  auto* node = new SplitNode;
  for (auto& child : node->children) {
    child.store(entry, std::memory_order_relaxed);
  }
  node->next_allocated = split_nodes_;
  split_nodes_ = node;
  ++split_node_count_;
  // Release: a reader that sees the node sees it initialized, so the split
  // itself changes the owner of no address.
  const uintptr_t tagged = reinterpret_cast<uintptr_t>(node) | kSplitTag;
  slot->store(tagged, std::memory_order_release);
  return tagged;
}

namespace {

// Stores `value` in a slot wholly inside the assigned range if the slot is a
// plain entry; false if it is split (the caller descends).
inline bool StoreWhole(std::atomic<uintptr_t>* slot, uintptr_t value,
                       uintptr_t split_tag) {
  const uintptr_t entry = slot->load(std::memory_order_relaxed);
  if (entry & split_tag) return false;
  if (entry != value) slot->store(value, std::memory_order_release);
  return true;
}

}  // namespace

void StackTable::AssignSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                            int span_bits, uintptr_t a, uintptr_t b,
                            uintptr_t value) {
  const uintptr_t span_hi = span_lo + (uintptr_t{1} << span_bits);
  a = std::max(a, span_lo);
  b = std::min(b, span_hi);
  if (a >= b) return;
  const bool whole = a == span_lo && b == span_hi;
  if (whole && StoreWhole(slot, value, kSplitTag)) return;
  uintptr_t entry = slot->load(std::memory_order_relaxed);
  if (!(entry & kSplitTag)) {
    if (entry == value) return;
    // The span gets a second owner. (Never at granule level: a and b are
    // granule-aligned.)
    entry = Split(slot);
  }
  // A split span stays split, also when wholly covered: its node may be
  // needed again for the same boundary, and a reader may be reading it.
  SplitNode* node = MutableNode(entry);
  const int child_bits = span_bits - kSplitBits;
  const size_t first = (a - span_lo) >> child_bits;
  const size_t last = (b - 1 - span_lo) >> child_bits;
  for (size_t i = first; i <= last; ++i) {
    const uintptr_t child_lo = span_lo + (i << child_bits);
    const uintptr_t child_hi = child_lo + (uintptr_t{1} << child_bits);
    if (a <= child_lo && child_hi <= b &&
        StoreWhole(&node->children[i], value, kSplitTag)) {
      continue;
    }
    AssignSpan(&node->children[i], child_lo, child_bits, a, b, value);
  }
}

void StackTable::PrepareSpan(std::atomic<uintptr_t>* slot, uintptr_t span_lo,
                             int span_bits, uintptr_t a, uintptr_t b) {
  const uintptr_t span_hi = span_lo + (uintptr_t{1} << span_bits);
  a = std::max(a, span_lo);
  b = std::min(b, span_hi);
  if (a >= b || (a == span_lo && b == span_hi)) return;
  uintptr_t entry = slot->load(std::memory_order_relaxed);
  if (!(entry & kSplitTag)) entry = Split(slot);
  // Only the children holding a or b can be partially covered.
  SplitNode* node = MutableNode(entry);
  const int child_bits = span_bits - kSplitBits;
  const size_t first = (a - span_lo) >> child_bits;
  const size_t last = (b - 1 - span_lo) >> child_bits;
  PrepareSpan(&node->children[first], span_lo + (first << child_bits),
              child_bits, a, b);
  if (last != first) {
    PrepareSpan(&node->children[last], span_lo + (last << child_bits),
                child_bits, a, b);
  }
}

void StackTable::Prepare(uintptr_t lo, uintptr_t hi) {
  if (lo >= hi) return;
  ForEachBlock(lo, hi, /*create=*/true,
               [&](std::atomic<uintptr_t>* slot, uintptr_t block_lo) {
                 PrepareSpan(slot, block_lo, kBlockBits, lo, hi);
               });
}

void StackTable::Assign(uintptr_t lo, uintptr_t hi, StackRegion* region) {
  if (lo >= hi) return;
  const uintptr_t value = reinterpret_cast<uintptr_t>(region);
  ForEachBlock(lo, hi, /*create=*/region != nullptr,
               [&](std::atomic<uintptr_t>* slot, uintptr_t block_lo) {
                 if (lo <= block_lo && block_lo + kBlockSize <= hi &&
                     StoreWhole(slot, value, kSplitTag)) {
                   return;
                 }
                 AssignSpan(slot, block_lo, kBlockBits, lo, hi, value);
               });
}

void StackTable::CollectSpan(uintptr_t entry, uintptr_t span_lo, int span_bits,
                             uintptr_t a, uintptr_t b,
                             std::vector<Run>* out) const {
  const uintptr_t span_hi = span_lo + (uintptr_t{1} << span_bits);
  a = std::max(a, span_lo);
  b = std::min(b, span_hi);
  if (a >= b) return;
  auto extend = [out](uintptr_t run_lo, uintptr_t run_hi, uintptr_t owner) {
    if (reinterpret_cast<uintptr_t>(out->back().owner) == owner) {
      out->back().hi = run_hi;
    } else {
      out->push_back(
          Run{run_lo, run_hi, reinterpret_cast<StackRegion*>(owner)});
    }
  };
  if (!(entry & kSplitTag)) {
    extend(a, b, entry);
    return;
  }
  const SplitNode* node = Node(entry);
  const int child_bits = span_bits - kSplitBits;
  const size_t first = (a - span_lo) >> child_bits;
  const size_t last = (b - 1 - span_lo) >> child_bits;
  for (size_t i = first; i <= last; ++i) {
    const uintptr_t child = node->children[i].load(std::memory_order_relaxed);
    const uintptr_t child_lo = span_lo + (i << child_bits);
    if (!(child & kSplitTag)) {
      const uintptr_t child_hi = child_lo + (uintptr_t{1} << child_bits);
      extend(std::max(a, child_lo), std::min(b, child_hi), child);
      continue;
    }
    CollectSpan(child, child_lo, child_bits, a, b, out);
  }
}

void StackTable::CollectRuns(uintptr_t lo, uintptr_t hi,
                             std::vector<Run>* out) const {
  if (lo >= hi) return;
  // Starts with an empty run that the first span extends, so CollectSpan
  // never has to check for "no run yet".
  std::vector<Run> runs{Run{lo, lo, Lookup(lo)}};
  uintptr_t block = lo >> kBlockBits;
  const uintptr_t last_block = (hi - 1) >> kBlockBits;
  while (block <= last_block) {
    const uintptr_t leaf_last =
        std::min(last_block, (block | (kLeafSize - 1)));
    // LeafSlots creates nothing when !create; it is non-const only for that.
    const std::atomic<uintptr_t>* slots =
        const_cast<StackTable*>(this)->LeafSlots(block, /*create=*/false);
    for (; block <= leaf_last; ++block) {
      const uintptr_t entry =
          slots == nullptr
              ? 0
              : slots[block & (kLeafSize - 1)].load(std::memory_order_relaxed);
      const uintptr_t block_lo = block << kBlockBits;
      if (entry == reinterpret_cast<uintptr_t>(runs.back().owner) &&
          lo <= block_lo && block_lo + kBlockSize <= hi) {
        runs.back().hi = block_lo + kBlockSize;  // the common case, inline
        continue;
      }
      CollectSpan(entry, block_lo, kBlockBits, lo, hi, &runs);
    }
  }
  out->insert(out->end(), runs.begin(), runs.end());
}

}  // namespace goid_internal
}  // namespace gls
