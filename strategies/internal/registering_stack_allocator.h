// strategies/internal/registering_stack_allocator.h: a stack allocator that
// tells a strategy about every stack it hands out. Behind
// gls::goid::RegisteredStackAllocator and
// gls::stack_tag::RegisteredStackAllocator; not a public API (use those).
//
// RegisteringStackAllocator<Base, Register, Unregister> wraps a Boost.Context
// / Boost.Fiber StackAllocator (`stack_context allocate()`,
// `void deallocate(stack_context&)`): allocate() calls Register(lo, size)
// for the stack [sp - size, sp) that Base handed out (and gives the stack
// back if Register throws), deallocate() calls Unregister(lo, size) before
// Base frees it. Copyable if Base is.
#ifndef STRATEGIES_INTERNAL_REGISTERING_STACK_ALLOCATOR_H_
#define STRATEGIES_INTERNAL_REGISTERING_STACK_ALLOCATOR_H_

#include <cstddef>
#include <utility>

namespace gls {
namespace strategies_internal {

template <typename Base, void (*Register)(void*, size_t),
          void (*Unregister)(void*, size_t) noexcept>
class RegisteringStackAllocator {
 public:
  RegisteringStackAllocator() = default;
  explicit RegisteringStackAllocator(Base base) : base_(std::move(base)) {}

  auto allocate() {
    auto sctx = base_.allocate();
    try {
      Register(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
    } catch (...) {
      base_.deallocate(sctx);
      throw;
    }
    return sctx;
  }

  template <typename StackContext>
  void deallocate(StackContext& sctx) noexcept {
    Unregister(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
    base_.deallocate(sctx);
  }

  // base(): the wrapped allocator.
  Base& base() { return base_; }

 private:
  Base base_;
};

}  // namespace strategies_internal
}  // namespace gls

#endif  // STRATEGIES_INTERNAL_REGISTERING_STACK_ALLOCATOR_H_
