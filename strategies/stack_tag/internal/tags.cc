#include "strategies/stack_tag/internal/tags.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <ucontext.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "strategies/goid/stack_table.h"
#include "strategies/stack_tag/internal/frame_walk_config.h"

namespace gls {
namespace stack_tag_internal {
namespace {

enum class WalkOutcome {
  kStopped,
  kChainEnded,                 // a null frame pointer: no tag
  kChainEndedAwayFromRoot,     // the same, not above a known root: counted
  kChainEndedAtRoot,           // left the thread's outermost frame: no tag
  kChainLeftRegisteredStack,   // left a registered stack: no tag, checked
  kChainBroken,                // redo the walk with libunwind
  kChainBrokenInSignalHandler  // no tag: libunwind is unsafe in a handler
};

// A frame the walk may stop at: the outermost frame that keeps a frame
// pointer on a thread's stack (its address and return address), above which
// there is only the code that started the thread or called into this part
// of the program without frame pointers (glibc's start_thread,
// __libc_start_main, a test runner, code built -fomit-frame-pointer).
struct RootFrame {
  uintptr_t fp;
  uintptr_t ra;
};
constexpr int kMaxRootFrames = 4;

// What a walk knows about the stack it is on: the running thread's own
// stack, [lo, hi), with the root frames learned on it; a registered stack
// (a fiber's, an alternate signal stack: registered_stack.h), [lo, hi),
// without root frames; or nothing (hi == 0): a stack nobody registered.
struct WalkBounds {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
  const RootFrame* roots = nullptr;
  int num_roots = 0;
  // A registered stack, which records its innermost live tag: a link that
  // leaves it ends the walk (kChainLeftRegisteredStack), and the record
  // tells a miss from the chain's real end.
  bool registered = false;
};

#include GLS_STACK_TAG_FRAME_WALK_INC

// Tag function kinds: 0..15 are digits.
constexpr int kStart = 16;
constexpr int kEnd = 17;
constexpr int kNumTagFunctions = 18;
constexpr int kNone = -1;

// Every tag function is aligned to this stride; a return address maps to its
// function by (address - base) >> kStrideShift. A function longer than the
// stride (e.g. at -O0, or instrumented) owns every slot up to the next
// function's start, or to the end of the section for the last one.
constexpr int kStrideShift = 7;
constexpr uintptr_t kTagStride = uintptr_t{1} << kStrideShift;
constexpr int kMaxSlots = 256;

struct TagState {
  uint64_t digits_value;  // digits still to write, least significant first
  int digits_left;
  bool end_written;
  int expected_caller;  // the tag function Step must be called from next
  absl::FunctionRef<void()> fn;
};

// Inlined into every tag function, so the chain is one frame per tag
// function (start -> digits -> end -> body -> fn) and reads walk half the
// frames.
__attribute__((always_inline)) inline void Step(TagState* s, int caller);

// The end marker's callee, which runs fn: a frame of gls's own (built with
// frame pointers whatever the build around it says, tools/copts.bzl) whose
// return address points into the end marker, so the walk meets the end
// marker even when fn's own code keeps no frame pointer. It also records
// itself as the innermost complete tag on the thread's own stack, which lets
// a read check that its walk did not miss it.
void TagBody(TagState* s);

}  // namespace
}  // namespace stack_tag_internal
}  // namespace gls

// The 18 tag functions. extern "C" so they read plainly in debuggers and
// profilers ("gls_stack_tag_digit_a"). See tags.h for the defences.
#if defined(GLS_STACK_TAG_UNDEFENDED)
// Test-only build (//strategies/stack_tag:self_check_test): folding forced.
// Every tag function is an alias of one body, which is exactly what identical
// code folding does to functions that compile to the same code; the
// self-check must notice. (Forced with aliases rather than left to
// -fipa-icf, whose decisions change with sanitizer instrumentation.)
extern "C" __attribute__((noinline, used, aligned(128),
                          section("gls_stack_tag_text"))) void
gls_stack_tag_folded(
    gls::stack_tag_internal::TagState* s) {
  gls::stack_tag_internal::Step(s, s->expected_caller);
}
#define GLS_TAG_FUNCTION(name, kind) \
  extern "C" void name(gls::stack_tag_internal::TagState* s) \
      __attribute__((alias("gls_stack_tag_folded")));
#else
#define GLS_TAG_FUNCTION(name, kind)                                       \
  extern "C" __attribute__((noinline, noipa, used, aligned(128),           \
                            section("gls_stack_tag_text"))) void           \
  name(gls::stack_tag_internal::TagState* s) {                             \
    gls::stack_tag_internal::Step(s, kind);                                \
    /* Code after the call: it cannot become a tail call (jmp), so this */ \
    /* function's frame, and its return address, stay on the stack. */     \
    asm volatile("" ::: "memory");                                         \
  }
static_assert(128 == gls::stack_tag_internal::kTagStride);
#endif

GLS_TAG_FUNCTION(gls_stack_tag_start, 16)
GLS_TAG_FUNCTION(gls_stack_tag_end, 17)
GLS_TAG_FUNCTION(gls_stack_tag_digit_0, 0)
GLS_TAG_FUNCTION(gls_stack_tag_digit_1, 1)
GLS_TAG_FUNCTION(gls_stack_tag_digit_2, 2)
GLS_TAG_FUNCTION(gls_stack_tag_digit_3, 3)
GLS_TAG_FUNCTION(gls_stack_tag_digit_4, 4)
GLS_TAG_FUNCTION(gls_stack_tag_digit_5, 5)
GLS_TAG_FUNCTION(gls_stack_tag_digit_6, 6)
GLS_TAG_FUNCTION(gls_stack_tag_digit_7, 7)
GLS_TAG_FUNCTION(gls_stack_tag_digit_8, 8)
GLS_TAG_FUNCTION(gls_stack_tag_digit_9, 9)
GLS_TAG_FUNCTION(gls_stack_tag_digit_a, 10)
GLS_TAG_FUNCTION(gls_stack_tag_digit_b, 11)
GLS_TAG_FUNCTION(gls_stack_tag_digit_c, 12)
GLS_TAG_FUNCTION(gls_stack_tag_digit_d, 13)
GLS_TAG_FUNCTION(gls_stack_tag_digit_e, 14)
GLS_TAG_FUNCTION(gls_stack_tag_digit_f, 15)

