#include "gls/conformance/program.h"

#include <set>
#include <sstream>
#include <utility>

#include "gls/conformance/harness.h"

namespace gls {
namespace conformance {

KeyKind KindOfKey(KeyIndex key) {
  if (key < kStringKeys) return KeyKind::kString;
  key -= kStringKeys;
  if (key < kGenSymKeys) return KeyKind::kGenSym;
  key -= kGenSymKeys;
  if (key < kTypedIntKeys) return KeyKind::kTypedInt;
  return KeyKind::kTypedString;
}

std::string KeyName(KeyIndex key) {
  switch (KindOfKey(key)) {
    case KeyKind::kString:
      return "str" + std::to_string(key);
    case KeyKind::kGenSym:
      return "sym" + std::to_string(key - kStringKeys);
    case KeyKind::kTypedInt:
      return "int" + std::to_string(key - kStringKeys - kGenSymKeys);
    case KeyKind::kTypedString:
      return "text" +
             std::to_string(key - kStringKeys - kGenSymKeys - kTypedIntKeys);
  }
  return "?";
}

int SharedManagersPerStrategy(bool unregister) { return unregister ? 3 : 2; }

int SharedManagerCount(const ProgramOptions& options) {
  return options.strategies * SharedManagersPerStrategy(options.unregister);
}

namespace {

// Where an op is generated: what may appear there.
struct Place {
  int depth = 0;         // SetValues / Run nesting
  int go_depth = 0;      // Go / worker / short-thread nesting
  bool in_fiber = false;
  bool in_dtor = false;  // a thread_local destructor's body
  bool on_worker = false;  // the worker runs this (or what it started)
  // (manager, key) set by enclosing SetValues of this flow: reads favour
  // them, or most reads would be of absent keys.
  std::vector<std::pair<int, KeyIndex>> set_here;
};

class Generator {
 public:
  Generator(uint64_t seed, const ProgramOptions& options)
      : choices_(seed), options_(options) {}
  // Decoding: every choice is read from `data` (DecodeProgram).
  Generator(const uint8_t* data, size_t size, const ProgramOptions& options,
            const DecodeLimits& limits)
      : choices_(data, size), options_(options), limits_(limits) {}

  Program Run(uint64_t seed) {
    Program program;
    program.seed = seed;
    // A couple of private managers from the start, so early ops use them.
    for (int slot = 0; slot < 2; ++slot) {
      program.ops.push_back(MakeCreate(slot));
      ++emitted_;
    }
    if (choices_.decoding()) {
      // Each top-level op reads at least one byte (its kind) while there
      // are bytes left.
      while (choices_.bytes_left() && !OutOfOps()) {
        program.ops.push_back(RandomOp(Place{}));
      }
      return program;
    }
    while (emitted_ < options_.target_ops) {
      program.ops.push_back(RandomOp(Place{}));
    }
    return program;
  }

 private:
  int Uniform(int lo, int hi) { return choices_.Uniform(lo, hi); }  // [lo, hi]
  bool Chance(double p) { return choices_.Chance(p); }
  // Decoding only: the budgets of DecodeLimits (never with a seed).
  bool OutOfOps() const {
    return choices_.decoding() && emitted_ >= limits_.max_ops;
  }
  bool ThreadsLeft() const {
    return !choices_.decoding() || threads_ < limits_.max_threads;
  }
  bool FiberGroupsLeft() const {
    return !choices_.decoding() || fiber_groups_ < limits_.max_fiber_groups;
  }

  Op MakeCreate(int slot) {
    Op op;
    op.kind = OpKind::kCreate;
    op.manager = slot;
    op.strategy = Uniform(0, options_.strategies - 1);
    slot_full_[slot] = true;
    return op;
  }

