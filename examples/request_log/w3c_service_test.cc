// Tests of examples/request_log/w3c_service.h: the strict JSON parser (valid
// and invalid documents, with the error texts, deep nesting), the suite's
// instructions, and the loopback-only URL check.
#include "examples/request_log/w3c_service.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace request_log {
namespace {

using namespace std::string_literals;

TEST(JsonTest, ValidDocuments) {
  for (const char* text :
       {"null", "true", "false", "0", "-0", "12.5e-3", "1E+9", "\"\"", "[]", "{}",
        " [1, \"a\", null, true, {\"k\": [false]}] ", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\ud83d\\ude00\"", "{\"a\":1,\"a\":2}", "\t\r\n[\n]\n"}) {
    SCOPED_TRACE(text);
    std::string error = "untouched";
    std::optional<JsonValue> v = ParseJson(text, &error);
    ASSERT_TRUE(v.has_value()) << error;
    EXPECT_EQ(error, "untouched");
  }
}

TEST(JsonTest, DecodesStringsAndKeepsRawText) {
  std::string error;
  std::optional<JsonValue> v =
      ParseJson(R"( {"s": "a\u00e9\ud83d\ude00\ud800x", "n": [1, {"x": 2}] } )", &error);
  ASSERT_TRUE(v.has_value()) << error;
  ASSERT_EQ(v->kind, JsonValue::Kind::kObject);
  ASSERT_NE(v->Find("s"), nullptr);
  EXPECT_EQ(v->Find("s")->string, "a\xC3\xA9\xF0\x9F\x98\x80\xEF\xBF\xBDx");
  ASSERT_NE(v->Find("n"), nullptr);
  EXPECT_EQ(v->Find("n")->raw, R"([1, {"x": 2}])");
  EXPECT_EQ(v->Find("missing"), nullptr);
  EXPECT_EQ(v->raw.front(), '{');
  EXPECT_EQ(v->raw.back(), '}');
}

TEST(JsonTest, InvalidDocumentsSayWhere) {
  struct Row {
    std::string text;
    std::string error;
  };
  const std::vector<Row> rows = {
      {"", "offset 0: unexpected end of input"},
      {"   ", "offset 3: unexpected end of input"},
      {"[1,]", "offset 3: invalid value"},
      {"[1 2]", "offset 3: expected ',' or ']'"},
      {"{\"a\" 1}", "offset 5: expected ':'"},
      {"{a:1}", "offset 1: expected a member name"},
      {"{\"a\":1,}", "offset 7: expected a member name"},
      {"[1] x", "offset 4: unexpected text after the value"},
      {"'a'", "offset 0: invalid value"},
      {"01", "offset 1: leading zero in a number"},
      {"1.", "offset 2: expected a digit after '.'"},
      {"1e", "offset 2: expected a digit in the exponent"},
      {"-", "offset 1: invalid value"},
      {"NaN", "offset 0: invalid value"},
      {"tru", "offset 0: invalid literal"},
      {"\"abc", "offset 4: unterminated string"},
      {"\"a\nb\"", "offset 2: control character in a string"},
      {"\"\\x\"", "offset 2: invalid escape"},
      {"\"\\u12G4\"", "offset 3: invalid \\u escape"},
      {"[1]\0"s, "offset 3: unexpected text after the value"},
      {"/* c */ 1", "offset 0: invalid value"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.text);
    std::string error;
    EXPECT_FALSE(ParseJson(row.text, &error).has_value());
    EXPECT_EQ(error, row.error);
  }
}

TEST(JsonTest, NestingIsBounded) {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  std::string error;
  EXPECT_TRUE(ParseJson(ok, &error).has_value()) << error;
  std::string deep = std::string(65, '[') + std::string(65, ']');
  EXPECT_FALSE(ParseJson(deep, &error).has_value());
  EXPECT_EQ(error, "offset 64: nested deeper than 64");
  // A megabyte of '[' or '{': refused at depth 65, no stack overflow.
  EXPECT_FALSE(ParseJson(std::string(1 << 20, '['), &error).has_value());
  EXPECT_FALSE(ParseJson(std::string(1 << 20, '{'), &error).has_value());
  EXPECT_FALSE(ParseJson(std::string(1 << 20, '"'), &error).has_value());
}

TEST(InstructionsTest, TheSuitesShape) {
  std::string error;
  std::optional<std::vector<CallInstruction>> calls = ParseCallInstructions(
      R"([{"url": "http://127.0.0.1:7777/s.0", "arguments": [{"url": "http://127.0.0.1:7777/s.1", "arguments": []}]},
          {"arguments": {"x": 1}, "url": "http://127.0.0.1:7777/s.2", "other": 3},
          {"url": "http://127.0.0.1:7777/s.3"}])",
      &error);
  ASSERT_TRUE(calls.has_value()) << error;
  ASSERT_EQ(calls->size(), 3u);
  EXPECT_EQ((*calls)[0].url, "http://127.0.0.1:7777/s.0");
  EXPECT_EQ((*calls)[0].arguments, R"([{"url": "http://127.0.0.1:7777/s.1", "arguments": []}])");
  EXPECT_EQ((*calls)[1].arguments, R"({"x": 1})");
  EXPECT_EQ((*calls)[2].arguments, "[]");
  EXPECT_EQ(ParseCallInstructions("[]", &error)->size(), 0u);
}

