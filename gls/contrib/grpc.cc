#include "gls/contrib/grpc.h"

#include <unistd.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grpcpp/support/interceptor.h"

namespace gls {
namespace grpc_values {
namespace {

constexpr std::string_view kTraceParentName = "traceparent";
constexpr std::string_view kTraceStateName = "tracestate";
constexpr std::string_view kBaggageName = "baggage";

std::string_view View(grpc::string_ref s) { return {s.data(), s.size()}; }

// gRPC refuses to send (and a careless client would crash on) a non-binary
// metadata value with a byte outside printable ASCII.
bool LegalToSend(std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A mapped value as received must be one printable token-ish string: no
// control bytes, nothing outside ASCII (so never invalid UTF-8).
bool PrintableAscii(std::string_view value) {
  if (value.empty()) return false;
  return LegalToSend(value);
}

// `text` with every byte outside printable ASCII as \xHH: a warning stays
// one line of plain text whatever the metadata held.
void AppendPrintable(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

// Collects the field-by-field warnings of one RPC into one line.
class Warnings {
 public:
  void Add(std::string_view what) {
    if (!line_.empty()) line_ += "; ";
    AppendPrintable(line_, what);
  }
  bool empty() const { return line_.empty(); }
  std::string& line() { return line_; }

 private:
  std::string line_;
};

// The fields named `name`, in arrival order, each at most kMaxFieldBytes
// (longer ones are reported and left out). gRPC delivers names lowercase.
std::vector<std::string_view> FieldsNamed(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    std::string_view name, Warnings& warnings) {
  std::vector<std::string_view> fields;
  auto [begin, end] = metadata.equal_range(grpc::string_ref(name.data(), name.size()));
  for (auto it = begin; it != end; ++it) {
    if (it->second.size() > kMaxFieldBytes) {
      warnings.Add(std::string(name) + ": " + std::to_string(it->second.size()) +
                   " bytes, over " + std::to_string(kMaxFieldBytes) + ", ignored");
      continue;
    }
    fields.push_back(View(it->second));
  }
  return fields;
}

class GlsClientInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit GlsClientInterceptor(
      std::vector<std::pair<std::string, std::string>> metadata)
      : metadata_(std::move(metadata)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      std::multimap<std::string, std::string>* out = methods->GetSendInitialMetadata();
      for (auto& [name, value] : metadata_) out->emplace(std::move(name), std::move(value));
      metadata_.clear();
    }
    methods->Proceed();
  }

 private:
  // Strings only: read on the calling thread, whatever thread the hook runs on.
  std::vector<std::pair<std::string, std::string>> metadata_;
};

class GlsClientInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit GlsClientInterceptorFactory(const Propagation& propagation)
      : propagation_(propagation) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    std::vector<std::pair<std::string, std::string>> metadata = MetadataToSend(propagation_);
    if (metadata.empty()) return nullptr;  // outside every scope: no cost
    return new GlsClientInterceptor(std::move(metadata));
  }

 private:
  const Propagation& propagation_;
};

void CheckMetadataName(std::string_view name) {
  auto refuse = [&](const char* why) {
    throw std::invalid_argument("gls::grpc_values::Propagation::Map: metadata name \"" +
                                std::string(name) + "\" " + why);
  };
  if (name.empty()) refuse("is empty");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '.')) {
      refuse("has a character outside [a-z0-9_.-]");
    }
  }
  if (name.rfind("grpc-", 0) == 0) refuse("starts with \"grpc-\" (reserved by gRPC)");
  if (name.size() >= 4 && name.substr(name.size() - 4) == "-bin") {
    refuse("ends with \"-bin\" (binary metadata; values here are text)");
  }
  if (name == kTraceParentName || name == kTraceStateName || name == kBaggageName) {
    refuse("is one of the W3C fields this propagation writes itself");
  }
}

}  // namespace

Propagation::Propagation(ContextManager& manager, TraceKeys keys)
    : manager_(&manager), keys_(std::move(keys)) {}

Propagation& Propagation::Map(std::string metadata_name, TypedKey<std::string> key) {
  CheckMetadataName(metadata_name);
  for (const Mapping& m : mappings_) {
    if (m.name == metadata_name) {
      throw std::invalid_argument("gls::grpc_values::Propagation::Map: metadata name \"" +
                                  metadata_name + "\" is already mapped");
    }
  }
  mappings_.push_back({std::move(metadata_name), std::move(key)});
  return *this;
}

Propagation& Propagation::OnWarning(std::function<void(std::string_view)> handler) {
  warn_ = std::move(handler);
  return *this;
}

Propagation& Propagation::OnClientSpan(
    std::function<void(const w3c::TraceParent& sent)> handler) {
  client_span_ = std::move(handler);
  return *this;
}

void Propagation::Warn(std::string_view line) const {
  if (warn_) {
    warn_(line);
    return;
  }
  // One write: lines of concurrent RPCs do not interleave.
  std::string text = "gls grpc: ";
  text.append(line);
  text += '\n';
  ssize_t ignored = ::write(2, text.data(), text.size());
  (void)ignored;
}