  // A manager for SetValues / GetValue: mostly the shared registered ones,
  // sometimes the unregistered shared one, often a private slot that is
  // (probably) filled.
  int PickManager() {
    const int per = SharedManagersPerStrategy(options_.unregister);
    const int shared = SharedManagerCount(options_);
    const int r = Uniform(0, 99);
    if (r < 55) return Uniform(0, options_.strategies - 1) * per + Uniform(0, 1);
    if (r < 65 && options_.unregister) {
      return Uniform(0, options_.strategies - 1) * per + 2;
    }
    std::vector<int> full;
    for (int i = 0; i < kPrivateManagerSlots; ++i) {
      if (slot_full_[i]) full.push_back(i);
    }
    if (full.empty() || Chance(0.05)) {
      return shared + Uniform(0, kPrivateManagerSlots - 1);
    }
    return shared + full[Uniform(0, static_cast<int>(full.size()) - 1)];
  }

  ModelValue RandomValueFor(KeyIndex key) {
    switch (KindOfKey(key)) {
      case KeyKind::kTypedInt:
        return Uniform(0, 99);
      case KeyKind::kTypedString:
        return "t" + std::to_string(Uniform(0, 99));
      default:
        if (Chance(0.5)) return Uniform(0, 99);
        return "v" + std::to_string(Uniform(0, 99));
    }
  }

  ReadKind RandomReadFor(KeyIndex key) {
    const KeyKind kind = KindOfKey(key);
    const int r = Uniform(0, 99);
    if (r < 20) return ReadKind::kStatusOrInt;
    if (r < 35) return ReadKind::kStatusOrString;
    if (kind == KeyKind::kString && r < 60) return ReadKind::kStringView;
    if ((kind == KeyKind::kTypedInt || kind == KeyKind::kTypedString) &&
        r < 75) {
      return ReadKind::kTypedPtr;
    }
    return ReadKind::kValuePtr;
  }

  std::vector<Op> RandomOps(const Place& place, int lo, int hi) {
    std::vector<Op> ops;
    const int n = Uniform(lo, hi);
    for (int i = 0; i < n && !OutOfOps(); ++i) ops.push_back(RandomOp(place));
    return ops;
  }

