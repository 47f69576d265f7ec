// GetValue inside a signal handler, tested the way crash handlers really run:
// the signal is sent with pthread_kill from another thread while the target
// thread is busy inside a SetValues scope (calls, not a blocking syscall),
// and the handler runs either on the thread's own stack or, installed with
// SA_ONSTACK, on an alternate signal stack set with sigaltstack. For every
// strategy the handler must read the interrupted scope's own value on every
// delivery: never another flow's value, never nothing.
//
// The handler does only async-signal-safe things: lock-free atomic loads and
// stores into preallocated arrays, and GetValue. Under ASan and TSan the
// alternate stack is 256 KiB: the sanitizers' runtimes run on it too.
#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "gls/context_manager.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/internal/tags.h"
#include "strategies/stack_tag/registered_stack.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

// TSan defers an asynchronous signal: its own handler records it, and the
// user's handler runs later, when the thread next enters TSan's runtime, on
// the thread's own stack and called from runtime code without frame
// pointers. So under TSan no handler runs on the alternate stack or inside
// a kernel signal frame; the tests then check the values read only (a
// stack_tag read there may take the libunwind fallback, safely: it is not
// in a signal context), and code that never enters the runtime is never
// interrupted at all.
#if defined(__SANITIZE_THREAD__)
constexpr bool kTsanDefersSignals = true;
#else
constexpr bool kTsanDefersSignals = false;
#endif

constexpr int kDeliveries = 200;
constexpr size_t kAltStackSize = 256 * 1024;
constexpr int kRequestId = 4242;  // the interrupted scope's
constexpr int kOtherId = 77;      // the sending thread's own scope
constexpr int64_t kNone = -1;     // the handler's GetValue found nothing
constexpr int64_t kNotAnInt = -2;

// What the handler reads and records, preallocated.
std::atomic<const ContextManager*> handler_mgr{nullptr};
std::atomic<uintptr_t> alt_lo{0};
std::atomic<uintptr_t> alt_hi{0};
std::atomic<int> handled{0};
std::array<std::atomic<int64_t>, kDeliveries> seen;
std::array<std::atomic<bool>, kDeliveries> ran_on_alt_stack;
// stack_tag walks redone with libunwind while a handler read (libunwind is
// not async-signal-safe). Counted around the read by the handling thread's
// own counter (stack_tag counts per thread).
std::atomic<uint64_t> libunwind_walks_in_handler{0};

void Handler(int, siginfo_t*, void*) {
  const int n = handled.load(std::memory_order_relaxed);
  const ContextManager* mgr = handler_mgr.load(std::memory_order_acquire);
  if (n >= kDeliveries || mgr == nullptr) return;
  const uint64_t fallbacks = stack_tag_internal::FramePointerFallbacks();
  const Value* value = mgr->GetValue("request_id");
  libunwind_walks_in_handler.fetch_add(
      stack_tag_internal::FramePointerFallbacks() - fallbacks,
      std::memory_order_relaxed);
  const int* id = value == nullptr ? nullptr : value->TryAs<int>();
  seen[n].store(value == nullptr ? kNone : id == nullptr ? kNotAnInt : *id,
                std::memory_order_relaxed);
  // The frame address, not a local's: under ASan's fake stacks a local may
  // live on the heap.
  const uintptr_t fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  ran_on_alt_stack[n].store(fp >= alt_lo.load(std::memory_order_relaxed) &&
                                fp < alt_hi.load(std::memory_order_relaxed),
                            std::memory_order_relaxed);
  handled.store(n + 1, std::memory_order_release);
}

// Real calls, with frames, so the signal lands in ordinary code. The asm
// after the call keeps it from becoming a loop or a tail call.
__attribute__((noinline)) uint64_t Churn(uint64_t x, int depth) {
  if (depth == 0) return x * 0x9e3779b97f4a7c15ull + 1;
  uint64_t r = Churn(x + static_cast<uint64_t>(depth), depth - 1);
  asm volatile("" : "+r"(r));
  return r ^ (r >> 7);
}

void BusyUntil(const std::atomic<bool>& stop) {
  uint64_t x = 1;
  while (!stop.load(std::memory_order_relaxed)) x = Churn(x, 4);
  asm volatile("" : : "r"(x));
}

