// strategies/stack_tag/junk_call_test_util.h: calling a function from code
// that keeps no frame pointer and leaves junk in %rbp, for stack_tag's tests.
//
// gls_test_call_without_frame_pointer is written in assembly (defined in
// thread_root_test.cc, part of the same test binary) the way a compiler
// builds code with -fomit-frame-pointer: %rbp is an ordinary register
// holding junk while it calls out, and call-frame information lets
// libunwind (and exceptions) unwind through it. Also usable as a pthread
// start routine. x86-64 only.
#ifndef STRATEGIES_STACK_TAG_JUNK_CALL_TEST_UTIL_H_
#define STRATEGIES_STACK_TAG_JUNK_CALL_TEST_UTIL_H_

#include <cstddef>
#include <cstdint>

namespace gls {
namespace stack_tag_test {

// JunkCall
//
// What gls_test_call_without_frame_pointer calls, and what it leaves in
// %rbp while it does: `rbp`, or, with `fake_frame`, the address of a word on
// its own stack that holds `fake_link` (a plausible-looking frame on the
// running stack whose link is junk).
struct JunkCall {
  void (*fn)(void*);
  void* arg;
  uintptr_t rbp;
  uintptr_t fake_frame;
  uintptr_t fake_link;
};
static_assert(offsetof(JunkCall, fn) == 0 && offsetof(JunkCall, arg) == 8 &&
              offsetof(JunkCall, rbp) == 16 &&
              offsetof(JunkCall, fake_frame) == 24 &&
              offsetof(JunkCall, fake_link) == 32);

}  // namespace stack_tag_test
}  // namespace gls

// gls_test_call_without_frame_pointer(junk_call): calls junk_call->fn(arg)
// as described above; returns nullptr.
extern "C" void* gls_test_call_without_frame_pointer(void* junk_call);

#endif  // STRATEGIES_STACK_TAG_JUNK_CALL_TEST_UTIL_H_
