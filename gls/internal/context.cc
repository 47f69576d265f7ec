#include "gls/internal/context.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace gls {
namespace internal {

thread_local Context* tls_context = nullptr;

ScopedValues* Context::Exchange(size_t manager, ScopedValues* scope) {
  if (manager >= scopes_.size()) {
    if (scope == nullptr) return nullptr;
    scopes_.resize(manager + 1, nullptr);
  }
  ScopedValues* previous = scopes_[manager];
  scopes_[manager] = scope;
  live_ += static_cast<int>(scope != nullptr) - static_cast<int>(previous != nullptr);
  return previous;
}

ScopedValues::~ScopedValues() {
  ScopedValues* innermost = ctx_->Innermost(manager_);
  if (innermost == this) {
    ctx_->Exchange(manager_, previous_);
    return;
  }
  // Ending out of order: unlink from the newer scope that points at us.
  for (ScopedValues* s = innermost; s != nullptr; s = s->previous_) {
    if (s->previous_ == this) {
      s->previous_ = previous_;
      return;
    }
  }
}

// The pool: contexts live in fixed-size chunks published through an array of
// atomic pointers, so FindContext needs no lock and a context never moves.
// Released contexts are reused LIFO, as in the Go original's idPool; each
// thread keeps the one it released last, so the common outermost
// SetValues/return cycle on one thread takes no lock.
class ContextPool {
 public:
  static constexpr int kChunkBits = 10;
  static constexpr uint64_t kChunkSize = uint64_t{1} << kChunkBits;
  static constexpr uint64_t kMaxChunks = uint64_t{1} << 16;

  static ContextPool& Get() {
    static ContextPool* pool = new ContextPool;  // never destroyed
    return *pool;
  }

  Context* Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!released_.empty()) {
      Context* ctx = released_.back();
      released_.pop_back();
      return ctx;
    }
    const uint64_t id = next_id_;
    const uint64_t chunk = id >> kChunkBits;
    if (chunk >= kMaxChunks) {
      std::fprintf(stderr,
                   "gls: more than %llu contexts are live at once; "
                   "is a SetValues scope or Go thread leaking?\n",
                   static_cast<unsigned long long>(kMaxChunks * kChunkSize));
      std::abort();
    }
    Context* base = chunks_[chunk].load(std::memory_order_relaxed);
    if (base == nullptr) {
      base = new Context[kChunkSize];
      for (uint64_t i = 0; i < kChunkSize; ++i) {
        base[i].id_ = (chunk << kChunkBits) | i;
      }
      chunks_[chunk].store(base, std::memory_order_release);
    }
    ++next_id_;
    return &base[id & (kChunkSize - 1)];
  }

  void Release(Context* ctx) {
    std::lock_guard<std::mutex> lock(mu_);
    released_.push_back(ctx);
  }

  Context* Find(uint64_t id) const {
    const uint64_t chunk = id >> kChunkBits;
    if (chunk >= kMaxChunks) return nullptr;
    Context* base = chunks_[chunk].load(std::memory_order_acquire);
    return base == nullptr ? nullptr : &base[id & (kChunkSize - 1)];
  }

 private:
  ContextPool() = default;

  std::mutex mu_;
  std::vector<Context*> released_;  // guarded by mu_
  uint64_t next_id_ = 0;            // guarded by mu_
  std::atomic<Context*> chunks_[kMaxChunks] = {};
};

namespace {

// The context this thread released last, handed back before the shared pool
// is asked. Returned to the shared pool when the thread exits.
struct ThreadCache {
  Context* ctx = nullptr;
  bool alive = true;
  ~ThreadCache() {
    alive = false;
    if (ctx != nullptr) ContextPool::Get().Release(ctx);
  }
};
thread_local ThreadCache thread_cache;

}  // namespace

Context* AcquireContext() {
  ThreadCache& cache = thread_cache;
  if (cache.ctx != nullptr) {
    Context* ctx = cache.ctx;
    cache.ctx = nullptr;
    return ctx;
  }
  return ContextPool::Get().Acquire();
}

void ReleaseContext(Context* ctx) {
  if (!ctx->IsEmpty()) {
    // Another flow still has values installed in this context: its scopes
    // began inside ours and have not ended. That happens when fibers switch
    // in the middle of SetValues scopes under a strategy that cannot tell
    // fibers apart. Pooling the context would hand it to a third flow while
    // in use; keeping it out of the pool costs one id.
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      std::fprintf(stderr,
                   "gls: context %llu ended while scopes of another flow of "
                   "execution still use it; are fibers switching inside "
                   "SetValues scopes under the thread_local strategy? Use the "
                   "stack_tag or goid strategy for fibers (docs/strategies.md). "
                   "The context is retired, not reused.\n",
                   static_cast<unsigned long long>(ctx->id()));
    }
    return;
  }
  ThreadCache& cache = thread_cache;
  if (cache.alive && cache.ctx == nullptr) {
    cache.ctx = ctx;
    return;
  }
  ContextPool::Get().Release(ctx);
}

Context* FindContext(uint64_t id) { return ContextPool::Get().Find(id); }

}  // namespace internal
}  // namespace gls