TEST(InstructionsTest, RejectsOtherShapes) {
  struct Row {
    std::string body;
    std::string error;
  };
  const std::vector<Row> rows = {
      {"{\"url\": \"x\"}", "the body is not a JSON array"},
      {"[1]", "element 1: not an object"},
      {"[{\"url\": \"http://127.0.0.1/\"}, {\"url\": 5}]",
       "element 2: \"url\" is missing or not a string"},
      {"[{}]", "element 1: \"url\" is missing or not a string"},
      {"[{\"url\": \"a\"}", "invalid JSON: offset 13: expected ',' or ']'"},
      {"not json", "invalid JSON: offset 0: invalid literal"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.body);
    std::string error;
    EXPECT_FALSE(ParseCallInstructions(row.body, &error).has_value());
    EXPECT_EQ(error, row.error);
  }
}

TEST(LoopbackUrlTest, AcceptsLoopbackIpLiterals) {
  struct Row {
    std::string url, address;
    uint16_t port;
    std::string host, target;
  };
  const std::vector<Row> rows = {
      {"http://127.0.0.1:7777/abc.0", "127.0.0.1", 7777, "127.0.0.1:7777", "/abc.0"},
      {"http://127.1.2.3", "127.1.2.3", 80, "127.1.2.3", "/"},
      {"http://127.0.0.1:8080?q=1", "127.0.0.1", 8080, "127.0.0.1:8080", "/?q=1"},
      {"http://127.0.0.1/p#frag", "127.0.0.1", 80, "127.0.0.1", "/p"},
      {"http://[::1]:9000/x", "::1", 9000, "[::1]:9000", "/x"},
      {"http://[::1]", "::1", 80, "[::1]", "/"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.url);
    std::string error;
    bool refused = true;
    std::optional<LoopbackUrl> u = ParseLoopbackUrl(row.url, &error, &refused);
    ASSERT_TRUE(u.has_value()) << error;
    EXPECT_FALSE(refused);
    EXPECT_EQ(u->address, row.address);
    EXPECT_EQ(u->port, row.port);
    EXPECT_EQ(u->host, row.host);
    EXPECT_EQ(u->target, row.target);
  }
}

TEST(LoopbackUrlTest, RefusesOtherHostsAndRejectsMalformedUrls) {
  struct Row {
    std::string url;
    bool refused;  // 403 (well formed, not loopback) rather than 400
    std::string error;
  };
  const std::vector<Row> rows = {
      {"http://10.0.0.1:80/", true, "url host 10.0.0.1 is not a loopback IP address"},
      {"http://128.0.0.1/", true, "url host 128.0.0.1 is not a loopback IP address"},
      {"http://0.0.0.0:7777/", true, "url host 0.0.0.0 is not a loopback IP address"},
      {"http://localhost:7777/", true, "url host localhost is not a loopback IP address"},
      {"http://example.com/", true, "url host example.com is not a loopback IP address"},
      {"http://[::2]/", true, "url host ::2 is not a loopback IP address"},
      {"http://[::ffff:127.0.0.1]/", true,
       "url host ::ffff:127.0.0.1 is not a loopback IP address"},
      {"http://127.0.0.1.evil.com/", true,
       "url host 127.0.0.1.evil.com is not a loopback IP address"},
      {"https://127.0.0.1/", false, "url does not start with http://"},
      {"HTTP://127.0.0.1/", false, "url does not start with http://"},
      {"http:///x", false, "url has no host"},
      {"http://u@127.0.0.1/", false, "url has user information"},
      {"http://127.0.0.1:0/", false, "url port is not a number in [1, 65535]"},
      {"http://127.0.0.1:65536/", false, "url port is not a number in [1, 65535]"},
      {"http://127.0.0.1:x/", false, "url port is not a number in [1, 65535]"},
      {"http://127.0.0.1:/", false, "url has an empty port"},
      {"http://[::1/", false, "url has an unclosed '['"},
      {"http://[::1]x/", false, "url has text after ']'"},
      {"http://[nothing]/", false, "url host in brackets is not an IPv6 address"},
      {"http://127.0.0.1/a b", false,
       "url path has a space, control or non-ASCII character"},
      {"http://127.0.0.1/a\r\nX: y", false,
       "url path has a space, control or non-ASCII character"},
      {"http://127.0.0.1\0.x/"s, false, "url host has a NUL"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.url);
    std::string error;
    bool refused = !row.refused;
    EXPECT_FALSE(ParseLoopbackUrl(row.url, &error, &refused).has_value());
    EXPECT_EQ(refused, row.refused);
    EXPECT_EQ(error, row.error);
  }
}

}  // namespace
}  // namespace request_log
