#include "gls/contrib/spdlog.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gls/contrib/spdlog_block_pool.h"
#include "gls/snapshot.h"
#include "spdlog/async.h"
#include "spdlog/details/os.h"
#include "spdlog/details/registry.h"
#include "spdlog/details/thread_pool.h"
#include "spdlog/sinks/sink.h"

namespace gls {
namespace spdlog_values {
namespace internal {
namespace {

// Whether a byte forces a value into quotes: controls, space, 0x7f, '"',
// '=', '\\'. A table, read for every byte with no early exit: a request
// id's mix of digits and letters would make a chain of compares mispredict.
constexpr std::array<unsigned char, 256> kNeedsQuoting = [] {
  std::array<unsigned char, 256> table{};
  for (int c = 0; c <= 0x20; ++c) table[c] = 1;
  table[0x7f] = 1;
  table['"'] = 1;
  table['='] = 1;
  table['\\'] = 1;
  return table;
}();

inline bool NeedsQuoting(unsigned char c) { return kNeedsQuoting[c] != 0; }

inline void Append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// Inlined into Flag::format's hot path.
__attribute__((always_inline)) inline bool ScanNeedsQuoting(
    std::string_view value) {
  // Eight bytes at a time (SWAR): a word has a byte below 0x21 iff
  // (x - 0x21..21) & ~x & 0x80..80 is non-zero, and a byte equal to c iff
  // the same test of x ^ c..c below 1 is; both exact as "any" tests. The
  // tail goes through the table.
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  const auto below = [](uint64_t x, uint64_t n) {
    return (x - kOnes * n) & ~x & kHighs;
  };
  const char* p = value.data();
  size_t n = value.size();
  uint64_t found = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    found |= below(x, 0x21) | below(x ^ (kOnes * 0x7f), 1) |
             below(x ^ (kOnes * '"'), 1) | below(x ^ (kOnes * '='), 1) |
             below(x ^ (kOnes * '\\'), 1);
  }
  unsigned char tail = 0;
  for (; n != 0; ++p, --n) tail |= kNeedsQuoting[static_cast<unsigned char>(*p)];
  return found != 0 || tail != 0;
}

// A printable rendering of `c` for error messages.
std::string Describe(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xf];
}

}  // namespace

void AppendRaw(spdlog::memory_buf_t& dest, const char* data, size_t size) {
  // resize + memcpy: one capacity check, no per-chunk loop.
  const size_t old_size = dest.size();
  dest.resize(old_size + size);
  if (size != 0) std::memcpy(dest.data() + old_size, data, size);
}

bool AnyNeedsQuoting(std::string_view value) {
  return ScanNeedsQuoting(value);
}

void AppendEscaped(std::string_view value, spdlog::memory_buf_t& dest) {
  const char* const begin = value.data();
  const char* const end = begin + value.size();
  if (!AnyNeedsQuoting(value) && !value.empty()) {  // the common case: as is
    AppendRaw(dest, begin, value.size());
    return;
  }
  const char* p = begin;
  while (p != end && !NeedsQuoting(static_cast<unsigned char>(*p))) ++p;
  static constexpr char kHex[] = "0123456789abcdef";
  dest.push_back('"');
  dest.append(begin, p);
  for (; p != end; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    switch (c) {
      case '"':
        Append(dest, "\\\"");
        break;
      case '\\':
        Append(dest, "\\\\");
        break;
      case '\n':
        Append(dest, "\\n");
        break;
      case '\r':
        Append(dest, "\\r");
        break;
      case '\t':
        Append(dest, "\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          const char escaped[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
          dest.append(escaped, escaped + 4);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
  }
  dest.push_back('"');
}

void CheckLabel(std::string_view label) {
  if (label.empty()) {
    throw std::invalid_argument(
        "gls::spdlog_values::Flag::Add: the label is empty");
  }
  for (char c : label) {
    const unsigned char u = static_cast<unsigned char>(c);
    const char* problem = nullptr;
    if (c == ' ') {
      problem = "a space";
    } else if (u < 0x20 || u == 0x7f) {
      problem = "a control character";
    } else if (c == '=') {
      problem = "'='";
    } else if (c == '"') {
      problem = "'\"'";
    } else if (c == '\\') {
      problem = "'\\'";
    }
    if (problem != nullptr) {
      throw std::invalid_argument("gls::spdlog_values::Flag::Add: the label \"" +
                                  std::string(label) + "\" contains " + problem +
                                  " (" + Describe(c) +
                                  "); labels are printed as label=value");
    }
  }
}

BufferStreambuf::int_type BufferStreambuf::overflow(int_type ch) {
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    out_.push_back(traits_type::to_char_type(ch));
  }
  return traits_type::not_eof(ch);
}

std::streamsize BufferStreambuf::xsputn(const char* s, std::streamsize n) {
  out_.append(s, s + n);
  return n;
}

// Out of line so Flag::format keeps a small stack frame: the stream and
// its buffer are only needed for untyped entries.
__attribute__((noinline)) void AppendPrintedValue(const gls::Value& value,
                                                  spdlog::memory_buf_t& dest) {
  ScratchBuffer scratch;
  BufferStreambuf buf(scratch);
  std::ostream os(&buf);
  os << value;
  AppendEscaped(std::string_view(scratch.data(), scratch.size()), dest);
}

}  // namespace internal

Flag& Flag::Add(std::string_view label, gls::Key key) {
  AddEntry(label, std::move(key), nullptr, false);
  return *this;
}

void Flag::AddEntry(std::string_view label, gls::Key key, PrintFn print,
                    bool is_string) {
  internal::CheckLabel(label);
  std::string prefix;
  prefix.reserve(label.size() + 2);
  prefix += ' ';
  prefix += label;
  prefix += '=';
  entries_.push_back(Entry{std::move(prefix), std::move(key), print, is_string});
}

void Flag::format(const spdlog::details::log_msg& /*msg*/,
                  const std::tm& /*tm_time*/, spdlog::memory_buf_t& dest) {
  for (const Entry& entry : entries_) {
    const gls::Value* value = manager_->GetValue(gls::KeyView(entry.key));
    if (value == nullptr) continue;
    if (entry.is_string) {
      // The hot case, a typed std::string that needs no quoting: one
      // capacity check and two copies.
      const std::string& text = *static_cast<const std::string*>(value->data());
      if (!internal::ScanNeedsQuoting(text) && !text.empty()) {
        const size_t old_size = dest.size();
        dest.resize(old_size + entry.prefix.size() + text.size());
        char* out = dest.data() + old_size;
        std::memcpy(out, entry.prefix.data(), entry.prefix.size());
        std::memcpy(out + entry.prefix.size(), text.data(), text.size());
        continue;
      }
    }
    internal::AppendRaw(dest, entry.prefix.data(), entry.prefix.size());
    if (entry.print != nullptr) {
      entry.print(value->data(), dest);
    } else {
      internal::AppendPrintedValue(*value, dest);
    }
  }
}

std::unique_ptr<spdlog::custom_flag_formatter> Flag::clone() const {
  return std::make_unique<Flag>(*this);
}

namespace {

// Characters spdlog 1.10 reads after '%' itself: its built-in flags, '%',
// and the padding specification's '-', '=' and digits.
constexpr std::string_view kSpdlogFlagChars =
    "+nlLtvaAbhBcCYDxmdHIMSefFEprRTXzP^$@sg#!%uioO-=0123456789";

}  // namespace

std::unique_ptr<spdlog::formatter> MakeFormatter(std::string pattern, Flag flag,
                                                 char flag_char) {
  const unsigned char u = static_cast<unsigned char>(flag_char);
  if (u <= 0x20 || u >= 0x7f) {
    throw std::invalid_argument(
        "gls::spdlog_values::MakeFormatter: the flag character (" +
        internal::Describe(flag_char) + ") is not a printing character");
  }
  if (kSpdlogFlagChars.find(flag_char) != std::string_view::npos) {
    throw std::invalid_argument(
        "gls::spdlog_values::MakeFormatter: the flag character '" +
        std::string(1, flag_char) +
        "' already means something to spdlog after '%' (a built-in flag, or "
        "part of a padding specification); pick another, e.g. '*'");
  }
  spdlog::pattern_formatter::custom_flags flags;
  flags[flag_char] = std::make_unique<Flag>(std::move(flag));
  return std::make_unique<spdlog::pattern_formatter>(
      std::move(pattern), spdlog::pattern_time_type::local,
      std::string(spdlog::details::os::default_eol), std::move(flags));
}

namespace internal {
namespace {

class AsyncLogger;

// The values of one queued line. The deleter of the control block that a
// queued line's `worker_ptr` shares: spdlog's async_msg has no room for user
// data, but it keeps the shared_ptr it was posted with until the line is
// written or dropped, so this control block lives exactly as long as the
// line and is freed with it (by spdlog's queue, whatever the overflow
// policy). It also keeps the logger alive while the line is queued.
struct LineValues {
  gls::Snapshot values;
  std::shared_ptr<AsyncLogger> logger;
  void operator()(std::nullptr_t) const noexcept {}
};

// The only sink of an AsyncLogger's backend (the spdlog::async_logger the
// thread pool calls): writes each line to the AsyncLogger's own sinks with
// the line's values.
class DispatchSink final : public spdlog::sinks::sink {
 public:
  explicit DispatchSink(AsyncLogger& owner) : owner_(owner) {}
  void log(const spdlog::details::log_msg& msg) override;
  void flush() override;
  // The AsyncLogger's sinks have the formatters; this one formats nothing.
  void set_pattern(const std::string& /*pattern*/) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter> /*formatter*/) override {}

