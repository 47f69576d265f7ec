#include "strategies/goid/goid_strategy.h"

#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "strategies/goid/goid_internal.h"
#include "strategies/goid/stack_table.h"

namespace gls {
namespace goid_internal {

// This thread's alternate signal stack as the strategy knows it (empty when
// it knows none). Read by Current() when the stack pointer is in no
// registered stack; initial-exec (one %fs-relative load, no TLS wrapper
// call) with external linkage, like thread_local's slot, so a shared-library
// build under TSan does not alias it with other thread_locals.
constinit thread_local SignalStackRange tls_signal_stack
    __attribute__((tls_model("initial-exec")));

namespace {

// The process-wide table. Constant-initialized (usable before main and from
// any static initializer) and never destroyed (usable from any static
// destructor and by threads still running at exit).
union GlobalTable {
  constexpr GlobalTable() : table() {}
  ~GlobalTable() {}
  StackTable table;
};
constinit GlobalTable global_table;

// A thread's main stack can be huge when its rlimit is "unlimited"; only its
// top kMaxThreadStack bytes are registered.
constexpr uintptr_t kMaxThreadStack = uintptr_t{256} << 20;

// Prints "gls: goid strategy: <message>" and what to do about it, and
// aborts.
[[noreturn]] __attribute__((format(printf, 1, 2))) void Die(const char* format,
                                                            ...) {
  std::fputs("gls: goid strategy: ", stderr);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputs(
      ". Register fiber stacks with gls::goid::RegisteredStackAllocator or "
      "gls::goid::ScopedStack (strategies/goid/goid_strategy.h).\n",
      stderr);
  std::abort();
}

uintptr_t AlignUp(uintptr_t a) {
  return (a + StackTable::kGranule - 1) & ~(StackTable::kGranule - 1);
}
uintptr_t AlignDown(uintptr_t a) { return a & ~(StackTable::kGranule - 1); }

// ---------------------------------------------------------------------------
// Thread stacks.

// This thread's stack and its registration. Trivially destructible, so it
// stays usable while and after the thread's thread_local destructors run.
struct ThreadStack {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
  StackRegion* region = nullptr;  // while registered
  bool bounds_known = false;
  bool exited = false;  // ThreadExit has run: no more registration
};
constinit thread_local ThreadStack thread_stack;

// Unregisters the thread's stack when the thread exits. Armed (constructed,
// which registers the destructor with the runtime) when the stack is
// registered.
struct ThreadExit {
  ~ThreadExit();
  void Arm() { armed = true; }
  bool armed = false;
};
thread_local ThreadExit thread_exit;

// Registered thread stacks, so a fork child can drop the dead threads'.
// Guarded by the table's mutex; never destroyed.
std::unordered_set<StackRegion*>& ThreadRegions() {
  static auto* regions = new std::unordered_set<StackRegion*>;
  return *regions;
}

void LoadBounds(ThreadStack& t) {
  if (t.bounds_known) return;
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) {
    Die("pthread_getattr_np failed for this thread");
  }
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(addr);
  uintptr_t hi = lo + size;
  if (hi > StackTable::kAddressLimit) {
    Die("this thread's stack [%#lx, %#lx) lies above 2^47",
        static_cast<unsigned long>(lo), static_cast<unsigned long>(hi));
  }
  t.hi = AlignDown(hi);
  t.lo = AlignUp(hi - lo > kMaxThreadStack ? hi - kMaxThreadStack : lo);
  t.bounds_known = true;
}

void AtForkPrepare() { global_table.table.mu().lock(); }
void AtForkParent() { global_table.table.mu().unlock(); }
// Only the forking thread lives on in the child; the runtime will hand the
// other threads' stacks to new threads, so their registrations go.
void AtForkChild() {
  StackTable& table = global_table.table;
  StackRegion* survivor = thread_stack.region;
  for (StackRegion* region : ThreadRegions()) {
    if (region == survivor) continue;
    table.Assign(region->lo, region->hi, nullptr);
    delete region;
  }
  ThreadRegions().clear();
  if (survivor != nullptr) ThreadRegions().insert(survivor);
  table.mu().unlock();
}

// Takes note of this thread's alternate signal stack, if it has one and no
// ScopedSignalStack named one already. One inside the thread's own stack (a
// local array) is left out: the handler's stack pointer is then in the
// thread's registered stack and never reaches the check (see the header).
void NoteSignalStack(const ThreadStack& t) {
  SignalStackRange& s = tls_signal_stack;
  if (s.hi != 0) return;
  stack_t ss;
  if (sigaltstack(nullptr, &ss) != 0 || (ss.ss_flags & SS_DISABLE) != 0 ||
      ss.ss_size == 0) {
    return;
  }
  const uintptr_t lo = reinterpret_cast<uintptr_t>(ss.ss_sp);
  const uintptr_t hi = lo + ss.ss_size;
  if (lo < t.hi && t.lo < hi) return;
  s.lo = lo;
  s.hi = hi;
}

// Registers this thread's stack. Its bounds are known and it is not
// registered yet.
void RegisterThread(ThreadStack& t) {
  static const bool at_fork_installed [[maybe_unused]] =
      pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild) == 0;
  thread_exit.Arm();  // before registering: the destructor must run
  StackTable& table = global_table.table;
  auto region = std::make_unique<StackRegion>();
  region->lo = t.lo;
  region->hi = t.hi;
  {
    std::lock_guard<std::mutex> lock(table.mu());
    table.Prepare(t.lo, t.hi);
    ThreadRegions().insert(region.get());
    // Whatever the range mapped to belongs to flows that are gone: a new
    // thread's stack holds no live stack (a buffer registered inside it
    // registers the thread first, see NewRegistration), and an exited thread
    // cleared its whole range.
    table.Assign(t.lo, t.hi, region.get());
  }
  t.region = region.release();
  NoteSignalStack(t);
}

ThreadExit::~ThreadExit() {
  ThreadStack& t = thread_stack;
  t.exited = true;
  if (t.region == nullptr) return;
  StackTable& table = global_table.table;
  {
    std::lock_guard<std::mutex> lock(table.mu());
    // The whole range, including buffers registered inside it and never
    // unregistered: nothing on this stack outlives the thread.
    table.Assign(t.lo, t.hi, nullptr);
    ThreadRegions().erase(t.region);
  }
  delete t.region;
  t.region = nullptr;
}

// A registration of this (exited) thread's stack for the length of one
// RunBound: a thread_local destructor that runs after ThreadExit's may still
// set values. Exit cleared the whole range, so whatever is registered in it
// now (a fiber stack buffer registered during teardown) is live: only the
// unowned parts are claimed, and only those are cleared again.
class TemporaryRegistration {
 public:
  TemporaryRegistration() = default;
  TemporaryRegistration(const TemporaryRegistration&) = delete;
  TemporaryRegistration& operator=(const TemporaryRegistration&) = delete;
  ~TemporaryRegistration() {
    if (region_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(global_table.table.mu());
      for (const StackTable::Run& run : claimed_) {
        global_table.table.Assign(run.lo, run.hi, nullptr);
      }
    }
    delete region_;
  }

