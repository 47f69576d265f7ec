// gls/contrib/w3c_fuzz.cc: libFuzzer target for gls/contrib/w3c.h. Feeds
// every input to ParseTraceParent, ParseTraceState (as one field, and split
// at '\n' into several) and ParseBaggage and aborts when one of the header's
// guarantees does not hold:
//   * a rejected traceparent comes with a one-line "traceparent: ..."
//     warning; an accepted one has non-zero ids, a version other than ff, and
//     leaves the warning alone;
//   * FormatTraceParent of an accepted value is 55 characters and parses back
//     to the same fields (version 00), and formats again to the same text;
//   * a rejected tracestate comes with a one-line "tracestate: ..." warning;
//     an accepted one has at most 32 entries, distinct keys and values that
//     match the grammar (checked here by a second implementation), formats
//     to at most 512 bytes and to exactly the entries kept (parses back to
//     them, without a warning), formats again to the same text, and is what
//     the fields joined with ',' parse to;
//   * ParseBaggage keeps at most kMaxBaggageEntries entries with token keys;
//     its warning, if any, is one "baggage: ..." line;
//   * FormatBaggage of what was kept is at most kMaxBaggageBytes, writes
//     every kept entry (parses back to the same entries, without a warning),
//     and formats again to the same text.
// Build and run only under --config=fuzz (tools/fuzz.bazelrc).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "gls/contrib/w3c.h"

namespace {

using gls::w3c::BaggageEntry;
using gls::w3c::TraceParent;
using gls::w3c::TraceStateEntry;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "w3c_fuzz: invariant violated: %s\n  %.*s\n", what,
               static_cast<int>(detail.size() > 2000 ? 2000 : detail.size()),
               detail.data());
  std::abort();
}

void Check(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) Fail(what, detail);
}

bool IsOneLine(const std::string& s, std::string_view prefix) {
  return s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 &&
         s.find('\n') == std::string::npos;
}

bool IsTokenChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), decoded to
// code points and checked by value: a second implementation, not the
// library's.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2
                : (c >> 3) == 0x1E ? 3 : -1;
    if (extra < 0 || s.size() - i <= static_cast<size_t>(extra)) return false;
    uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) {
      unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

void CheckTraceParent(std::string_view input) {
  const std::string kUntouched = "\x01untouched";
  std::string warning = kUntouched;
  std::optional<TraceParent> tp = gls::w3c::ParseTraceParent(input, &warning);
  if (!tp) {
    Check(IsOneLine(warning, "traceparent: "),
          "rejected traceparent without a one-line warning", warning);
    return;
  }
  Check(warning == kUntouched, "accepted traceparent changed the warning",
        warning);
  Check(tp->version != 0xff, "accepted version ff");
  Check(tp->TraceIdHex() != std::string(32, '0'), "accepted all-zero trace-id");
  Check(tp->ParentIdHex() != std::string(16, '0'),
        "accepted all-zero parent-id");
  std::string formatted = gls::w3c::FormatTraceParent(*tp);
  Check(formatted.size() == 55, "formatted traceparent is not 55 chars",
        formatted);
  // What was accepted is exactly what we write (lowercase, '-'s), after the
  // version, up to the end of trace-flags.
  std::string_view trimmed = input;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
    trimmed.remove_prefix(1);
  }
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t')) {
    trimmed.remove_suffix(1);
  }
  Check(trimmed.size() >= 55 &&
            trimmed.substr(2, 53) == std::string_view(formatted).substr(2),
        "accepted traceparent differs from its formatted form", formatted);
  Check(tp->version != 0 || trimmed.size() == 55,
        "accepted version 00 that is not 55 characters");
  std::optional<TraceParent> again =
      gls::w3c::ParseTraceParent(formatted, &warning);
  Check(again.has_value(), "formatted traceparent does not parse", warning);
  TraceParent want = *tp;
  want.version = 0;
  Check(*again == want, "traceparent round trip changed the fields",
        formatted);
  Check(gls::w3c::FormatTraceParent(*again) == formatted,
        "traceparent formats differently the second time", formatted);
}