 private:
  // Lives inside the AsyncLogger, which every queued line keeps alive.
  AsyncLogger& owner_;
};

// A spdlog::logger that posts each line, with the values of the logging call,
// to a spdlog thread pool. spdlog::async_logger is final, and its thread
// pool calls only async_loggers, so the posting is done here and the
// writing by `backend_`, an async_logger that is never itself logged to,
// whose one sink is a DispatchSink back to this logger.
class AsyncLogger final : public spdlog::logger,
                          public std::enable_shared_from_this<AsyncLogger> {
 public:
  AsyncLogger(std::string name, std::vector<spdlog::sink_ptr> sinks,
              std::weak_ptr<spdlog::details::thread_pool> pool,
              spdlog::async_overflow_policy policy)
      : spdlog::logger(std::move(name), sinks.begin(), sinks.end()),
        pool_(std::move(pool)),
        policy_(policy),
        backend_(name_, std::make_shared<DispatchSink>(*this), pool_, policy_) {}

  // A copy named `name` (for clone): the same sinks, pool, policy, level,
  // flush level and error handler, with its own backend.
  AsyncLogger(const AsyncLogger& other, std::string name)
      : spdlog::logger(other),
        std::enable_shared_from_this<AsyncLogger>(),
        pool_(other.pool_),
        policy_(other.policy_),
        backend_(name, std::make_shared<DispatchSink>(*this), pool_, policy_) {
    name_ = std::move(name);
  }

  AsyncLogger(const AsyncLogger&) = delete;
  AsyncLogger& operator=(const AsyncLogger&) = delete;

  std::shared_ptr<spdlog::logger> clone(std::string logger_name) override {
    return std::make_shared<AsyncLogger>(*this, std::move(logger_name));
  }

  // WriteLine(msg, values): on a worker thread, writes `msg` to every sink
  // whose level lets it through, with `values` in effect.
  void WriteLine(const spdlog::details::log_msg& msg, const gls::Snapshot& values) {
    values.Run([&] {
      for (const spdlog::sink_ptr& sink : sinks_) {
        if (!sink->should_log(msg.level)) continue;
        try {
          sink->log(msg);
        } catch (...) {
          ReportSinkError(msg.source);
        }
      }
    });
    if (should_flush_(msg)) FlushSinks();
  }

  // FlushSinks(): on a worker thread, flushes every sink.
  void FlushSinks() {
    for (const spdlog::sink_ptr& sink : sinks_) {
      try {
        sink->flush();
      } catch (...) {
        ReportSinkError(spdlog::source_loc());
      }
    }
  }

 protected:
  // ReportSinkError(source): inside a catch block, hands the exception to
  // the error handler as spdlog's loggers do (a std::exception's what(),
  // with the line's source location if it has one; anything else is
  // reported and rethrown).
  void ReportSinkError(const spdlog::source_loc& source) {
    try {
      throw;
    } catch (const std::exception& e) {
      if (source.filename != nullptr) {
        err_handler_(fmt::format("{} [{}({})]", e.what(), source.filename, source.line));
      } else {
        err_handler_(e.what());
      }
    } catch (...) {
      err_handler_("Rethrowing unknown exception in logger");
      throw;
    }
  }

  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::shared_ptr<spdlog::details::thread_pool> pool = pool_.lock();
    if (pool == nullptr) {
      spdlog::throw_spdlog_ex("async log: thread pool doesn't exist anymore");
    }
    pool->post_log(QueuedReference(gls::Capture()), msg, policy_);
  }

