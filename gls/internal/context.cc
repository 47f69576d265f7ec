#include "gls/internal/context.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include <unistd.h>

namespace gls {

namespace internal {
constinit const FrameHead no_frame;
constinit Context unbound_context;
}  // namespace internal

size_t Context::MemoryBytes() const {
  return sizeof(Context) + overflow_capacity_ * sizeof(internal::FrameHead*);
}

void Context::Grow(uint32_t slot) {
  const uint32_t needed = slot - kInlineSlots + 1;
  uint32_t capacity = overflow_capacity_ == 0 ? 8 : overflow_capacity_ * 2;
  while (capacity < needed) capacity *= 2;
  auto* grown = new const internal::FrameHead*[capacity];
  for (uint32_t i = 0; i < capacity; ++i) {
    grown[i] = i < overflow_capacity_ ? overflow_[i] : &internal::no_frame;
  }
  const internal::FrameHead** old = overflow_;
  // A signal handler on this thread reads overflow_capacity_ then overflow_:
  // publish the larger table first, so whatever it reads is in bounds.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  overflow_ = grown;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  overflow_capacity_ = capacity;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  delete[] old;
}

void Context::ClearSlots() {
  for (uint32_t i = 0; i < kInlineSlots; ++i) {
    inline_slots_[i] = &internal::no_frame;
  }
  for (uint32_t i = 0; i < overflow_capacity_; ++i) {
    overflow_[i] = &internal::no_frame;
  }
  std::atomic_signal_fence(std::memory_order_release);
}

void Context::CopyViewState(const Context* view) {
  // A signal handler on this thread reads this context only once the
  // strategy binds it, after this.
  for (uint32_t i = 0; i < kInlineSlots; ++i) inline_slots_[i] = view->inline_slots_[i];
  top_ = view->top_;
  run_base_ = view->run_base_;
  materialized_from_ = view;
  std::atomic_signal_fence(std::memory_order_release);
}

void Context::ClearViewState() {
  ClearSlots();
  SetTop(nullptr);
  run_base_ = nullptr;
  materialized_from_ = nullptr;
}

namespace internal {

// The pool: contexts live in fixed-size chunks published through an array of
// atomic pointers, so ContextWithId needs no lock and a context never moves.
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
    if (chunk >= kMaxChunks || id >= limit_) {
      std::fprintf(stderr,
                   "gls: more than %llu contexts are live at once; "
                   "is a SetValues scope or Go thread leaking?\n",
                   static_cast<unsigned long long>(limit_));
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

  ContextPoolStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return ContextPoolStats{next_id_, released_.size()};
  }

