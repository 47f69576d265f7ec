// gls/contrib/w3c.h: parsers and formatters for the W3C Trace Context
// `traceparent` and `tracestate` headers and the W3C Baggage `baggage`
// header.
//
// What this is for: an HTTP server or client that reads a request's trace
// identity and baggage from its headers (to put them in gls values for the
// request's flow) and writes them on outgoing requests. The codecs take and
// return header *values* (the text after "traceparent:" / "baggage:"); they
// know nothing about HTTP framing, gls, or how values are stored.
//
// What this is not: a tracing library. There is no span model and no
// sampling decision; tracestate is parsed, checked and written back, never
// given a meaning. Only the header grammar of
//   https://www.w3.org/TR/trace-context-2/  (traceparent version 00 with the
//                                            Level 2 random trace-id flag,
//                                            tracestate)
//   https://www.w3.org/TR/baggage/          (baggage)
// is implemented. The example server //examples/request_log:server passes
// the W3C Trace Context test suite with it (examples/request_log/w3c_suite.sh).
//
// Guarantees:
//   * Any input is accepted without crashing or undefined behaviour: bytes
//     outside ASCII, NULs, a megabyte of commas or of ';'. Parsing is one
//     pass, in time and memory linear in the input; what baggage parsing
//     returns is bounded by kMaxBaggageEntries / kMaxBaggageBytes, what
//     tracestate parsing returns by kMaxTraceStateEntries /
//     kMaxTraceStateBytes.
//   * Bad input is rejected (traceparent, tracestate) or dropped entry by
//     entry (baggage), and, when asked, explained in one line of text naming
//     the problem.
//   * Round trip: for any input x that parses, Parse(Format(Parse(x))) equals
//     Parse(x) (for traceparent, up to `version`: Format always writes 00;
//     for tracestate, Format(Parse(x)) parses back with no warning),
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
//   // (ContinueTrace / StartTrace do the above, flags included.)
//
//   // Only when the traceparent was valid: every "tracestate" field, in order.
//   if (auto ts = gls::w3c::ParseTraceState(req.headers("tracestate"), &why)) {
//     out.set_header("tracestate", gls::w3c::FormatTraceState(*ts));
//   }  // else: dropped, and `why` says why
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
  uint8_t flags = 0;                   // bit 0: sampled; bit 1: random

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
  // TraceParent::random_trace_id
  //
  // Whether the Level 2 `random-trace-id` flag (bit 1 of flags) is set: at
  // least the right-most 7 bytes of trace_id are random.
  bool random_trace_id() const { return (flags & 0x02) != 0; }

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

// kSampledFlag, kRandomTraceIdFlag, kKnownFlags
//
// The trace-flags bits Trace Context Level 2 defines. "The behavior of other
// flags ... is not defined and is reserved for future use. Vendors MUST set
// those to zero."
inline constexpr uint8_t kSampledFlag = 0x01;
inline constexpr uint8_t kRandomTraceIdFlag = 0x02;
inline constexpr uint8_t kKnownFlags = kSampledFlag | kRandomTraceIdFlag;

// StartTrace
//
// This hop's traceparent when it starts a trace: version 00, a new random
// trace-id (NewTraceId: all 16 bytes random), a new parent-id, and flags
// kRandomTraceIdFlag, plus kSampledFlag when `sampled`. Level 2: "When at
// least the right-most 7 bytes of the trace-id are randomly (or
// pseudo-randomly) generated, the random-trace-id flag SHOULD be set to 1."
TraceParent StartTrace(bool sampled = true);

// ContinueTrace
//
// This hop's traceparent when it continues the caller's trace `incoming`:
// version 00, incoming's trace-id, a new parent-id (this hop's span), and
// incoming's flags restricted to kKnownFlags. So the random-trace-id flag is
// kept exactly as received (Level 2: "If the flag is set in the incoming
// traceparent header, it MUST also be set in all outgoing traceparent headers
// which use the same trace-id", and unset when unset), and flags this version
// does not know are cleared ("Vendors will set all unparsed / unknown
// trace-flags to 0 on outgoing requests").
TraceParent ContinueTrace(const TraceParent& incoming);

