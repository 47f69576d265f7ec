// gls/contrib/w3c.cc: the traceparent, tracestate and baggage codecs of
// gls/contrib/w3c.h. Every parser here is a single forward pass over its
// input (no backtracking, no recursion), so any input costs time linear in
// its length.
#include "gls/contrib/w3c.h"

#include <unistd.h>

#include <cstdio>
#include <random>

namespace gls {
namespace w3c {
namespace internal {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kUpperHex[] = "0123456789ABCDEF";

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// The value of a hex digit, or -1. `lower_only` rejects 'A'-'F'.
int HexValue(char c, bool lower_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (!lower_only && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A character as a warning shows it: 'x' when printable ASCII, else \xNN.
std::string Describe(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u <= 0x7e) return std::string("'") + c + "'";
  if (u == ' ') return "a space";
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", u);
  return buf;
}

// Parses exactly `out.size() * 2` lowercase hex digits at the start of `s`
// into `out`. On failure returns false and sets *why to what is wrong.
template <size_t N>
bool ParseLowerHex(std::string_view s, std::array<uint8_t, N>& out,
                   std::string* why) {
  if (s.size() < 2 * N) {
    *why = "is shorter than " + std::to_string(2 * N) + " hex digits";
    return false;
  }
  for (size_t i = 0; i < 2 * N; ++i) {
    int v = HexValue(s[i], /*lower_only=*/true);
    if (v < 0) {
      *why = "is not " + std::to_string(2 * N) + " lowercase hex digits (" +
             Describe(s[i]) + " at offset " + std::to_string(i) + ")";
      return false;
    }
    if (i % 2 == 0) {
      out[i / 2] = static_cast<uint8_t>(v << 4);
    } else {
      out[i / 2] = static_cast<uint8_t>(out[i / 2] | v);
    }
  }
  return true;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a) {
    if (b != 0) return false;
  }
  return true;
}

template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& a) {
  std::string s(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    s[2 * i] = kHex[a[i] >> 4];
    s[2 * i + 1] = kHex[a[i] & 0xf];
  }
  return s;
}

// RFC 7230 tchar.
bool IsTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z')) {
    return true;
  }
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
bool IsBaggageOctet(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x2b) || (u >= 0x2d && u <= 0x3a) ||
         (u >= 0x3c && u <= 0x5b) || (u >= 0x5d && u <= 0x7e);
}

// Whether the value byte `c` is written as is (else as %XX).
bool WrittenRaw(char c) { return IsBaggageOctet(c) && c != '%'; }

// Validates property text (what follows the first ';' of a list-member,
// without it): property *( OWS ";" OWS property ), property = key OWS
// ["=" OWS value], ends trimmed of OWS, '%' in a value only as %XX. Returns "" when valid, else what is
// wrong.
std::string CheckProperties(std::string_view p) {
  size_t i = 0;
  const size_t n = p.size();
  if (n > 0 && (IsOws(p.front()) || IsOws(p.back()))) {
    return "property text has surrounding whitespace";
  }
  while (true) {
    while (i < n && IsOws(p[i])) ++i;
    size_t key_start = i;
    while (i < n && IsTokenChar(p[i])) ++i;
    if (i == key_start) {
      if (i == n) return "empty property";
      return "property key has " + Describe(p[i]);
    }
    while (i < n && IsOws(p[i])) ++i;
    if (i < n && p[i] == '=') {
      ++i;
      while (i < n && IsOws(p[i])) ++i;
      // The value's rules apply to a property value: '%' only as a %XX
      // escape. It is kept as written (escaped), not decoded.
      while (i < n && IsBaggageOctet(p[i])) {
        if (p[i] == '%' &&
            (i + 2 >= n || HexValue(p[i + 1], false) < 0 ||
             HexValue(p[i + 2], false) < 0)) {
          return "property value has an invalid %-escape";
        }
        ++i;
      }
      while (i < n && IsOws(p[i])) ++i;
    }
    if (i == n) return "";
    if (p[i] != ';') return "property has " + Describe(p[i]);
    ++i;
  }
}

// UTF-8: appends `s` to `out`, each maximal invalid subsequence replaced
// with U+FFFD (one per bad byte, which is a permitted choice).
void AppendValidUtf8(std::string_view s, std::string& out) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) ok = false;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
}

