#include "gls/contrib/spdlog.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "spdlog/details/os.h"

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

}  // namespace spdlog_values
}  // namespace gls
