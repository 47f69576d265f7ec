// gls/testing/counting_allocator.h: counts the calling thread's heap
// allocations, for tests of "allocates nothing" guarantees.
//
// What this is for: a test binary that links //gls/testing:counting_allocator
// gets replacement global operator new/delete (every form: plain, array,
// nothrow, aligned) that forward to malloc/free and count each allocation on
// the allocating thread. A guarantee such as "GetValue allocates nothing" is
// then checked by counting around the call.
//
// What this is not: a leak checker or a byte counter (the soak test keeps
// its own, which counts live bytes), or anything for production binaries.
// Linking it replaces the allocator of the whole test binary.
//
// Example:
//
//   EXPECT_EQ(gls::testing::AllocationsDuring([&] { mgr.GetValue(kKey); }), 0);
#ifndef GLS_TESTING_COUNTING_ALLOCATOR_H_
#define GLS_TESTING_COUNTING_ALLOCATOR_H_

#include <cstdint>

namespace gls {
namespace testing {

// AllocationsOnThisThread()
//
// How many times the calling thread has called a global operator new so far.
int64_t AllocationsOnThisThread();

// AllocationsDuring(fn)
//
// Calls `fn()` and returns how many allocations the calling thread made
// meanwhile (allocations `fn` causes on other threads are not counted).
template <typename F>
int64_t AllocationsDuring(F&& fn) {
  const int64_t before = AllocationsOnThisThread();
  fn();
  return AllocationsOnThisThread() - before;
}

}  // namespace testing
}  // namespace gls

#endif  // GLS_TESTING_COUNTING_ALLOCATOR_H_
