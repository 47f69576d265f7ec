// gls/conformance/integration_program.h: random executor programs for the
// integration differential test: their representation, a seeded generator,
// a decoder from fuzzer bytes, a readable printer and a delta-debugging
// minimizer.
//
// What this is for: describing, as data, what a server does with gls and
// its integrations: requests entering scopes (SetValues with values no
// other request has), nested scopes inside work, posts (post, dispatch,
// defer, bind_executor) to an io_context run by several threads, to a strand
// shared by every request, to per-request strands and to an
// asio::thread_pool, all through gls::asio::Propagating (and some through
// the unwrapped executors, which carry nothing); steady timers started in
// one flow and sometimes cancelled by another; co_spawn'ed asio::awaitable
// coroutines that co_await posts, timers and nested awaitables; gls::Tasks
// hopping between executors, awaiting sub-tasks (some given more values with
// gls::WithValues); gls::Bind callables run on other threads or inside other
// scopes; spdlog lines logged asynchronously, formatted with the gls flag.
// The interpreter (integration_interpreter.h) runs a program for real and
// checks every step against what the model (integration_model.h) predicts.
//
// What this is not: a language with semantics of its own. Steps appear only
// where they make sense (a co_await only at the top of a coroutine's body, a
// hop only at the top of a task's body, a SyncWait only on the program's own
// thread), so any subset of a program obtained by dropping steps (with what
// is nested in them) is again a valid program: that is what lets the
// minimizer drop steps freely. A step the interpreter finds in a place where
// it cannot run is skipped, with everything nested in it.
//
// Guarantees: Generate is a pure function of (seed, options), DecodeProgram
// of (bytes, options, limits). Every value a program sets is different from
// every other value it sets (values are numbered in generation order), so a
// step that sees another request's or another scope's values cannot go
// unnoticed. Printing and minimizing are deterministic.
#ifndef GLS_CONFORMANCE_INTEGRATION_PROGRAM_H_
#define GLS_CONFORMANCE_INTEGRATION_PROGRAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gls/conformance/program.h"
#include "gls/conformance/reference_model.h"