bool IsTraceStateKey(std::string_view k) {
  if (k.empty() || k.size() > 256) return false;
  auto lc_digit = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (!lc_digit(k[0])) return false;
  for (char c : k) {
    if (!lc_digit(c) && std::string_view("_-*/@").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool IsTraceStateValue(std::string_view v) {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (char c : v) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return true;
}

void CheckTraceState(std::string_view input) {
  std::vector<std::string_view> fields;
  for (size_t pos = 0;;) {
    size_t nl = input.find('\n', pos);
    fields.push_back(input.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  const std::string kUntouched = "\x01untouched";
  std::string warning = kUntouched;
  std::optional<std::vector<TraceStateEntry>> ts =
      gls::w3c::ParseTraceState(fields, &warning);
  std::string joined;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) joined += ',';
    joined += fields[i];
  }
  Check(gls::w3c::ParseTraceState(joined) == ts,
        "tracestate fields parse differently from their join", joined);
  Check(fields.size() > 1 || gls::w3c::ParseTraceState(input) == ts,
        "one-field overload differs");
  if (!ts) {
    Check(IsOneLine(warning, "tracestate: "),
          "rejected tracestate without a one-line warning", warning);
    return;
  }
  Check(warning == kUntouched || IsOneLine(warning, "tracestate: "),
        "tracestate warning is not one 'tracestate: ' line", warning);
  Check(ts->size() <= gls::w3c::kMaxTraceStateEntries, "too many entries");
  for (size_t i = 0; i < ts->size(); ++i) {
    const TraceStateEntry& e = (*ts)[i];
    Check(IsTraceStateKey(e.key), "bad tracestate key kept", e.key);
    Check(IsTraceStateValue(e.value), "bad tracestate value kept", e.value);
    for (size_t k = 0; k < i; ++k) {
      Check((*ts)[k].key != e.key, "duplicate tracestate key kept", e.key);
    }
  }
  std::string formatted = gls::w3c::FormatTraceState(*ts);
  Check(formatted.size() <= gls::w3c::kMaxTraceStateBytes,
        "formatted tracestate exceeds 512 bytes", formatted);
  std::string warning2 = kUntouched;
  std::optional<std::vector<TraceStateEntry>> again =
      gls::w3c::ParseTraceState(formatted, &warning2);
  Check(warning2 == kUntouched, "formatted tracestate parses with a warning",
        warning2);
  Check(again == ts, "tracestate round trip changed the entries", formatted);
  Check(gls::w3c::FormatTraceState(*again) == formatted,
        "tracestate formats differently the second time", formatted);
}

void CheckBaggage(std::string_view input) {
  const std::string kUntouched = "\x01untouched";
  std::string warning = kUntouched;
  std::vector<BaggageEntry> entries = gls::w3c::ParseBaggage(input, &warning);
  Check(warning == kUntouched || IsOneLine(warning, "baggage: "),
        "baggage warning is not one 'baggage: ' line", warning);
  Check(entries.size() <= gls::w3c::kMaxBaggageEntries, "too many entries");
  for (const BaggageEntry& e : entries) {
    Check(!e.key.empty(), "empty key kept");
    for (char c : e.key) Check(IsTokenChar(c), "key is not a token", e.key);
    Check(IsValidUtf8(e.value), "value is not valid UTF-8", e.value);
    Check(e.properties.find(',') == std::string::npos,
          "properties contain ','", e.properties);
  }
  std::string formatted = gls::w3c::FormatBaggage(entries);
  Check(formatted.size() <= gls::w3c::kMaxBaggageBytes,
        "formatted baggage exceeds 8192 bytes");
  std::string warning2 = kUntouched;
  std::vector<BaggageEntry> again =
      gls::w3c::ParseBaggage(formatted, &warning2);
  Check(warning2 == kUntouched, "formatted baggage parses with a warning",
        warning2);
  Check(again == entries, "baggage round trip changed the entries",
        formatted);
  Check(gls::w3c::FormatBaggage(again) == formatted,
        "baggage formats differently the second time", formatted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckTraceParent(input);
  CheckTraceState(input);
  CheckBaggage(input);
  return 0;
}
