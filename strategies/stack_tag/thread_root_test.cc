// stack_tag reads outside every scope, on every kind of thread, and reads
// through code that keeps no frame pointer.
//
// Outside every scope the frame-pointer walk reaches the thread's outermost
// frame-pointer frame, whose link is whatever the code that started the
// thread left in %rbp. That must answer "none" from the frame-pointer walk
// alone, never by a libunwind walk (FramePointerFallbacks, per thread),
// whatever started the thread: std::thread, pthread_create with a stack the
// caller provided, code without frame pointers, and the main thread.
//
// A callback called by code without frame pointers (junk in %rbp) inside a
// scope: no crash (also under ASan), and the scope's value, found by the
// libunwind fallback, whether the junk breaks the chain or leads the walk
// past the scope (stack_tag_strategy.h).
#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gls/context_manager.h"
#include "gls/snapshot.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategies/stack_tag/internal/tags.h"
#include "strategies/stack_tag/junk_call_test_util.h"
#include "strategies/stack_tag/stack_tag_strategy.h"

namespace gls {
namespace {

using stack_tag_test::JunkCall;

using stack_tag_internal::FramePointerFallbacks;
using stack_tag_internal::MissedScopesCaught;
using stack_tag_internal::ReadTag;
using stack_tag_internal::ThisThreadStack;
using stack_tag_internal::WalksEndedAtThreadRoot;
using stack_tag_internal::WalksEndedAwayFromThreadRoot;
using stack_tag_internal::Walker;

// Code without a frame pointer, as a compiler builds it with
// -fomit-frame-pointer, using %rbp as an ordinary register that holds junk
// while it calls out. It has call-frame information, so libunwind (and
// exceptions) can unwind through it. Also usable as a pthread start routine.
#if defined(__x86_64__)
asm(R"(
    .text
    .p2align 4
    .globl gls_test_call_without_frame_pointer
    .type gls_test_call_without_frame_pointer, @function
gls_test_call_without_frame_pointer:
    .cfi_startproc
    push %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    push %rbx
    .cfi_def_cfa_offset 24
    .cfi_offset %rbx, -24
    sub $8, %rsp
    .cfi_def_cfa_offset 32
    mov %rdi, %rbx
    mov 32(%rbx), %rax
    mov %rax, (%rsp)
    mov 16(%rbx), %rbp
    cmpq $0, 24(%rbx)
    je 1f
    mov %rsp, %rbp
1:  mov 8(%rbx), %rdi
    call *(%rbx)
    xor %eax, %eax
    add $8, %rsp
    .cfi_def_cfa_offset 24
    pop %rbx
    .cfi_def_cfa_offset 16
    pop %rbp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size gls_test_call_without_frame_pointer, .-gls_test_call_without_frame_pointer
)");
#endif

// What reads outside every scope on one thread saw.
struct OutsideReads {
  int found = 0;  // reads that found a tag or a value: never right here
  uint64_t fallbacks = 0;
  uint64_t ended_at_root = 0;
  bool in_scope_right = false;
  stack_tag_internal::ThreadStackInfo stack = {};
};

constexpr int kReads = 200;

__attribute__((noinline)) OutsideReads ReadOutsideEveryScope() {
  OutsideReads r;
  ContextManager mgr(StackTagStrategy());
  const uint64_t fallbacks = FramePointerFallbacks();
  const uint64_t ended = WalksEndedAtThreadRoot();
  for (int i = 0; i < kReads; ++i) {
    if (ReadTag(Walker::kFramePointer).has_value()) ++r.found;
    if (mgr.GetValue("k") != nullptr) ++r.found;
  }
  r.fallbacks = FramePointerFallbacks() - fallbacks;
  r.ended_at_root = WalksEndedAtThreadRoot() - ended;
  r.stack = ThisThreadStack();
  mgr.SetValues({{"k", 5}}, [&] {
    const Value* v = mgr.GetValue("k");
    r.in_scope_right = v != nullptr && *v->TryAs<int>() == 5 &&
                       ReadTag(Walker::kFramePointer).has_value();
  });
  return r;
}

void ExpectCheapMisses(const OutsideReads& r) {
  EXPECT_EQ(r.found, 0);
  EXPECT_EQ(r.fallbacks, 0u) << "reads outside every scope used libunwind";
  EXPECT_TRUE(r.in_scope_right);
  ::testing::Test::RecordProperty("ended_at_root", static_cast<int>(r.ended_at_root));
}

TEST(StackTagThreadRootTest, MainThread) {
  ExpectCheapMisses(ReadOutsideEveryScope());
}

TEST(StackTagThreadRootTest, StdThread) {
  OutsideReads r;
  std::thread([&] { r = ReadOutsideEveryScope(); }).join();
  ExpectCheapMisses(r);
}

void* RunReads(void* out) {
  *static_cast<OutsideReads*>(out) = ReadOutsideEveryScope();
  return nullptr;
}

TEST(StackTagThreadRootTest, ThreadOnACallerProvidedStack) {
  constexpr size_t kStackSize = size_t{1} << 20;
  void* stack = std::aligned_alloc(4096, kStackSize);
  ASSERT_NE(stack, nullptr);
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstack(&attr, stack, kStackSize), 0);
  OutsideReads r;
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, RunReads, &r), 0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  const uintptr_t stack_top = reinterpret_cast<uintptr_t>(stack) + kStackSize;
  std::free(stack);
  ExpectCheapMisses(r);
  // Learned only if the chain broke (glibc leaves a null %rbp here).
  if (r.stack.hi != 0) {
    EXPECT_EQ(r.stack.hi, stack_top);
  }
}