// Spins until *stop with %rbp holding 8, not a frame pointer: what code built
// without frame pointers (libc, a sanitizer's runtime) may leave there when a
// signal lands in it. x86-64 only, like the frame-pointer walkers.
#if defined(__x86_64__)
asm(R"(
    .text
    .p2align 4
    .type gls_test_spin_without_frame_pointer, @function
gls_test_spin_without_frame_pointer:
    push %rbp
    mov $8, %rbp
1:  pause
    cmpb $0, (%rdi)
    je 1b
    pop %rbp
    ret
    .size gls_test_spin_without_frame_pointer, .-gls_test_spin_without_frame_pointer
)");
extern "C" void gls_test_spin_without_frame_pointer(const std::atomic<bool>*);
static_assert(sizeof(std::atomic<bool>) == 1);
#endif

// Where the handler runs: the thread's own stack, or an alternate signal
// stack, which may be registered with stack_tag (registered_stack.h: its
// walks there are then bounded by it).
enum class Stack { kOwn, kAlternate, kAlternateRegistered };

bool OnAlternateStack(Stack stack) { return stack != Stack::kOwn; }

// The strategy under test, with the stack the handler runs on.
struct Param {
  const char* name;
  const Strategy& (*strategy)();
  Stack stack;
};

// Sets an alternate signal stack for the calling thread for its lifetime,
// and takes it away again.
class AltStack {
 public:
  explicit AltStack(Stack stack) : memory_(new char[kAltStackSize]) {
    if (stack == Stack::kAlternateRegistered) {
      registered_.emplace(memory_.get(), kAltStackSize);
    }
    stack_t ss = {};
    ss.ss_sp = memory_.get();
    ss.ss_size = kAltStackSize;
    ok_ = sigaltstack(&ss, nullptr) == 0;
    alt_lo = reinterpret_cast<uintptr_t>(memory_.get());
    alt_hi = reinterpret_cast<uintptr_t>(memory_.get()) + kAltStackSize;
  }
  ~AltStack() {
    stack_t ss = {};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
  }
  AltStack(const AltStack&) = delete;
  AltStack& operator=(const AltStack&) = delete;
  bool ok() const { return ok_; }
  const char* lo() const { return memory_.get(); }

 private:
  std::unique_ptr<char[]> memory_;
  std::optional<stack_tag::ScopedStack> registered_;
  bool ok_ = false;
};

// Installs Handler for SIGUSR1 (with SA_ONSTACK for the alternate stacks) for
// its lifetime.
class HandlerInstalled {
 public:
  explicit HandlerInstalled(Stack stack) {
    struct sigaction action = {};
    action.sa_sigaction = Handler;
    action.sa_flags = SA_SIGINFO | (OnAlternateStack(stack) ? SA_ONSTACK : 0);
    sigemptyset(&action.sa_mask);
    ok_ = sigaction(SIGUSR1, &action, &previous_) == 0;
  }
  ~HandlerInstalled() { sigaction(SIGUSR1, &previous_, nullptr); }
  HandlerInstalled(const HandlerInstalled&) = delete;
  HandlerInstalled& operator=(const HandlerInstalled&) = delete;
  bool ok() const { return ok_; }

 private:
  struct sigaction previous_ = {};
  bool ok_ = false;
};

void ResetRecords() {
  handled = 0;
  libunwind_walks_in_handler = 0;
  for (auto& s : seen) s = -100;
  for (auto& r : ran_on_alt_stack) r = false;
}

// Sends `count` signals to `target`, one at a time: each is handled before
// the next is sent (pending signals would merge). False on a 20 s timeout.
bool Deliver(pthread_t target, int count) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < count; ++i) {
    if (pthread_kill(target, SIGUSR1) != 0) return false;
    while (handled.load(std::memory_order_acquire) <= i) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
  }
  return true;
}

struct Tally {
  int right = 0;  // the interrupted scope's own id (or, outside, nothing)
  int none = 0;
  int other = 0;  // anything else: never acceptable
  int on_alt_stack = 0;
};

