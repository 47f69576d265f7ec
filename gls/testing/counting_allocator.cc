#include "gls/testing/counting_allocator.h"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

constinit thread_local int64_t allocations_on_this_thread = 0;

void* CountedAllocate(size_t size) {
  ++allocations_on_this_thread;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* CountedAllocateAligned(size_t size, std::align_val_t align) {
  ++allocations_on_this_thread;
  const size_t a = static_cast<size_t>(align);
  void* p = std::aligned_alloc(a, (size + a - 1) / a * a);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* CountedAllocateNoThrow(size_t size) noexcept {
  try {
    return CountedAllocate(size);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

namespace gls {
namespace testing {
int64_t AllocationsOnThisThread() { return allocations_on_this_thread; }
}  // namespace testing
}  // namespace gls

void* operator new(size_t size) { return CountedAllocate(size); }
void* operator new[](size_t size) { return CountedAllocate(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return CountedAllocateNoThrow(size);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return CountedAllocateNoThrow(size);
}
void* operator new(size_t size, std::align_val_t align) {
  return CountedAllocateAligned(size, align);
}
void* operator new[](size_t size, std::align_val_t align) {
  return CountedAllocateAligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