  StackRegion* Register(uintptr_t lo, uintptr_t hi) {
    auto region = std::make_unique<StackRegion>();
    region->lo = lo;
    region->hi = hi;
    StackTable& table = global_table.table;
    std::lock_guard<std::mutex> lock(table.mu());
    table.Prepare(lo, hi);
    table.CollectRuns(lo, hi, &claimed_);
    std::erase_if(claimed_, [](const StackTable::Run& run) {
      return run.owner != nullptr;
    });
    for (const StackTable::Run& run : claimed_) {
      table.Assign(run.lo, run.hi, region.get());
    }
    return region_ = region.release();
  }

 private:
  StackRegion* region_ = nullptr;
  std::vector<StackTable::Run> claimed_;
};

// The region RunBound binds in when the stack pointer is in no registered
// stack: this thread's own stack, registered now.
StackRegion* RegionForUnregisteredStack(TemporaryRegistration* temporary) {
  ThreadStack& t = thread_stack;
  LoadBounds(t);
  const uintptr_t sp = ReadStackPointer();
  if (sp < t.lo || sp >= t.hi) {
    Die("SetValues on a stack that is neither this thread's stack nor a "
        "registered fiber stack (stack pointer %#lx; this thread's stack "
        "[%#lx, %#lx))",
        static_cast<unsigned long>(sp), static_cast<unsigned long>(t.lo),
        static_cast<unsigned long>(t.hi));
  }
  if (t.exited) return temporary->Register(t.lo, t.hi);
  if (t.region != nullptr) {
    Die("internal error: this thread's registered stack [%#lx, %#lx) is not "
        "in the table at %#lx",
        static_cast<unsigned long>(t.lo), static_cast<unsigned long>(t.hi),
        static_cast<unsigned long>(sp));
  }
  RegisterThread(t);
  return t.region;
}

// ---------------------------------------------------------------------------
// Fiber stacks.

// Allocator registrations by stack top, since deallocate() only gets the
// stack back. Guarded by the table's mutex; never destroyed.
absl::flat_hash_map<uintptr_t, Registration*>& AllocatedStacks() {
  static auto* stacks = new absl::flat_hash_map<uintptr_t, Registration*>;
  return *stacks;
}

}  // namespace