namespace gls {
namespace stack_tag_internal {
namespace {

using TagFunction = void (*)(TagState*);

// Indexed by kind: digits 0..15, then start, then end.
constexpr TagFunction kTagFunctions[kNumTagFunctions] = {
    gls_stack_tag_digit_0, gls_stack_tag_digit_1, gls_stack_tag_digit_2,
    gls_stack_tag_digit_3, gls_stack_tag_digit_4, gls_stack_tag_digit_5,
    gls_stack_tag_digit_6, gls_stack_tag_digit_7, gls_stack_tag_digit_8,
    gls_stack_tag_digit_9, gls_stack_tag_digit_a, gls_stack_tag_digit_b,
    gls_stack_tag_digit_c, gls_stack_tag_digit_d, gls_stack_tag_digit_e,
    gls_stack_tag_digit_f, gls_stack_tag_start,   gls_stack_tag_end,
};

// Writes the next tag frame, or, once the end marker is written, runs fn.
inline void Step(TagState* s, int caller) {
  if (caller != s->expected_caller) {
    std::fprintf(stderr,
                 "gls: stack_tag: tag function %d ran where %d was expected; "
                 "the tag functions were folded or reordered\n",
                 caller, s->expected_caller);
    std::abort();
  }
  if (s->digits_left > 0) {
    const int digit = static_cast<int>(s->digits_value & 0xf);
    s->digits_value >>= 4;
    --s->digits_left;
    s->expected_caller = digit;
    kTagFunctions[digit](s);
    return;
  }
  if (!s->end_written) {
    s->end_written = true;
    s->expected_caller = kEnd;
    kTagFunctions[kEnd](s);
    return;
  }
  TagBody(s);
}

// Where the tag functions are: filled once by GetLayout().
struct Layout {
  uintptr_t base = 0;
  int8_t kind_of_slot[kMaxSlots];
  std::string problem;  // empty when the layout is usable
};

#if defined(__SANITIZE_THREAD__)
// See ReadWithLibunwind: no per-thread caches under TSan.
constexpr unw_caching_policy_t kLibunwindCachingPolicy = UNW_CACHE_GLOBAL;
#else
// Per-thread caches: no global lock on the unwinding path.
constexpr unw_caching_policy_t kLibunwindCachingPolicy = UNW_CACHE_PER_THREAD;
#endif

// The linker defines these for a section whose name is a C identifier.
extern "C" const char __start_gls_stack_tag_text[] __attribute__((weak));
extern "C" const char __stop_gls_stack_tag_text[] __attribute__((weak));

Layout ComputeLayout() {
  Layout layout;
  std::fill(std::begin(layout.kind_of_slot), std::end(layout.kind_of_slot),
            static_cast<int8_t>(kNone));
  uintptr_t addresses[kNumTagFunctions];
  for (int k = 0; k < kNumTagFunctions; ++k) {
    addresses[k] = reinterpret_cast<uintptr_t>(kTagFunctions[k]);
  }
  layout.base = *std::min_element(std::begin(addresses), std::end(addresses));
  const uintptr_t section_end =
      reinterpret_cast<uintptr_t>(__stop_gls_stack_tag_text);
  char buf[256];
  if (section_end == 0 || section_end <= layout.base ||
      ((section_end - layout.base + kTagStride - 1) >> kStrideShift) >
          uintptr_t{kMaxSlots}) {
    std::snprintf(buf, sizeof buf,
                  "the tag functions are not in one gls_stack_tag_text "
                  "section of at most %d bytes: the section attribute was "
                  "lost",
                  kMaxSlots << kStrideShift);
    layout.problem = buf;
    return layout;
  }
  for (int k = 0; k < kNumTagFunctions; ++k) {
    const uintptr_t offset = addresses[k] - layout.base;
    const uintptr_t slot = offset >> kStrideShift;
    if ((offset & (kTagStride - 1)) != 0 || addresses[k] >= section_end) {
      std::snprintf(buf, sizeof buf,
                    "tag function %d is at offset %" PRIuPTR
                    " from the first, not a multiple of %d bytes inside the "
                    "section: the alignment was lost",
                    k, offset, static_cast<int>(kTagStride));
      layout.problem = buf;
      return layout;
    }
    if (layout.kind_of_slot[slot] != kNone) {
      std::snprintf(buf, sizeof buf,
                    "tag functions %d and %d have the same address %#" PRIxPTR
                    ": identical code folding (GCC -fipa-icf, a linker's "
                    "--icf) merged them",
                    layout.kind_of_slot[slot], k, addresses[k]);
      layout.problem = buf;
      return layout;
    }
    layout.kind_of_slot[slot] = static_cast<int8_t>(k);
  }
  // Each function owns the slots up to the next function or the section end.
  const int end_slot = static_cast<int>(
      (section_end - layout.base + kTagStride - 1) >> kStrideShift);
  int8_t owner = kNone;
  for (int slot = 0; slot < end_slot; ++slot) {
    if (layout.kind_of_slot[slot] != kNone) {
      owner = layout.kind_of_slot[slot];
    } else {
      layout.kind_of_slot[slot] = owner;
    }
  }
  unw_set_caching_policy(unw_local_addr_space, kLibunwindCachingPolicy);
  return layout;
}

const Layout& GetLayout() {
  static const Layout* layout = new Layout(ComputeLayout());
  return *layout;
}

inline int Classify(const Layout& layout, uintptr_t return_address) {
  const uintptr_t offset = return_address - layout.base;
  if (offset >= uintptr_t{kMaxSlots} << kStrideShift) return kNone;
  return layout.kind_of_slot[offset >> kStrideShift];
}

// Decodes tag frames as the walk meets them, innermost first: an end marker,
// then digits (most significant first), then the start marker.
class Decoder {
 public:
  explicit Decoder(const Layout& layout) : layout_(layout) {}