  void flush_() override {
    std::shared_ptr<spdlog::details::thread_pool> pool = pool_.lock();
    if (pool == nullptr) {
      spdlog::throw_spdlog_ex("async flush: thread pool doesn't exist anymore");
    }
    pool->post_flush(QueuedReference(gls::Snapshot()), policy_);
  }

 private:
  // QueuedReference(values): the worker_ptr a queued line (or flush) is
  // posted with: a pointer to the backend whose control block, of its own,
  // holds `values` and keeps this logger alive until spdlog frees the line.
  //
  // Made from nullptr and aliased, not made from &backend_: a shared_ptr
  // made from a pointer to an enable_shared_from_this object would also
  // write that object's weak self-reference, from every logging thread.
  // A block of its own even for a line with no values (rather than an alias
  // of this logger's own block): spdlog releases a line's worker_ptr in its
  // own code, which ThreadSanitizer does not see; releasing a block of ours
  // runs LineValues' destructor, which drops the reference to this logger in
  // code it does see, so the logger's destruction is ordered after the
  // worker's last use of it for the sanitizer too.
  std::shared_ptr<spdlog::async_logger> QueuedReference(gls::Snapshot values) {
    std::shared_ptr<void> line(nullptr,
                               LineValues{std::move(values), shared_from_this()},
                               PoolAllocator<LineValues>());
    return std::shared_ptr<spdlog::async_logger>(std::move(line), &backend_);
  }