struct Registration {
  StackRegion region;
  // What [region.lo, region.hi) mapped to before, to hand back: the outer
  // registration this one nests in, if any. Runs without an owner are left
  // out.
  std::vector<StackTable::Run> replaced;
};

StackTable& GlobalStackTable() { return global_table.table; }

namespace {

// A registration of [lo_ptr, lo_ptr + size) rounded inwards to granules, not
// yet installed. A buffer inside this thread's own stack registers the
// thread first, so the buffer's registration nests inside (and later hands
// back to) the thread's, rather than the thread's overwriting it.
std::unique_ptr<Registration> NewRegistration(const void* lo_ptr, size_t size) {
  const uintptr_t raw_lo = reinterpret_cast<uintptr_t>(lo_ptr);
  const uintptr_t lo = AlignUp(raw_lo);
  const uintptr_t hi = AlignDown(raw_lo + size);
  auto registration = std::make_unique<Registration>();
  registration->region.lo = lo;
  registration->region.hi = lo < hi ? hi : lo;  // empty if nothing is left
  if (lo >= hi) return registration;
  if (hi > StackTable::kAddressLimit) {
    Die("the stack [%#lx, %#lx) lies above 2^47",
        static_cast<unsigned long>(lo), static_cast<unsigned long>(hi));
  }
  ThreadStack& t = thread_stack;
  LoadBounds(t);
  if (!t.exited && t.region == nullptr && lo >= t.lo && hi <= t.hi) {
    RegisterThread(t);
  }
  return registration;
}

// Makes `registration` own its range, remembering what it replaces. On an
// exception (std::bad_alloc) nothing changed. Requires the table's mutex.
void InstallLocked(Registration* registration) {
  const uintptr_t lo = registration->region.lo;
  const uintptr_t hi = registration->region.hi;
  if (lo >= hi) return;
  StackTable& table = global_table.table;
  table.Prepare(lo, hi);
  table.CollectRuns(lo, hi, &registration->replaced);
  std::erase_if(registration->replaced, [](const StackTable::Run& run) {
    return run.owner == nullptr;
  });
  table.Assign(lo, hi, &registration->region);  // cannot throw after Prepare
}

// Undoes InstallLocked. The whole range goes, including anything registered
// inside it and never unregistered: nothing on this stack outlives it. The
// installation split or allocated every node touched, so this allocates
// nothing. Requires the table's mutex.
void RemoveLocked(Registration* registration) noexcept {
  const uintptr_t lo = registration->region.lo;
  const uintptr_t hi = registration->region.hi;
  if (lo >= hi) return;
  StackTable& table = global_table.table;
  table.Assign(lo, hi, nullptr);
  for (const StackTable::Run& r : registration->replaced) {
    table.Assign(r.lo, r.hi, r.owner);
  }
}

}  // namespace

Registration* RegisterStack(const void* lo, size_t size) {
  std::unique_ptr<Registration> registration = NewRegistration(lo, size);
  {
    std::lock_guard<std::mutex> lock(global_table.table.mu());
    InstallLocked(registration.get());
  }
  return registration.release();
}

void UnregisterStack(Registration* registration) noexcept {
  {
    std::lock_guard<std::mutex> lock(global_table.table.mu());
    RemoveLocked(registration);
  }
  delete registration;
}

void RegisterAllocatedStack(void* lo, size_t size) {
  const uintptr_t key = reinterpret_cast<uintptr_t>(lo) + size;
  std::unique_ptr<Registration> registration = NewRegistration(lo, size);
  Registration* stale = nullptr;
  {
    std::lock_guard<std::mutex> lock(global_table.table.mu());
    auto [it, inserted] =
        AllocatedStacks().try_emplace(key, registration.get());
    if (!inserted) {
      // Handed out again without a deallocate: the old registration is
      // stale. It goes first, so the new one starts fresh.
      stale = it->second;
      RemoveLocked(stale);
      it->second = registration.get();
    }
    try {
      InstallLocked(registration.get());
    } catch (...) {
      AllocatedStacks().erase(key);
      delete stale;
      throw;
    }
  }
  registration.release();
  delete stale;
}

