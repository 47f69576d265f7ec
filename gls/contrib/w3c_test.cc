// Tests of gls/contrib/w3c.h: table-driven traceparent, tracestate and
// baggage parsing (valid and bad input, with the warnings' texts), the
// tracestate and baggage limits, tracestate truncation, the Level 2 random
// trace-id flag, formatting, round trips, random ids, and hostile headers.
#include "gls/contrib/w3c.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gls {
namespace w3c {
namespace {

using namespace std::string_literals;  // "\0"s: strings with NULs

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParent[] = "00f067aa0ba902b7";
const std::string kZeros32(32, '0');
const std::string kZeros16(16, '0');

std::string Tp(const std::string& version, const std::string& trace,
               const std::string& parent, const std::string& flags) {
  return version + "-" + trace + "-" + parent + "-" + flags;
}

// ---------------------------------------------------------------------------
// traceparent

struct TraceParentCase {
  const char* name;  // what the row checks
  std::string input;
  // Valid rows: the expected fields. Bad rows: ok = false and the warning.
  bool ok;
  std::string warning;
  uint8_t version = 0;
  std::string trace = kTrace;
  std::string parent = kParent;
  uint8_t flags = 0;
};

std::vector<TraceParentCase> TraceParentCases() {
  const std::string base = Tp("00", kTrace, kParent, "01");
  std::string nul_in_trace = base;
  nul_in_trace[10] = '\0';
  std::string high_byte_in_parent = base;
  high_byte_in_parent[40] = '\xC3';
  std::string space_for_dash = base;
  space_for_dash[35] = ' ';
  return {
      // Valid.
      {"spec example, sampled", base, true, "", 0, kTrace, kParent, 0x01},
      {"not sampled", Tp("00", kTrace, kParent, "00"), true, "", 0, kTrace,
       kParent, 0x00},
      {"all flag bits kept", Tp("00", kTrace, kParent, "ff"), true, "", 0,
       kTrace, kParent, 0xff},
      {"unknown flag bits kept", Tp("00", kTrace, kParent, "09"), true, "", 0,
       kTrace, kParent, 0x09},
      {"leading spaces trimmed", "   " + base, true, "", 0, kTrace, kParent,
       0x01},
      {"trailing tab trimmed", base + "\t", true, "", 0, kTrace, kParent, 0x01},
      {"OWS on both sides trimmed", " \t" + base + "\t ", true, "", 0, kTrace,
       kParent, 0x01},
      {"trace-id with only its last byte set",
       Tp("00", std::string(31, '0') + "1", kParent, "01"), true, "", 0,
       std::string(31, '0') + "1", kParent, 0x01},
      {"parent-id with only its first byte set",
       Tp("00", kTrace, "8" + std::string(15, '0'), "00"), true, "", 0, kTrace,
       "8" + std::string(15, '0'), 0x00},
      {"future version 01, exactly 55 chars", Tp("01", kTrace, kParent, "01"),
       true, "", 0x01, kTrace, kParent, 0x01},
      {"future version 01 with more fields after '-'",
       Tp("01", kTrace, kParent, "01") + "-what-comes-next", true, "", 0x01,
       kTrace, kParent, 0x01},
      {"future version cc with a trailing '-' only",
       Tp("cc", kTrace, kParent, "00") + "-", true, "", 0xcc, kTrace, kParent,
       0x00},
      {"highest valid version fe", Tp("fe", kTrace, kParent, "01") + "-x", true,
       "", 0xfe, kTrace, kParent, 0x01},

      // Bad.
      {"empty header", "", false, "traceparent: empty header"},
      {"whitespace only", " \t ", false, "traceparent: empty header"},
      {"one character", "0", false, "traceparent: too short for a version"},
      {"version ff", Tp("ff", kTrace, kParent, "01"), false,
       "traceparent: version ff is invalid"},
      {"uppercase version", Tp("0A", kTrace, kParent, "01"), false,
       "traceparent: version is not 2 lowercase hex digits ('A')"},
      {"non-hex version", Tp("0g", kTrace, kParent, "01"), false,
       "traceparent: version is not 2 lowercase hex digits ('g')"},
      {"header name included", "traceparent: " + base, false,
       "traceparent: version is not 2 lowercase hex digits ('t')"},
      {"version 00 one char short", base.substr(0, 54), false,
       "traceparent: version 00 needs exactly 55 characters, got 54"},
      {"version 00 one char long", base + "0", false,
       "traceparent: version 00 needs exactly 55 characters, got 56"},
      {"version 00 with future fields", base + "-ab", false,
       "traceparent: version 00 needs exactly 55 characters, got 58"},
      {"future version too short", Tp("01", kTrace, kParent, "0"), false,
       "traceparent: version 01 needs at least 55 characters, got 54"},
      {"future version, flags followed by neither end nor '-'",
       Tp("01", kTrace, kParent, "01") + "x", false,
       "traceparent: version 01: expected the end or '-' after trace-flags, "
       "got 'x'"},
      {"uppercase trace-id",
       Tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kParent, "01"), false,
       "traceparent: trace-id is not 32 lowercase hex digits ('B' at offset "
       "1)"},
      {"uppercase parent-id", Tp("00", kTrace, "00F067AA0BA902B7", "01"), false,
       "traceparent: parent-id is not 16 lowercase hex digits ('F' at offset "
       "2)"},
      {"uppercase flags", Tp("00", kTrace, kParent, "0A"), false,
       "traceparent: trace-flags is not 2 lowercase hex digits ('A' at offset "
       "1)"},
      {"non-hex flags", Tp("00", kTrace, kParent, "x1"), false,
       "traceparent: trace-flags is not 2 lowercase hex digits ('x' at offset "
       "0)"},
      {"all-zero trace-id", Tp("00", kZeros32, kParent, "01"), false,
       "traceparent: trace-id is all zeros"},
      {"all-zero parent-id", Tp("00", kTrace, kZeros16, "01"), false,
       "traceparent: parent-id is all zeros"},
      {"all-zero trace-id in a future version",
       Tp("01", kZeros32, kParent, "01") + "-x", false,
       "traceparent: trace-id is all zeros"},
      {"'_' after the version", "00_" + base.substr(3), false,
       "traceparent: expected '-' after the version, got '_'"},
      {"space instead of '-' after the trace-id", space_for_dash, false,
       "traceparent: expected '-' after the trace-id, got a space"},
      {"':' after the parent-id", base.substr(0, 52) + ":01", false,
       "traceparent: expected '-' after the parent-id, got ':'"},
      {"trace-id one digit short (parent-id one long)",
       Tp("00", std::string(kTrace).substr(0, 31), std::string(kParent) + "a",
          "01"),
       false,
       "traceparent: trace-id is not 32 lowercase hex digits ('-' at offset "
       "31)"},
      {"NUL inside the trace-id", nul_in_trace, false,
       "traceparent: trace-id is not 32 lowercase hex digits (\\x00 at offset "
       "7)"},
      {"non-ASCII byte inside the parent-id", high_byte_in_parent, false,
       "traceparent: parent-id is not 16 lowercase hex digits (\\xC3 at offset "
       "4)"},
      {"fields separated by spaces",
       "00 " + std::string(kTrace) + " " + kParent + " 01", false,
       "traceparent: expected '-' after the version, got a space"},
  };
}

TEST(TraceParentTest, Table) {
  std::vector<TraceParentCase> cases = TraceParentCases();
  ASSERT_GE(cases.size(), 30u);
  for (const TraceParentCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string warning = "untouched";
    std::optional<TraceParent> tp = ParseTraceParent(c.input, &warning);
    ASSERT_EQ(tp.has_value(), c.ok) << warning;
    if (c.ok) {
      EXPECT_EQ(warning, "untouched");
      EXPECT_EQ(tp->version, c.version);
      EXPECT_EQ(tp->TraceIdHex(), c.trace);
      EXPECT_EQ(tp->ParentIdHex(), c.parent);
      EXPECT_EQ(tp->flags, c.flags);
      EXPECT_EQ(tp->sampled(), (c.flags & 1) != 0);
      // Without a warning pointer: same answer.
      EXPECT_EQ(ParseTraceParent(c.input), tp);
    } else {
      EXPECT_EQ(warning, c.warning);
      EXPECT_FALSE(ParseTraceParent(c.input).has_value());
    }
  }
}

TEST(TraceParentTest, FormatWritesVersion00LowercaseWithFlags) {
  TraceParent tp;
  for (size_t i = 0; i < 16; ++i) tp.trace_id[i] = static_cast<uint8_t>(0xA0 + i);
  for (size_t i = 0; i < 8; ++i) tp.parent_id[i] = static_cast<uint8_t>(0x0F + i);
  tp.flags = 0x01;
  tp.version = 0x42;  // not written: we speak 00
  EXPECT_EQ(FormatTraceParent(tp),
            "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-0f10111213141516-01");
  EXPECT_EQ(tp.TraceIdHex(), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  EXPECT_EQ(tp.ParentIdHex(), "0f10111213141516");
  tp.flags = 0xfe;
  EXPECT_EQ(FormatTraceParent(tp).substr(52), "-fe");
}

TEST(TraceParentTest, RoundTripsEveryValidRow) {
  for (const TraceParentCase& c : TraceParentCases()) {
    if (!c.ok) continue;
    SCOPED_TRACE(c.name);
    std::optional<TraceParent> tp = ParseTraceParent(c.input);
    ASSERT_TRUE(tp.has_value());
    std::string formatted = FormatTraceParent(*tp);
    std::optional<TraceParent> again = ParseTraceParent(formatted);
    ASSERT_TRUE(again.has_value()) << formatted;
    TraceParent want = *tp;
    want.version = 0;
    EXPECT_EQ(*again, want);
    EXPECT_EQ(FormatTraceParent(*again), formatted);
  }
}

TEST(TraceParentTest, RoundTripsRandomIds) {
  for (int i = 0; i < 1000; ++i) {
    TraceParent tp;
    tp.trace_id = NewTraceId();
    tp.parent_id = NewParentId();
    tp.flags = static_cast<uint8_t>(i);
    std::string s = FormatTraceParent(tp);
    ASSERT_EQ(s.size(), 55u);
    std::optional<TraceParent> back = ParseTraceParent(s);
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, tp);
  }
}

TEST(TraceParentTest, NewIdsAreNonZeroAndDistinctAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i) {
        TraceParent tp;
        tp.trace_id = NewTraceId();
        tp.parent_id = NewParentId();
        ids[t].push_back(tp.TraceIdHex());
        ids[t].push_back(tp.ParentIdHex());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> traces, parents;
  for (const auto& per_thread : ids) {
    for (size_t i = 0; i < per_thread.size(); i += 2) {
      EXPECT_NE(per_thread[i], kZeros32);
      EXPECT_NE(per_thread[i + 1], kZeros16);
      traces.insert(per_thread[i]);
      parents.insert(per_thread[i + 1]);
    }
  }
  // 64-bit parent ids: a collision among 8000 has odds ~2e-12.
  EXPECT_EQ(traces.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(parents.size(), size_t{kThreads * kPerThread});
}

// ---------------------------------------------------------------------------
// baggage

struct BaggageCase {
  const char* name;  // what the row checks
  std::string input;
  std::vector<BaggageEntry> want;
  std::string warning;  // "" = none (the warning string is left untouched)
};

std::vector<BaggageCase> BaggageCases() {
  return {
      // Valid.
      {"one member", "k=v", {{"k", "v", ""}}, ""},
      {"two members", "a=1,b=2", {{"a", "1", ""}, {"b", "2", ""}}, ""},
      {"OWS around members", " a=1 ,\tb=2\t", {{"a", "1", ""}, {"b", "2", ""}},
       ""},
      {"OWS around '='", "a \t= 1", {{"a", "1", ""}}, ""},
      {"empty value", "a=", {{"a", "", ""}}, ""},
      {"percent-decoding", "a=hello%20world%21", {{"a", "hello world!", ""}},
       ""},
      {"lowercase escapes", "a=x%2cy%3bz", {{"a", "x,y;z", ""}}, ""},
      {"'+' is a literal plus", "a=1+1", {{"a", "1+1", ""}}, ""},
      {"'=' inside a value", "a=b=c", {{"a", "b=c", ""}}, ""},
      {"UTF-8 escapes", "name=Jos%C3%A9", {{"name", "Jos\xC3\xA9", ""}}, ""},
      {"invalid UTF-8 escape becomes U+FFFD", "a=x%FFy",
       {{"a", "x\xEF\xBF\xBDy", ""}}, ""},
      {"truncated UTF-8 sequence becomes U+FFFD", "a=%C3",
       {{"a", "\xEF\xBF\xBD", ""}}, ""},
      {"encoded UTF-16 surrogate becomes U+FFFD per byte", "a=%ED%A0%80",
       {{"a", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", ""}}, ""},
      {"overlong encoding becomes U+FFFD per byte", "a=%C0%AF",
       {{"a", "\xEF\xBF\xBD\xEF\xBF\xBD", ""}}, ""},
      {"4-byte UTF-8 kept", "a=%F0%9F%98%80", {{"a", "\xF0\x9F\x98\x80", ""}},
       ""},
      {"%00 decodes to a NUL", "a=x%00y", {{"a", "x\0y"s, ""}}, ""},
      {"properties kept raw", "a=1;p1;p2=v", {{"a", "1", "p1;p2=v"}}, ""},
      {"OWS around properties", "a=1 ; p = v ;\tq", {{"a", "1", "p = v ;\tq"}},
       ""},
      {"property value escapes kept as written, not decoded",
       "a=1;p=%41%2c;q=x%2", {},
       "baggage: dropped 1 malformed entry (first: member 1, property value "
       "has an invalid %-escape)"},
      {"property value with valid escapes kept escaped", "a=1;p=%41%2c;q",
       {{"a", "1", "p=%41%2c;q"}}, ""},
      {"property value with a bad escape", "a=1;p=%ZZ", {},
       "baggage: dropped 1 malformed entry (first: member 1, property value "
       "has an invalid %-escape)"},
      {"empty members skipped", ",a=1,,b=2,", {{"a", "1", ""}, {"b", "2", ""}},
       ""},
      {"empty header", "", {}, ""},
      {"only commas and spaces", " , ,, ", {}, ""},
      {"duplicate keys kept", "a=1,a=2", {{"a", "1", ""}, {"a", "2", ""}}, ""},
      {"every token character in a key", "a!#$%&'*+-.^_`|~9Z=1",
       {{"a!#$%&'*+-.^_`|~9Z", "1", ""}}, ""},

      // Malformed members, dropped and counted.
      {"no '='", "a", {}, "baggage: dropped 1 malformed entry (first: member 1, "
                          "no '=' after the key)"},
      {"empty key", "=v", {}, "baggage: dropped 1 malformed entry (first: "
                              "member 1, empty key)"},
      {"key not a token", "a/b=1", {}, "baggage: dropped 1 malformed entry "
                                       "(first: member 1, key has '/')"},
      {"key with a space inside", "a b=1", {},
       "baggage: dropped 1 malformed entry (first: member 1, unexpected 'b' "
       "after the key)"},
      {"non-ASCII key", "\xC3\xA9=1", {}, "baggage: dropped 1 malformed entry "
                                          "(first: member 1, key has \\xC3)"},
      {"bad escape", "a=%ZZ", {}, "baggage: dropped 1 malformed entry (first: "
                                  "member 1, value has an invalid %-escape)"},
      {"escape cut short", "a=%4", {}, "baggage: dropped 1 malformed entry "
                                       "(first: member 1, value has an "
                                       "invalid %-escape)"},
      {"lone '%' at the end", "a=x%", {}, "baggage: dropped 1 malformed entry "
                                          "(first: member 1, value has an "
                                          "invalid %-escape)"},
      {"space inside a value", "a=b c", {}, "baggage: dropped 1 malformed "
                                            "entry (first: member 1, "
                                            "unexpected 'c' after the value)"},
      {"DQUOTE in a value", "a=\"x\"", {}, "baggage: dropped 1 malformed entry "
                                           "(first: member 1, value has "
                                           "'\"')"},
      {"backslash in a value", "a=x\\y", {}, "baggage: dropped 1 malformed "
                                             "entry (first: member 1, value "
                                             "has '\\')"},
      {"raw NUL in a value", "a=x\0y"s, {}, "baggage: dropped 1 malformed "
                                            "entry (first: member 1, value has "
                                            "\\x00)"},
      {"raw non-ASCII in a value", "a=\xC3\xA9", {}, "baggage: dropped 1 "
                                                     "malformed entry (first: "
                                                     "member 1, value has "
                                                     "\\xC3)"},
      {"empty property", "a=1;", {}, "baggage: dropped 1 malformed entry "
                                     "(first: member 1, empty property)"},
      {"empty property between two", "a=1;p;;q", {},
       "baggage: dropped 1 malformed entry (first: member 1, property key has "
       "';')"},
      {"property without a key", "a=1;=x", {}, "baggage: dropped 1 malformed "
                                               "entry (first: member 1, "
                                               "property key has '=')"},
      {"space inside a property value", "a=1;p=x y", {},
       "baggage: dropped 1 malformed entry (first: member 1, property has "
       "'y')"},
      {"good and bad members mixed", "a=1,bad,b=2,=x,c=%G0",
       {{"a", "1", ""}, {"b", "2", ""}},
       "baggage: dropped 3 malformed entries (first: member 2, no '=' after "
       "the key)"},
      {"member numbers skip empty members", ",,a=1,,b c=2",
       {{"a", "1", ""}},
       "baggage: dropped 1 malformed entry (first: member 2, unexpected 'c' "
       "after the key)"},
  };
}

TEST(BaggageTest, Table) {
  std::vector<BaggageCase> cases = BaggageCases();
  ASSERT_GE(cases.size(), 30u);
  for (const BaggageCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string warning = "untouched";
    std::vector<BaggageEntry> got = ParseBaggage(c.input, &warning);
    EXPECT_EQ(got, c.want);
    EXPECT_EQ(warning, c.warning.empty() ? "untouched" : c.warning);
    EXPECT_EQ(ParseBaggage(c.input), got);
  }
}

TEST(BaggageTest, RoundTripsEveryRow) {
  for (const BaggageCase& c : BaggageCases()) {
    SCOPED_TRACE(c.name);
    std::vector<BaggageEntry> parsed = ParseBaggage(c.input);
    std::string formatted = FormatBaggage(parsed);
    std::string warning;
    EXPECT_EQ(ParseBaggage(formatted, &warning), parsed) << formatted;
    EXPECT_EQ(warning, "");
    EXPECT_EQ(FormatBaggage(ParseBaggage(formatted)), formatted);
  }
}

TEST(BaggageTest, FormatPercentEncodesWhatTheSpecRequires) {
  EXPECT_EQ(FormatBaggage({{"k", "a b,c;d\\e\"f%g=h+i", ""}}),
            "k=a%20b%2Cc%3Bd%5Ce%22f%25g=h+i");
  EXPECT_EQ(FormatBaggage({{"k", "Jos\xC3\xA9\n\x7f"s + '\0', ""}}),
            "k=Jos%C3%A9%0A%7F%00");
  EXPECT_EQ(FormatBaggage({{"a", "1", "p=x;q"}, {"b", "", ""}}),
            "a=1;p=x;q,b=");
  EXPECT_EQ(FormatBaggage({}), "");
}

TEST(BaggageTest, FormatLeavesOutEntriesThatWouldNotParseBack) {
  EXPECT_EQ(FormatBaggage({{"", "empty key", ""},
                           {"a b", "space in key", ""},
                           {"ok", "1", ""},
                           {"p", "1", ";"},
                           {"q", "1", " p"},
                           {"r", "1", "p,q"},
                           {"ok2", "2", "p"}}),
            "ok=1,ok2=2;p");
}

// n entries "k<i>=v" (distinct keys, so the tests can see which were kept).
std::string Members(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += ',';
    s += "k" + std::to_string(i) + "=v";
  }
  return s;
}

TEST(BaggageLimitsTest, Exactly180EntriesAreKept) {
  std::string warning = "untouched";
  std::vector<BaggageEntry> got = ParseBaggage(Members(180), &warning);
  EXPECT_EQ(got.size(), 180u);
  EXPECT_EQ(warning, "untouched");
  EXPECT_EQ(FormatBaggage(got), Members(180));
}

TEST(BaggageLimitsTest, The181stEntryIsTruncated) {
  std::string warning;
  std::vector<BaggageEntry> got = ParseBaggage(Members(181), &warning);
  ASSERT_EQ(got.size(), 180u);
  EXPECT_EQ(got.back().key, "k179");
  EXPECT_EQ(warning, "baggage: truncated at 180 entries (180 entries kept)");
}

TEST(BaggageLimitsTest, DroppedAndTruncatedMakeOneLine) {
  std::string warning;
  std::vector<BaggageEntry> got =
      ParseBaggage("bad1,bad2," + Members(200), &warning);
  EXPECT_EQ(got.size(), 180u);
  EXPECT_EQ(warning,
            "baggage: dropped 2 malformed entries (first: member 1, no '=' "
            "after the key), truncated at 180 entries (180 entries kept)");
  EXPECT_EQ(warning.find('\n'), std::string::npos);
}

// Two entries whose formatted size is exactly `total` bytes: "a=<x...>,b=<y...>".
std::string TwoEntriesOfSize(size_t total) {
  size_t first = total / 2;
  size_t second = total - first - 1;  // the ','
  return "a=" + std::string(first - 2, 'x') + ",b=" +
         std::string(second - 2, 'y');
}

TEST(BaggageLimitsTest, Exactly8192BytesAreKept) {
  std::string header = TwoEntriesOfSize(8192);
  ASSERT_EQ(header.size(), 8192u);
  std::string warning = "untouched";
  std::vector<BaggageEntry> got = ParseBaggage(header, &warning);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(warning, "untouched");
  EXPECT_EQ(FormatBaggage(got), header);
}

TEST(BaggageLimitsTest, AnEntryCrossing8192BytesIsDroppedWhole) {
  std::string warning;
  std::vector<BaggageEntry> got =
      ParseBaggage(TwoEntriesOfSize(8193), &warning);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, "a");
  EXPECT_EQ(warning, "baggage: truncated at 8192 bytes (1 entry kept)");
}

TEST(BaggageLimitsTest, BytesCountedAsFormattedNotAsReceived) {
  // 8192 bytes of entries plus padding whitespace: what is kept fits.
  std::string header = "   " + TwoEntriesOfSize(8192) + "  ,  ";
  std::string warning = "untouched";
  EXPECT_EQ(ParseBaggage(header, &warning).size(), 2u);
  EXPECT_EQ(warning, "untouched");
  // Escapes that decode to characters written raw shrink the entry.
  std::string escaped = "a=";
  for (int i = 0; i < 3000; ++i) escaped += "%41";  // "A"
  std::vector<BaggageEntry> got = ParseBaggage(escaped, &warning);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, std::string(3000, 'A'));
  // A value whose escapes stay escaped: 2 + 3 * 2730 = 8192 bytes.
  std::string spaces = "a=";
  for (int i = 0; i < 2730; ++i) spaces += "%20";
  EXPECT_EQ(ParseBaggage(spaces).size(), 1u);
  EXPECT_EQ(ParseBaggage(spaces + "%20").size(), 0u);
}

TEST(BaggageLimitsTest, FormatStopsBeforeTheLimits) {
  std::vector<BaggageEntry> many;
  for (int i = 0; i < 200; ++i) many.push_back({"k" + std::to_string(i), "v", ""});
  EXPECT_EQ(FormatBaggage(many), Members(180));

  std::vector<BaggageEntry> big = {{"a", std::string(5000, 'x'), ""},
                                   {"b", std::string(5000, 'y'), ""},
                                   {"c", "small", ""}};
  std::string s = FormatBaggage(big);
  EXPECT_EQ(s, "a=" + std::string(5000, 'x'));  // "b" would not fit: stop

  // A value that needs escaping counts escaped: 2731 spaces are 8195 bytes.
  EXPECT_EQ(FormatBaggage({{"a", std::string(2731, ' '), ""}}), "");
  EXPECT_EQ(FormatBaggage({{"a", std::string(2730, ' '), ""}}).size(), 8192u);
}

TEST(BaggageTest, RoundTripsArbitraryAsciiValues) {
  // Every byte 0..127 in values, every token char in keys.
  std::vector<BaggageEntry> entries;
  for (int i = 0; i < 128; ++i) {
    std::string value;
    for (int k = 0; k < 5; ++k) value += static_cast<char>((i * 7 + k * 31) % 128);
    entries.push_back({"key" + std::to_string(i), value, i % 3 ? "" : "p=1;q"});
  }
  std::string formatted = FormatBaggage(entries);
  std::string warning;
  EXPECT_EQ(ParseBaggage(formatted, &warning), entries);
  EXPECT_EQ(warning, "");
}

// ---------------------------------------------------------------------------
// Hostile input: 1 MB headers come back (linear time, no crash), with
// sensible results. No timing assertion.

constexpr size_t kMegabyte = 1 << 20;

TEST(HostileTest, MegabyteOfCommas) {
  std::string warning = "untouched";
  EXPECT_TRUE(ParseBaggage(std::string(kMegabyte, ','), &warning).empty());
  EXPECT_EQ(warning, "untouched");
  EXPECT_FALSE(ParseTraceParent(std::string(kMegabyte, ','), &warning));
}

TEST(HostileTest, MegabyteOfSemicolons) {
  std::string warning;
  std::string header = "a=1" + std::string(kMegabyte, ';');
  EXPECT_TRUE(ParseBaggage(header, &warning).empty());
  EXPECT_EQ(warning,
            "baggage: dropped 1 malformed entry (first: member 1, property key "
            "has ';')");
  std::string props = "a=1";
  while (props.size() < kMegabyte) props += ";p=q";
  EXPECT_TRUE(ParseBaggage(props, &warning).empty());  // too big to keep
  EXPECT_EQ(warning, "baggage: truncated at 8192 bytes (0 entries kept)");
}

TEST(HostileTest, MegabyteOfNulsAndOfHighBytes) {
  std::string warning;
  EXPECT_TRUE(ParseBaggage(std::string(kMegabyte, '\0'), &warning).empty());
  EXPECT_EQ(warning,
            "baggage: dropped 1 malformed entry (first: member 1, key has "
            "\\x00)");
  EXPECT_TRUE(ParseBaggage(std::string(kMegabyte, '\xff'), &warning).empty());
  EXPECT_FALSE(ParseTraceParent(std::string(kMegabyte, '\0'), &warning));
  EXPECT_EQ(warning,
            "traceparent: version is not 2 lowercase hex digits (\\x00)");
}

TEST(HostileTest, MegabyteOfMalformedAndOfValidMembers) {
  std::string bad;
  while (bad.size() < kMegabyte) bad += "a=%ZZ,";
  std::string warning;
  EXPECT_TRUE(ParseBaggage(bad, &warning).empty());
  EXPECT_EQ(warning, "baggage: dropped " + std::to_string(bad.size() / 6) +
                         " malformed entries (first: member 1, value has an "
                         "invalid %-escape)");
  std::string good;
  while (good.size() < kMegabyte) good += "k=v,";
  EXPECT_EQ(ParseBaggage(good, &warning).size(), 180u);
  EXPECT_EQ(warning, "baggage: truncated at 180 entries (180 entries kept)");
}

TEST(HostileTest, MegabyteTraceParents) {
  std::string warning;
  std::string hex = "01-" + std::string(kMegabyte, 'a');
  EXPECT_FALSE(ParseTraceParent(hex, &warning));
  EXPECT_EQ(warning, "traceparent: expected '-' after the trace-id, got 'a'");
  std::string future = Tp("01", kTrace, kParent, "01") + "-" +
                       std::string(kMegabyte, '-');
  EXPECT_TRUE(ParseTraceParent(future).has_value());
  EXPECT_FALSE(ParseTraceParent(std::string(kMegabyte, ' ') + "00", &warning));
  EXPECT_EQ(warning, "traceparent: version 00 needs exactly 55 characters, got 2");
}

// ---------------------------------------------------------------------------
// Trace Context Level 2: the random trace-id flag

TEST(TraceFlagsTest, StartTraceSetsTheRandomFlag) {
  TraceParent sampled = StartTrace();
  EXPECT_EQ(sampled.flags, kSampledFlag | kRandomTraceIdFlag);
  EXPECT_TRUE(sampled.random_trace_id());
  EXPECT_TRUE(sampled.sampled());
  EXPECT_NE(sampled.TraceIdHex(), kZeros32);
  EXPECT_NE(sampled.ParentIdHex(), kZeros16);
  TraceParent not_sampled = StartTrace(/*sampled=*/false);
  EXPECT_EQ(not_sampled.flags, kRandomTraceIdFlag);
  EXPECT_NE(not_sampled.trace_id, sampled.trace_id);
  EXPECT_EQ(FormatTraceParent(sampled).substr(52), "-03");
}

TEST(TraceFlagsTest, ContinueTraceKeepsKnownFlagsAndClearsTheRest) {
  struct Row {
    std::string flags;
    uint8_t want;
  };
  for (const Row& row : {Row{"00", 0x00}, Row{"01", 0x01}, Row{"02", 0x02},
                         Row{"03", 0x03}, Row{"ff", 0x03}, Row{"fc", 0x00},
                         Row{"06", 0x02}}) {
    SCOPED_TRACE(row.flags);
    std::optional<TraceParent> in =
        ParseTraceParent(Tp("cc", kTrace, kParent, row.flags) + "-future");
    ASSERT_TRUE(in.has_value());
    TraceParent out = ContinueTrace(*in);
    EXPECT_EQ(out.version, 0);
    EXPECT_EQ(out.TraceIdHex(), kTrace);
    EXPECT_NE(out.ParentIdHex(), kParent);
    EXPECT_EQ(out.flags, row.want);
    EXPECT_EQ(out.random_trace_id(), (row.want & 0x02) != 0);
    EXPECT_EQ(FormatTraceParent(out).substr(0, 36),
              "00-" + std::string(kTrace) + "-");
  }
}

// ---------------------------------------------------------------------------
// tracestate

using TS = std::vector<TraceStateEntry>;

// "k1=1,k2=1,...,k<n>=1"
std::string Repeat(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += (i > 1 ? "," : "") + ("k" + std::to_string(i)) + "=1";
  return s;
}

struct TraceStateCase {
  const char* name;  // what the row checks
  std::vector<std::string> fields;
  std::optional<TS> want;  // nullopt: discarded
  std::string warning;     // "" = none (left untouched)
};

// Every character the value grammar allows, starting with a space.
std::string AllValueChars() {
  std::string v;
  for (int c = 0x20; c <= 0x7e; ++c) {
    if (c != ',' && c != '=') v += static_cast<char>(c);
  }
  return v;
}

std::vector<TraceStateCase> TraceStateCases() {
  const std::string key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
  return {
      // Valid.
      {"one member", {"congo=t61rcWkgMzE"}, TS{{"congo", "t61rcWkgMzE"}}, ""},
      {"two members, order kept", {"rojo=00f067aa0ba902b7,congo=t61"},
       TS{{"rojo", "00f067aa0ba902b7"}, {"congo", "t61"}}, ""},
      {"multi-tenant key", {"tenant@vendor=1"}, TS{{"tenant@vendor", "1"}}, ""},
      {"key starting with a digit", {"0x=1,9@a=2"},
       TS{{"0x", "1"}, {"9@a", "2"}}, ""},
      {"every key character", {key_chars + "=1," + key_chars + "@a-z0-9_-*/=2"},
       TS{{key_chars, "1"}, {key_chars + "@a-z0-9_-*/", "2"}}, ""},
      {"'@' at the end, twice, or several times", {"foo@=1,foo@@bar=2,a@b@c=3"},
       TS{{"foo@", "1"}, {"foo@@bar", "2"}, {"a@b@c", "3"}}, ""},
      {"every value character, leading space kept",
       {"k=" + AllValueChars()}, TS{{"k", AllValueChars()}}, ""},
      {"leading spaces of a value kept", {"k=  x"}, TS{{"k", "  x"}}, ""},
      {"256-character key", {std::string(256, 'z') + "=1"},
       TS{{std::string(256, 'z'), "1"}}, ""},
      {"256-character value", {"k=" + std::string(256, 'v')},
       TS{{"k", std::string(256, 'v')}}, ""},
      {"OWS around members", {"foo=1 \t , \t bar=2, \t baz=3\t "},
       TS{{"foo", "1"}, {"bar", "2"}, {"baz", "3"}}, ""},
      {"trailing spaces are OWS, not value", {"foo=1   "}, TS{{"foo", "1"}},
       ""},
      {"empty and whitespace-only members skipped", {",foo=1,, \t ,bar=2,"},
       TS{{"foo", "1"}, {"bar", "2"}}, ""},
      {"empty header", {""}, TS{}, ""},
      {"no fields", {}, TS{}, ""},
      {"whitespace-only header", {" \t "}, TS{}, ""},
      {"several fields combined in order",
       {"foo=1,bar=2", "rojo=1,congo=2", "baz=3"},
       TS{{"foo", "1"}, {"bar", "2"}, {"rojo", "1"}, {"congo", "2"},
          {"baz", "3"}},
       ""},
      {"empty fields among others", {"", "foo=1", ""}, TS{{"foo", "1"}}, ""},
      {"32 members across fields",
       {"k1=1,k2=2,k3=3,k4=4,k5=5,k6=6,k7=7,k8=8,k9=9,k10=10",
        "k11=1,k12=2,k13=3,k14=4,k15=5,k16=6,k17=7,k18=8,k19=9,k20=10",
        "k21=1,k22=2,k23=3,k24=4,k25=5,k26=6,k27=7,k28=8,k29=9,k30=10",
        "k31=1,k32=2"},
       std::nullopt, "(checked by size below)"},
      {"duplicate key: the first kept", {"foo=1,bar=2,foo=3"},
       TS{{"foo", "1"}, {"bar", "2"}},
       "tracestate: dropped 1 duplicate key (first: member 3, foo)"},
      {"duplicate keys across fields", {"foo=1", "foo=2", "foo=1"},
       TS{{"foo", "1"}},
       "tracestate: dropped 2 duplicate keys (first: member 2, foo)"},

      // Discarded whole.
      {"33 members", {Repeat(33)}, std::nullopt,
       "tracestate: discarded (more than 32 list-members)"},
      {"33 members across fields", {Repeat(20), Repeat(13)}, std::nullopt,
       "tracestate: discarded (more than 32 list-members)"},
      {"no '='", {"foo"}, std::nullopt,
       "tracestate: discarded (member 1, no '=')"},
      {"space before '='", {"foo =1"}, std::nullopt,
       "tracestate: discarded (member 1, key has a space)"},
      {"uppercase key", {"FOO=1"}, std::nullopt,
       "tracestate: discarded (member 1, key starts with 'F')"},
      {"'.' in a key", {"bar=1,foo.bar=1"}, std::nullopt,
       "tracestate: discarded (member 2, key has '.')"},
      {"key starting with '@'", {"@foo=1,bar=2"}, std::nullopt,
       "tracestate: discarded (member 1, key starts with '@')"},
      {"key starting with '_'", {"_a=1"}, std::nullopt,
       "tracestate: discarded (member 1, key starts with '_')"},
      {"empty key", {"=1"}, std::nullopt,
       "tracestate: discarded (member 1, empty key)"},
      {"257-character key", {"foo=1", std::string(257, 'z') + "=1"},
       std::nullopt,
       "tracestate: discarded (member 2, key longer than 256 characters)"},
      {"257-character value", {"k=" + std::string(257, 'v')}, std::nullopt,
       "tracestate: discarded (member 1, value longer than 256 characters)"},
      {"'=' in a value", {"foo=bar=baz"}, std::nullopt,
       "tracestate: discarded (member 1, value has '=')"},
      {"empty value", {"foo=,bar=3"}, std::nullopt,
       "tracestate: discarded (member 1, empty value)"},
      {"value of spaces only", {"foo=   "}, std::nullopt,
       "tracestate: discarded (member 1, empty value)"},
      {"tab inside a value", {"foo=a\tb"}, std::nullopt,
       "tracestate: discarded (member 1, value has \\x09)"},
      {"tab leading a value", {"foo=\tb"}, std::nullopt,
       "tracestate: discarded (member 1, value has \\x09)"},
      {"non-ASCII value", {"foo=\xC3\xA9"}, std::nullopt,
       "tracestate: discarded (member 1, value has \\xC3)"},
      {"NUL in a value", {"foo=a\0b"s}, std::nullopt,
       "tracestate: discarded (member 1, value has \\x00)"},
      {"DEL in a value", {"foo=a\x7f"}, std::nullopt,
       "tracestate: discarded (member 1, value has \\x7F)"},
      {"bad member in a later field", {"foo=1", "bar"}, std::nullopt,
       "tracestate: discarded (member 2, no '=')"},
  };
}

std::vector<std::string_view> Views(const std::vector<std::string>& fields) {
  return {fields.begin(), fields.end()};
}

TEST(TraceStateTest, Table) {
  std::vector<TraceStateCase> cases = TraceStateCases();
  ASSERT_GE(cases.size(), 40u);
  for (const TraceStateCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string warning = "untouched";
    std::optional<TS> got = ParseTraceState(Views(c.fields), &warning);
    if (c.warning == "(checked by size below)") {
      ASSERT_TRUE(got.has_value()) << warning;
      EXPECT_EQ(got->size(), 32u);
      EXPECT_EQ(got->front(), (TraceStateEntry{"k1", "1"}));
      EXPECT_EQ(got->back(), (TraceStateEntry{"k32", "2"}));
      EXPECT_EQ(warning, "untouched");
      continue;
    }
    EXPECT_EQ(got, c.want);
    EXPECT_EQ(warning, c.warning.empty() ? "untouched" : c.warning);
    EXPECT_EQ(ParseTraceState(Views(c.fields)), got);
    if (c.fields.size() == 1) EXPECT_EQ(ParseTraceState(c.fields[0]), got);
    // Fields are combined as joined with ','.
    std::string joined;
    for (size_t i = 0; i < c.fields.size(); ++i) {
      joined += (i ? "," : "") + c.fields[i];
    }
    EXPECT_EQ(ParseTraceState(joined), got);
  }
}

TEST(TraceStateTest, RoundTripsEveryAcceptedRow) {
  for (const TraceStateCase& c : TraceStateCases()) {
    SCOPED_TRACE(c.name);
    std::optional<TS> parsed = ParseTraceState(Views(c.fields));
    if (!parsed) continue;
    std::string formatted = FormatTraceState(*parsed);
    EXPECT_LE(formatted.size(), kMaxTraceStateBytes);
    std::string warning = "untouched";
    EXPECT_EQ(ParseTraceState(formatted, &warning), parsed) << formatted;
    EXPECT_EQ(warning, "untouched");
    EXPECT_EQ(FormatTraceState(*ParseTraceState(formatted)), formatted);
  }
}

TEST(TraceStateTest, FormatWritesNoWhitespaceAndLeavesOutWhatWouldNotParse) {
  EXPECT_EQ(FormatTraceState({{"rojo", "00f067aa0ba902b7"}, {"congo", " t61"}}),
            "rojo=00f067aa0ba902b7,congo= t61");
  EXPECT_EQ(FormatTraceState({}), "");
  EXPECT_EQ(FormatTraceState({{"Bad", "1"},
                              {"ok", "1"},
                              {"a", ""},
                              {"b", "x,y"},
                              {"c", "x "},
                              {"ok", "2"},
                              {"@x", "1"},
                              {std::string(257, 'k'), "1"},
                              {"ok2", "2"}}),
            "ok=1,ok2=2");
}

TEST(TraceStateTest, FormatKeepsTheFirst32Entries) {
  TS many;
  for (int i = 0; i < 40; ++i) many.push_back({"k" + std::to_string(i), "v"});
  std::string formatted = FormatTraceState(many);
  std::optional<TS> back = ParseTraceState(formatted);
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 32u);
  EXPECT_EQ(back->back().key, "k31");
}

// Entry "k<i>=" + value of `size` characters in all: key + '=' + value.
TraceStateEntry Sized(int i, size_t size) {
  std::string key = "k" + std::to_string(i);
  return {key, std::string(size - key.size() - 1, 'v')};
}

std::string Joined(const TS& entries) {
  std::string s;
  for (const TraceStateEntry& e : entries) {
    s += (s.empty() ? "" : ",") + e.key + "=" + e.value;
  }
  return s;
}

TEST(TraceStateLimitsTest, Exactly512BytesAreKept) {
  // 4 entries of 127 characters + 3 commas + ... = 512 exactly.
  TS entries = {Sized(1, 127), Sized(2, 127), Sized(3, 127), Sized(4, 128)};
  std::string header = Joined(entries);
  ASSERT_EQ(header.size(), 512u);
  std::string warning = "untouched";
  EXPECT_EQ(ParseTraceState(header, &warning), entries);
  EXPECT_EQ(warning, "untouched");
  EXPECT_EQ(FormatTraceState(entries), header);
}

TEST(TraceStateLimitsTest, EntriesLongerThan128GoFirst) {
  // 513 bytes: one entry must go. The one longer than 128 characters goes,
  // though it is not at the end.
  TS entries = {Sized(1, 100), Sized(2, 200), Sized(3, 100), Sized(4, 110)};
  std::string header = Joined(entries);
  ASSERT_EQ(header.size(), 513u);
  std::string warning;
  std::optional<TS> got = ParseTraceState(header, &warning);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (TS{Sized(1, 100), Sized(3, 100), Sized(4, 110)}));
  EXPECT_EQ(warning,
            "tracestate: truncated to 512 bytes (1 entry removed, 1 of them "
            "longer than 128 characters)");
  EXPECT_EQ(FormatTraceState(entries), Joined(*got));
}