// NewTraceId
//
// A fresh random trace-id, never all zeros. Thread-safe; the generator is
// seeded from std::random_device, so ids differ between runs and processes.
std::array<uint8_t, 16> NewTraceId();

// NewParentId
//
// A fresh random parent-id (span id), never all zeros. As NewTraceId.
std::array<uint8_t, 8> NewParentId();

// TraceStateEntry
//
// One list-member of a `tracestate` header: a vendor's key and its opaque
// value, both as written (nothing is decoded).
struct TraceStateEntry {
  std::string key;    // simple ("congo") or multi-tenant ("tenant@congo")
  std::string value;  // 1-256 printable ASCII characters, no ',' or '=',
                      // not ending in a space; leading spaces are part of it

  friend bool operator==(const TraceStateEntry&, const TraceStateEntry&) =
      default;
};

// kMaxTraceStateEntries, kMaxTraceStateBytes, kMaxTraceStateKey/Value,
// kLargeTraceStateEntry
//
// The Trace Context limits. "There can be a maximum of 32 list-members in a
// list"; keys and values are "up to 256 characters". "Vendors SHOULD
// propagate at least 512 characters of a combined header": gls propagates
// exactly that much, kMaxTraceStateBytes as FormatTraceState writes it, and
// when it must truncate, "Entries larger than 128 characters long SHOULD be
// removed first. Then entries SHOULD be removed starting from the end of
// tracestate" (kLargeTraceStateEntry is that 128).
inline constexpr size_t kMaxTraceStateEntries = 32;
inline constexpr size_t kMaxTraceStateBytes = 512;
inline constexpr size_t kMaxTraceStateKey = 256;
inline constexpr size_t kMaxTraceStateValue = 256;
inline constexpr size_t kLargeTraceStateEntry = 128;

// ParseTraceState
//
// Parses the `tracestate` header fields of one request, in the order they
// arrived; several fields are combined as RFC 9110 combines them (joined with
// ','), so {"a=1", "b=2"} is "a=1,b=2". The grammar (Trace Context,
// "tracestate Header Field Values"):
//   list        = list-member 0*31( OWS "," OWS list-member )
//   list-member = (key "=" value) / OWS
//   key         = ( lcalpha / DIGIT ) 0*255 ( keychar )
//   keychar     = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
//   value       = 0*255(chr) nblk-chr
//   nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E ;  chr = %x20 / nblk-chr
// Spaces and tabs around list-members are ignored (so a value's trailing
// spaces are dropped, its leading ones kept); empty and whitespace-only
// list-members, and empty fields, are skipped. A key "tenant@vendor" is a
// multi-tenant key; the grammar lets '@' appear anywhere after the first
// character.
//
// Returns nullopt, and discards the whole header ("If the tracestate header
// cannot be parsed the vendor MAY discard the entire header"), for any
// list-member that does not match the grammar (no '=', an empty or too long
// key or value, a character not allowed) and for more than 32 list-members.
// A key seen again later in the list keeps its first entry; the later ones
// are dropped ("Vendors MAY also discard duplicate keys that were not
// generated by them"). When the kept entries would take more than
// kMaxTraceStateBytes as FormatTraceState writes them, whole entries are
// removed as the specification says: those longer than 128 characters
// first, right-most first, then from the end, until the rest fits. So
// FormatTraceState writes back everything that was kept. No fields, or only
// empty ones, is an empty list (not an error).
//
// When `warning` is non-null and the header is rejected, or anything was
// dropped or truncated, *warning is set to ONE line naming it, e.g.
// "tracestate: discarded (member 2, key has 'F')" or "tracestate: dropped 1
// duplicate key (first: member 2, foo), truncated to 512 bytes (1 entry
// removed, 1 of them longer than 128 characters)"; otherwise it is left
// unchanged.
std::optional<std::vector<TraceStateEntry>> ParseTraceState(
    const std::vector<std::string_view>& fields,
    std::string* warning = nullptr);
