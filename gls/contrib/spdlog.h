// gls/contrib/spdlog.h: a spdlog pattern flag that prints gls values.
//
// What this is for: putting the values of the running flow (a request id, a
// tenant, a user) on every log line, without passing them to each logging
// call. Add the values you want to a `Flag`, give it a pattern character, and
// every line formatted with that pattern ends with " label=value" for each of
// them that is set where the line was logged:
//
//   pattern "[%l] %v%*"  ->  "[info] handled request_id=4bf92f3577b34da6 tenant=acme"
//
// Output format, for each entry in the order it was added:
//   * the entry has a value in the running flow: " label=value" (one leading
//     space, no trailing one);
//   * the entry has no value: nothing;
//   * outside every scope of the manager, the flag prints nothing at all.
// Values are escaped logfmt-style so a value can never break the line into
// fake fields or lines: a value that is empty or contains a space, a '"', a
// '=', a '\\' or a control character (any byte below 0x20, or 0x7f) is
// written in double quotes, with '"' and '\\' preceded by '\\', newline,
// carriage return and tab written as \n \r \t, and every other control byte
// as \xHH. Anything else (bytes >= 0x80 included, so UTF-8 passes through)
// is written as is. Examples: `user=bob`, `user="bob smith"`, `msg="a\nb"`,
// `empty=""`.
//
// How values are printed:
//   * TypedKey<T> entries (the fast path): read with no run-time type check;
//     std::string and std::string_view are written straight into the line,
//     arithmetic types through fmt, other types through fmt if it can format
//     them, else through their operator<<. A type with neither does not
//     compile (at Add).
//   * Untyped entries (a ContextKey, a string key, a Key): printed as
//     gls::Value prints them (its operator<<: the held value's operator<<,
//     or "<type name>" for a type without one), then escaped.
//
// What this is not: a structured-logging sink, or a way to set values (use
// ContextManager::SetValues). Padding specifications on the flag (e.g.
// "%20*") are ignored. Labels and keys are fixed when the formatter is made;
// build a new formatter to change them.
//
// Guarantees:
//   * Bad input is rejected when the flag or the formatter is made, never
//     when a line is logged: Add throws std::invalid_argument for an empty
//     label or one containing a space, a control character, '=', '"' or
//     '\\'; MakeFormatter throws std::invalid_argument for a flag character
//     spdlog already uses (a built-in flag, '%', a padding character '-',
//     '=' or a digit) or a non-printing one.
//   * Flag::format takes no lock beyond what spdlog's sink takes, never
//     throws for a value that prints, and, for TypedKey entries of
//     std::string, std::string_view and arithmetic types, allocates nothing
//     when `dest` has room (spdlog's sinks reuse a buffer, so in a steady
//     state nothing at all). One ContextManager::GetValue per entry.
//   * Thread-safe as spdlog's formatters are: a formatter is used under its
//     sink's lock; every flow sees only its own values (those of its scope,
//     of a gls::Go or a gls::Bind that carried them).
//
// Example:
//
//   gls::ContextManager mgr;
//   const gls::TypedKey<std::string> kRequestId;
//   const gls::ContextKey kTenant = gls::GenSym();
//
//   auto logger = spdlog::stdout_logger_mt("app");
//   logger->set_formatter(gls::spdlog_values::MakeFormatter(
//       "[%l] %v%*",
//       gls::spdlog_values::Flag(mgr).Add("request_id", kRequestId)
//                                    .Add("tenant", kTenant)));
//   mgr.SetValues({{kRequestId, "4bf92f3577b34da6"}, {kTenant, "acme"}}, [&] {
//     logger->info("handled");  // [info] handled request_id=4bf92f3577b34da6 tenant=acme
//   });
//   logger->info("idle");       // [info] idle
#ifndef GLS_CONTRIB_SPDLOG_H_
#define GLS_CONTRIB_SPDLOG_H_

#include <cstddef>
#include <ctime>
#include <iterator>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gls/context_manager.h"
#include "gls/values.h"
#include "spdlog/async_logger.h"
#include "spdlog/common.h"
#include "spdlog/details/log_msg.h"
#include "spdlog/formatter.h"
#include "spdlog/logger.h"
#include "spdlog/pattern_formatter.h"

namespace gls {
namespace spdlog_values {
namespace internal {

// Small buffer for values that are printed first and escaped after.
using ScratchBuffer = fmt::basic_memory_buffer<char, 128>;

// AppendRaw(dest, data, size): appends `size` bytes at `data` to `dest`.
void AppendRaw(spdlog::memory_buf_t& dest, const char* data, size_t size);

// AnyNeedsQuoting(value): whether `value` has a byte that makes
// AppendEscaped quote it.
bool AnyNeedsQuoting(std::string_view value);

// AppendEscaped(value, dest): appends `value` to `dest`, quoted and escaped
// as the file comment describes when it needs to be.
void AppendEscaped(std::string_view value, spdlog::memory_buf_t& dest);

// AppendPrintedValue(value, dest): `value` as gls::Value's operator<< prints
// it, escaped, appended to `dest`.
void AppendPrintedValue(const gls::Value& value, spdlog::memory_buf_t& dest);

// CheckLabel(label): throws std::invalid_argument naming the problem if
// `label` cannot be a label.
void CheckLabel(std::string_view label);

// A streambuf appending to a ScratchBuffer: operator<< output with no
// std::string in between.
class BufferStreambuf final : public std::streambuf {
 public:
  explicit BufferStreambuf(ScratchBuffer& out) : out_(out) {}

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;