  // Returns true when the walk can stop. `frame` is the frame whose return
  // address this is (0 from libunwind, which does not say).
  bool Visit(uintptr_t return_address, uintptr_t frame = 0) {
    const int kind = Classify(layout_, return_address);
    if (kind == kNone) return false;
    if (!seen_end_) {
      if (kind == kEnd) {
        seen_end_ = true;
        end_frame_ = frame;
        return false;
      }
      // A digit or start before any end marker: a chain being built or torn
      // down (a signal arrived mid-way). Its scope is not running: no tag.
      return true;
    }
    if (kind == kStart) {
      found_ = true;
      return true;
    }
    if (kind == kEnd) return true;  // two end markers: corrupt; no tag
    value_ = (value_ << 4) | static_cast<uint64_t>(kind);
    return false;
  }

  std::optional<uint64_t> result() const {
    return found_ ? std::optional<uint64_t>(value_) : std::nullopt;
  }
  bool found() const { return found_; }
  // The TagBody frame of the tag found (frame-pointer walks only).
  uintptr_t end_frame() const { return end_frame_; }

 private:
  const Layout& layout_;
  bool seen_end_ = false;
  bool found_ = false;
  uint64_t value_ = 0;
  uintptr_t end_frame_ = 0;
};

// Per thread, so no read writes shared memory. Plain increments: a signal
// handler interrupting an increment on the same thread could in theory lose
// one count (x86-64 compilers emit one add instruction); they are
// statistics for tests and benchmarks.
struct ThreadCounters {
  uint64_t frame_pointer_fallbacks;
  uint64_t signal_handler_walks_given_up;
  uint64_t walks_ended_at_root;
  uint64_t walks_ended_away_from_root;
  uint64_t missed_scopes_caught;
  uint64_t walks_on_unknown_stacks;
  uint64_t walks_left_registered_stack;
};
constinit thread_local ThreadCounters thread_counters
    __attribute__((tls_model("initial-exec"))) = {};

// The running thread's stack, learned outside signal handlers
// (LearnThreadStack) and read by every frame-pointer walk.
struct ThreadStack {
  uintptr_t lo;
  uintptr_t hi;  // 0 until known
  // Set once the bounds are known or could not be learned. Until then a
  // walk is bounded provisionally (by the thread pointer): also while
  // LearnThreadBounds runs (`learning_bounds`), which a signal handler's
  // walk may interrupt with lo and hi half-stored.
  bool bounds_tried;
  bool learning_bounds;
  int num_roots;
  int next_root;  // the slot the next root replaces once all are taken
  RootFrame roots[kMaxRootFrames];
  // Where chains broke below a root frame learned at the time (code without
  // frame pointers in the middle of the stack, e.g. a callback from libc):
  // a break at one of these again goes straight to libunwind instead of
  // learning the same root again.
  RootFrame known_breaks[kMaxRootFrames];
  int next_known_break;
  // The frame of the innermost TagBody running on this stack (set once its
  // tag chain is complete, cleared before the chain is torn down), or 0.
  uintptr_t innermost_tag;
  // How many TagBody frames entered on this thread are running off its own
  // stack (on fibers' stacks), suspended or not. Counted on the thread that
  // entered them: a fiber that migrates between threads (Boost.Fiber's
  // work-stealing algorithms) leaves the count off on both.
  int64_t off_stack_tags;
};
constinit thread_local ThreadStack thread_stack
    __attribute__((tls_model("initial-exec"))) = {};

}  // namespace

// One stack registered through registered_stack.h. `region` comes first: the
// table maps addresses to it, and a pointer to it is a pointer to this.
struct RegisteredStack {
  goid_internal::StackRegion region;
  // The frame of the innermost TagBody running on this stack with its chain
  // complete, or 0: ThreadStack::innermost_tag for this stack. Written only
  // by the flow running on the stack, so it travels with a fiber that moves
  // between threads (the fiber scheduler's own synchronization orders it).
  uintptr_t innermost_tag;
};
static_assert(std::is_standard_layout_v<RegisteredStack>);

namespace {

// Every registered stack, by address. Never destroyed: a thread still
// reading during exit must find it intact.
union RegisteredStackTable {
  constexpr RegisteredStackTable() : table() {}
  ~RegisteredStackTable() {}
  goid_internal::StackTable table;
};
constinit RegisteredStackTable registered_stacks;

// The registered stack containing `address`, or nullptr. Lock-free,
// allocation-free, writes nothing: a few dependent loads (stack_table.h).
inline RegisteredStack* RegisteredStackOf(uintptr_t address) {
  return reinterpret_cast<RegisteredStack*>(
      registered_stacks.table.Lookup(address));
}

// Before a thread's bounds are learned (its first scope, or a broken chain
// outside a signal handler, learns them; neither can happen in a handler
// safely), a walk still has an upper bound that needs no call: glibc puts a
// thread's descriptor, which the thread pointer (%fs:0) points at, above its
// static TLS block at the top of the thread's stack block, also for a stack
// the caller provided. So every frame of a glibc thread's own stack lies
// below the thread pointer. (The main thread's bounds are learned before
// main.) A walk on any other stack below the thread pointer stays inside a
// mapping that also lies below it, so the bound never cuts a real chain.
__attribute__((noinline)) WalkBounds ProvisionalBounds(uintptr_t fp) {
#if defined(__x86_64__) && defined(__linux__)
  uintptr_t tp;
  asm("movq %%fs:0, %0" : "=r"(tp));
  constexpr uintptr_t kMaxThreadStack = uintptr_t{1} << 30;
  if (fp < tp && tp - fp <= kMaxThreadStack) return WalkBounds{fp, tp, nullptr, 0};
#endif
  return WalkBounds{};
}

// The bounds for a walk at `fp` off the thread's own stack: the registered
// stack fp is on, or, before the thread's bounds are learned, the thread
// pointer; else none (counted).
__attribute__((noinline)) WalkBounds BoundsOffThreadStack(uintptr_t fp) {
  if (const RegisteredStack* stack = RegisteredStackOf(fp)) {
    return WalkBounds{fp, stack->region.hi, nullptr, 0, true};
  }
  if (!thread_stack.bounds_tried) return ProvisionalBounds(fp);
  ++thread_counters.walks_on_unknown_stacks;
  return WalkBounds{};
}

// The bounds for a walk at `fp`: the thread's stack if fp is on it.
__attribute__((always_inline)) inline WalkBounds BoundsFor(uintptr_t fp) {
  const ThreadStack& t = thread_stack;
  if (fp >= t.lo && fp < t.hi) {
    return WalkBounds{fp, t.hi, t.roots, t.num_roots};
  }
  return BoundsOffThreadStack(fp);
}

// One word of stack memory that a junk link may have led to (an ASan redzone,
// say): not instrumented.
__attribute__((noinline, no_sanitize("address", "thread"))) uintptr_t
LoadWordUninstrumented(uintptr_t address) {
  return *reinterpret_cast<const volatile uintptr_t*>(address);
}

// The outermost frame on [lo, hi) that keeps a frame pointer, by a libunwind
// walk to the end of the stack: a frame keeps one if its %rbp is its CFA
// minus 16 (the saved %rbp right below the return address). Everything
// above it runs without frame pointers: the thread's entry code, or
// whatever called into frame-pointer code from there.
__attribute__((noinline)) std::optional<RootFrame> OutermostFramePointerFrame(
    uintptr_t lo, uintptr_t hi) {
#if !defined(__x86_64__)
  return std::nullopt;
#else
  unw_context_t uc;
  unw_cursor_t cursor;
  if (unw_getcontext(&uc) != 0 || unw_init_local(&cursor, &uc) != 0) {
    return std::nullopt;
  }
  unw_word_t rbp = 0;
  if (unw_get_reg(&cursor, UNW_X86_64_RBP, &rbp) != 0) return std::nullopt;
  uintptr_t root = 0;
  for (size_t n = 0; n < (size_t{1} << 20) && unw_step(&cursor) > 0; ++n) {
    unw_word_t caller_sp = 0;
    if (unw_get_reg(&cursor, UNW_REG_SP, &caller_sp) != 0) break;
    // caller_sp is the previous frame's CFA.
    if (rbp + 16 == caller_sp && rbp >= lo && rbp + 16 <= hi && rbp > root) {
      root = static_cast<uintptr_t>(rbp);
    }
    if (unw_get_reg(&cursor, UNW_X86_64_RBP, &rbp) != 0) break;
  }
  if (root == 0) return std::nullopt;
  return RootFrame{root, LoadWordUninstrumented(root + 8)};
#endif
}

// Learns the running thread's stack bounds (pthread_getattr_np), once, and
// the root frame the running stack has now (a libunwind walk), unless the
// chain broke at `break_fp` (on the thread's stack) where it broke before
// below a root frame. Not async-signal-safe: called only where a libunwind
// fallback would be. Returns true if it learned something a walk can use.
// Stores are ordered for a signal handler reading the state meanwhile.
__attribute__((noinline)) bool LearnThreadBounds() {
  ThreadStack& t = thread_stack;
  if (t.bounds_tried || t.learning_bounds) return false;
  t.learning_bounds = true;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // bounds_tried is set last: a handler's walk that interrupts this (inside
  // pthread_getattr_np's malloc, say, where frames have no frame pointers)
  // must not take "tried, nothing known" for an unbounded walk.
  struct Done {
    ThreadStack& t;
    ~Done() {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      t.bounds_tried = true;
      std::atomic_signal_fence(std::memory_order_seq_cst);
      t.learning_bounds = false;
    }
  } done{t};
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void* addr = nullptr;
  size_t size = 0;
  const int rc = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (rc != 0 || size == 0) return false;
  t.lo = reinterpret_cast<uintptr_t>(addr);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t.hi = t.lo + size;
  return true;
}

__attribute__((noinline)) bool LearnThreadStack(uintptr_t break_fp) {
  ThreadStack& t = thread_stack;
  bool learned = LearnThreadBounds();
  const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (t.hi == 0 || here < t.lo || here >= t.hi) return learned;
  RootFrame broke_at{0, 0};
  if (break_fp >= here && break_fp + 16 <= t.hi) {
    broke_at = RootFrame{break_fp, LoadWordUninstrumented(break_fp + 8)};
    for (const RootFrame& known : t.known_breaks) {
      if (known.fp == broke_at.fp && known.ra == broke_at.ra) return learned;
    }
  }
  const std::optional<RootFrame> root = OutermostFramePointerFrame(t.lo, t.hi);
  if (!root.has_value()) return learned;
  if (broke_at.fp != 0 && broke_at.fp < root->fp) {
    t.known_breaks[t.next_known_break] = broke_at;
    t.next_known_break = (t.next_known_break + 1) % kMaxRootFrames;
  }
  for (int i = 0; i < t.num_roots; ++i) {
    if (t.roots[i].fp == root->fp && t.roots[i].ra == root->ra) return learned;
  }
  if (t.num_roots < kMaxRootFrames) {
    t.roots[t.num_roots] = *root;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    ++t.num_roots;
  } else {
    RootFrame& slot = t.roots[t.next_root];
    slot.fp = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    slot.ra = root->ra;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    slot.fp = root->fp;
    t.next_root = (t.next_root + 1) % kMaxRootFrames;
  }
  return true;
}

// Not inlined, and built with frame pointers (GLS_COPTS): its frame, whose
// return address is in the end marker, is on every frame-pointer chain from
// inside the scope. `here` is that frame, the one a walk meets the end
// marker at. The stores are ordered for a signal handler reading meanwhile:
// innermost_tag names this frame only while its tag chain is complete.
// Names `here` as the innermost complete tag in `slot` (a thread's or a
// registered stack's record) for its lifetime, then restores the outer one.
class RecordInnermostTag {
 public:
  RecordInnermostTag(uintptr_t& slot, uintptr_t here)
      : slot_(slot), outer_(slot) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    slot_ = here;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~RecordInnermostTag() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    slot_ = outer_;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  RecordInnermostTag(const RecordInnermostTag&) = delete;
  RecordInnermostTag& operator=(const RecordInnermostTag&) = delete;