void UnregisterAllocatedStack(void* lo, size_t size) noexcept {
  const uintptr_t key = reinterpret_cast<uintptr_t>(lo) + size;
  Registration* registration = nullptr;
  {
    std::lock_guard<std::mutex> lock(global_table.table.mu());
    auto it = AllocatedStacks().find(key);
    if (it != AllocatedStacks().end()) {
      registration = it->second;
      AllocatedStacks().erase(it);
      RemoveLocked(registration);
    }
  }
  if (registration == nullptr) {
    Die("RegisteredStackAllocator::deallocate of the stack [%p, %#lx), which "
        "no RegisteredStackAllocator allocated",
        lo, static_cast<unsigned long>(key));
  }
  delete registration;
}

namespace {

// ---------------------------------------------------------------------------
// Signal handlers on an alternate signal stack.

#if defined(__x86_64__) && defined(__linux__)
// True if the kernel's signal frame (rt_sigframe) lies right above the frame
// at `fp`, whose saved frame pointer is `saved_fp`: fp is then the frame of
// the function the kernel called (the handler, or a sanitizer's wrapper
// around it), fp + 8 holds its return address (the sigreturn trampoline) and
// fp + 16 the ucontext_t of the interrupted flow, from which
// `*interrupted_sp` is taken. Recognized by what the kernel always writes
// there: the code segment of 64-bit user mode (0x33), the interrupted %rbp
// (which the called function saved first thing: it is `saved_fp`), and a
// pointer to the saved FPU state, which the kernel puts just above the
// ucontext. Reads only [fp + 16, fp + 16 + 240), which must lie below
// `limit`. (stack_tag's walker has the same check; the two libraries share
// no code.)
__attribute__((no_sanitize("address", "thread"))) bool SignalFrameAbove(
    uintptr_t fp, uintptr_t saved_fp, uintptr_t limit,
    uintptr_t* interrupted_sp) {
  constexpr size_t kGregs = offsetof(ucontext_t, uc_mcontext.gregs);
  constexpr size_t kFpregs = offsetof(ucontext_t, uc_mcontext.fpregs);
  static_assert(kFpregs == kGregs + NGREG * sizeof(greg_t));
  // The kernel's ucontext ends after its 8-byte signal mask; the FPU state
  // follows the siginfo after it, 64-byte aligned.
  constexpr uintptr_t kKernelUcontextBytes =
      offsetof(ucontext_t, uc_sigmask) + 8;
  const uintptr_t uc = fp + 16;
  if (uc < fp || limit < uc || limit - uc < kFpregs + sizeof(void*)) {
    return false;
  }
  const auto* gregs = reinterpret_cast<const greg_t*>(uc + kGregs);
  const uintptr_t fpregs = *reinterpret_cast<const uintptr_t*>(uc + kFpregs);
  if ((gregs[REG_CSGSFS] & 0xffff) != 0x33) return false;
  if (static_cast<uintptr_t>(gregs[REG_RBP]) != saved_fp) return false;
  if ((fpregs & 15) != 0 || fpregs < uc + kKernelUcontextBytes ||
      fpregs - uc > 4096) {
    return false;
  }
  *interrupted_sp = static_cast<uintptr_t>(gregs[REG_RSP]);
  return true;
}

// Current() for a flow whose stack pointer is on the alternate signal stack
// [lo, hi): a handler. Follows the frame-pointer chain, reading only inside
// [lo, hi), up to the frame the kernel's signal frame lies above, and looks
// up the interrupted flow's stack pointer, which the kernel saved there. Not
// the first frame pointer outside [lo, hi): code without frame pointers may
// have left anything in %rbp, while the saved stack pointer is exact.
// Nested signals on the same stack are passed through (their frames are
// inside it). Nothing found, or a chain that looks wrong: nullptr.
__attribute__((noinline, no_sanitize("address", "thread"))) Context*
ContextBeyondSignalStack(uintptr_t lo, uintptr_t hi) noexcept {
  uintptr_t fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  for (;;) {
    if (fp < lo || fp >= hi || hi - fp < 16 || (fp & 7) != 0) return nullptr;
    const uintptr_t next = *reinterpret_cast<const uintptr_t*>(fp);
    if (next > fp && next < hi) {
      fp = next;
      continue;
    }
    uintptr_t sp = 0;
    if (!SignalFrameAbove(fp, next, hi, &sp)) return nullptr;
    // Interrupted on this very stack (a nested handler whose outer handler
    // left something else in %rbp): not worth chasing.
    if (sp - lo < hi - lo) return nullptr;
    const StackRegion* region = global_table.table.Lookup(sp);
    return region == nullptr ? nullptr : region->context;
  }
}
#else
// Elsewhere the signal frame's layout is not known here: a handler on an
// alternate stack sees no values (the header says so).
Context* ContextBeyondSignalStack(uintptr_t, uintptr_t) noexcept {
  return nullptr;
}
#endif

}  // namespace

