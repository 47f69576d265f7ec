// strategies/goid/goid_internal.h: pieces of the goid strategy shared by its
// implementation, its tests and its benchmark.
//
// Not part of the public API: include strategies/goid/goid_strategy.h.
#ifndef STRATEGIES_GOID_GOID_INTERNAL_H_
#define STRATEGIES_GOID_GOID_INTERNAL_H_

#include <cstdint>

#include "strategies/goid/stack_table.h"

namespace gls {
namespace goid_internal {

// ReadStackPointer(): the running flow's stack pointer, read from the
// register. Not the address of a local: under ASan's
// detect_stack_use_after_return, locals live on a heap "fake stack", while
// the stack pointer stays on the real one. A frame never changes stacks, so
// the compiler may reuse the value within one function.
inline __attribute__((always_inline)) uintptr_t ReadStackPointer() {
  uintptr_t sp;
#if defined(__x86_64__)
  asm("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
  asm("mov %0, sp" : "=r"(sp));
#else
  sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
#endif
  return sp;
}

// GlobalStackTable(): the process-wide table the strategy reads. Tests may
// inspect it (Lookup, ForEachRun under mu()); only goid_strategy.cc writes.
StackTable& GlobalStackTable();

}  // namespace goid_internal
}  // namespace gls

#endif  // STRATEGIES_GOID_GOID_INTERNAL_H_