  std::weak_ptr<spdlog::details::thread_pool> pool_;
  spdlog::async_overflow_policy policy_;
  spdlog::async_logger backend_;
};

// No values, whatever the worker thread has. (Every line is posted by
// QueuedReference, so a line without LineValues is not expected; should one
// come, it gets no values rather than the worker's.)
const gls::Snapshot& NoValues() {
  static const gls::Snapshot none{};
  return none;
}

void DispatchSink::log(const spdlog::details::log_msg& msg) {
  // Only the thread pool calls the backend, and it passes the async_msg it
  // dequeued: the line, and the worker_ptr it was posted with.
  const auto& queued = static_cast<const spdlog::details::async_msg&>(msg);
  const LineValues* line = std::get_deleter<LineValues>(queued.worker_ptr);
  owner_.WriteLine(msg, line == nullptr ? NoValues() : line->values);
}

void DispatchSink::flush() { owner_.FlushSinks(); }

}  // namespace

std::shared_ptr<spdlog::logger> CreateRegisteredAsync(
    std::string name, spdlog::sink_ptr sink,
    spdlog::async_overflow_policy policy) {
  spdlog::details::registry& registry = spdlog::details::registry::instance();
  // As spdlog's async_factory: the global pool, made if missing, under the
  // registry's pool lock.
  std::lock_guard<std::recursive_mutex> lock(registry.tp_mutex());
  std::shared_ptr<spdlog::details::thread_pool> pool = registry.get_tp();
  if (pool == nullptr) {
    pool = std::make_shared<spdlog::details::thread_pool>(
        spdlog::details::default_async_q_size, 1U);
    registry.set_tp(pool);
  }
  std::shared_ptr<spdlog::logger> logger =
      MakeAsyncLogger(std::move(name), std::move(sink), std::move(pool), policy);
  registry.initialize_logger(logger);
  return logger;
}

}  // namespace internal

std::shared_ptr<spdlog::logger> MakeAsyncLogger(
    std::string name, std::vector<spdlog::sink_ptr> sinks,
    std::shared_ptr<spdlog::details::thread_pool> thread_pool,
    spdlog::async_overflow_policy policy) {
  if (thread_pool == nullptr) {
    throw std::invalid_argument(
        "gls::spdlog_values::MakeAsyncLogger: the thread pool is null (make "
        "one, or call spdlog::init_thread_pool before passing "
        "spdlog::thread_pool())");
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (sinks[i] == nullptr) {
      throw std::invalid_argument(
          sinks.size() == 1
              ? std::string("gls::spdlog_values::MakeAsyncLogger: the sink is null")
              : "gls::spdlog_values::MakeAsyncLogger: sink " + std::to_string(i) +
                    " (counting from 0) of " + std::to_string(sinks.size()) +
                    " is null");
    }
  }
  if (policy != spdlog::async_overflow_policy::block &&
      policy != spdlog::async_overflow_policy::overrun_oldest) {
    throw std::invalid_argument(
        "gls::spdlog_values::MakeAsyncLogger: the overflow policy (" +
        std::to_string(static_cast<int>(policy)) +
        ") is neither block nor overrun_oldest");
  }
  return std::make_shared<internal::AsyncLogger>(
      std::move(name), std::move(sinks), std::move(thread_pool), policy);
}

std::shared_ptr<spdlog::logger> MakeAsyncLogger(
    std::string name, spdlog::sink_ptr sink,
    std::shared_ptr<spdlog::details::thread_pool> thread_pool,
    spdlog::async_overflow_policy policy) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::move(sink));
  return MakeAsyncLogger(std::move(name), std::move(sinks), std::move(thread_pool),
                         policy);
}

}  // namespace spdlog_values
}  // namespace gls