Tally Count(int count, int64_t expected) {
  Tally t;
  for (int i = 0; i < count; ++i) {
    const int64_t v = seen[i].load();
    if (v == expected) {
      ++t.right;
    } else if (v == kNone) {
      ++t.none;
    } else {
      ++t.other;
    }
    t.on_alt_stack += ran_on_alt_stack[i].load() ? 1 : 0;
  }
  return t;
}

// The handler ran where the test says (on the alternate stack for every
// delivery, or for none), and no stack_tag read in it fell back to libunwind,
// which is not async-signal-safe (stack_tag_strategy.h); the other
// strategies never walk.
void ExpectRealHandlerOnItsStack(const Tally& t, Stack stack) {
  if (kTsanDefersSignals) return;
  EXPECT_EQ(t.on_alt_stack, OnAlternateStack(stack) ? kDeliveries : 0)
      << "the handler did not run on the stack this test is about";
  EXPECT_EQ(libunwind_walks_in_handler.load(), 0);
}

class SignalHandlerTest : public ::testing::TestWithParam<Param> {
 protected:
  const Strategy& strategy() const { return GetParam().strategy(); }
  Stack stack() const { return GetParam().stack; }
};

// Runs `kDeliveries` signals against a thread that sets an alternate signal
// stack and then runs `body(stop, ready)`, which must call `ready()` once it
// is busy and return once `stop` is set. Recount() then tells what the
// handler read.
template <typename Body>
void RunAgainstBusyThread(const ContextManager& mgr, Stack stack, Body&& body) {
  ResetRecords();
  HandlerInstalled handler(stack);
  ASSERT_TRUE(handler.ok());
  std::atomic<bool> stop{false};
  std::atomic<bool> ready{false};
  std::atomic<bool> done{false};
  std::thread target([&] {
    {
      AltStack alt(stack);
      EXPECT_TRUE(alt.ok());
      body(stop, [&] { ready = true; });
    }
    done = true;
  });
  while (!ready && !done) std::this_thread::yield();
  bool delivered = false;
  if (ready) {
    handler_mgr.store(&mgr, std::memory_order_release);
    delivered = Deliver(target.native_handle(), kDeliveries);
    handler_mgr.store(nullptr, std::memory_order_release);
  }
  stop = true;
  target.join();
  EXPECT_TRUE(delivered) << "only " << handled.load() << " of " << kDeliveries
                         << " signals were handled in time";
}

Tally Recount(int64_t expected) { return Count(handled.load(), expected); }

// The crash-report case: the signal lands inside a scope, and the handler
// must see that scope's own request id, every time.
TEST_P(SignalHandlerTest, HandlerReadsTheInterruptedScopesValue) {
  ContextManager mgr(strategy());
  // The sending thread is inside a scope of its own, so a read that strayed
  // to another flow would find a value, not nothing.
  mgr.SetValues({{"request_id", kOtherId}}, [&] {
    RunAgainstBusyThread(mgr, stack(), [&](auto& stop, auto ready) {
      mgr.SetValues({{"request_id", kRequestId}}, [&] {
        ready();
        BusyUntil(stop);
      });
    });
  });
  const Tally t = Recount(kRequestId);
  EXPECT_EQ(t.right, kDeliveries)
      << "none: " << t.none << ", another value: " << t.other;
  EXPECT_EQ(t.other, 0);
  ExpectRealHandlerOnItsStack(t, stack());
  RecordProperty("reads_of_the_request_id", t.right);
}

// Outside every scope the handler finds nothing, on either stack (and the
// stack_tag walk, which then reaches the end of the interrupted stack, still
// never turns to libunwind).
TEST_P(SignalHandlerTest, HandlerOutsideEveryScopeReadsNothing) {
  ContextManager mgr(strategy());
  mgr.SetValues({{"request_id", kOtherId}}, [&] {
    RunAgainstBusyThread(mgr, stack(), [&](auto& stop, auto ready) {
      // A scope first, so the goid strategy has registered this thread (and
      // seen its alternate stack); then outside it.
      mgr.SetValues({{"request_id", kRequestId}}, [] {});
      ready();
      BusyUntil(stop);
    });
  });
  const Tally t = Recount(kNone);  // "right" is "nothing" here
  EXPECT_EQ(t.right, kDeliveries) << "values found: " << t.other;
  ExpectRealHandlerOnItsStack(t, stack());
}