// Percent-decodes `raw` (all baggage-octets) into *out, with invalid UTF-8
// replaced. Returns "" or what is wrong.
std::string DecodeValue(std::string_view raw, std::string* out) {
  std::string bytes;
  bytes.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      bytes.push_back(raw[i]);
      continue;
    }
    int hi = i + 1 < raw.size() ? HexValue(raw[i + 1], false) : -1;
    int lo = i + 2 < raw.size() ? HexValue(raw[i + 2], false) : -1;
    if (hi < 0 || lo < 0) return "value has an invalid %-escape";
    bytes.push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  out->clear();
  AppendValidUtf8(bytes, *out);
  return "";
}

// Parses one list-member (OWS already trimmed, non-empty). Returns "" and
// fills *entry, or returns what is wrong.
std::string ParseMember(std::string_view m, BaggageEntry* entry) {
  size_t i = 0;
  const size_t n = m.size();
  while (i < n && IsTokenChar(m[i])) ++i;
  if (i == 0) {
    return m[0] == '=' ? "empty key" : "key has " + Describe(m[0]);
  }
  std::string_view key = m.substr(0, i);
  const size_t key_end = i;
  while (i < n && IsOws(m[i])) ++i;
  if (i == n) return "no '=' after the key";
  if (m[i] != '=') {
    return i == key_end ? "key has " + Describe(m[i])
                        : "unexpected " + Describe(m[i]) + " after the key";
  }
  ++i;
  while (i < n && IsOws(m[i])) ++i;
  size_t value_start = i;
  while (i < n && IsBaggageOctet(m[i])) ++i;
  const size_t value_end = i;
  std::string_view raw_value = m.substr(value_start, value_end - value_start);
  while (i < n && IsOws(m[i])) ++i;
  std::string_view properties;
  if (i < n) {
    if (m[i] != ';') {
      return (i == value_end ? "value has " : "unexpected ") + Describe(m[i]) +
             (i == value_end ? "" : " after the value");
    }
    ++i;
    while (i < n && IsOws(m[i])) ++i;
    properties = m.substr(i);
    std::string why = CheckProperties(properties);
    if (!why.empty()) return why;
  }
  std::string why = DecodeValue(raw_value, &entry->value);
  if (!why.empty()) return why;
  entry->key.assign(key);
  entry->properties.assign(properties);
  return "";
}

// The number of bytes FormatBaggage writes for `e` (without a separator).
size_t FormattedSize(const BaggageEntry& e) {
  size_t size = e.key.size() + 1;
  for (char c : e.value) size += WrittenRaw(c) ? 1 : 3;
  if (!e.properties.empty()) size += 1 + e.properties.size();
  return size;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// tracestate -----------------------------------------------------------------

bool IsLcAlphaOrDigit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsTraceStateKeyChar(char c) {
  return IsLcAlphaOrDigit(c) || c == '_' || c == '-' || c == '*' ||
         c == '/' || c == '@';
}

// chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
bool IsTraceStateValueChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x20 && u <= 0x7e && c != ',' && c != '=';
}

// "" when `key` matches the key grammar, else what is wrong.
std::string CheckTraceStateKey(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxTraceStateKey) {
    return "key longer than 256 characters";
  }
  if (!IsLcAlphaOrDigit(key[0])) {
    return "key starts with " + Describe(key[0]);
  }
  for (char c : key) {
    if (!IsTraceStateKeyChar(c)) return "key has " + Describe(c);
  }
  return "";
}

// "" when `value` matches the value grammar, else what is wrong.
std::string CheckTraceStateValue(std::string_view value) {
  if (value.empty()) return "empty value";
  if (value.size() > kMaxTraceStateValue) {
    return "value longer than 256 characters";
  }
  for (char c : value) {
    if (!IsTraceStateValueChar(c)) return "value has " + Describe(c);
  }
  if (value.back() == ' ') return "value ends with a space";
  return "";
}

size_t TraceStateEntrySize(const TraceStateEntry& e) {
  return e.key.size() + 1 + e.value.size();
}

struct Truncation {
  size_t removed = 0;
  size_t removed_large = 0;
};

