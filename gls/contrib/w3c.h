// gls/contrib/w3c.h: parsers and formatters for the W3C Trace Context
// `traceparent` header and the W3C Baggage `baggage` header.
//
// What this is for: an HTTP server or client that reads a request's trace
// identity and baggage from its headers (to put them in gls values for the
// request's flow) and writes them on outgoing requests. The codecs take and
// return header *values* (the text after "traceparent:" / "baggage:"); they
// know nothing about HTTP framing, gls, or how values are stored.
//
// What this is not: a tracing library. There is no span model, no sampling
// decision and no `tracestate` handling (carry tracestate through verbatim if
// you need it). Only the header grammar of
//   https://www.w3.org/TR/trace-context/  (traceparent, version 00)
//   https://www.w3.org/TR/baggage/        (baggage)
// is implemented.
//
// Guarantees:
//   * Any input is accepted without crashing or undefined behaviour: bytes
//     outside ASCII, NULs, a megabyte of commas or of ';'. Parsing is one
//     pass, in time and memory linear in the input; what baggage parsing
//     returns is bounded by kMaxBaggageEntries / kMaxBaggageBytes.
//   * Bad input is rejected (traceparent) or dropped entry by entry (baggage),
//     and, when asked, explained in one line of text naming the problem.
//   * Round trip: for any input x that parses, Parse(Format(Parse(x))) equals
//     Parse(x) (for traceparent, up to `version`: Format always writes 00),
//     and Format(Parse(Format(Parse(x)))) equals Format(Parse(x)).
//   * All functions are thread-safe (they share no state, except the random
//     generator of NewTraceId/NewParentId, which is safe to call from any
//     thread).
//
// Example:
//
//   std::string why;
//   gls::w3c::TraceParent tp;
//   if (auto in = gls::w3c::ParseTraceParent(req.header("traceparent"), &why)) {
//     tp = *in;                                // continue the caller's trace
//   } else {
//     if (!why.empty()) LOG(WARNING) << why;  // "traceparent: ..."
//     tp.trace_id = gls::w3c::NewTraceId();    // start a new one
//   }
//   tp.parent_id = gls::w3c::NewParentId();   // our span
//   out.set_header("traceparent", gls::w3c::FormatTraceParent(tp));
//
//   auto baggage = gls::w3c::ParseBaggage(req.header("baggage"), &why);
//   // baggage[i].key, .value (decoded), .properties (raw)
//   out.set_header("baggage", gls::w3c::FormatBaggage(baggage));
#ifndef GLS_CONTRIB_W3C_H_
#define GLS_CONTRIB_W3C_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gls {
namespace w3c {

// TraceParent
//
// The fields of a `traceparent` header. A default-constructed TraceParent has
// all-zero ids and is not valid to send: fill trace_id and parent_id (e.g.
// with NewTraceId/NewParentId) first.
struct TraceParent {
  uint8_t version = 0;                 // we emit 00
  std::array<uint8_t, 16> trace_id{};  // all-zero is invalid
  std::array<uint8_t, 8> parent_id{};  // all-zero is invalid
  uint8_t flags = 0;                   // bit 0: sampled

  // TraceParent::TraceIdHex
  //
  // trace_id as 32 lowercase hex digits.
  std::string TraceIdHex() const;
  // TraceParent::ParentIdHex
  //
  // parent_id as 16 lowercase hex digits.
  std::string ParentIdHex() const;
  // TraceParent::sampled
  //
  // Whether the `sampled` flag (bit 0 of flags) is set.
  bool sampled() const { return (flags & 0x01) != 0; }