  Op RandomOp(const Place& place) {
    ++emitted_;
    Op op;
    // Weights; some kinds only where they make sense.
    const bool thread_ok =
        !place.in_dtor && place.go_depth < 2 && ThreadsLeft();
    const bool nest_ok = place.depth < 6;
    const std::pair<OpKind, int> choices[] = {
        {OpKind::kGet, 30},
        {OpKind::kSet, nest_ok ? 20 : 0},
        {OpKind::kCheckAll, 4},
        {OpKind::kGoroutineId, 4},
        {OpKind::kEnsureId, nest_ok ? 2 : 0},
        {OpKind::kThrow, place.depth > 0 ? 2 : 0},
        {OpKind::kCapture, 6},
        {OpKind::kRunHere, nest_ok ? 5 : 0},
        {OpKind::kRunOnWorker,
         thread_ok && !place.in_fiber && !place.on_worker ? 2 : 0},
        {OpKind::kGo, thread_ok ? 2 : 0},
        {OpKind::kCreate, 2},
        {OpKind::kUnregister, options_.unregister ? 2 : 0},
        {OpKind::kDestroy, 2},
        {OpKind::kShortThread, thread_ok && !place.in_fiber ? 1 : 0},
        {OpKind::kFibers,
         options_.fibers && !place.in_fiber && !place.in_dtor &&
                 place.go_depth < 2 && FiberGroupsLeft()
             ? 1
             : 0},
        {OpKind::kYield, place.in_fiber ? 12 : 0},
    };
    op.kind = choices_.Pick(choices);
    Place inner = place;
    switch (op.kind) {
      case OpKind::kGet:
        if (!place.set_here.empty() && Chance(0.7)) {
          const auto& [manager, key] = place.set_here[Uniform(
              0, static_cast<int>(place.set_here.size()) - 1)];
          op.manager = manager;
          op.key = key;
        } else {
          op.manager = PickManager();
          op.key = Uniform(0, kKeys - 1);
        }
        op.read = RandomReadFor(op.key);
        break;
      case OpKind::kSet: {
        op.manager = PickManager();
        // Mostly one or two values; sometimes none (fn is just called) or
        // several, with repeated keys (the last one wins).
        const int n = Chance(0.05) ? 0 : Uniform(1, Chance(0.2) ? 5 : 2);
        for (int i = 0; i < n; ++i) {
          // Often a key set further out: shadowing.
          const KeyIndex key =
              !place.set_here.empty() && Chance(0.4)
                  ? place.set_here[Uniform(0, static_cast<int>(
                                                  place.set_here.size()) -
                                                  1)]
                        .second
                  : Uniform(0, kKeys - 1);
          op.entries.push_back(Entry{key, RandomValueFor(key)});
          inner.set_here.emplace_back(op.manager, key);
        }
        op.catch_here = Chance(0.25);
        inner.depth++;
        op.body = RandomOps(inner, 0, 4);
        if (Chance(0.15) && !OutOfOps()) {
          Op thrown;
          thrown.kind = OpKind::kThrow;
          op.body.push_back(thrown);
          ++emitted_;
        }
        break;
      }
      case OpKind::kCheckAll:
      case OpKind::kThrow:
      case OpKind::kYield:
        break;
      case OpKind::kGoroutineId:
        op.strategy = Uniform(0, options_.strategies - 1);
        break;
      case OpKind::kEnsureId:
        op.strategy = Uniform(0, options_.strategies - 1);
        inner.depth++;
        op.body = RandomOps(inner, 0, 3);
        break;
      case OpKind::kCapture:
        op.slot = Uniform(0, kSnapshotSlots - 1);
        break;
      case OpKind::kRunHere:
        op.slot = Uniform(0, kSnapshotSlots - 1);
        op.catch_here = Chance(0.25);
        inner.depth++;
        op.body = RandomOps(inner, 0, 4);
        if (Chance(0.1) && !OutOfOps()) {
          Op thrown;
          thrown.kind = OpKind::kThrow;
          op.body.push_back(thrown);
          ++emitted_;
        }
        break;
      case OpKind::kRunOnWorker:
        op.slot = Chance(0.2) ? -1 : Uniform(0, kSnapshotSlots - 1);
        inner = Place{};
        inner.on_worker = true;
        inner.depth = 1;
        inner.go_depth = place.go_depth + 1;
        op.body = RandomOps(inner, 1, 4);
        break;
      case OpKind::kGo:
        ++threads_;
        inner = Place{};
        inner.on_worker = place.on_worker;
        inner.set_here = place.set_here;  // carried
        inner.depth = 1;
        inner.go_depth = place.go_depth + 1;
        op.body = RandomOps(inner, 1, 5);
        break;
      case OpKind::kCreate:
        op = MakeCreate(Uniform(0, kPrivateManagerSlots - 1));
        break;
      case OpKind::kUnregister:
        op.manager = PickManager();
        break;
      case OpKind::kDestroy: {
        op.manager = Uniform(0, kPrivateManagerSlots - 1);
        slot_full_[op.manager] = false;
        break;
      }
      case OpKind::kShortThread: {
        ++threads_;
        op.dtor_after_use = Chance(0.5);
        inner = Place{};
        inner.on_worker = place.on_worker;
        inner.go_depth = place.go_depth + 1;
        op.body = RandomOps(inner, 1, 4);
        Place dtor;
        dtor.in_dtor = true;
        dtor.go_depth = 2;
        op.dtor_body = RandomOps(dtor, 1, 4);
        break;
      }
      case OpKind::kFibers: {
        ++fiber_groups_;
        const int k = Uniform(2, 4);
        inner = Place{};
        inner.in_fiber = true;
        inner.go_depth = place.go_depth;
        for (int i = 0; i < k; ++i) op.fibers.push_back(RandomOps(inner, 2, 6));
        const int steps = Uniform(k, 4 * k);
        for (int i = 0; i < steps; ++i) {
          op.schedule.push_back(Chance(0.2) ? -1 : Uniform(0, k - 1));
        }
        break;
      }
    }
    return op;
  }