 private:
  uintptr_t& slot_;
  const uintptr_t outer_;
};

__attribute__((noinline, noipa)) void TagBody(TagState* s) {
  ThreadStack& t = thread_stack;
  const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (here < t.lo || here >= t.hi) {
    if (RegisteredStack* stack = RegisteredStackOf(here)) {
      RecordInnermostTag record(stack->innermost_tag, here);
      s->fn();
      return;
    }
    // A stack nobody registered, or bounds unknown: no bounds to tell this
    // stack's tags from another's, so only counted.
    struct Count {
      int64_t& count;
      explicit Count(int64_t& c) : count(c) {
        std::atomic_signal_fence(std::memory_order_seq_cst);
        ++count;
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
      ~Count() {
        std::atomic_signal_fence(std::memory_order_seq_cst);
        --count;
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
    } count(t.off_stack_tags);
    s->fn();
    return;
  }
  RecordInnermostTag record(t.innermost_tag, here);
  s->fn();
}

// The main thread's bounds, learned before main runs (pthread_getattr_np
// reads /proc/self/maps for it, which is not async-signal-safe), so that no
// read or scope on the main thread needs to learn them later.
[[maybe_unused]] const bool main_thread_bounds_learned = LearnThreadBounds();

// ErrnoPreserved: restores errno when a read's slow path ends. Reads are
// async-signal-safe, and a handler's read must not change the errno of the
// code it interrupted: libunwind (its memory validation calls msync or
// mincore, which fail with ENOMEM on unmapped pages), pthread_getattr_np and
// the one-time warning's fprintf may set it. The frame-pointer walk sets
// nothing, so only the slow paths pay for this (errno is a call away).
class ErrnoPreserved {
 public:
  ErrnoPreserved() : saved_(errno) {}
  ~ErrnoPreserved() { errno = saved_; }
  ErrnoPreserved(const ErrnoPreserved&) = delete;
  ErrnoPreserved& operator=(const ErrnoPreserved&) = delete;

 private:
  const int saved_;
};

#if defined(__SANITIZE_THREAD__)
// Under TSan, libunwind's per-thread caches (unw_backtrace's trace cache,
// UNW_CACHE_PER_THREAD) are freed by thread-exit destructors that run after
// TSan has torn the thread's state down, and crash. Use unw_step with the
// global cache instead: slower, same answers.

__attribute__((noinline)) std::optional<uint64_t> ReadWithLibunwind(
    const Layout& layout) {
  ErrnoPreserved errno_preserved;
  Decoder decoder(layout);
  unw_context_t uc;
  unw_cursor_t cursor;
  if (unw_getcontext(&uc) != 0 || unw_init_local(&cursor, &uc) != 0) {
    return std::nullopt;
  }
  // The first frame is this function; its IP is not a return address.
  while (unw_step(&cursor) > 0) {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0) break;
    if (decoder.Visit(static_cast<uintptr_t>(ip))) break;
  }
  return decoder.result();
}
#else

// libunwind walk. unw_backtrace (libunwind's cached fast path, several
// times cheaper per frame than unw_step) cannot stop early, so it captures a
// bounded window that grows geometrically until the window holds the start
// marker or the whole stack: the walk never captures much more than the
// frames up to the marker.
__attribute__((noinline)) std::optional<uint64_t> ReadWithLibunwind(
    const Layout& layout) {
  ErrnoPreserved errno_preserved;
  constexpr int kFirstWindow = 16;
  void* small[kFirstWindow];
  std::vector<void*> large;
  for (int window = kFirstWindow;; window *= 8) {
    void** frames = small;
    if (window > kFirstWindow) {
      large.resize(static_cast<size_t>(window));
      frames = large.data();
    }
    const int captured = unw_backtrace(frames, window);
    Decoder decoder(layout);
    bool stopped = false;
    // frames[0] is this function's own IP, not a return address.
    for (int i = 1; i < captured && !stopped; ++i) {
      stopped = decoder.Visit(reinterpret_cast<uintptr_t>(frames[i]));
    }
    if (stopped || captured < window || window >= (1 << 24)) {
      return decoder.result();
    }
  }
}
#endif  // __SANITIZE_THREAD__

}  // namespace

void RunTagged(uint64_t id, absl::FunctionRef<void()> fn) {
  // Learned here (outside signal handlers, in practice) so that TagBody can
  // record the tags on the thread's own stack, and reads there are bounded.
  if (!thread_stack.bounds_tried) [[unlikely]] LearnThreadBounds();
  int digits = 0;
  for (uint64_t v = id; v != 0; v >>= 4) ++digits;
  TagState state{id, digits, false, kStart, fn};
  gls_stack_tag_start(&state);
}

namespace {
// The answer of a frame-pointer walk that did not break (kChainBroken is the
// caller's to handle), counting how it ended. Only a walk that met a start
// marker found a tag (the decoder stops it there: kStopped), so the
// decoder's result is the answer whatever the outcome; one return path also
// keeps GCC 12 from a false -Wmaybe-uninitialized on std::optional.
__attribute__((always_inline)) inline std::optional<uint64_t> AnswerOfWalk(
    WalkOutcome outcome, const Decoder& decoder) {
  switch (outcome) {
    case WalkOutcome::kStopped:
    case WalkOutcome::kChainEnded:
    case WalkOutcome::kChainBroken:
      break;
    case WalkOutcome::kChainEndedAtRoot:
      ++thread_counters.walks_ended_at_root;
      break;
    case WalkOutcome::kChainEndedAwayFromRoot:
      ++thread_counters.walks_ended_away_from_root;
      break;
    case WalkOutcome::kChainLeftRegisteredStack:
      ++thread_counters.walks_left_registered_stack;
      break;
    case WalkOutcome::kChainBrokenInSignalHandler:
      ++thread_counters.signal_handler_walks_given_up;
      break;
  }
  return decoder.result();
}

// After a frame-pointer walk broke outside a signal handler: learns the
// thread's stack if not known yet and walks again (once per thread), then,
// if the chain still breaks below the thread's outermost frame, redoes the
// walk with libunwind.
__attribute__((noinline)) std::optional<uint64_t> ReadAfterBrokenChain(
    const Layout& layout, uintptr_t break_fp) {
  ErrnoPreserved errno_preserved;
  if (LearnThreadStack(break_fp)) {
    Decoder decoder(layout);
    uintptr_t again_break_fp = 0;
    const WalkOutcome outcome = WalkFramePointers(
        [&](uintptr_t ra, uintptr_t fp) { return decoder.Visit(ra, fp); },
        BoundsFor, &again_break_fp, nullptr);
    if (outcome != WalkOutcome::kChainBroken) return AnswerOfWalk(outcome, decoder);
  }
  ++thread_counters.frame_pointer_fallbacks;
  return ReadWithLibunwind(layout);
}

// Whether a frame-pointer walk from `start` that did not break missed a
// scope that is certainly live: the innermost complete tag on the thread's
// own stack lies above the reader, and the walk ended without a tag (code
// between them keeps no frame pointer and left a plausible link in %rbp), or
// found an outer tag only. A tag found below the recorded one is accepted:
// a signal handler can read while an inner chain is complete but not yet
// recorded, or already unrecorded.
//
// On a registered stack the same, with the stack's own record. On a stack
// nobody registered, where no bounds tell one stack's tags from another's:
// a walk that ended without a tag while any tag entered on this thread is
// running off its stack is suspect, and is confirmed.
__attribute__((always_inline)) inline bool MissedInnermostTag(
    uintptr_t innermost, uintptr_t hi, bool ended_without_tag,
    const Decoder& decoder, uintptr_t start) {
  if (innermost <= start || innermost >= hi) return false;
  if (decoder.found()) return decoder.end_frame() > innermost;
  return ended_without_tag;
}

__attribute__((noinline)) bool MissedALiveScopeOffThreadStack(
    bool ended_without_tag, const Decoder& decoder, uintptr_t start) {
  if (const RegisteredStack* stack = RegisteredStackOf(start)) {
    return MissedInnermostTag(stack->innermost_tag, stack->region.hi,
                              ended_without_tag, decoder, start);
  }
  return ended_without_tag && thread_stack.off_stack_tags > 0;
}

__attribute__((always_inline)) inline bool MissedALiveScope(
    WalkOutcome outcome, const Decoder& decoder, uintptr_t start) {
  const ThreadStack& t = thread_stack;
  const bool ended_without_tag = outcome == WalkOutcome::kChainEnded ||
                                 outcome == WalkOutcome::kChainEndedAtRoot ||
                                 outcome == WalkOutcome::kChainEndedAwayFromRoot ||
                                 outcome == WalkOutcome::kChainLeftRegisteredStack;
  if (start < t.lo || start >= t.hi) [[unlikely]] {
    return MissedALiveScopeOffThreadStack(ended_without_tag, decoder, start);
  }
  return MissedInnermostTag(t.innermost_tag, t.hi, ended_without_tag, decoder,
                            start);
}

void ReportMissedScopeOnce() {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true, std::memory_order_relaxed)) return;
  std::fprintf(stderr,
               "gls: stack_tag: a frame-pointer walk missed a live scope: code "
               "between a SetValues and a GetValue keeps no frame pointers "
               "(built with -fomit-frame-pointer?). Such reads are redone with "
               "libunwind: right, but slower. Build that code with "
               "-fno-omit-frame-pointer, or use "
               "--@gls//strategies/stack_tag:walker=libunwind "
               "(docs/strategies.md). Reported once per process.\n");
}

// After MissedALiveScope: the answer by libunwind, unless the walk went
// through a signal frame (libunwind is not async-signal-safe; the handler
// then sees none, as documented for code without frame pointers).
__attribute__((noinline)) std::optional<uint64_t> ReadAfterMissedScope(
    const Layout& layout, uintptr_t start, bool crossed_signal_frame) {
  ErrnoPreserved errno_preserved;
  const ThreadStack& t = thread_stack;
  uintptr_t hi = 0;
  if (start >= t.lo && start < t.hi) {
    hi = t.hi;
  } else if (const RegisteredStack* stack = RegisteredStackOf(start)) {
    hi = stack->region.hi;
  }
  if (crossed_signal_frame || WalkedThroughASignalFrame(start, 0, hi)) {
    ++thread_counters.signal_handler_walks_given_up;
    return std::nullopt;
  }
  ++thread_counters.missed_scopes_caught;
  ReportMissedScopeOnce();
  return ReadWithLibunwind(layout);
}

__attribute__((always_inline)) inline std::optional<uint64_t> ReadTagInline(
    Walker walker) {
  const Layout& layout = GetLayout();
  if (walker == Walker::kFramePointer && kHaveFrameWalk) {
    const uintptr_t start =
        reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    Decoder decoder(layout);
    uintptr_t break_fp = 0;
    bool crossed_signal_frame = false;
    const WalkOutcome outcome = WalkFramePointers(
        [&](uintptr_t ra, uintptr_t fp) { return decoder.Visit(ra, fp); },
        BoundsFor, &break_fp, &crossed_signal_frame);
    if (outcome == WalkOutcome::kChainBroken) {
      return ReadAfterBrokenChain(layout, break_fp);
    }
    if (MissedALiveScope(outcome, decoder, start)) [[unlikely]] {
      return ReadAfterMissedScope(layout, start, crossed_signal_frame);
    }
    return AnswerOfWalk(outcome, decoder);
  }
  return ReadWithLibunwind(layout);
}
}  // namespace

std::optional<uint64_t> ReadTag(Walker walker) { return ReadTagInline(walker); }

Context* CurrentContextFromTag(Walker walker) noexcept {
  // The walk is inlined here, and StackTag::Current() tail-calls this: the
  // reader adds one frame, not three, to every walk.
  const std::optional<uint64_t> id = ReadTagInline(walker);
  return id.has_value() ? ContextWithId(*id) : nullptr;
}

uint64_t FramePointerFallbacks() {
  return thread_counters.frame_pointer_fallbacks;
}

uint64_t SignalHandlerWalksGivenUp() {
  return thread_counters.signal_handler_walks_given_up;
}

uint64_t WalksEndedAtThreadRoot() { return thread_counters.walks_ended_at_root; }

uint64_t WalksEndedAwayFromThreadRoot() {
  return thread_counters.walks_ended_away_from_root;
}

uint64_t MissedScopesCaught() { return thread_counters.missed_scopes_caught; }

uint64_t WalksOnUnknownStacks() {
  return thread_counters.walks_on_unknown_stacks;
}

uint64_t WalksLeftRegisteredStack() {
  return thread_counters.walks_left_registered_stack;
}

namespace {

// Registrations by stack top, for RegisterAllocatedStack (deallocate() only
// gets the stack back). Guarded by the table's mutex; never destroyed.
std::unordered_map<uintptr_t, RegisteredStack*>& AllocatedStacks() {
  static auto* stacks = new std::unordered_map<uintptr_t, RegisteredStack*>;
  return *stacks;
}

std::string DescribeRange(uintptr_t lo, size_t size) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "[%#" PRIxPTR ", %#" PRIxPTR ")", lo,
                lo + size);
  return buffer;
}