namespace gls {
namespace conformance {
namespace integration {

// Keys: the core differential test's universe (program.h: string keys,
// GenSym keys, TypedKey<int>, TypedKey<std::string>). Managers: per strategy
// of the run, an "A" and a "B", registered, alive for the whole run; manager
// index 2 * strategy + {0 for A, 1 for B}.
int ManagerCount(int strategies);
std::string ManagerName(int manager);

// Where a step sends work. The wrapped targets carry the submitter's values
// into the work (gls/contrib/asio.h); the raw ones carry nothing.
enum class Target {
  kIo,             // gls::asio::Propagating(io.get_executor())
  kPool,           // gls::asio::Propagating(pool.get_executor())
  kSharedStrand,   // boost::asio::make_strand(<kIo>), one per program,
                   // shared by every request (a strand over the wrapper)
  kRequestStrand,  // boost::asio::make_strand(<kIo>), one per request (per
                   // top-level step), made when the request starts
  kWrappedStrand,  // gls::asio::Propagating(make_strand(io.get_executor())),
                   // one per program, shared (the wrapper over a strand)
  kRawIo,          // io.get_executor(): work sees nothing
  kRawPool,        // pool.get_executor(): work sees nothing
};
inline constexpr int kTargets = 7;
// Carries(target): work submitted through it sees the submitter's values.
bool Carries(Target target);
// OverWrapper(target): a strand made over the wrapped executor (what
// ProgramOptions::strands_over_wrapper switches).
bool OverWrapper(Target target);
std::string TargetName(Target target);

// How a kPost step submits its work.
enum class Submit {
  kPost,          // boost::asio::post(target, handler)
  kDispatch,      // boost::asio::dispatch(target, handler): inline when the
                  // caller already runs in the target (wrapped targets only:
                  // an inline dispatch through a raw executor would run in
                  // the caller's values, a placement the model cannot know)
  kDefer,         // boost::asio::defer(target, handler)
  kBindExecutor,  // boost::asio::post(io.get_executor(),
                  //   boost::asio::bind_executor(target, handler))
                  // (wrapped targets only)
};

// What a kAwait step awaits, inside an asio::awaitable.
enum class AwaitKind {
  kPost,    // co_await boost::asio::post(target, use_awaitable)
  kTimer,   // co_await steady_timer(target, delay).async_wait(use_awaitable)
  kNested,  // co_await an awaitable running the step's body
};

// Where a kBind step calls its gls::Bind callable.
enum class BindWhere {
  kRawIo,      // posted to io.get_executor()
  kRawPool,    // posted to pool.get_executor()
  kThread,     // a new std::thread (joined when the program ends)
  kElsewhere,  // called right away, inside a scope of other values
};

enum class StepKind {
  kScope,        // mgr.SetValues(entries) { body }: a request at top level,
                 // a nested scope inside work
  kCheck,        // every step checks what it sees; this one does nothing else
  kPost,         // submit { body } to target (see Submit)
  kTimer,        // timer slot = steady_timer(target, delay); its async_wait
                 // handler runs { body }
  kCancelTimer,  // timer slot's latest timer .cancel() (from this flow)
  kCoSpawn,      // co_spawn(target, awaitable { body }, completion)
  kAwait,        // top of an awaitable's body only: see AwaitKind
  kTask,         // gls::SyncWait(gls::Task { body }): the program's own
                 // thread only (so nothing an executor needs is blocked)
  kHop,          // top of a task's body only: co_await an awaitable that
                 // resumes the task through target
  kSubTask,      // top of a task's body only: co_await a child gls::Task
                 // { body } made here, through gls::WithValues(manager,
                 // entries) when there are entries
  kBind,         // gls::Bind({ body }), called where `where` says
  kLog,          // a spdlog line logged on this flow through gls's async
                 // logger, formatted with gls's flag on spdlog's worker
};

// Timer slots a program's timers go into (a cancel names a slot).
inline constexpr int kTimerSlots = 4;

struct Step {
  StepKind kind = StepKind::kCheck;
  int manager = 0;             // kScope, kSubTask
  std::vector<Entry> entries;  // kScope, kSubTask (none: no WithValues)
  Target target = Target::kIo;  // kPost, kTimer, kCoSpawn, kAwait, kHop
  Submit submit = Submit::kPost;
  AwaitKind await = AwaitKind::kPost;
  BindWhere where = BindWhere::kRawIo;
  int slot = 0;      // kTimer, kCancelTimer
  int delay_us = 0;  // kTimer, kAwait kTimer
  std::vector<Step> body;
};

struct Program {
  uint64_t seed = 0;
  std::vector<Step> steps;
};

struct ProgramOptions {
  int strategies = 1;
  // Whether programs use strands made over the wrapped executor
  // (kSharedStrand, kRequestStrand): bug 1 of issue 18 is there.
  bool strands_over_wrapper = true;
  // Whether programs log (kLog).
  bool log = true;
  int64_t target_steps = 1000;  // stops adding top-level steps once reached
};

// Generate(seed, options): a random program of about options.target_steps
// steps; most top-level steps are requests (kScope).
Program Generate(uint64_t seed, const ProgramOptions& options);

// Bounds on a decoded program.
struct DecodeLimits {
  int64_t max_steps = 64;  // steps in the whole tree
  int max_threads = 2;     // kBind steps that start a thread
};

// DecodeProgram(data, size, options, limits): the program the bytes
// describe, for a fuzzer: Generate's grammar with every choice read from
// `data` (a choice among n options takes one byte, b % n, two when n > 256;
// a yes/no of probability p one byte, yes when b < 256 p; once the bytes run
// out every choice takes its first option and no more top-level steps come).
// Every byte string decodes to a valid program; the same bytes always give
// the same program. options.target_steps is not used.
Program DecodeProgram(const uint8_t* data, size_t size,
                      const ProgramOptions& options,
                      const DecodeLimits& limits = DecodeLimits());

// CountSteps(steps): steps in a tree (every node).
int64_t CountSteps(const std::vector<Step>& steps);

// Print(program): one step per line, nested by indentation, each step
// numbered in preorder (the numbers divergence messages use).
std::string Print(const Program& program);
std::string DescribeStep(const Step& step);

// Minimize(program, fails, max_trials): hierarchical delta debugging over
// the program's steps: level by level from the top, drops steps (with
// everything nested in them) as program.h's Minimize does, while `fails`
// still returns true; then tries putting each step's body in its place
// (a SetValues' body, a handler's, a task's, ...) and dropping single values
// (one stays); repeats until a whole pass changes nothing or `max_trials`
// runs of `fails` are spent. Every candidate is a valid program (steps that
// end up where they cannot run are skipped). `fails(program)` must be true
// for the input.
Program Minimize(const Program& program,
                 const std::function<bool(const Program&)>& fails,
                 int max_trials);

}  // namespace integration
}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_INTEGRATION_PROGRAM_H_