Context* CurrentContext() noexcept {
  const uintptr_t sp = ReadStackPointer();
  const StackRegion* region = global_table.table.Lookup(sp);
  if (region != nullptr) [[likely]] return region->context;
  // In no registered stack: maybe a handler on this thread's alternate
  // signal stack. One TLS load and a compare; no syscall.
  const SignalStackRange& s = tls_signal_stack;
  if (sp - s.lo < s.hi - s.lo) [[unlikely]] {
    return ContextBeyondSignalStack(s.lo, s.hi);
  }
  return nullptr;
}

SignalStackRange SetSignalStack(const void* lo, size_t size) {
  const SignalStackRange previous = tls_signal_stack;
  const uintptr_t l = reinterpret_cast<uintptr_t>(lo);
  ThreadStack& t = thread_stack;
  LoadBounds(t);
  const bool in_thread_stack = l < t.hi && t.lo < l + size;
  if (in_thread_stack || global_table.table.Lookup(l) != nullptr ||
      (size > 0 && global_table.table.Lookup(l + size - 1) != nullptr)) {
    // A handler there would be taken for the flow owning that stack.
    std::fprintf(stderr,
                 "gls: goid strategy: ScopedSignalStack: the signal stack "
                 "[%#lx, %#lx) lies in %s. Put it in memory outside every "
                 "stack (malloc, mmap, a static array).\n",
                 static_cast<unsigned long>(l),
                 static_cast<unsigned long>(l + size),
                 in_thread_stack ? "this thread's own stack"
                                 : "a registered stack");
    std::abort();
  }
  tls_signal_stack = SignalStackRange{l, l + size};
  return previous;
}

void RestoreSignalStack(SignalStackRange previous) noexcept {
  tls_signal_stack = previous;
}

namespace {

// ---------------------------------------------------------------------------
// The strategy.

// Binds a context in a region for a scope; restores the previous one however
// the scope ends.
class Binding {
 public:
  Binding(StackRegion* region, Context* ctx)
      : region_(region), previous_(region->context) {
    region_->context = ctx;
  }
  ~Binding() { region_->context = previous_; }
  Binding(const Binding&) = delete;
  Binding& operator=(const Binding&) = delete;

 private:
  StackRegion* const region_;
  Context* const previous_;
};

class Goid final : public Strategy {
 public:
  std::string_view name() const override { return "goid"; }

  Context* Current() const noexcept override { return CurrentContext(); }

  void RunBound(Context* ctx, absl::FunctionRef<void()> fn) const override {
    StackRegion* region = global_table.table.Lookup(ReadStackPointer());
    TemporaryRegistration temporary;
    if (region == nullptr) region = RegionForUnregisteredStack(&temporary);
    Binding binding(region, ctx);
    fn();
  }

  // The region of the stack the flow runs on keeps `ctx` until Detach. A
  // thread past its exit has no registration of its own to keep (RunBound
  // makes a temporary one for the length of its function): not attachable.
  bool CanAttach() const noexcept override { return true; }

  bool Attach(Context* ctx) const override {
    StackRegion* region = global_table.table.Lookup(ReadStackPointer());
    if (region == nullptr) {
      if (thread_stack.exited) return false;
      TemporaryRegistration unused;  // only for an exited thread
      region = RegionForUnregisteredStack(&unused);
    }
    region->context = ctx;
    return true;
  }

  void Detach(Context* ctx) const override {
    StackRegion* region = global_table.table.Lookup(ReadStackPointer());
    if (region != nullptr && region->context == ctx) region->context = nullptr;
  }
};

}  // namespace
}  // namespace goid_internal

const Strategy& GoidStrategy() {
  static const goid_internal::Goid* strategy = new goid_internal::Goid;
  return *strategy;
}

namespace goid {

bool IsRegisteredStack(const void* address) {
  return goid_internal::global_table.table.Lookup(
             reinterpret_cast<uintptr_t>(address)) != nullptr;
}

}  // namespace goid
}  // namespace gls