// A registration of [lo_ptr, lo_ptr + size), rounded inwards to the table's
// 16-byte granules, not installed yet.
std::unique_ptr<RegisteredStack> NewRegisteredStack(const void* lo_ptr,
                                                    size_t size) {
  using goid_internal::StackTable;
  const uintptr_t raw_lo = reinterpret_cast<uintptr_t>(lo_ptr);
  if (lo_ptr == nullptr || size == 0 || raw_lo + size < raw_lo) {
    throw std::invalid_argument(
        "gls::stack_tag: cannot register the stack " +
        DescribeRange(raw_lo, size) + ": it is null, empty or wraps around");
  }
  const uintptr_t lo = (raw_lo + StackTable::kGranule - 1) &
                       ~(StackTable::kGranule - 1);
  const uintptr_t hi = (raw_lo + size) & ~(StackTable::kGranule - 1);
  if (hi > StackTable::kAddressLimit) {
    throw std::invalid_argument("gls::stack_tag: cannot register the stack " +
                                DescribeRange(raw_lo, size) +
                                ": it lies above 2^47");
  }
  if (lo >= hi) {
    throw std::invalid_argument("gls::stack_tag: cannot register the stack " +
                                DescribeRange(raw_lo, size) +
                                ": no aligned 16 bytes in it");
  }
  auto stack = std::make_unique<RegisteredStack>();
  stack->region.lo = lo;
  stack->region.hi = hi;
  stack->innermost_tag = 0;
  return stack;
}