  Choices choices_;
  const ProgramOptions options_;
  int64_t emitted_ = 0;
  bool slot_full_[kPrivateManagerSlots] = {};
  // Decoding (DecodeProgram) only.
  const DecodeLimits limits_;
  int threads_ = 0;
  int fiber_groups_ = 0;
};

std::string ManagerName(int manager, const ProgramOptions& options) {
  const int shared = SharedManagerCount(options);
  if (manager >= shared) return "P" + std::to_string(manager - shared);
  const int per = SharedManagersPerStrategy(options.unregister);
  static const char* const kNames[] = {"A", "B", "U"};
  return std::string(kNames[manager % per]) + std::to_string(manager / per);
}

const char* ReadName(ReadKind read) {
  switch (read) {
    case ReadKind::kValuePtr:
      return "Value*";
    case ReadKind::kStringView:
      return "string_view";
    case ReadKind::kTypedPtr:
      return "typed T*";
    case ReadKind::kStatusOrInt:
      return "StatusOr<int>";
    case ReadKind::kStatusOrString:
      return "StatusOr<string>";
  }
  return "?";
}

void PrintOps(const std::vector<Op>& ops, const ProgramOptions& options,
              int indent, int& number, std::ostringstream& out) {
  const std::string pad(indent * 2, ' ');
  for (const Op& op : ops) {
    out << pad << "#" << number++ << " " << DescribeOp(op, options);
    switch (op.kind) {
      case OpKind::kSet:
      case OpKind::kEnsureId:
      case OpKind::kGo:
      case OpKind::kRunHere:
      case OpKind::kRunOnWorker:
        out << " {\n";
        PrintOps(op.body, options, indent + 1, number, out);
        out << pad << "}" << (op.catch_here ? " catch" : "") << "\n";
        break;
      case OpKind::kShortThread:
        out << " {\n";
        PrintOps(op.body, options, indent + 1, number, out);
        out << pad << "} at thread exit {\n";
        PrintOps(op.dtor_body, options, indent + 1, number, out);
        out << pad << "}\n";
        break;
      case OpKind::kFibers:
        out << " {\n";
        for (size_t i = 0; i < op.fibers.size(); ++i) {
          out << pad << "  fiber " << i << ":\n";
          PrintOps(op.fibers[i], options, indent + 2, number, out);
        }
        out << pad << "}\n";
        break;
      default:
        out << "\n";
    }
  }
}

// Copies `ops` without the ops whose preorder number is in `drop` (and what
// is nested in them). `number` runs over the input's preorder.
std::vector<Op> Without(const std::vector<Op>& ops, const std::set<int>& drop,
                        int& number) {
  std::vector<Op> kept;
  for (const Op& op : ops) {
    const int mine = number++;
    if (drop.count(mine) != 0) {
      number += static_cast<int>(CountOps({op})) - 1;  // skip its subtree
      continue;
    }
    Op copy = op;
    copy.body = Without(op.body, drop, number);
    copy.dtor_body = Without(op.dtor_body, drop, number);
    for (size_t i = 0; i < op.fibers.size(); ++i) {
      copy.fibers[i] = Without(op.fibers[i], drop, number);
    }
    kept.push_back(std::move(copy));
  }
  return kept;
}

}  // namespace

Program Generate(uint64_t seed, const ProgramOptions& options) {
  return Generator(seed, options).Run(seed);
}

Program DecodeProgram(const uint8_t* data, size_t size,
                      const ProgramOptions& options,
                      const DecodeLimits& limits) {
  // The "seed" printed with the program: a hash of the bytes, to tell
  // decoded programs apart.
  return Generator(data, size, options, limits).Run(HashBytes(data, size));
}

int64_t CountOps(const std::vector<Op>& ops) {
  int64_t n = 0;
  for (const Op& op : ops) {
    n += 1 + CountOps(op.body) + CountOps(op.dtor_body);
    for (const auto& fiber : op.fibers) n += CountOps(fiber);
  }
  return n;
}

std::string DescribeEntries(const std::vector<Entry>& entries) {
  std::ostringstream out;
  for (size_t i = 0; i < entries.size(); ++i) {
    out << (i == 0 ? "" : ", ") << KeyName(entries[i].key) << "="
        << DescribeValue(entries[i].value);
  }
  return out.str();
}

std::string DescribeOp(const Op& op, const ProgramOptions& options) {
  std::ostringstream out;
  switch (op.kind) {
    case OpKind::kSet: {
      out << "SetValues(" << ManagerName(op.manager, options) << ", {"
          << DescribeEntries(op.entries) << "})";
      break;
    }
    case OpKind::kGet:
      out << "GetValue(" << ManagerName(op.manager, options) << ", "
          << KeyName(op.key) << ") as " << ReadName(op.read);
      break;
    case OpKind::kCheckAll:
      out << "CheckAll (every key of every manager, GetValues)";
      break;
    case OpKind::kGoroutineId:
      out << "GetGoroutineId(strategy " << op.strategy << ")";
      break;
    case OpKind::kEnsureId:
      out << "EnsureGoroutineId(strategy " << op.strategy << ")";
      break;
    case OpKind::kThrow:
      out << "throw";
      break;
    case OpKind::kGo:
      out << "Go + join";
      break;
    case OpKind::kCapture:
      out << "snapshot[" << op.slot << "] = Capture()";
      break;
    case OpKind::kRunHere:
      out << "snapshot[" << op.slot << "].Run";
      break;
    case OpKind::kRunOnWorker:
      if (op.slot < 0) {
        out << "on worker thread (no snapshot)";
      } else {
        out << "on worker thread: snapshot[" << op.slot << "].Run";
      }
      break;
    case OpKind::kCreate:
      out << "P" << op.manager << " = new ContextManager(strategy "
          << op.strategy << ")";
      break;
    case OpKind::kUnregister:
      out << ManagerName(op.manager, options) << ".Unregister()";
      break;
    case OpKind::kDestroy:
      out << "delete P" << op.manager;
      break;
    case OpKind::kShortThread:
      out << "std::thread + join, thread_local made "
          << (op.dtor_after_use ? "after" : "before") << " first gls use";
      break;
    case OpKind::kFibers: {
      out << op.fibers.size() << " fibers, schedule [";
      for (size_t i = 0; i < op.schedule.size(); ++i) {
        out << (i == 0 ? "" : " ");
        if (op.schedule[i] < 0) {
          out << "check";
        } else {
          out << op.schedule[i];
        }
      }
      out << "] then round robin";
      break;
    }
    case OpKind::kYield:
      out << "yield";
      break;
  }
  return out.str();
}

std::string Print(const Program& program, const ProgramOptions& options) {
  std::ostringstream out;
  out << "program seed " << program.seed << ", " << CountOps(program.ops)
      << " ops (managers: A*/B* shared and registered"
      << (options.unregister ? ", U* shared and unregistered" : "")
      << ", P* private; the digit after A/B/U is the strategy index):\n";
  int number = 0;
  PrintOps(program.ops, options, 1, number, out);
  return out.str();
}

Program Minimize(const Program& program,
                 const std::function<bool(const Program&)>& fails,
                 int max_trials) {
  Program current = program;
  int trials = 0;
  DeltaDebug([&] { return static_cast<int>(CountOps(current.ops)); },
             [&] { return trials < max_trials; },
             [&](int begin, int end) {
               std::set<int> drop;
               for (int i = begin; i < end; ++i) drop.insert(i);
               Program candidate;
               candidate.seed = current.seed;
               int number = 0;
               candidate.ops = Without(current.ops, drop, number);
               ++trials;
               if (!fails(candidate)) return false;
               current = std::move(candidate);
               return true;
             });
  return current;
}

}  // namespace conformance
}  // namespace gls
