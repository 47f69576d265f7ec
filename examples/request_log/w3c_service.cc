// examples/request_log/w3c_service.cc: the JSON parser and URL check of
// w3c_service.h. The parser is recursive descent, bounded by kMaxJsonDepth.
#include "examples/request_log/w3c_service.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace request_log {
namespace {

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  std::optional<JsonValue> Parse(std::string* error) {
    JsonValue value;
    SkipWhitespace();
    if (ParseValue(value, 0)) {
      SkipWhitespace();
      if (i_ != s_.size()) Fail("unexpected text after the value");
    }
    if (!error_.empty()) {
      *error = "offset " + std::to_string(error_at_) + ": " + error_;
      return std::nullopt;
    }
    return value;
  }

 private:
  bool Fail(const std::string& what) {
    if (error_.empty()) {
      error_ = what;
      error_at_ = i_;
    }
    return false;
  }

  void SkipWhitespace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return Fail("invalid literal");
    i_ += word.size();
    return true;
  }

  bool ParseValue(JsonValue& out, int depth) {
    if (i_ >= s_.size()) return Fail("unexpected end of input");
    const size_t start = i_;
    bool ok = false;
    switch (s_[i_]) {
      case '{':
        out.kind = JsonValue::Kind::kObject;
        ok = ParseObject(out, depth + 1);
        break;
      case '[':
        out.kind = JsonValue::Kind::kArray;
        ok = ParseArray(out, depth + 1);
        break;
      case '"':
        out.kind = JsonValue::Kind::kString;
        ok = ParseString(out.string);
        break;
      case 't':
        out.kind = JsonValue::Kind::kBool;
        ok = Literal("true");
        break;
      case 'f':
        out.kind = JsonValue::Kind::kBool;
        ok = Literal("false");
        break;
      case 'n':
        out.kind = JsonValue::Kind::kNull;
        ok = Literal("null");
        break;
      default:
        out.kind = JsonValue::Kind::kNumber;
        ok = ParseNumber();
    }
    if (ok) out.raw = s_.substr(start, i_ - start);
    return ok;
  }

  bool ParseArray(JsonValue& out, int depth) {
    if (depth > kMaxJsonDepth) return Fail("nested deeper than 64");
    ++i_;  // '['
    SkipWhitespace();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      SkipWhitespace();
      out.items.emplace_back();
      if (!ParseValue(out.items.back(), depth)) return false;
      SkipWhitespace();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return true;
      }
      return Fail("expected ',' or ']'");
    }
  }

  bool ParseObject(JsonValue& out, int depth) {
    if (depth > kMaxJsonDepth) return Fail("nested deeper than 64");
    ++i_;  // '{'
    SkipWhitespace();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    while (true) {
      SkipWhitespace();
      if (i_ >= s_.size() || s_[i_] != '"') return Fail("expected a member name");
      out.keys.emplace_back();
      if (!ParseString(out.keys.back())) return false;
      SkipWhitespace();
      if (i_ >= s_.size() || s_[i_] != ':') return Fail("expected ':'");
      ++i_;
      SkipWhitespace();
      out.items.emplace_back();
      if (!ParseValue(out.items.back(), depth)) return false;
      SkipWhitespace();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return true;
      }
      return Fail("expected ',' or '}'");
    }
  }

  static void AppendUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Four hex digits at i_, or -1 (and i_ unchanged).
  int Hex4() {
    if (s_.size() - i_ < 4) return -1;
    int v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = s_[i_ + k];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    i_ += 4;
    return v;
  }

  bool ParseString(std::string& out) {
    ++i_;  // '"'
    while (true) {
      if (i_ >= s_.size()) return Fail("unterminated string");
      char c = s_[i_];
      if (c == '"') {
        ++i_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Fail("control character in a string");
      }
      if (c != '\\') {
        out += c;
        ++i_;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) return Fail("unterminated string");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          int u = Hex4();
          if (u < 0) return Fail("invalid \\u escape");
          uint32_t cp = static_cast<uint32_t>(u);
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(i_, 2) == "\\u") {
            size_t save = i_;
            i_ += 2;
            int lo = Hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
            } else {
              i_ = save;  // not a pair: the next escape is read on its own
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
          AppendUtf8(cp, out);
          break;
        }
        default:
          --i_;
          return Fail("invalid escape");
      }
    }
  }

  bool ParseNumber() {
    auto digit = [&] { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (!digit()) return Fail("invalid value");
    if (s_[i_] == '0') {
      ++i_;
      if (digit()) return Fail("leading zero in a number");
    } else {
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digit()) return Fail("expected a digit after '.'");
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digit()) return Fail("expected a digit in the exponent");
      while (digit()) ++i_;
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string error_;
  size_t error_at_ = 0;
};

}  // namespace

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &items[i];
  }
  return nullptr;
}