// fork() while another thread registers: the child must not inherit the
// table's mutex locked. Registered stacks stay registered in the child,
// whose address space still holds them.
void AtForkPrepare() { registered_stacks.table.mu().lock(); }
void AtForkParentOrChild() { registered_stacks.table.mu().unlock(); }

std::mutex& RegistrationMutex() {
  static const bool at_fork_installed [[maybe_unused]] =
      pthread_atfork(AtForkPrepare, AtForkParentOrChild, AtForkParentOrChild) ==
      0;
  return registered_stacks.table.mu();
}

// Requires the table's mutex. Installing allocates the nodes first
// (Prepare), so removing the same range later allocates nothing.
void InstallLocked(RegisteredStack* stack) {
  registered_stacks.table.Prepare(stack->region.lo, stack->region.hi);
  registered_stacks.table.Assign(stack->region.lo, stack->region.hi,
                                 &stack->region);
}
void RemoveLocked(RegisteredStack* stack) noexcept {
  registered_stacks.table.Assign(stack->region.lo, stack->region.hi, nullptr);
}

}  // namespace

RegisteredStack* RegisterStack(const void* lo, size_t size) {
  std::unique_ptr<RegisteredStack> stack = NewRegisteredStack(lo, size);
  std::lock_guard<std::mutex> lock(RegistrationMutex());
  InstallLocked(stack.get());
  return stack.release();
}