  void SetLimit(uint64_t max_created) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = max_created;
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
  uint64_t limit_ = kMaxChunks * kChunkSize;  // guarded by mu_
  std::atomic<Context*> chunks_[kMaxChunks] = {};
};

constinit thread_local ThreadContextCache thread_context_cache
    __attribute__((tls_model("initial-exec")));

namespace {

// Hands the cached context back to the shared pool when the thread exits,
// and from then on keeps the cache out of the way. Constructed on the
// thread's first release, so its destructor runs before that of any
// thread_local constructed earlier and after any constructed later: both
// orders are safe, since a destructor running after this one finds `exited`
// set and talks to the shared pool directly.
struct ThreadCacheFlusher {
  // Arm(): any member access constructs the thread_local, which registers
  // its destructor with the runtime.
  void Arm() { armed = true; }
  bool armed = false;
  ~ThreadCacheFlusher() {
    ThreadContextCache& cache = thread_context_cache;
    cache.exited = true;
    Context* ctx = cache.ctx;
    cache.ctx = nullptr;  // before releasing: never hand out a pooled context
    if (ctx != nullptr) ContextPool::Get().Release(ctx);
  }
};
thread_local ThreadCacheFlusher thread_cache_flusher;

}  // namespace

void WarnFiberMisuseOnce(std::atomic<bool>& flag, const char* what) {
  if (flag.exchange(true)) return;
  std::fprintf(stderr,
               "gls: %s; are fibers switching inside SetValues scopes under "
               "the thread_local strategy? Use the stack_tag or goid strategy "
               "for fibers (docs/strategies.md).\n",
               what);
}

Context* AcquireContextSlow() { return ContextPool::Get().Acquire(); }

void SetContextLimitForTesting(uint64_t max_created) {
  ContextPool::Get().SetLimit(max_created);
}

constinit thread_local bool in_set_values_bookkeeping
    __attribute__((tls_model("initial-exec"))) = false;

void AbortSetValuesReentered() {
  static constexpr char kMessage[] =
      "gls: SetValues was called while gls was changing this thread's "
      "values (from a signal handler that interrupted a SetValues, or from a "
      "value's copy constructor); SetValues is not async-signal-safe "
      "(GetValue is). Aborting rather than corrupting the thread's state.\n";
  // write(2): async-signal-safe, unlike stdio.
  [[maybe_unused]] const ssize_t n = write(2, kMessage, sizeof kMessage - 1);
  std::abort();
}

constinit thread_local int open_scope_guards
    __attribute__((tls_model("initial-exec"))) = 0;

void AbortScopeGuardAcrossSuspension() {
  std::fprintf(stderr,
               "gls: a gls::ScopedValues or gls::ScopedSnapshot guard was "
               "still open when a gls::Task suspended at a co_await. A "
               "guard's scope belongs to the thread it was made on, and the "
               "task may resume on another: the thread's next work would see "
               "the guard's values. End the guard before the co_await, or "
               "give the task values with gls::WithValues. Aborting.\n");
  std::abort();
}

void PinFrameOfView(const Context* view) {
  static std::mutex* mu = new std::mutex;
  static std::vector<const FrameHead*>* pinned = new std::vector<const FrameHead*>;
  for (uint32_t slot = 0; slot < Context::kInlineSlots; ++slot) {
    const FrameHead* head = view->InlineSlotForRead(slot);
    if (head == &no_frame) continue;
    // Only frames are stored in a view's slots, and frames are never const.
    const_cast<FrameHead*>(head)->refs.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(*mu);
    pinned->push_back(head);
  }
}

void AbortGuardOutlivedItsScope() {
  std::fprintf(stderr,
               "gls: a SetValues, Snapshot::Run or gls::Bind scope ended while "
               "a gls::ScopedValues or gls::ScopedSnapshot guard made inside "
               "it was still open. The guard's values would stay installed in "
               "this flow after the scope, where its next work (another "
               "request's, on a pool thread) would see them. End a guard "
               "inside the scope it was made in. Aborting.\n");
  std::abort();
}

ContextPoolStats ContextPoolStatsForTesting() {
  return ContextPool::Get().Stats();
}

void ReleaseContextSlow(Context* ctx) {
  if (!ctx->IsEmpty()) {
    // Another flow still has values installed in this context: its scopes
    // began inside ours and have not ended. That happens when fibers switch
    // in the middle of SetValues scopes under a strategy that cannot tell
    // fibers apart. Pooling the context would hand it to a third flow while
    // in use; keeping it out of the pool costs one id.
    static std::atomic<bool> warned{false};
    WarnFiberMisuseOnce(warned,
                        "a context ended while scopes of another flow of "
                        "execution still use it (it is retired, not reused)");
    return;
  }
  ThreadContextCache& cache = thread_context_cache;
  if (!cache.exited && cache.ctx == nullptr) {
    if (!cache.armed) {
      thread_cache_flusher.Arm();
      cache.armed = true;
    }
    cache.ctx = ctx;
    return;
  }
  ContextPool::Get().Release(ctx);
}

}  // namespace internal

uint64_t ContextId(const Context& ctx) noexcept { return ctx.id(); }

Context* ContextWithId(uint64_t id) noexcept {
  return internal::ContextPool::Get().Find(id);
}

bool Strategy::CanAttach() const noexcept { return false; }

bool Strategy::Attach(Context* /*ctx*/) const { return false; }

void Strategy::Detach(Context* /*ctx*/) const {}

std::optional<uint64_t> Strategy::GetGoroutineId() const noexcept {
  const Context* ctx = Current();
  if (ctx == nullptr) return std::nullopt;
  return ctx->id();
}

void Strategy::EnsureGoroutineId(absl::FunctionRef<void(uint64_t)> cb) const {
  internal::EnsureContext(*this, [&](Context* ctx) { cb(ctx->id()); });
}

}  // namespace gls
