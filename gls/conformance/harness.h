// gls/conformance/harness.h: what the core differential harness (program.h,
// interpreter.h, differential_test.cc, differential_fuzz.cc) and the
// integration one (integration_program.h, integration_interpreter.h,
// integration_differential_test.cc, integration_differential_fuzz.cc) share:
// seeds and knobs from the environment, the random (or fuzzer-decoded)
// choices the generators make, delta debugging's reduction loop, and the
// fuzz targets' per-case totals.
//
// What this is for: one copy of the logic both harnesses must get the same
// way. What this is not: anything about programs, models or strategies; each
// harness keeps its own program representation, model and interpreter.
//
// Guarantees: every function here is deterministic except EnvSeed with
// "random". Choices makes, for a given seed or byte string, exactly the
// choices the generators have always made: the programs a seed or a fuzz
// input gives (and so the fuzz corpora and the minimized programs recorded in
// docs/) depend on it, so its draws must never change.
#ifndef GLS_CONFORMANCE_HARNESS_H_
#define GLS_CONFORMANCE_HARNESS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace gls {
namespace conformance {

// --- Environment and seeds --------------------------------------------------

// EnvSeed(name): the run's seed from environment variable `name`: 1 when
// unset or empty, a fresh random one for "random", else the number (strtoull,
// base 0). Tests print it with every failure, to rerun with.
uint64_t EnvSeed(const char* name);

// EnvInt(name, fallback): environment variable `name` as a number (strtoll,
// base 0), `fallback` when unset or empty.
int64_t EnvInt(const char* name, int64_t fallback);

// Mix(seed, a, b, c): a program's own seed, from the run's seed and where
// it runs (case, round, program index).
uint64_t Mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

// WarmUpUnwinder(): throws and catches one exception on the calling thread.
// The stack_tag strategy links libunwind, whose _Unwind_RaiseException then
// unwinds every C++ exception; its lazy one-time init writes a global signal
// mask outside its lock, a race TSan reports when the first throws happen on
// several threads at once. Call this single-threaded before those.
void WarmUpUnwinder();

// --- The generators' choices ------------------------------------------------

// Choices
//
// Where a generator's random choices come from: a seeded std::mt19937_64
// (Generate), or a fuzzer's bytes (DecodeProgram). Decoding, a choice among
// n options takes one byte (b % n; two bytes when n > 256), a yes/no of
// probability p takes one byte (yes when b < 256 p), and once the bytes run
// out every choice takes its first option.
class Choices {
 public:
  // Random choices from `seed`.
  explicit Choices(uint64_t seed) : rng_(seed) {}
  // Every choice read from `data` (not copied: it must outlive this).
  Choices(const uint8_t* data, size_t size)
      : rng_(0), decoding_(true), data_(data), size_(size) {}

  bool decoding() const { return decoding_; }
  // Decoding: whether bytes are left.
  bool bytes_left() const { return pos_ < size_; }

  // A number in [lo, hi].
  int Uniform(int lo, int hi) {
    if (decoding_) return lo + static_cast<int>(Read(hi - lo));
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  // Yes with probability p.
  bool Chance(double p) {
    if (decoding_) return pos_ < size_ && data_[pos_++] < p * 256;
    return std::bernoulli_distribution(p)(rng_);
  }
  // One choice among weighted options (one Uniform over the total weight);
  // weight 0 is never chosen. The first option with weight is the default
  // once decoding runs out of bytes.
  template <typename T, size_t N>
  T Pick(const std::pair<T, int> (&choices)[N]) {
    int total = 0;
    for (const auto& c : choices) total += c.second;
    int r = Uniform(0, total - 1);
    for (const auto& c : choices) {
      if (r < c.second) return c.first;
      r -= c.second;
    }
    return choices[0].first;
  }

 private:
  // Decoding: a number in [0, span] from the next bytes (none for span 0;
  // 0 once they run out).
  uint32_t Read(int span);

  std::mt19937_64 rng_;
  const bool decoding_ = false;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
};

// HashBytes(data, size): FNV-1a of the bytes; the "seed" a decoded program
// is printed with, to tell decoded programs apart.
uint64_t HashBytes(const uint8_t* data, size_t size);

// --- Minimizing -------------------------------------------------------------

// DeltaDebug(size, left, try_drop): ddmin's reduction loop over a list of
// items. `size()` is how many items the current program has; `try_drop(begin,
// end)` tries it without items [begin, end) and returns true if that
// candidate still fails (it then becomes the current program);
// `left()` is false once the trial budget is spent. Chunks of the list are
// tried at granularity 2 upwards, until no single item can go or no trials
// are left. Returns true if anything was dropped.
bool DeltaDebug(const std::function<int()>& size,
                const std::function<bool()>& left,
                const std::function<bool(int, int)>& try_drop);

// MinimizationStart(program, items, first, fails): where minimizing a failing
// program starts: `program` without the top-level items (`items`:
// &Program::ops or &Program::steps) after item `first`, the one during which
// its first divergence happened, if `fails` says that still fails; else
// `program` (also when `first` is -1: not known).
template <typename Program, typename Items, typename Fails>
Program MinimizationStart(const Program& program, Items Program::*items,
                          int first, const Fails& fails) {
  if (first < 0) return program;
  Program prefix = program;
  (prefix.*items).resize(first + 1);
  return fails(prefix) ? prefix : program;
}

// FailsInMostOf3(run): a divergence that needs a particular interleaving may
// not show on every run. True if most of 3 calls of `run` (each true when
// that run diverged) fail, stopping once that is decided: accepting one
// lucky failure would let a minimizer drift towards programs that almost
// never fail.
bool FailsInMostOf3(const std::function<bool()>& run);

// --- Fuzz targets' totals ---------------------------------------------------

// FuzzTotals
//
// One fuzz case's counters, added to from any thread, printed at exit as one
// line: "<target> <case>: <label> <n>, ..., divergences 0" (a divergence
// aborts, so a printed line has none).
class FuzzTotals {
 public:
  explicit FuzzTotals(std::vector<const char*> labels)
      : labels_(std::move(labels)),
        counts_(new std::atomic<int64_t>[labels_.size()]()) {}

  void Add(size_t i, int64_t n) {
    counts_[i].fetch_add(n, std::memory_order_relaxed);
  }
  std::string Line(const char* target, const char* name) const;

 private:
  std::vector<const char*> labels_;
  std::unique_ptr<std::atomic<int64_t>[]> counts_;
};

// FuzzCases<Case>(): a fuzz target's cases, made in LLVMFuzzerInitialize and
// never destroyed (inputs run until the process exits).
template <typename Case>
std::vector<Case*>& FuzzCases() {
  static auto* cases = new std::vector<Case*>;  // never destroyed
  return *cases;
}

// PrintFuzzTotals<Case>(target): every case's totals line (Case has `name`
// and a FuzzTotals `totals`) on stderr; for std::atexit.
void PrintFuzzTotalsLine(const std::string& line);
template <typename Case>
void PrintFuzzTotals(const char* target) {
  for (const Case* c : FuzzCases<Case>()) {
    PrintFuzzTotalsLine(c->totals.Line(target, c->name));
  }
}

}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_HARNESS_H_