// Removes whole entries until `entries` formats to at most
// kMaxTraceStateBytes: first those longer than kLargeTraceStateEntry,
// right-most first, then any, from the end. Linear.
Truncation TruncateTraceState(std::vector<TraceStateEntry>& entries) {
  Truncation t;
  size_t total = 0;
  for (const TraceStateEntry& e : entries) total += TraceStateEntrySize(e) + 1;
  if (total > 0) --total;  // n - 1 commas
  if (total <= kMaxTraceStateBytes) return t;
  std::vector<bool> removed(entries.size(), false);
  size_t kept = entries.size();
  auto remove = [&](size_t i) {
    removed[i] = true;
    --kept;
    total -= TraceStateEntrySize(entries[i]) + (kept == 0 ? 0 : 1);
    ++t.removed;
  };
  for (size_t i = entries.size(); i-- > 0 && total > kMaxTraceStateBytes;) {
    if (TraceStateEntrySize(entries[i]) > kLargeTraceStateEntry) {
      remove(i);
      ++t.removed_large;
    }
  }
  for (size_t i = entries.size(); i-- > 0 && total > kMaxTraceStateBytes;) {
    if (!removed[i]) remove(i);
  }
  size_t out = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (removed[i]) continue;
    if (out != i) entries[out] = std::move(entries[i]);
    ++out;
  }
  entries.resize(out);
  return t;
}

std::string DescribeTruncation(const Truncation& t) {
  return "truncated to 512 bytes (" +
         Plural(t.removed, "entry", "entries") + " removed, " +
         std::to_string(t.removed_large) + " of them longer than 128 " +
         "characters)";
}

bool HasKey(const std::vector<TraceStateEntry>& entries,
            std::string_view key) {
  for (const TraceStateEntry& e : entries) {
    if (e.key == key) return true;
  }
  return false;
}

std::mt19937_64& ThreadGenerator() {
  thread_local std::mt19937_64 gen;
  thread_local pid_t seeded_in = 0;
  pid_t pid = getpid();
  if (seeded_in != pid) {  // first use on this thread, or after fork()
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd(),
                      static_cast<unsigned>(pid)};
    gen.seed(seq);
    seeded_in = pid;
  }
  return gen;
}

template <size_t N>
std::array<uint8_t, N> RandomNonZero() {
  std::mt19937_64& gen = ThreadGenerator();
  std::array<uint8_t, N> id{};
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = gen();
      for (size_t k = 0; k < 8 && i + k < N; ++k) {
        id[i + k] = static_cast<uint8_t>(r >> (8 * k));
      }
    }
  } while (AllZero(id));
  return id;
}

}  // namespace
}  // namespace internal

std::string TraceParent::TraceIdHex() const {
  return internal::ToHex(trace_id);
}

std::string TraceParent::ParentIdHex() const {
  return internal::ToHex(parent_id);
}

std::optional<TraceParent> ParseTraceParent(std::string_view header,
                                            std::string* warning) {
  using internal::Describe;
  auto reject = [warning](const std::string& why) -> std::optional<TraceParent> {
    if (warning != nullptr) *warning = "traceparent: " + why;
    return std::nullopt;
  };
  std::string_view s = internal::TrimOws(header);
  if (s.empty()) return reject("empty header");
  // version
  if (s.size() < 2) return reject("too short for a version");
  int v_hi = internal::HexValue(s[0], true);
  int v_lo = internal::HexValue(s[1], true);
  if (v_hi < 0 || v_lo < 0) {
    return reject("version is not 2 lowercase hex digits (" +
                  Describe(v_hi < 0 ? s[0] : s[1]) + ")");
  }
  TraceParent tp;
  tp.version = static_cast<uint8_t>(v_hi << 4 | v_lo);
  if (tp.version == 0xff) return reject("version ff is invalid");
  constexpr size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (tp.version == 0 && s.size() != kLength) {
    return reject("version 00 needs exactly 55 characters, got " +
                  std::to_string(s.size()));
  }
  if (s.size() < kLength) {
    return reject("version " + std::string(s.substr(0, 2)) +
                  " needs at least 55 characters, got " +
                  std::to_string(s.size()));
  }
  auto dash = [&](size_t at, const char* after) -> std::string {
    if (s[at] == '-') return "";
    return std::string("expected '-' after the ") + after + ", got " +
           Describe(s[at]);
  };
  std::string why;
  if (!(why = dash(2, "version")).empty()) return reject(why);
  if (!internal::ParseLowerHex(s.substr(3), tp.trace_id, &why)) {
    return reject("trace-id " + why);
  }
  if (!(why = dash(35, "trace-id")).empty()) return reject(why);
  if (!internal::ParseLowerHex(s.substr(36), tp.parent_id, &why)) {
    return reject("parent-id " + why);
  }
  if (!(why = dash(52, "parent-id")).empty()) return reject(why);
  std::array<uint8_t, 1> flags{};
  if (!internal::ParseLowerHex(s.substr(53), flags, &why)) {
    return reject("trace-flags " + why);
  }
  tp.flags = flags[0];
  if (s.size() > kLength && s[kLength] != '-') {
    return reject("version " + std::string(s.substr(0, 2)) +
                  ": expected the end or '-' after trace-flags, got " +
                  Describe(s[kLength]));
  }
  if (internal::AllZero(tp.trace_id)) return reject("trace-id is all zeros");
  if (internal::AllZero(tp.parent_id)) return reject("parent-id is all zeros");
  return tp;
}