// One field.
std::optional<std::vector<TraceStateEntry>> ParseTraceState(
    std::string_view header, std::string* warning = nullptr);

// FormatTraceState
//
// "key1=value1,key2=value2", no whitespace. Entries that could not be parsed
// back (key or value not matching the grammar above) and entries whose key
// was already written are left out; then at most 32 entries, and at most
// kMaxTraceStateBytes bytes, truncated by whole entries as ParseTraceState
// truncates. So the result always parses back, with no warning, to the
// entries it wrote. An empty list is "" (the specification: vendors "SHOULD
// avoid sending" an empty header; the caller leaves it out).
std::string FormatTraceState(const std::vector<TraceStateEntry>& entries);

// Baggage: where this codec and the W3C reference implementation differ
//
// The W3C Baggage repository's reference parser and formatter
// (test/baggage/baggage.py, with test_baggage.py) and this codec differ in
// six ways. Each is allowed by the specification (baggage/HTTP_HEADER_FORMAT.md
// of w3c/baggage), in its words:
//   1. Property values are kept and forwarded as written, percent-encoded,
//      not decoded (the reference decodes them). What is written must be
//      valid encoding: a '%' that is not a %XX escape drops the member. "Any
//      code points outside of the baggage-octet range in the property value
//      MUST be percent-encoded ... Code points in the property value which
//      are not required to be percent-encoded MAY be percent-encoded", and
//      "Property keys and values are given no specific meaning by this
//      specification": forwarding the received encoding unchanged is a valid
//      encoding of the same value, and nothing here reads property values.
//   2. At most 180 list-members are parsed (the reference parses any number).
//      The grammar is "baggage-string = list-member 0*179( OWS "," OWS
//      list-member )", and "An implementor or platform MAY define higher
//      limits" than the 64 members a platform MUST propagate.
//   3. A member that would take the kept list past 8,192 bytes is dropped,
//      and the ones after it (the reference keeps everything). "If either of
//      the above conditions is not met, a platform MAY drop list-members
//      until both conditions are met. The selection of which list-members to
//      drop and their order is unspecified", and "it MUST NOT propagate any
//      partial list-members": a member is kept whole or not at all.
//   4. A malformed member is dropped alone; the reference rejects the whole
//      header. "If a system determines that the value of baggage-string is
//      not in the format defined in this specification, the behavior is
//      undefined. For example, it MAY remove an offending list-member before
//      propagating the rest of the baggage-string".
//   5. At most 180 members and 8,192 bytes are formatted (the reference
//      writes everything): as 2 and 3.
//   6. FormatBaggage percent-encodes only what must be (bytes outside
//      baggage-octet, and '%'); the reference (urllib.parse.quote) encodes
//      every byte but letters, digits and "_.-~/". "Any code points outside
//      of the baggage-octet range MUST be percent-encoded. The percent code
//      point (U+0025) MUST be percent-encoded. Code points which are not
//      required to be percent-encoded MAY be percent-encoded." Both decode
//      to the same value.

// BaggageEntry
//
// One list-member of a `baggage` header.
struct BaggageEntry {
  std::string key;         // a token per RFC 7230
  std::string value;       // decoded (percent-decoding applied)
  std::string properties;  // ";prop=..." text after the value as written
                           // (property values still percent-encoded),
                           // without the leading ';', may be empty

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
// text such as an empty property, or a '%' in a property value that is not a
// %XX escape) are dropped one by one; empty list-members
// ("a=1,,b=2") are skipped silently. Percent-decoded bytes that are not valid
// UTF-8 become U+FFFD, as the spec requires. Properties are kept as written,
// minus the OWS around them, and FormatBaggage forwards them so. The list is truncated (as the spec allows) at
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
