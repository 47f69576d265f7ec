// strategies/stack_tag/internal/tags.h: writing a number into the call stack
// and reading it back. The mechanism behind the stack_tag strategy; not a
// public API.
//
// RunTagged(id, fn) calls fn through a chain of tag functions that spells
// `id`: a start marker, one digit function per hexadecimal digit (least
// significant first), and an end marker:
//
//     start -> digit[id & 0xf] -> digit[(id >> 4) & 0xf] -> ... -> end -> fn
//
// ReadTag() walks the stack from the innermost frame outward, classifies each
// return address (O(1): the 18 tag functions sit at a fixed stride in one
// section, so an address maps to a slot by one subtraction and one shift),
// and decodes the digits between the innermost end marker and the start
// marker. Digits seen before any end marker belong to a chain still being
// built or torn down (e.g. a signal arrived mid-way) and mean "no tag".
//
// Defences against the optimizer (the Go original broke when its compiler got
// better at inlining): the tag functions are noinline and noipa (no inlining,
// cloning, interprocedural constant propagation or GCC identical code
// folding), each passes its own digit to the shared step function so no two
// bodies are identical, each has an empty asm statement after its call so the
// call cannot become a tail call, and all of them live in one section so a
// linker's section-level identical code folding (gold --icf) cannot merge
// them. SelfCheck() verifies the result at first use.
#ifndef STRATEGIES_STACK_TAG_INTERNAL_TAGS_H_
#define STRATEGIES_STACK_TAG_INTERNAL_TAGS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "gls/strategy.h"

namespace gls {
namespace stack_tag_internal {

// How ReadTag walks the stack.
enum class Walker {
  // Follows the saved frame-pointer chain: a few loads per frame, no locks,
  // async-signal-safe. Needs every frame between the tag and the reader to
  // keep frame pointers (or at least not clobber %rbp); if the chain looks
  // broken, the walk is redone with libunwind, except inside a signal
  // handler, where it answers "no tag" (frame_walk_x86_64-inl.inc).
  kFramePointer,
  // libunwind's local unwinder (unw_step over DWARF CFI): works without frame
  // pointers; slower, and not async-signal-safe on first use.
  kLibunwind,
};

// RunTagged(id, fn): calls `fn` with `id` written into the stack below it.
// Exceptions from `fn` propagate; the tag frames unwind normally.
void RunTagged(uint64_t id, absl::FunctionRef<void()> fn);

// ReadTag(walker): the id of the innermost complete tag above this call, or
// std::nullopt if there is none.
std::optional<uint64_t> ReadTag(Walker walker);

// CurrentContextFromTag(walker): the pooled context whose id the innermost
// complete tag spells, or nullptr. What StackTag::Current() returns.
Context* CurrentContextFromTag(Walker walker) noexcept;

// SelfCheckFor(walker): verifies, once per process and walker (later calls
// return the cached result), that the tag functions were laid out as
// expected and that ids round-trip through RunTagged/ReadTag with `walker`;
// for the frame-pointer walker, without its libunwind fallback. An error
// names the likely cause (inlining, folding, a missing section, no frame
// pointers). The two walkers are checked independently: libunwind needs no
// frame pointers, so it can pass where the frame-pointer walker fails.
const absl::Status& SelfCheckFor(Walker walker);

// SelfCheck(): the frame-pointer walker's error if it has one, else the
// libunwind walker's result.
const absl::Status& SelfCheck();

// Statistics for tests and benchmarks, counted per thread (no read writes
// shared memory) and reported for the calling thread: how many of its
// frame-pointer walks gave up and were redone with libunwind; how many gave
// up inside a signal handler (a broken chain after a signal frame) and
// answered "no tag" instead, since libunwind is not async-signal-safe; and
// how many reached the thread's outermost frame-pointer frame, whose link is
// whatever the thread's entry code left in %rbp, and answered "no tag"
// without libunwind (a read outside every scope on the thread's own stack);
// and how many reached a null link on a thread whose root frames are known
// without going through one of them (what a junk %rbp left by code without
// frame pointers can lead to: a possible miss).
uint64_t FramePointerFallbacks();
uint64_t SignalHandlerWalksGivenUp();
uint64_t WalksEndedAtThreadRoot();
uint64_t WalksEndedAwayFromThreadRoot();
// How many frame-pointer walks on the calling thread's own stack ended
// without the tag, or with an outer one, while a scope recorded on that
// stack was live above the reader (code between them keeps no frame
// pointers), and were redone with libunwind; the first one in the process
// also prints a diagnostic to stderr.
uint64_t MissedScopesCaught();

// What the frame-pointer walker has learned about the calling thread's stack
// (zeros until its first walk that needed it): the stack [lo, hi) from
// pthread_getattr_np, and the highest of its root frames (outermost frames
// that keep a frame pointer, learned by a libunwind walk after a chain broke
// outside a signal handler; up to four per thread).
struct ThreadStackInfo {
  uintptr_t lo;
  uintptr_t hi;
  uintptr_t root_fp;
};
ThreadStackInfo ThisThreadStack();

// Stacks other than threads' own that walks are bounded by (fiber stacks,
// alternate signal stacks), behind gls::stack_tag::ScopedStack and
// RegisteredStackAllocator (registered_stack.h). RegisterStack throws
// std::invalid_argument for a range no stack can have and std::bad_alloc;
// the others never throw.
struct RegisteredStack;
RegisteredStack* RegisterStack(const void* lo, size_t size);
void UnregisterStack(RegisteredStack* stack) noexcept;
void RegisterAllocatedStack(void* lo, size_t size);
void UnregisterAllocatedStack(void* lo, size_t size) noexcept;
// The registered stack containing `address`, as [lo, hi) (zeros if none).
// Lock-free.
struct StackRange {
  uintptr_t lo;
  uintptr_t hi;
};
StackRange RegisteredStackAt(const void* address);
// How many frame-pointer walks on the calling thread started on a stack that
// is neither its own nor registered: walks whose links are checked one by
// one only (increasing, aligned, at most 1 MiB apart), not against bounds.
uint64_t WalksOnUnknownStacks();
// How many frame-pointer walks on the calling thread ended by leaving a
// registered stack (its outermost frame's link, or a junk one) with no live
// scope recorded above the reader on that stack: "none", without libunwind.
uint64_t WalksLeftRegisteredStack();

}  // namespace stack_tag_internal
}  // namespace gls

#endif  // STRATEGIES_STACK_TAG_INTERNAL_TAGS_H_