std::optional<JsonValue> ParseJson(std::string_view text, std::string* error) {
  return JsonParser(text).Parse(error);
}

std::optional<std::vector<CallInstruction>> ParseCallInstructions(
    std::string_view body, std::string* error) {
  std::string why;
  std::optional<JsonValue> json = ParseJson(body, &why);
  if (!json) {
    *error = "invalid JSON: " + why;
    return std::nullopt;
  }
  if (json->kind != JsonValue::Kind::kArray) {
    *error = "the body is not a JSON array";
    return std::nullopt;
  }
  std::vector<CallInstruction> calls;
  for (size_t i = 0; i < json->items.size(); ++i) {
    const JsonValue& item = json->items[i];
    const std::string where = "element " + std::to_string(i + 1) + ": ";
    if (item.kind != JsonValue::Kind::kObject) {
      *error = where + "not an object";
      return std::nullopt;
    }
    const JsonValue* url = item.Find("url");
    if (url == nullptr || url->kind != JsonValue::Kind::kString) {
      *error = where + "\"url\" is missing or not a string";
      return std::nullopt;
    }
    const JsonValue* arguments = item.Find("arguments");
    calls.push_back({url->string, arguments ? std::string(arguments->raw) : "[]"});
  }
  return calls;
}

std::optional<LoopbackUrl> ParseLoopbackUrl(std::string_view url,
                                            std::string* error,
                                            bool* refused) {
  *refused = false;
  auto fail = [&](const std::string& why) -> std::optional<LoopbackUrl> {
    *error = why;
    return std::nullopt;
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return fail("url does not start with http://");
  }
  std::string_view rest = url.substr(kScheme.size());
  LoopbackUrl out;
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!out.target.empty() && out.target[0] != '/') out.target = "/" + out.target;
  if (out.target.find('#') != std::string::npos) {
    out.target.resize(out.target.find('#'));
  }
  for (char c : out.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return fail("url path has a space, control or non-ASCII character");
    }
  }
  if (authority.empty()) return fail("url has no host");
  if (authority.find('@') != std::string_view::npos) {
    return fail("url has user information");
  }
  std::string_view host = authority;
  std::string_view port;
  bool v6 = false;
  if (authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("url has an unclosed '['");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail("url has text after ']'");
      port = after.substr(1);
      if (port.empty()) return fail("url has an empty port");
    }
    v6 = true;
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return fail("url has an empty port");
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return fail("url port is not a number in [1, 65535]");
    }
    out.port = static_cast<uint16_t>(value);
  }
  std::string host_text(host);
  if (host_text.find('\0') != std::string::npos) return fail("url host has a NUL");
  bool loopback = false;
  if (v6) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, host_text.c_str(), &a6) != 1) {
      return fail("url host in brackets is not an IPv6 address");
    }
    loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    in_addr a4{};
    if (inet_pton(AF_INET, host_text.c_str(), &a4) == 1) {
      loopback = (ntohl(a4.s_addr) >> 24) == 127;
    }
  }
  if (!loopback) {
    *refused = true;
    std::string shown = host_text.substr(0, 64);
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return fail("url host " + shown + " is not a loopback IP address");
  }
  out.address = host_text;
  out.host = std::string(authority);
  return out;
}

}  // namespace request_log
