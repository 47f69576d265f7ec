#include "gls/scoped_values.h"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "gls/internal/context.h"
#include "gls/internal/frame.h"

namespace gls {
namespace {

static_assert(sizeof(internal::Scope) <= ScopedValues::kScopeBytes &&
                  alignof(internal::Scope) <= alignof(void*),
              "ScopedValues::kScopeBytes is too small for internal::Scope");

internal::Scope* ScopeIn(unsigned char* storage) {
  return std::launder(reinterpret_cast<internal::Scope*>(storage));
}

void DetachAndRelease(const Strategy& strategy, Context* ctx) noexcept {
  ctx->set_attached_by_guard(false);
  strategy.Detach(ctx);
  internal::ReleaseContext(ctx);
}

// Throws std::logic_error naming `who` and the strategy unless `strategy`
// can attach a context to a flow.
void CheckCanAttach(const Strategy& strategy, const char* who) {
  if (strategy.CanAttach()) return;
  throw std::logic_error(
      std::string(who) + ": the " + std::string(strategy.name()) +
      " strategy cannot hold values without a function to run them in (it "
      "finds a flow's values through its callers' stack frames, which only "
      "a call can write); use ContextManager::SetValues(values, fn) or "
      "Snapshot::Run(fn), or a strategy that can attach (thread_local, "
      "goid)");
}

// A fresh context from the pool, attached to the running flow under
// `strategy`; throws std::logic_error naming `who` if the strategy cannot
// attach here.
Context* AttachNewContext(const Strategy& strategy, const char* who) {
  Context* ctx = internal::AcquireContext();
  bool attached = false;
  try {
    attached = strategy.Attach(ctx);
  } catch (...) {
    internal::ReleaseContext(ctx);
    throw;
  }
  if (!attached) {
    internal::ReleaseContext(ctx);
    throw std::logic_error(std::string(who) + ": the " +
                           std::string(strategy.name()) +
                           " strategy cannot attach a context to this flow "
                           "now (a thread that is exiting?)");
  }
  return ctx;
}

[[noreturn]] void AbortEndedInAnotherFlow(const char* who) {
  std::fprintf(stderr,
               "gls: a %s guard was destroyed in another flow of execution "
               "(thread, fiber) than the one it was made in. That flow still "
               "has the guard's values installed and cannot be changed from "
               "here; its next work would see them. Guards end where they "
               "began. Aborting.\n",
               who);
  std::abort();
}

// Ends a guard's `scope` in `ctx`: checks the flow, reports an out-of-order
// end, restores, and releases the context if a guard attached it and no
// scope is left in it.
void EndGuardScope(Context* ctx, const Strategy& strategy,
                   internal::Scope* scope, const char* who) noexcept {
  if (strategy.Current() != ctx) AbortEndedInAnotherFlow(who);
  internal::SetValuesBookkeeping bookkeeping;
  if (ctx->innermost_scope() != scope) {
    // internal::Scope defines this end: newer scopes restore, when they
    // end, what this one would have; its values stay visible until then.
    std::fprintf(stderr,
                 "gls: a %s guard ended while a scope made after it on the "
                 "same flow is still open (guards end innermost first); its "
                 "values stay visible until that scope ends, and then the "
                 "values from before it are back.\n",
                 who);
  }
  ctx->set_open_guards(ctx->open_guards() - 1);
  scope->~Scope();
  if (ctx->attached_by_guard() && ctx->innermost_scope() == nullptr) {
    DetachAndRelease(strategy, ctx);
  }
}

}  // namespace

ScopedValues::ScopedValues(ContextManager& mgr, const Values& values) {
  const Strategy& strategy = mgr.strategy();
  CheckCanAttach(strategy, "gls::ScopedValues");
  if (values.empty()) return;
  internal::SetValuesBookkeeping bookkeeping;
  Context* ctx = strategy.Current();
  const bool attach = ctx == nullptr;
  if (attach) ctx = AttachNewContext(strategy, "gls::ScopedValues");
  try {
    new (scope_) internal::Scope(ctx, mgr.NewFrameIn(ctx, values));
    ScopeIn(scope_)->MarkAsGuard();
  } catch (...) {
    if (attach) DetachAndRelease(strategy, ctx);
    throw;
  }
  if (attach) ctx->set_attached_by_guard(true);
  ctx->set_open_guards(ctx->open_guards() + 1);
  ctx_ = ctx;
  strategy_ = &strategy;
  ++internal::open_scope_guards;
}

ScopedValues::~ScopedValues() {
  if (ctx_ == nullptr) return;
  EndGuardScope(ctx_, *strategy_, ScopeIn(scope_), "gls::ScopedValues");
  --internal::open_scope_guards;
}

ScopedSnapshot::ScopedSnapshot(const Snapshot& snapshot) : snapshot_(snapshot) {
  internal::SetValuesBookkeeping bookkeeping;
  try {
    // The snapshot's frame in its strategy's context, for each strategy it
    // has values of.
    internal::Frame* frames[internal::kMaxStrategies];
    const int count = snapshot_.Frames(frames);
    for (int i = 0; i < count; ++i) {
      CheckCanAttach(*frames[i]->strategy(), "gls::ScopedSnapshot");
    }
    for (int i = 0; i < count; ++i) {
      internal::Frame* frame = frames[i];
      Install(frame->strategy()->Current(), frame->strategy(), frame);
    }
    // Nothing, in every other context that has values here (of any live
    // manager, registered or not): the snapshot had none of them.
    const Strategy* strategies[internal::kMaxStrategies];
    const int n = internal::LiveStrategies(strategies);
    for (int j = 0; j < n; ++j) {
      Context* ctx = strategies[j]->Current();
      if (ctx == nullptr || ctx->IsEmpty()) continue;
      bool installed = false;
      for (int k = 0; k < count_; ++k) installed |= installed_[k].ctx == ctx;
      if (installed) continue;
      CheckCanAttach(*strategies[j], "gls::ScopedSnapshot");
      Install(ctx, strategies[j], nullptr);
    }
  } catch (...) {
    Uninstall();
    throw;
  }
  if (count_ != 0) ++internal::open_scope_guards;
}

ScopedSnapshot::~ScopedSnapshot() {
  if (count_ == 0) return;
  Uninstall();
  --internal::open_scope_guards;
}

void ScopedSnapshot::Install(Context* ctx, const Strategy* strategy,
                             internal::Frame* frame) {
  const bool attach = ctx == nullptr;
  if (attach) ctx = AttachNewContext(*strategy, "gls::ScopedSnapshot");
  Installed& slot = installed_[count_];
  try {
    new (slot.scope) internal::Scope(ctx, frame, internal::Scope::InstallTag{});
    ScopeIn(slot.scope)->MarkAsGuard();
  } catch (...) {
    if (attach) DetachAndRelease(*strategy, ctx);
    throw;
  }
  if (attach) ctx->set_attached_by_guard(true);
  ctx->set_open_guards(ctx->open_guards() + 1);
  slot.ctx = ctx;
  slot.strategy = strategy;
  ++count_;
}

void ScopedSnapshot::Uninstall() noexcept {
  for (int k = count_ - 1; k >= 0; --k) {
    EndGuardScope(installed_[k].ctx, *installed_[k].strategy,
                  ScopeIn(installed_[k].scope), "gls::ScopedSnapshot");
  }
  count_ = 0;
}

}  // namespace gls