TEST(TraceStateLimitsTest, LargeEntriesGoRightMostFirst) {
  // 3 * 129 + 250 + 3 = 640: removing the right-most large one (250) is
  // enough; the other three stay.
  TS entries = {Sized(1, 129), Sized(2, 129), Sized(3, 129), Sized(4, 250)};
  std::optional<TS> got = ParseTraceState(Joined(entries));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, (TS{Sized(1, 129), Sized(2, 129), Sized(3, 129)}));
}

TEST(TraceStateLimitsTest, ThenEntriesFromTheEnd) {
  // 32 small entries of 20 characters: 32 * 21 - 1 = 671 bytes. No entry is
  // large: remove from the end until it fits: 24 entries = 503 bytes.
  TS entries;
  for (int i = 0; i < 32; ++i) entries.push_back(Sized(i, 20));
  std::string warning;
  std::optional<TS> got = ParseTraceState(Joined(entries), &warning);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, TS(entries.begin(), entries.begin() + 24));
  EXPECT_EQ(warning,
            "tracestate: truncated to 512 bytes (8 entries removed, 0 of them "
            "longer than 128 characters)");
  EXPECT_EQ(FormatTraceState(entries), Joined(*got));
}

TEST(TraceStateLimitsTest, LargeEntriesThenTheEnd) {
  // Two large entries (250, 200) and 10 small ones of 60 (609 bytes
  // alone): both large ones go, then small ones from the end.
  TS entries = {Sized(0, 250)};
  for (int i = 1; i <= 10; ++i) entries.push_back(Sized(i, 60));
  entries.push_back(Sized(11, 200));
  std::string warning;
  std::optional<TS> got = ParseTraceState(Joined(entries), &warning);
  ASSERT_TRUE(got.has_value());
  // 8 small ones: 8 * 61 - 1 = 487 bytes; 9 would be 548.
  EXPECT_EQ(*got, TS(entries.begin() + 1, entries.begin() + 9));
  EXPECT_EQ(warning,
            "tracestate: truncated to 512 bytes (4 entries removed, 2 of them "
            "longer than 128 characters)");
}