// The signal lands in code whose %rbp is not a frame pointer. thread_local
// and goid do not walk the interrupted stack (goid takes the interrupted
// stack pointer from the kernel's signal frame) and see the scope's value.
// stack_tag cannot get past that code and sees nothing: its documented
// limit. It must not turn to libunwind inside the handler to try.
TEST_P(SignalHandlerTest, HandlerInterruptingCodeWithoutFramePointers) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the spinning function is x86-64 assembly";
#else
  if (kTsanDefersSignals) {
    GTEST_SKIP() << "TSan delivers no signal to code that never enters its "
                    "runtime";
  }
  ContextManager mgr(strategy());
  mgr.SetValues({{"request_id", kOtherId}}, [&] {
    RunAgainstBusyThread(mgr, stack(), [&](auto& stop, auto ready) {
      mgr.SetValues({{"request_id", kRequestId}}, [&] {
        ready();
        gls_test_spin_without_frame_pointer(&stop);
      });
    });
  });
  const Tally t = Recount(kRequestId);
  EXPECT_EQ(t.other, 0);
  ExpectRealHandlerOnItsStack(t, stack());
  if (strategy().name() == "stack_tag") {
    EXPECT_EQ(t.none, kDeliveries) << "right: " << t.right;
  } else {
    EXPECT_EQ(t.right, kDeliveries) << "none: " << t.none;
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Strategies, SignalHandlerTest,
    ::testing::Values(
        Param{"thread_local_own_stack", ThreadLocalStrategy, Stack::kOwn},
        Param{"thread_local_sigaltstack", ThreadLocalStrategy,
              Stack::kAlternate},
        Param{"stack_tag_own_stack", StackTagStrategy, Stack::kOwn},
        Param{"stack_tag_sigaltstack", StackTagStrategy, Stack::kAlternate},
        Param{"stack_tag_registered_sigaltstack", StackTagStrategy,
              Stack::kAlternateRegistered},
        Param{"goid_own_stack", GoidStrategy, Stack::kOwn},
        Param{"goid_sigaltstack", GoidStrategy, Stack::kAlternate}),
    [](const ::testing::TestParamInfo<Param>& param_info) {
      return std::string(param_info.param.name);
    });

// goid learns a thread's alternate signal stack when it registers the
// thread's stack (its first SetValues). One set later is invisible to it
// until registered with gls::goid::ScopedSignalStack: the handler finds
// nothing before (never another value), and the scope's value after.
TEST(GoidSignalStackTest, AltStackSetAfterTheFirstScopeNeedsScopedSignalStack) {
  ContextManager mgr(GoidStrategy());
  for (const bool registered : {false, true}) {
    SCOPED_TRACE(registered ? "registered" : "not registered");
    RunAgainstBusyThread(mgr, Stack::kAlternate, [&](auto& stop, auto ready) {
      // RunAgainstBusyThread set the alternate stack before this body ran;
      // take it away for the first scope, and set it again after.
      stack_t ss = {};
      ASSERT_EQ(sigaltstack(nullptr, &ss), 0);
      const stack_t alt = ss;
      ss.ss_flags = SS_DISABLE;
      ASSERT_EQ(sigaltstack(&ss, nullptr), 0);
      mgr.SetValues({{"request_id", 1}}, [] {});  // registers the thread
      ASSERT_EQ(sigaltstack(&alt, nullptr), 0);
      std::optional<goid::ScopedSignalStack> registration;
      if (registered) registration.emplace(alt.ss_sp, alt.ss_size);
      mgr.SetValues({{"request_id", kRequestId}}, [&] {
        ready();
        BusyUntil(stop);
      });
    });
    const Tally t = Recount(kRequestId);
    ExpectRealHandlerOnItsStack(t, Stack::kAlternate);
    EXPECT_EQ(t.other, 0);
    if (kTsanDefersSignals) {
      // On the thread's own stack after all (above): always the value.
      EXPECT_EQ(t.right, kDeliveries) << "none: " << t.none;
    } else if (registered) {
      EXPECT_EQ(t.right, kDeliveries) << "none: " << t.none;
    } else {
      EXPECT_EQ(t.none, kDeliveries) << "right: " << t.right;
    }
  }
}

}  // namespace
}  // namespace gls
