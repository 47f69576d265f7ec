// examples/request_log/w3c_service.h: what the request_log server's
// `POST /test` endpoint (--w3c-test-endpoint) needs to read the W3C Trace
// Context test suite's instructions: a strict JSON parser for the body, and
// a check of each callback URL.
//
// The suite (../shared/w3c/trace-context, test.py) POSTs a JSON array of
// {"url": "http://IP:PORT/path", "arguments": <JSON>} to the endpoint; for
// each element the service POSTs `arguments` (as its JSON text) to `url`,
// carrying the trace context it received.
//
// Guarantees: any input is accepted without crashing (a body is at most the
// server's 64 KiB body limit; nesting deeper than kMaxJsonDepth is refused,
// so recursion is bounded); a rejected body or URL comes with one line
// saying why. No Boost or gls dependency: unit-tested alone
// (w3c_service_test.cc).
#ifndef EXAMPLES_REQUEST_LOG_W3C_SERVICE_H_
#define EXAMPLES_REQUEST_LOG_W3C_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace request_log {

// kMaxJsonDepth
//
// The deepest nesting of arrays and objects ParseJson accepts.
inline constexpr int kMaxJsonDepth = 64;

// JsonValue
//
// A parsed JSON value. `raw` is the value's text in the parsed input
// (without surrounding whitespace): what is forwarded, byte for byte.
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  std::string_view raw;
  std::string string;             // kString: the decoded text
  std::vector<JsonValue> items;   // kArray: elements; kObject: member values
  std::vector<std::string> keys;  // kObject: member names, as items

  // JsonValue::Find
  //
  // An object's first member named `key`, or null (also for non-objects).
  const JsonValue* Find(std::string_view key) const;
};

// ParseJson
//
// Parses `text` as exactly one JSON value (RFC 8259) with optional
// whitespace around it: no trailing commas, comments, single quotes, leading
// zeros, NaN, or control characters in strings; escapes must be valid
// (\uXXXX surrogate pairs are combined; a lone surrogate becomes U+FFFD).
// Bytes above 0x7F in strings are kept as they are. The result's `raw`
// views point into `text`, which must outlive it. On failure returns nullopt
// and sets *error to one line, e.g. "offset 12: expected ',' or ']'".
std::optional<JsonValue> ParseJson(std::string_view text, std::string* error);

// CallInstruction
//
// One element of the suite's instructions.
struct CallInstruction {
  std::string url;
  std::string arguments;  // JSON text to POST; "[]" when absent
};

// ParseCallInstructions
//
// The instructions in a `POST /test` body: a JSON array whose elements are
// objects with a string "url" and, optionally, "arguments" (any JSON value;
// other members are ignored). On failure returns nullopt and sets *error to
// one line ("invalid JSON: offset 3: ...", "element 2: \"url\" is not a
// string").
std::optional<std::vector<CallInstruction>> ParseCallInstructions(
    std::string_view body, std::string* error);

// LoopbackUrl
//
// Where a callback goes.
struct LoopbackUrl {
  std::string address;  // the IP literal, without brackets ("127.0.0.1", "::1")
  uint16_t port = 80;
  std::string host;     // the Host header: authority as written
  std::string target;   // path and query, "/" when absent
};

// ParseLoopbackUrl
//
// Accepts "http://IP[:PORT][/path]" whose IP is an IPv4 loopback address
// (127.0.0.0/8) or, in brackets, the IPv6 one ([::1]); port 1-65535,
// default 80. Returns nullopt and sets *error to one line otherwise, and
// *refused to true when the URL is well formed but its host is not a
// loopback IP address (a name such as "localhost" or "example.com", or
// another address): the endpoint answers 403 for those, 400 for the rest.
std::optional<LoopbackUrl> ParseLoopbackUrl(std::string_view url,
                                            std::string* error,
                                            bool* refused);

}  // namespace request_log

#endif  // EXAMPLES_REQUEST_LOG_W3C_SERVICE_H_