#if defined(__x86_64__)
void RunReadsThunk(void* out) { RunReads(out); }

// A thread whose start routine keeps no frame pointer and leaves junk in
// %rbp: a small integer, a heap pointer, an address on another thread's
// stack, a non-canonical address, or a plausible frame on its own stack
// whose link is junk.
TEST(StackTagThreadRootTest, ThreadStartedByCodeWithoutFramePointers) {
  auto heap = std::make_unique<uintptr_t[]>(4);
  int local = 0;
  struct Case {
    const char* name;
    uintptr_t rbp;
    bool fake_frame;
    uintptr_t fake_link;
  };
  const Case cases[] = {
      {"small integer", 8, false, 0},
      {"heap pointer", reinterpret_cast<uintptr_t>(heap.get()), false, 0},
      {"another stack", reinterpret_cast<uintptr_t>(&local) & ~uintptr_t{7},
       false, 0},
      {"non-canonical", 0xdeadbeefcafef00dull, false, 0},
      {"fake frame, link 1", 0, true, 1},
      {"fake frame, heap link", 0, true,
       reinterpret_cast<uintptr_t>(heap.get())},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    OutsideReads r;
    JunkCall call{RunReadsThunk, &r, c.rbp, c.fake_frame ? 1u : 0u,
                  c.fake_link};
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, nullptr,
                             gls_test_call_without_frame_pointer, &call),
              0);
    ASSERT_EQ(pthread_join(thread, nullptr), 0);
    ExpectCheapMisses(r);
  }
}

// A thread's very first read, before anything learned its bounds, through a
// junk link that points just past the top of its stack into memory that is
// not readable (PROT_NONE): the walk must stop at the thread's stack (the
// thread pointer bounds it), not fault.
TEST(StackTagThreadRootTest, FirstReadNeverLeavesTheStack) {
  constexpr size_t kStackSize = size_t{1} << 20;
  constexpr size_t kGuard = size_t{1} << 16;
  void* block = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  char* stack = static_cast<char*>(block);
  ASSERT_EQ(mprotect(stack + kStackSize, kGuard, PROT_NONE), 0);
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstack(&attr, stack, kStackSize), 0);
  struct FirstRead {
    uint64_t fallbacks = 0;
    bool found = false;
  };
  FirstRead r;
  JunkCall call{[](void* p) {
                  auto* out = static_cast<FirstRead*>(p);
                  const uint64_t fallbacks = FramePointerFallbacks();
                  out->found = ReadTag(Walker::kFramePointer).has_value();
                  out->fallbacks = FramePointerFallbacks() - fallbacks;
                },
                &r, 0, 1,
                reinterpret_cast<uintptr_t>(stack + kStackSize + 4096)};
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, gls_test_call_without_frame_pointer,
                           &call),
            0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  munmap(block, kStackSize + kGuard);
  EXPECT_FALSE(r.found);
}

// GetValue from a callback that code without frame pointers calls inside a
// scope. The frame-pointer chain breaks at the callback, below the thread's
// outermost frame: the walk is redone with libunwind (counted), which
// unwinds through the code by its call-frame information and finds the
// scope. With a plausible-looking link past the scope (into a live frame
// above it, or above the thread's outermost frame), the walk ends without
// the tag while the thread's record says a scope is live above the reader:
// the read is redone with libunwind too (counted apart). Never a crash, a
// miss or another value.
struct CallbackRead {
  const ContextManager* mgr;
  std::optional<int> seen;
  std::optional<uint64_t> tag;
  uintptr_t frame = 0;  // the callback's frame address
};

void ReadInCallback(void* p) {
  auto* read = static_cast<CallbackRead*>(p);
  read->frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  const Value* v = read->mgr->GetValue("k");
  if (v != nullptr) read->seen = *v->TryAs<int>();
  read->tag = ReadTag(Walker::kFramePointer);
}