  friend bool operator==(const TraceParent&, const TraceParent&) = default;
};

// ParseTraceParent
//
// Parses a traceparent header value ("00-<32hex>-<16hex>-<2hex>"), surrounding
// spaces and tabs ignored. Returns nullopt for anything invalid: a version
// that is not two lowercase hex digits or is "ff"; for version 00 any length
// other than 55 characters; uppercase hex; fields of the wrong length or
// separators other than '-'; an all-zero trace-id or parent-id. A version
// above 00 is parsed for forward compatibility: its first four fields are
// read as for 00 and must be followed by the end or by '-' (what follows is
// ignored); the version number is kept in `version`. When `warning` is
// non-null and the input is rejected, *warning is set to one line naming the
// problem, e.g. "traceparent: trace-id is all zeros"; otherwise it is left
// unchanged.
std::optional<TraceParent> ParseTraceParent(std::string_view header,
                                            std::string* warning = nullptr);

// FormatTraceParent
//
// "00-<32hex>-<16hex>-<2hex>", lowercase. Always emits version 00 (the only
// version this code speaks), whatever tp.version holds, with tp.flags as they
// are (the spec asks senders to clear flag bits they do not know; bit 0,
// sampled, is the one version 00 defines). Does not check the ids: all-zero
// ids are written as such (and would not parse back).
std::string FormatTraceParent(const TraceParent& tp);

// NewTraceId
//
// A fresh random trace-id, never all zeros. Thread-safe; the generator is
// seeded from std::random_device, so ids differ between runs and processes.
std::array<uint8_t, 16> NewTraceId();

// NewParentId
//
// A fresh random parent-id (span id), never all zeros. As NewTraceId.
std::array<uint8_t, 8> NewParentId();

// BaggageEntry
//
// One list-member of a `baggage` header.
struct BaggageEntry {
  std::string key;         // a token per RFC 7230
  std::string value;       // decoded (percent-decoding applied)
  std::string properties;  // raw ";prop=..." text after the value, without
                           // the leading ';', may be empty

  friend bool operator==(const BaggageEntry&, const BaggageEntry&) = default;
};

// kMaxBaggageEntries, kMaxBaggageBytes
//
// The W3C Baggage limits: at most 180 list-members, at most 8192 bytes of
// header value. ParseBaggage keeps at most this much; FormatBaggage never
// writes more.
inline constexpr size_t kMaxBaggageEntries = 180;
inline constexpr size_t kMaxBaggageBytes = 8192;

// ParseBaggage
//
// Parses a baggage header value: list-members separated by ',' with optional
// spaces and tabs around them, each `key=value` followed by optional
// `;property` text. Keys are RFC 7230 tokens; values are percent-decoded.
// Invalid list-members (no '=', a key that is not a token, a value with
// characters the spec does not allow or a bad '%' sequence, bad property
// text such as an empty property) are dropped one by one; empty list-members
// ("a=1,,b=2") are skipped silently. Percent-decoded bytes that are not valid
// UTF-8 become U+FFFD, as the spec requires. Properties are kept as written,
// minus the OWS around them. The list is truncated (as the spec allows) at
// the first valid list-member that would make the kept entries more than
// kMaxBaggageEntries, or more than kMaxBaggageBytes once written by
// FormatBaggage; so FormatBaggage always writes back everything that was
// kept. When `warning` is non-null and
// anything was dropped or truncated, *warning is set to ONE line summarising
// it, e.g. "baggage: dropped 2 malformed entries, truncated at 180 entries";
// otherwise it is left unchanged.
std::vector<BaggageEntry> ParseBaggage(std::string_view header,
                                       std::string* warning = nullptr);

// FormatBaggage
//
// "key1=value1;props,key2=value2", values percent-encoded where the spec
// requires (every byte outside baggage-octet, and '%', as %XX). Entries that
// could not be parsed back (a key that is not a token, properties that are
// not valid property text or have whitespace around them) are left out.
// Writing stops before the first entry that would take the result past
// kMaxBaggageEntries entries or kMaxBaggageBytes bytes: an entry is written
// whole or not at all. Values should be UTF-8 (what ParseBaggage returns);
// other bytes are encoded too, but parse back as U+FFFD.
std::string FormatBaggage(const std::vector<BaggageEntry>& entries);

}  // namespace w3c
}  // namespace gls

#endif  // GLS_CONTRIB_W3C_H_
