// Placeholder implementation so dependents can build against w3c.h; the real
// codecs follow in the next commit.
#include "gls/contrib/w3c.h"

namespace gls {
namespace w3c {

std::string TraceParent::TraceIdHex() const { return std::string(32, '0'); }
std::string TraceParent::ParentIdHex() const { return std::string(16, '0'); }

std::optional<TraceParent> ParseTraceParent(std::string_view, std::string* warning) {
  if (warning != nullptr) *warning = "traceparent: not implemented yet";
  return std::nullopt;
}
std::string FormatTraceParent(const TraceParent&) { return {}; }
std::array<uint8_t, 16> NewTraceId() { std::array<uint8_t, 16> id{}; id[15] = 1; return id; }
std::array<uint8_t, 8> NewParentId() { std::array<uint8_t, 8> id{}; id[7] = 1; return id; }
std::vector<BaggageEntry> ParseBaggage(std::string_view, std::string*) { return {}; }
std::string FormatBaggage(const std::vector<BaggageEntry>&) { return {}; }

}  // namespace w3c
}  // namespace gls