 private:
  ScratchBuffer& out_;
};

// PrintTyped<T>(data, dest): prints the T at `data` into `dest`, escaped.
template <typename T>
void PrintTyped(const void* data, spdlog::memory_buf_t& dest) {
  const T& value = *static_cast<const T*>(data);
  if constexpr (std::is_same_v<T, std::string> ||
                std::is_same_v<T, std::string_view>) {
    AppendEscaped(value, dest);
  } else if constexpr (std::is_same_v<T, bool>) {
    AppendEscaped(value ? "true" : "false", dest);
  } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, char>) {
    // Digits, a sign, '.', 'e', "inf", "nan": nothing to escape.
    fmt::format_to(std::back_inserter(dest), "{}", value);
  } else if constexpr (fmt::is_formattable<T>::value) {
    ScratchBuffer scratch;
    fmt::format_to(std::back_inserter(scratch), "{}", value);
    AppendEscaped(std::string_view(scratch.data(), scratch.size()), dest);
  } else {
    ScratchBuffer scratch;
    BufferStreambuf buf(scratch);
    std::ostream os(&buf);
    os << value;
    AppendEscaped(std::string_view(scratch.data(), scratch.size()), dest);
  }
}

template <typename T>
constexpr bool kPrintable =
    std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view> ||
    std::is_arithmetic_v<T> || fmt::is_formattable<T>::value ||
    gls::internal::IsStreamable<T>::value;

}  // namespace internal

// Flag
//
// A spdlog custom flag formatter that prints chosen gls values of one
// ContextManager (see the file comment for the exact output and escaping).
// Copyable; a copy prints the same entries. Register it with MakeFormatter,
// or yourself with spdlog::pattern_formatter::add_flag<Flag>(c, flag).
class Flag final : public spdlog::custom_flag_formatter {
 public:
  // Flag(manager): a flag with no entries (it prints nothing) reading
  // `manager`'s values. The manager must outlive every formatter using it.
  explicit Flag(const gls::ContextManager& manager) : manager_(&manager) {}

  // Add(label, typed_key): prints " label=value" for `key`'s value, the fast
  // path (no type check, no allocation for std::string, std::string_view and
  // arithmetic types). `T` must be printable through fmt or operator<<.
  // Throws std::invalid_argument if `label` is empty or contains a space, a
  // control character, '=', '"' or '\\'. Entries print in the order added.
  template <typename T>
  Flag& Add(std::string_view label, const gls::TypedKey<T>& key) {
    static_assert(internal::kPrintable<T>,
                  "gls::spdlog_values::Flag::Add: the key's value type can be "
                  "printed neither by fmt nor by operator<<");
    AddEntry(label, gls::Key(key), &internal::PrintTyped<T>,
             std::is_same_v<T, std::string>);
    return *this;
  }

  // Add(label, key): prints " label=value" for an untyped key's value (a
  // ContextKey, a string key), printed through gls::Value's operator<< and
  // escaped. Same label rules as above.
  Flag& Add(std::string_view label, gls::Key key);

  // format(msg, tm_time, dest): appends the entries that have a value in the
  // running flow to `dest`. Called by spdlog's pattern_formatter.
  void format(const spdlog::details::log_msg& msg, const std::tm& tm_time,
              spdlog::memory_buf_t& dest) override;

  // clone(): a copy, as spdlog's pattern_formatter requires.
  std::unique_ptr<spdlog::custom_flag_formatter> clone() const override;

 private:
  // Prints the object a typed entry's Value holds; nullptr for untyped.
  using PrintFn = void (*)(const void* data, spdlog::memory_buf_t& dest);
  struct Entry {
    std::string prefix;  // " label="
    gls::Key key;
    PrintFn print;
    bool is_string;  // a TypedKey<std::string>: printed inline by format()
  };

  void AddEntry(std::string_view label, gls::Key key, PrintFn print,
                bool is_string);