void UnregisterStack(RegisteredStack* stack) noexcept {
  if (stack == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(RegistrationMutex());
    RemoveLocked(stack);
  }
  delete stack;
}

void RegisterAllocatedStack(void* lo, size_t size) {
  std::unique_ptr<RegisteredStack> stack = NewRegisteredStack(lo, size);
  const uintptr_t key = reinterpret_cast<uintptr_t>(lo) + size;
  RegisteredStack* stale = nullptr;
  {
    std::lock_guard<std::mutex> lock(RegistrationMutex());
    auto [it, inserted] = AllocatedStacks().try_emplace(key, stack.get());
    if (!inserted) {
      // Handed out again without a deallocate: the old registration is
      // stale and goes first.
      stale = it->second;
      RemoveLocked(stale);
      it->second = stack.get();
    }
    try {
      InstallLocked(stack.get());
    } catch (...) {
      AllocatedStacks().erase(key);
      delete stale;
      throw;
    }
  }
  stack.release();
  delete stale;
}

void UnregisterAllocatedStack(void* lo, size_t size) noexcept {
  const uintptr_t key = reinterpret_cast<uintptr_t>(lo) + size;
  RegisteredStack* stack = nullptr;
  {
    std::lock_guard<std::mutex> lock(RegistrationMutex());
    auto it = AllocatedStacks().find(key);
    if (it == AllocatedStacks().end()) return;
    stack = it->second;
    AllocatedStacks().erase(it);
    RemoveLocked(stack);
  }
  delete stack;
}