std::string FormatTraceParent(const TraceParent& tp) {
  std::string out;
  out.reserve(55);
  out += "00-";
  out += tp.TraceIdHex();
  out += '-';
  out += tp.ParentIdHex();
  out += '-';
  out += internal::kHex[tp.flags >> 4];
  out += internal::kHex[tp.flags & 0xf];
  return out;
}

std::array<uint8_t, 16> NewTraceId() { return internal::RandomNonZero<16>(); }

std::array<uint8_t, 8> NewParentId() { return internal::RandomNonZero<8>(); }

TraceParent StartTrace(bool sampled) {
  TraceParent tp;
  tp.trace_id = NewTraceId();
  tp.parent_id = NewParentId();
  tp.flags = static_cast<uint8_t>(kRandomTraceIdFlag |
                                  (sampled ? kSampledFlag : 0));
  return tp;
}

TraceParent ContinueTrace(const TraceParent& incoming) {
  TraceParent tp;
  tp.trace_id = incoming.trace_id;
  tp.parent_id = NewParentId();
  tp.flags = static_cast<uint8_t>(incoming.flags & kKnownFlags);
  return tp;
}

std::optional<std::vector<TraceStateEntry>> ParseTraceState(
    const std::vector<std::string_view>& fields, std::string* warning) {
  std::vector<TraceStateEntry> entries;
  size_t member_index = 0;
  size_t duplicates = 0;
  std::string first_duplicate;
  for (std::string_view field : fields) {
    size_t pos = 0;
    while (pos <= field.size()) {
      size_t comma = field.find(',', pos);
      if (comma == std::string_view::npos) comma = field.size();
      std::string_view member =
          internal::TrimOws(field.substr(pos, comma - pos));
      pos = comma + 1;
      if (member.empty()) continue;  // empty and OWS-only members are allowed
      ++member_index;
      auto reject = [&](const std::string& why)
          -> std::optional<std::vector<TraceStateEntry>> {
        if (warning != nullptr) *warning = "tracestate: discarded (" + why + ")";
        return std::nullopt;
      };
      if (member_index > kMaxTraceStateEntries) {
        return reject("more than 32 list-members");
      }
      const std::string where = "member " + std::to_string(member_index) + ", ";
      size_t eq = member.find('=');
      if (eq == std::string_view::npos) return reject(where + "no '='");
      std::string_view key = member.substr(0, eq);
      std::string_view value = member.substr(eq + 1);
      std::string why = internal::CheckTraceStateKey(key);
      if (why.empty()) why = internal::CheckTraceStateValue(value);
      if (!why.empty()) return reject(where + why);
      if (internal::HasKey(entries, key)) {
        if (duplicates++ == 0) first_duplicate = where + std::string(key);
        continue;
      }
      entries.push_back({std::string(key), std::string(value)});
    }
  }
  internal::Truncation t = internal::TruncateTraceState(entries);
  if (warning != nullptr && (duplicates > 0 || t.removed > 0)) {
    std::string w = "tracestate: ";
    if (duplicates > 0) {
      w += "dropped " +
           internal::Plural(duplicates, "duplicate key", "duplicate keys") +
           " (first: " + first_duplicate + ")";
    }
    if (t.removed > 0) {
      if (duplicates > 0) w += ", ";
      w += internal::DescribeTruncation(t);
    }
    *warning = std::move(w);
  }
  return entries;
}

