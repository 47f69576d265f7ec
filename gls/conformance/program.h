// gls/conformance/program.h: random programs for the differential test:
// their representation, a seeded generator, a decoder from fuzzer bytes, a
// readable printer and a delta-debugging minimizer.
//
// What this is for: describing, as data, a sequence of gls operations
// (nested SetValues, reads, Go, captures run elsewhere, managers created,
// unregistered and destroyed, short threads with thread_local destructors,
// interleaved fibers) that gls/conformance/interpreter.h runs against a real
// strategy and the reference model at once. Being data, a failing program
// can be shrunk (drop operations while it still fails) and printed.
//
// What this is not: a language with semantics of its own. Ops whose
// preconditions do not hold when they are reached (a manager slot that is
// empty, a destroy while a scope is active) are skipped by the interpreter,
// so any subset of a program is again a valid program: that is what lets the
// minimizer drop operations freely.
//
// Guarantees: Generate is a pure function of (seed, options), DecodeProgram
// of (bytes, options, limits). Printing and minimizing are deterministic.
#ifndef GLS_CONFORMANCE_PROGRAM_H_
#define GLS_CONFORMANCE_PROGRAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gls/conformance/reference_model.h"

namespace gls {
namespace conformance {

// The key universe every program draws from, fixed per run: string keys,
// GenSym keys, TypedKey<int> and TypedKey<std::string>.
enum class KeyKind { kString, kGenSym, kTypedInt, kTypedString };
inline constexpr int kStringKeys = 3;
inline constexpr int kGenSymKeys = 3;
inline constexpr int kTypedIntKeys = 2;
inline constexpr int kTypedStringKeys = 2;
inline constexpr int kKeys =
    kStringKeys + kGenSymKeys + kTypedIntKeys + kTypedStringKeys;
KeyKind KindOfKey(KeyIndex key);
std::string KeyName(KeyIndex key);

// Managers an op names: the run's shared managers (alive for the whole run;
// per strategy an "A" and a "B", registered, and, when unregistering is on,
// a "U" unregistered before any program starts), then the program's
// private slots, which the program itself fills, unregisters and empties.
inline constexpr int kPrivateManagerSlots = 4;
// Snapshots a program keeps (captured in one place, run in another).
inline constexpr int kSnapshotSlots = 4;

// How a GetValue is issued (each compared with the model in its own way).
enum class ReadKind {
  kValuePtr,        // GetValue(KeyView) -> const Value*: symbol or string
  kStringView,      // string keys through std::string_view / std::string
  kTypedPtr,        // GetValue(TypedKey<T>) -> const T*: no type check
  kStatusOrInt,     // GetValue<int>(key) -> StatusOr: NotFound / type error
  kStatusOrString,  // GetValue<std::string>(key)
};

enum class OpKind {
  kSet,           // SetValues(manager, entries) { body }
  kGet,           // GetValue(manager, key) compared with the model
  kCheckAll,      // every key of every live manager, and GetValues()
  kGoroutineId,   // GetGoroutineId() presence, stability, uniqueness
  kEnsureId,      // EnsureGoroutineId { body }
  kThrow,         // throws; caught by the innermost catching op or flow root
  kGo,            // gls::Go { body }.join()
  kCapture,       // snapshot slot = gls::Capture()
  kRunHere,       // snapshot.Run { body } on this flow
  kRunOnWorker,   // the program's worker thread runs { body } (in a slot's
                  // snapshot, or in none: slot -1)
  kCreate,        // private manager slot = new ContextManager(strategy)
  kUnregister,    // manager.Unregister()
  kDestroy,       // delete private manager slot
  kShortThread,   // std::thread { body } with a thread_local whose
                  // destructor runs { dtor_body }, joined
  kFibers,        // several fibers on this thread, interleaved
  kYield,         // inside a fiber: switch back to its resumer
};

// A value an op sets for a key.
struct Entry {
  KeyIndex key;
  ModelValue value;
};

struct Op {
  OpKind kind = OpKind::kGet;
  int manager = 0;    // kSet, kGet, kUnregister, kGoroutineId/kEnsureId
                      // (whose strategy), kCreate/kDestroy (private slot)
  int strategy = 0;   // kCreate: strategy index in the run
  KeyIndex key = 0;   // kGet
  ReadKind read = ReadKind::kValuePtr;
  int slot = 0;       // kCapture, kRunHere, kRunOnWorker (-1: no snapshot)
  bool catch_here = false;      // kSet, kRunHere: try/catch around the call
  bool dtor_after_use = false;  // kShortThread: the thread_local is made
                                // after the thread used gls (destroyed
                                // before gls's per-thread cleanup), or
                                // before (destroyed after it)
  std::vector<Entry> entries;   // kSet
  std::vector<Op> body;
  std::vector<Op> dtor_body;            // kShortThread
  std::vector<std::vector<Op>> fibers;  // kFibers: each fiber's ops
  std::vector<int> schedule;            // kFibers: resume fiber i, or -1:
                                        // the resumer checks its own values
};

struct Program {
  uint64_t seed = 0;
  std::vector<Op> ops;
};

// What the run offers: how many strategies (managers of each exist), whether
// fibers are meaningful (not with thread_local), whether managers get
// unregistered (with none unregistered, gls takes its shortcuts).
struct ProgramOptions {
  int strategies = 1;
  bool fibers = false;
  bool unregister = true;
  int64_t target_ops = 1000;  // stops adding top-level ops once reached
};

// Managers of the run's shared set, per strategy: A, B and (with
// unregistering) U.
int SharedManagersPerStrategy(bool unregister);
int SharedManagerCount(const ProgramOptions& options);

// Generate(seed, options): a random program of about options.target_ops ops.
Program Generate(uint64_t seed, const ProgramOptions& options);

// Bounds on a decoded program (DecodeProgram).
struct DecodeLimits {
  int64_t max_ops = 64;      // ops in the whole tree (every node)
  int max_threads = 4;       // Go and short threads it starts (the
                             // interpreter's worker thread comes on top)
  int max_fiber_groups = 2;  // kFibers ops (2 to 4 fibers each)
};

// DecodeProgram(data, size, options, limits): the program the bytes describe,
// for a fuzzer. The same grammar as Generate, with every random choice read
// from `data` instead of a random generator: a choice among n options takes
// one byte (b % n; two bytes when n > 256), a yes/no of probability p takes
// one byte (yes when b < 256 p). Once the bytes run out every choice takes
// its first option (a read of A0 where an op is required, no more top-level
// ops). Every byte string decodes to a valid program; the same bytes always
// give the same program; it has at most limits.max_ops ops, starts at most
// limits.max_threads threads and limits.max_fiber_groups fiber groups.
// options.target_ops is not used.
Program DecodeProgram(const uint8_t* data, size_t size,
                      const ProgramOptions& options,
                      const DecodeLimits& limits = DecodeLimits());

// CountOps(ops): ops in a tree (every node).
int64_t CountOps(const std::vector<Op>& ops);

// Print(program, options): readable text, one op per line, nested by
// indentation, each op numbered in preorder (the numbers divergence
// messages use).
std::string Print(const Program& program, const ProgramOptions& options);
std::string DescribeOp(const Op& op, const ProgramOptions& options);
// DescribeEntries(entries): "key=value, ..." (SetValues' values, as Print
// shows them; the integration programs' too).
std::string DescribeEntries(const std::vector<Entry>& entries);

// Minimize(program, fails, max_trials): delta debugging (ddmin) over the
// program's ops: drops ops (with everything nested in them) while `fails`
// still returns true, then tries each remaining op alone, until no single
// op can go or `max_trials` runs of `fails` are spent. `fails(program)`
// must be true for the input.
Program Minimize(const Program& program,
                 const std::function<bool(const Program&)>& fails,
                 int max_trials);

}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_PROGRAM_H_
