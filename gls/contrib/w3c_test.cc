// Tests of gls/contrib/w3c.h: table-driven traceparent and baggage parsing
// (valid and bad input, with the warnings' texts), the baggage limits,
// formatting, round trips, random ids, and hostile headers.
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
      {"property value with '%' kept raw", "a=1;p=%ZZ", {{"a", "1", "p=%ZZ"}},
       ""},
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

}  // namespace
}  // namespace w3c
}  // namespace gls