TEST(TraceStateLimitsTest, DuplicatesAndTruncationMakeOneLine) {
  TS entries;
  for (int i = 0; i < 30; ++i) entries.push_back(Sized(i, 20));
  std::string warning;
  ParseTraceState(Joined(entries) + ",k0=x", &warning);
  EXPECT_EQ(warning,
            "tracestate: dropped 1 duplicate key (first: member 31, k0), "
            "truncated to 512 bytes (6 entries removed, 0 of them longer "
            "than 128 characters)");
  EXPECT_EQ(warning.find('\n'), std::string::npos);
}

TEST(TraceStateTest, HostileInput) {
  std::string warning;
  EXPECT_EQ(ParseTraceState(std::string(kMegabyte, ','), &warning), TS{});
  EXPECT_FALSE(ParseTraceState(std::string(kMegabyte, 'a'), &warning));
  EXPECT_EQ(warning, "tracestate: discarded (member 1, no '=')");
  EXPECT_FALSE(ParseTraceState(std::string(kMegabyte, '='), &warning));
  EXPECT_EQ(warning, "tracestate: discarded (member 1, empty key)");
  EXPECT_FALSE(ParseTraceState("a=" + std::string(kMegabyte, 'v'), &warning));
  EXPECT_EQ(warning,
            "tracestate: discarded (member 1, value longer than 256 "
            "characters)");
  std::string many;
  while (many.size() < kMegabyte) many += "a=1,";
  EXPECT_FALSE(ParseTraceState(many, &warning));
  EXPECT_EQ(warning, "tracestate: discarded (more than 32 list-members)");
  EXPECT_FALSE(ParseTraceState(std::string(kMegabyte, '\0'), &warning));
  std::vector<std::string_view> empty_fields(100000, "");
  EXPECT_EQ(ParseTraceState(empty_fields), TS{});
}

}  // namespace
}  // namespace w3c
}  // namespace gls