std::optional<std::vector<TraceStateEntry>> ParseTraceState(
    std::string_view header, std::string* warning) {
  return ParseTraceState(std::vector<std::string_view>{header}, warning);
}

std::string FormatTraceState(const std::vector<TraceStateEntry>& entries) {
  std::vector<TraceStateEntry> kept;
  for (const TraceStateEntry& e : entries) {
    if (kept.size() == kMaxTraceStateEntries) break;
    if (!internal::CheckTraceStateKey(e.key).empty() ||
        !internal::CheckTraceStateValue(e.value).empty() ||
        internal::HasKey(kept, e.key)) {
      continue;
    }
    kept.push_back(e);
  }
  internal::TruncateTraceState(kept);
  std::string out;
  for (const TraceStateEntry& e : kept) {
    if (!out.empty()) out += ',';
    out += e.key;
    out += '=';
    out += e.value;
  }
  return out;
}

std::vector<BaggageEntry> ParseBaggage(std::string_view header,
                                       std::string* warning) {
  std::vector<BaggageEntry> entries;
  size_t dropped = 0;
  std::string first_problem;
  const char* truncated = nullptr;
  size_t bytes = 0;  // what FormatBaggage would write for `entries`
  size_t member_index = 0;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t comma = header.find(',', pos);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view member =
        internal::TrimOws(header.substr(pos, comma - pos));
    pos = comma + 1;
    if (member.empty()) continue;  // "a=1,,b=2": empty elements are allowed
    ++member_index;
    BaggageEntry entry;
    std::string why = internal::ParseMember(member, &entry);
    if (!why.empty()) {
      if (dropped++ == 0) {
        first_problem =
            "first: member " + std::to_string(member_index) + ", " + why;
      }
      continue;
    }
    if (entries.size() == kMaxBaggageEntries) {
      truncated = "truncated at 180 entries";
      break;
    }
    size_t more = internal::FormattedSize(entry) + (entries.empty() ? 0 : 1);
    if (bytes + more > kMaxBaggageBytes) {
      truncated = "truncated at 8192 bytes";
      break;
    }
    bytes += more;
    entries.push_back(std::move(entry));
  }
  if (warning != nullptr && (dropped > 0 || truncated != nullptr)) {
    std::string w = "baggage: ";
    if (dropped > 0) {
      w += "dropped " +
           internal::Plural(dropped, "malformed entry", "malformed entries") +
           " (" + first_problem + ")";
    }
    if (truncated != nullptr) {
      if (dropped > 0) w += ", ";
      w += truncated;
      w += " (" + internal::Plural(entries.size(), "entry", "entries") +
           " kept)";
    }
    *warning = std::move(w);
  }
  return entries;
}

std::string FormatBaggage(const std::vector<BaggageEntry>& entries) {
  std::string out;
  size_t written = 0;
  for (const BaggageEntry& e : entries) {
    if (!internal::IsToken(e.key)) continue;
    if (!e.properties.empty() &&
        !internal::CheckProperties(e.properties).empty()) {
      continue;
    }
    if (written == kMaxBaggageEntries) break;
    size_t more = internal::FormattedSize(e) + (written == 0 ? 0 : 1);
    if (out.size() + more > kMaxBaggageBytes) break;
    if (written > 0) out += ',';
    out += e.key;
    out += '=';
    for (char c : e.value) {
      if (internal::WrittenRaw(c)) {
        out += c;
      } else {
        unsigned char u = static_cast<unsigned char>(c);
        out += '%';
        out += internal::kUpperHex[u >> 4];
        out += internal::kUpperHex[u & 0xf];
      }
    }
    if (!e.properties.empty()) {
      out += ';';
      out += e.properties;
    }
    ++written;
  }
  return out;
}

}  // namespace w3c
}  // namespace gls