std::vector<std::pair<std::string, std::string>> MetadataToSend(
    const Propagation& propagation) {
  std::vector<std::pair<std::string, std::string>> out;
  const ContextManager& mgr = propagation.manager();
  const TraceKeys& keys = propagation.keys();
  if (const w3c::TraceParent* caller = mgr.GetValue(keys.trace_parent)) {
    // The call is a span of its own: same trace, new id, child of the
    // caller's span (the caller's parent_id is its own span).
    w3c::TraceParent sent = *caller;
    sent.version = 0;
    sent.flags &= w3c::kKnownFlags;
    sent.parent_id = w3c::NewParentId();
    out.emplace_back(kTraceParentName, w3c::FormatTraceParent(sent));
    if (const std::string* state = mgr.GetValue(keys.trace_state)) {
      // Sent only if it still parses: a value set by hand is checked here.
      if (!state->empty() && state->size() <= w3c::kMaxTraceStateBytes &&
          LegalToSend(*state) && w3c::ParseTraceState(*state).has_value()) {
        out.emplace_back(kTraceStateName, *state);
      }
    }
    propagation.ClientSpan(sent);
  }
  if (const std::vector<w3c::BaggageEntry>* baggage = mgr.GetValue(keys.baggage)) {
    std::string text = w3c::FormatBaggage(*baggage);
    if (!text.empty() && LegalToSend(text)) out.emplace_back(kBaggageName, std::move(text));
  }
  for (const Propagation::Mapping& m : propagation.mappings()) {
    const std::string* value = mgr.GetValue(m.key);
    if (value != nullptr && !value->empty() && value->size() <= kMaxMappedValueBytes &&
        LegalToSend(*value)) {
      out.emplace_back(m.name, *value);
    }
  }
  return out;
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeClientInterceptorFactory(const Propagation& propagation) {
  return std::make_unique<GlsClientInterceptorFactory>(propagation);
}

Values DecodeClientMetadata(
    const Propagation& propagation,
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    std::string* warning) {
  const TraceKeys& keys = propagation.keys();
  Warnings warnings;
  Values values;

  // traceparent: exactly one valid field continues the caller's trace;
  // anything else starts a new one.
  std::vector<std::string_view> traceparents =
      FieldsNamed(metadata, kTraceParentName, warnings);
  std::optional<w3c::TraceParent> incoming;
  if (traceparents.size() > 1) {
    warnings.Add("traceparent: " + std::to_string(traceparents.size()) +
                 " fields, ignored (new trace)");
  } else if (traceparents.size() == 1) {
    std::string why;
    incoming = w3c::ParseTraceParent(traceparents[0], &why);
    if (!incoming) warnings.Add(why.empty() ? "traceparent: invalid, ignored" : why);
  }
  w3c::TraceParent ours = incoming ? w3c::ContinueTrace(*incoming) : w3c::StartTrace();
  values.Set(keys.trace_parent, ours);
  values.Set(keys.trace_id, ours.TraceIdHex());
  values.Set(keys.span_id, ours.ParentIdHex());
  if (incoming) values.Set(keys.parent_id, incoming->ParentIdHex());

  // tracestate: only with the traceparent it belongs to ("If the vendor
  // failed to parse traceparent, it MUST NOT attempt to parse tracestate").
  std::vector<std::string_view> tracestates = FieldsNamed(metadata, kTraceStateName, warnings);
  if (!tracestates.empty() && !incoming) {
    warnings.Add("tracestate: discarded (no valid traceparent)");
  } else if (!tracestates.empty()) {
    std::string why;
    if (auto entries = w3c::ParseTraceState(tracestates, &why)) {
      std::string formatted = w3c::FormatTraceState(*entries);
      if (!formatted.empty()) values.Set(keys.trace_state, std::move(formatted));
    }
    if (!why.empty()) warnings.Add(why);
  }

  // baggage: several fields are one list (RFC 9110); bad members dropped one
  // by one by the codec.
  std::vector<std::string_view> baggage_fields = FieldsNamed(metadata, kBaggageName, warnings);
  if (!baggage_fields.empty()) {
    std::string joined;
    for (size_t i = 0; i < baggage_fields.size(); ++i) {
      if (i > 0) joined += ',';
      joined.append(baggage_fields[i]);
    }
    std::string why;
    std::vector<w3c::BaggageEntry> baggage = w3c::ParseBaggage(joined, &why);
    if (!why.empty()) warnings.Add(why);
    if (!baggage.empty()) values.Set(keys.baggage, std::move(baggage));
  }

  for (const Propagation::Mapping& m : propagation.mappings()) {
    auto [begin, end] =
        metadata.equal_range(grpc::string_ref(m.name.data(), m.name.size()));
    size_t count = static_cast<size_t>(std::distance(begin, end));
    if (count == 0) continue;
    if (count > 1) {
      warnings.Add(m.name + ": " + std::to_string(count) + " fields, ignored");
      continue;
    }
    std::string_view value = View(begin->second);
    if (value.size() > kMaxMappedValueBytes) {
      warnings.Add(m.name + ": " + std::to_string(value.size()) + " bytes, over " +
                   std::to_string(kMaxMappedValueBytes) + ", ignored");
    } else if (!PrintableAscii(value)) {
      warnings.Add(m.name + ": empty or not printable ASCII, ignored");
    } else {
      values.Set(m.key, std::string(value));
    }
  }

  if (warning != nullptr && !warnings.empty()) *warning = std::move(warnings.line());
  return values;
}

Snapshot RpcValues(const Propagation& propagation, const grpc::ServerContextBase& context) {
  std::string warning;
  Values values = DecodeClientMetadata(propagation, context.client_metadata(), &warning);
  Snapshot snapshot;
  // Captured inside an empty snapshot: exactly the RPC's values, whatever
  // the gRPC thread calling this had.
  Snapshot().Run([&] {
    propagation.manager().SetValues(std::move(values), [&] { snapshot = Capture(); });
  });
  if (!warning.empty()) snapshot.Run([&] { propagation.Warn(warning); });
  return snapshot;
}

}  // namespace grpc_values
}  // namespace gls