  const gls::ContextManager* manager_;
  std::vector<Entry> entries_;
};

// MakeFormatter(pattern, flag, flag_char)
//
// A spdlog::pattern_formatter for `pattern` (spdlog's pattern syntax, local
// time, the platform's end of line) in which `%<flag_char>` (default '*') is
// `flag`. Throws std::invalid_argument if `flag_char` is a character spdlog
// already gives a meaning after '%' (a built-in flag such as 'v' or 'l', '%',
// '-', '=', a digit) or is not a printing character.
std::unique_ptr<spdlog::formatter> MakeFormatter(std::string pattern, Flag flag,
                                                 char flag_char = '*');

// MakeAsyncLogger(name, sinks, thread_pool, policy)
// MakeAsyncLogger(name, sink, thread_pool, policy)
//
// An asynchronous spdlog logger whose lines carry the values of the logging
// call: what spdlog::async_logger(name, sinks, thread_pool, policy) is, except
// that each sink's formatter, run later on a worker thread of `thread_pool`,
// sees exactly the gls values (every registered manager's) that the flow had
// where the line was logged, and none for a line logged outside every scope
// (see "Asynchronous loggers" in the file comment). Register it with
// spdlog::register_logger if you want spdlog::get to find it.
//
// Like spdlog's async logger, it keeps only a weak reference to
// `thread_pool`: a line logged after the pool is gone goes to the logger's
// error handler ("async log: thread pool doesn't exist anymore").
// `policy` is spdlog's: `block` waits for room in the queue,
// `overrun_oldest` drops the oldest queued line. Throws
// std::invalid_argument naming the problem if `thread_pool` or a sink is
// null or `policy` is not one of the two.
std::shared_ptr<spdlog::logger> MakeAsyncLogger(
    std::string name, std::vector<spdlog::sink_ptr> sinks,
    std::shared_ptr<spdlog::details::thread_pool> thread_pool,
    spdlog::async_overflow_policy policy = spdlog::async_overflow_policy::block);
std::shared_ptr<spdlog::logger> MakeAsyncLogger(
    std::string name, spdlog::sink_ptr sink,
    std::shared_ptr<spdlog::details::thread_pool> thread_pool,
    spdlog::async_overflow_policy policy = spdlog::async_overflow_policy::block);

namespace internal {

// CreateRegisteredAsync(name, sink, policy): what spdlog's async_factory
// does, with a gls async logger (see CreateAsync).
std::shared_ptr<spdlog::logger> CreateRegisteredAsync(
    std::string name, spdlog::sink_ptr sink,
    spdlog::async_overflow_policy policy);

}  // namespace internal

// CreateAsync<Sink>(name, sink_args...)
// CreateAsyncNonblock<Sink>(name, sink_args...)
//
// spdlog::create_async and spdlog::create_async_nb with a gls async logger
// (MakeAsyncLogger): makes a `Sink` from `sink_args`, uses spdlog's global
// thread pool (spdlog::thread_pool(), created as spdlog does, 8192 lines
// and one thread, if spdlog::init_thread_pool was not called), sets up the
// logger as spdlog's registry sets up every new logger (its global pattern,
// level, flush level, error handler) and registers it. Throws
// spdlog::spdlog_ex, as spdlog does, if a logger of that name exists.
// CreateAsync blocks when the queue is full; CreateAsyncNonblock drops the
// oldest queued line.
template <typename Sink, typename... SinkArgs>
std::shared_ptr<spdlog::logger> CreateAsync(std::string name,
                                            SinkArgs&&... sink_args) {
  return internal::CreateRegisteredAsync(
      std::move(name), std::make_shared<Sink>(std::forward<SinkArgs>(sink_args)...),
      spdlog::async_overflow_policy::block);
}
template <typename Sink, typename... SinkArgs>
std::shared_ptr<spdlog::logger> CreateAsyncNonblock(std::string name,
                                                    SinkArgs&&... sink_args) {
  return internal::CreateRegisteredAsync(
      std::move(name), std::make_shared<Sink>(std::forward<SinkArgs>(sink_args)...),
      spdlog::async_overflow_policy::overrun_oldest);
}

// AsyncFactory, AsyncFactoryNonblock
//
// spdlog::async_factory and spdlog::async_factory_nonblock for gls async
// loggers, for spdlog's sink helpers that take a factory:
// `spdlog::basic_logger_mt<gls::spdlog_values::AsyncFactory>("app", path)`
// is CreateAsync<spdlog::sinks::basic_file_sink_mt>("app", path).
struct AsyncFactory {
  template <typename Sink, typename... SinkArgs>
  static std::shared_ptr<spdlog::logger> create(std::string logger_name,
                                                SinkArgs&&... sink_args) {
    return CreateAsync<Sink>(std::move(logger_name),
                             std::forward<SinkArgs>(sink_args)...);
  }
};
struct AsyncFactoryNonblock {
  template <typename Sink, typename... SinkArgs>
  static std::shared_ptr<spdlog::logger> create(std::string logger_name,
                                                SinkArgs&&... sink_args) {
    return CreateAsyncNonblock<Sink>(std::move(logger_name),
                                     std::forward<SinkArgs>(sink_args)...);
  }
};

}  // namespace spdlog_values
}  // namespace gls

#endif  // GLS_CONTRIB_SPDLOG_H_
