// gls/contrib/w3c_fuzz.cc: libFuzzer target for gls/contrib/w3c.h. Feeds
// every input to ParseTraceParent and ParseBaggage and aborts when one of the
// header's guarantees does not hold:
//   * a rejected traceparent comes with a one-line "traceparent: ..."
//     warning; an accepted one has non-zero ids, a version other than ff, and
//     leaves the warning alone;
//   * FormatTraceParent of an accepted value is 55 characters and parses back
//     to the same fields (version 00), and formats again to the same text;
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

#include "gls/contrib/w3c.h"

namespace {

using gls::w3c::BaggageEntry;
using gls::w3c::TraceParent;

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
  CheckBaggage(input);
  return 0;
}