StackRange RegisteredStackAt(const void* address) {
  const RegisteredStack* stack =
      RegisteredStackOf(reinterpret_cast<uintptr_t>(address));
  if (stack == nullptr) return StackRange{0, 0};
  return StackRange{stack->region.lo, stack->region.hi};
}

ThreadStackInfo ThisThreadStack() {
  const ThreadStack& t = thread_stack;
  ThreadStackInfo info{t.lo, t.hi, 0};
  for (int i = 0; i < t.num_roots; ++i) {
    info.root_fp = std::max<uintptr_t>(info.root_fp, t.roots[i].fp);
  }
  return info;
}

namespace {

absl::Status RunSelfCheck(Walker walker) {
  const Layout& layout = GetLayout();
  if (!layout.problem.empty()) {
    return absl::InternalError("stack_tag self-check: " + layout.problem);
  }
  static constexpr uint64_t kIds[] = {
      0,           1,           0xf,         0x10,
      0xabc,       0x123456789abcdef0, 0xfedcba9876543210, ~uint64_t{0},
  };
  const char* name =
      walker == Walker::kFramePointer ? "frame-pointer" : "libunwind";
  for (uint64_t id : kIds) {
    const uint64_t fallbacks = FramePointerFallbacks() + MissedScopesCaught();
    std::optional<uint64_t> read;
    RunTagged(id, [&] { read = ReadTag(walker); });
    char buf[400];
    if (read != id) {
      std::snprintf(
          buf, sizeof buf,
          "stack_tag self-check: id %#" PRIx64 " read back as %s%#" PRIx64
          " with the %s walker: the tag functions were inlined, turned into "
          "tail calls, folded, or the unwinder cannot see their frames",
          id, read ? "" : "nothing, not ", read.value_or(0), name);
      return absl::InternalError(buf);
    }
    // The frame-pointer walker must find the tag by itself: an answer that
    // took a libunwind fallback means gls's own frames between the tag and
    // the read keep no frame pointers, and every read would be slow.
    if (walker == Walker::kFramePointer && kHaveFrameWalk &&
        FramePointerFallbacks() + MissedScopesCaught() != fallbacks) {
      std::snprintf(
          buf, sizeof buf,
          "stack_tag self-check: id %#" PRIx64 " was found by the "
          "frame-pointer walker only through its libunwind fallback: gls's "
          "own code was built without frame pointers (its BUILD copts keep "
          "them; a toolchain that drops them breaks this walker)",
          id);
      return absl::InternalError(buf);
    }
  }
  return absl::OkStatus();
}

}  // namespace

const absl::Status& SelfCheckFor(Walker walker) {
  static const absl::Status* frame_pointer =
      new absl::Status(RunSelfCheck(Walker::kFramePointer));
  static const absl::Status* libunwind =
      new absl::Status(RunSelfCheck(Walker::kLibunwind));
  return walker == Walker::kFramePointer ? *frame_pointer : *libunwind;
}

const absl::Status& SelfCheck() {
  const absl::Status& frame_pointer = SelfCheckFor(Walker::kFramePointer);
  return frame_pointer.ok() ? SelfCheckFor(Walker::kLibunwind) : frame_pointer;
}

}  // namespace stack_tag_internal
}  // namespace gls