void CheckCallbacksThroughJunk() {
  ContextManager mgr(StackTagStrategy());
  ASSERT_EQ(ReadTag(Walker::kFramePointer), std::nullopt);
  auto heap = std::make_unique<uintptr_t[]>(4);
  const uintptr_t here =
      reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  // "Dead stack" must be below every frame live during the walk: the
  // callback's, from a dry run, less room for the read's own frames. (A
  // fixed distance below `here` can land inside the live chain between
  // here and the callback in an unoptimized build, whose link leads to the
  // scope's tag correctly and needs no fallback.)
  CallbackRead dry_run{&mgr, std::nullopt, std::nullopt};
  mgr.SetValues({{"k", 9}}, [&] {
    JunkCall call{ReadInCallback, &dry_run, 8, 0, 0};
    gls_test_call_without_frame_pointer(&call);
  });
  ASSERT_NE(dry_run.frame, 0u);
  const uintptr_t dead = (dry_run.frame - 16384) & ~uintptr_t{7};
  struct Case {
    const char* name;
    uintptr_t rbp;
    bool fake_frame;
    uintptr_t fake_link;
  };
  std::vector<Case> cases = {
      {"small integer", 8, false, 0},
      {"heap pointer", reinterpret_cast<uintptr_t>(heap.get()), false, 0},
      {"non-canonical", 0xdeadbeefcafef00dull, false, 0},
      {"dead stack below", dead, false, 0},
      {"fake frame, link 1", 0, true, 1},
      {"fake frame, link below", 0, true, dead},
      // This function's own frame, above the scope: a real chain from there
      // on, which never meets the scope's tag.
      {"fake frame, link to a live frame above the scope", 0, true, here},
  };
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      // Learned by now (the breaks above): a link into the code above the
      // thread's outermost frame that keeps a frame pointer.
      const stack_tag_internal::ThreadStackInfo stack = ThisThreadStack();
      cases.clear();
      if (stack.root_fp != 0 && stack.hi - stack.root_fp > 64) {
        cases.push_back({"fake frame, link above the root", 0, true,
                         stack.root_fp + 32});
      }
    }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CallbackRead read{&mgr, std::nullopt, std::nullopt};
    const uint64_t redone = FramePointerFallbacks() + MissedScopesCaught();
    mgr.SetValues({{"k", 9}}, [&] {
      JunkCall call{ReadInCallback, &read, c.rbp, c.fake_frame ? 1u : 0u,
                    c.fake_link};
      gls_test_call_without_frame_pointer(&call);
    });
    EXPECT_EQ(read.seen, 9);
    EXPECT_TRUE(read.tag.has_value());
    EXPECT_GE(FramePointerFallbacks() + MissedScopesCaught() - redone, 1u);
  }
  }
}

// A task captured in flow A (k = 9) runs inline inside flow B's scope
// (k = 1), as an inline dispatch does, and junk leads the walk from inside
// A's run to a live frame between the two. Snapshot::Run installs A's
// values in the running flow's context (one tag per flow and stack), so the
// tag the walk meets is that context's, and the read must see A's value,
// never B's (that would hand one request another's values).
__attribute__((noinline)) void RunFlowAThroughJunkLinkBetweenTags(
    const Snapshot& flow_a, CallbackRead* read) {
  const uintptr_t between =
      reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  flow_a.Run([&] {
    JunkCall call{ReadInCallback, read, 0, 1, between};
    gls_test_call_without_frame_pointer(&call);
  });
}

TEST(StackTagJunkFramePointerTest, LinkPastAnInlineRunStillSeesItsValues) {
  for (int thread = 0; thread < 2; ++thread) {
    auto check = [] {
      ContextManager mgr(StackTagStrategy());
      Snapshot flow_a;
      std::thread([&] { mgr.SetValues({{"k", 9}}, [&] { flow_a = Capture(); }); })
          .join();
      CallbackRead read{&mgr, std::nullopt, std::nullopt};
      mgr.SetValues({{"k", 1}}, [&] {
        RunFlowAThroughJunkLinkBetweenTags(flow_a, &read);
      });
      EXPECT_EQ(read.seen, 9);
      EXPECT_TRUE(read.tag.has_value());
    };
    if (thread == 0) {
      check();
    } else {
      std::thread(check).join();
    }
  }
}

TEST(StackTagJunkFramePointerTest, CallbackOnMainThread) {
  CheckCallbacksThroughJunk();
}

TEST(StackTagJunkFramePointerTest, CallbackOnStdThread) {
  std::thread([] { CheckCallbacksThroughJunk(); }).join();
}
#endif  // __x86_64__

}  // namespace
}  // namespace gls
