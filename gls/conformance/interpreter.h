// gls/conformance/interpreter.h: runs a random program (program.h) against
// real gls managers of given strategies and the reference model
// (reference_model.h) side by side, and reports every divergence.
//
// What this is for: the differential test and its minimizer. Every GetValue
// (in every way it can be called), GetValues, GetGoroutineId and SetValues
// return value is compared with what the model predicts at that point.
//
// What this is not: a gtest. It never asserts; divergences come back as
// text, so they can be collected from other threads, thread_local
// destructors and fibers, and so a failing program can be rerun while it is
// being minimized.
//
// Guarantees: the shared managers of a World are alive from its construction
// to its destruction; U managers are unregistered before any program runs
// and never re-registered (Unregister on them again is the "Unregister
// twice" case). Several programs may run on one World at once, each on its
// own thread; a program touches only the shared managers and its own private
// ones, snapshots and worker. Ops whose preconditions do not hold are
// skipped and counted.
#ifndef GLS_CONFORMANCE_INTERPRETER_H_
#define GLS_CONFORMANCE_INTERPRETER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gls/conformance/program.h"
#include "gls/conformance/reference_model.h"
#include "gls/context_manager.h"
#include "gls/strategy.h"
#include "gls/values.h"

namespace gls {
namespace conformance {

struct RunSetup {
  // Index i is the program's strategy i.
  std::vector<const Strategy*> strategies;
  ProgramOptions options;
  // Fiber stacks must be registered with the goid strategy.
  bool register_fiber_stacks = false;
};

// MakeRunSetup(strategies, fibers, register_fiber_stacks, unregister): the
// setup of a run over `strategies` (options.strategies their count), as the
// differential test and its fuzz target make it.
RunSetup MakeRunSetup(std::vector<const Strategy*> strategies, bool fibers,
                      bool register_fiber_stacks, bool unregister);

// World
//
// What the programs of one run share: the keys and the shared managers.
class World {
 public:
  explicit World(RunSetup setup);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const RunSetup& setup() const { return setup_; }
  const std::string& string_key(int i) const { return string_keys_[i]; }
  ContextKey gensym(int i) const { return gensyms_[i]; }
  const TypedKey<int>& typed_int(int i) const { return typed_ints_[i]; }
  const TypedKey<std::string>& typed_text(int i) const {
    return typed_texts_[i];
  }
  ContextManager& shared(int i) const { return *shared_[i]; }
  // The key index a Values entry of this world's keys has (-1: none).
  KeyIndex IndexOf(const Key& key) const;
  // MakeValues(entries): the entries as gls::Values of this world's keys
  // (typed keys through their TypedKey), set in order (a repeated key: the
  // last one wins).
  Values MakeValues(const std::vector<Entry>& entries) const;

 private:
  RunSetup setup_;
  std::vector<std::string> string_keys_;
  std::vector<ContextKey> gensyms_;
  std::vector<TypedKey<int>> typed_ints_;
  std::vector<TypedKey<std::string>> typed_texts_;
  std::vector<std::unique_ptr<ContextManager>> shared_;
};

struct ProgramResult {
  int64_t ops = 0;      // ops executed (each node each time it runs)
  int64_t reads = 0;    // values compared with the model
  int64_t present_reads = 0;  // of which the model expected a value
  int64_t skipped = 0;  // ops whose preconditions did not hold
  int64_t threads = 0;  // threads started (Go, short threads)
  int64_t fibers = 0;
  int64_t divergence_count = 0;
  // The first divergences, as text naming the op's preorder number.
  std::vector<std::string> divergences;
  // The top-level op during which the first divergence happened (-1: none).
  int first_divergence_top_level = -1;
};

// RunProgram(world, program): runs `program` on the calling thread (and the
// threads and fibers it starts), comparing with the model.
ProgramResult RunProgram(World& world, const Program& program);

// --- What gls returned against what the model wants -------------------------
// (this interpreter's and the integration interpreter's reads alike)

// Divergences a run keeps as text (the rest are only counted).
inline constexpr size_t kMaxReported = 20;

// Describe(got): a read's result as divergence messages show it: "not
// found", a number, a quoted string.
std::string Describe(const Value* value);
std::string Describe(const int* value);
std::string Describe(const std::string* value);
std::string Describe(const std::optional<ModelValue>& value);

// Same(got, want): an untyped read (GetValue -> const Value*) gives the
// model's value (same type and contents), or nothing where it has none.
bool Same(const Value* value, const std::optional<ModelValue>& want);
// A typed read (TypedKey<T>): the value as a T, or absent.
template <typename T>
bool Same(const T* value, const std::optional<ModelValue>& want) {
  if (value == nullptr || !want.has_value()) {
    return value == nullptr && !want.has_value();
  }
  const T* expected = std::get_if<T>(&*want);
  return expected != nullptr && *value == *expected;
}

// A GetValue<T> (StatusOr) read: NotFound when absent, the value when a T,
// FailedPrecondition when present as another type.
template <typename T>
bool SameStatusOr(const absl::StatusOr<T>& got,
                  const std::optional<ModelValue>& want) {
  if (!want.has_value()) return absl::IsNotFound(got.status());
  if (const T* expected = std::get_if<T>(&*want)) {
    return got.ok() && *got == *expected;
  }
  return absl::IsFailedPrecondition(got.status());
}
template <typename T>
std::string DescribeStatusOr(const absl::StatusOr<T>& got) {
  if (!got.ok()) return got.status().ToString();
  std::ostringstream out;
  out << "OK " << *got;
  return out.str();
}

}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_INTERPRETER_H_
