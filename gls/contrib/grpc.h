// gls/contrib/grpc.h: a request's gls values across gRPC calls, on the
// client (an interceptor that sends them as metadata) and in every kind of
// server handler (which runs in the values decoded from that metadata).
//
// What this is for: a service that keeps its request's trace and ids in gls
// values and calls, or is called by, other services over gRPC. On the
// client, the values of the calling flow go out with each call as W3C
// `traceparent`, `tracestate` and `baggage` metadata (gls/contrib/w3c.h),
// plus any string values mapped to metadata names. On the server, every
// piece of a call's code, whatever thread gRPC runs it on, sees the values
// decoded from that call's metadata and nothing else.
//
// What this is not: a tracing library (no spans are recorded or exported),
// nor a way to set values from a server interceptor. gRPC runs a server
// interceptor's hooks and the handler at different places, often on
// different threads, so an interceptor can neither wrap the handler nor
// leave values behind for it. Here the values are installed where the code
// that must see them runs:
//   * sync methods: one call wraps the method body, Serve(propagation,
//     context, body). A call rather than a service-level adaptor because
//     generated sync services have one virtual function per method with its
//     own signature: an adaptor would have to be generated per service,
//     while a wrapped body is one line, visible, and works for any method;
//   * the callback API: MakeReactor<YourReactor>(propagation, context,
//     args...) makes your reactor inside the RPC's values, so its
//     constructor (the method body) and every reaction gRPC calls
//     (OnReadDone, OnWriteDone, OnSendInitialMetadataDone, OnCancel,
//     OnDone) run in them, for unary, client-streaming, server-streaming and
//     bidi reactors. A unary method answered with context->DefaultReactor()
//     runs its body in Serve(...);
//   * the async CompletionQueue API: when the call's first tag (the request)
//     arrives, RpcValues(propagation, context) decodes the values into a
//     gls::Snapshot kept with the call; the code run for each of the call's
//     tags runs inside RunTag(snapshot, code) (example below), which runs it
//     in a copy of the snapshot: the call's last tag usually deletes the
//     call, and the snapshot it holds with it;
//   * client callbacks gRPC runs later (a callback stub's completion, a
//     client reactor's reactions) run on gRPC's threads with no values:
//     bind them with gls::Bind or a captured gls::Snapshot where they need
//     the caller's.
//
// The values an RPC gets (`TraceKeys`, each key settable):
//   trace_parent  this hop's w3c::TraceParent: the caller's trace id with a
//                 new span id of ours as parent_id (ContinueTrace), or a new
//                 trace (StartTrace) when the metadata had no usable one;
//   trace_id, span_id  its ids as lowercase hex (for log lines);
//   parent_id     the caller's span id (hex), only when the trace continues;
//   trace_state   the tracestate continued (FormatTraceState), when any;
//   baggage       the parsed baggage entries, when any;
// and for each Map(name, key), the metadata value as a std::string.
// The client sends: `traceparent` with the calling flow's trace id and a new
// span id (the call's span, whose parent is the caller's span) when the flow
// has trace_parent; `tracestate` with it when the flow has trace_state;
// `baggage` when it has baggage; and each mapped value it has. A call made
// outside every scope of the manager sends none of them (and costs no
// interceptor at all: the factory makes none for it).
//
// Bad input (one error policy): metadata that is malformed, duplicated (two
// `traceparent`, two values of a mapped name), oversized (a field over
// kMaxFieldBytes, a mapped value over kMaxMappedValueBytes) or not
// printable ASCII / not UTF-8 is ignored field by field; the RPC still runs,
// with a fresh trace when no traceparent was usable, and ONE warning line
// per RPC names everything ignored. The line goes to the warning handler
// (OnWarning; by default stderr), called inside the RPC's values, so a
// logger's gls flag prints the fresh trace on it. Never a crash or a failed
// RPC. On the client, a value that gRPC would refuse to send (not printable
// ASCII, too long) is left out rather than failing the call.
//
// Guarantees (gls/contrib/grpc_test.cc and examples/grpc_log:e2e_test
// across processes, in the default build, under asan and ubsan, and with
// each strategy as the default; not yet under tsan, which cannot follow
// Debian's uninstrumented gRPC: docs/benchmarks.md, "gRPC and
// ThreadSanitizer"):
//   * A server thread that runs one RPC's code then another's never shows
//     the first's values to the second, nor any values to code of gRPC's or
//     of unwrapped handlers: each wrapped piece of code is a Snapshot::Run,
//     which restores the thread's own values when it returns or throws.
//   * Works under every strategy (thread_local, goid, stack_tag): nothing
//     here needs a scope without a callback (gls::ScopedValues).
//   * The client interceptor reads the calling flow's values once, when the
//     call is created on the calling thread (sync, async and callback stubs
//     alike), and hands gRPC only strings.
//
// Example:
//
//   gls::ContextManager mgr;
//   const gls::TypedKey<std::string> kRequestId;
//   gls::grpc_values::Propagation propagation(mgr);
//   propagation.Map("x-request-id", kRequestId);
//
//   // Client: every call on this channel carries the caller's values.
//   std::vector<std::unique_ptr<
//       grpc::experimental::ClientInterceptorFactoryInterface>> factories;
//   factories.push_back(gls::grpc_values::MakeClientInterceptorFactory(propagation));
//   auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
//       target, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
//       std::move(factories));
//
//   // Server, sync:
//   grpc::Status Unary(grpc::ServerContext* context, const Req* req,
//                      Reply* reply) override {
//     return gls::grpc_values::Serve(propagation, *context, [&] {
//       Log("handling");  // sees the RPC's trace ids and request id
//       return grpc::Status::OK;
//     });
//   }
//
//   // Server, callback: MyReactor is an ordinary grpc::ServerBidiReactor.
//   grpc::ServerBidiReactor<Req, Reply>* Bidi(
//       grpc::CallbackServerContext* context) override {
//     return gls::grpc_values::MakeReactor<MyReactor>(propagation, *context);
//   }
//
//   // Server, async: in the call's state machine.
//   void CallData::Proceed(bool ok) {           // run for each of its tags
//     if (state_ == kRequested) values_ = gls::grpc_values::RpcValues(propagation, ctx_);
//     gls::grpc_values::RunTag(values_, [&] { Step(ok); });  // may delete this
//   }
#ifndef GLS_CONTRIB_GRPC_H_
#define GLS_CONTRIB_GRPC_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gls/context_manager.h"
#include "gls/contrib/w3c.h"
#include "gls/snapshot.h"
#include "gls/values.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/client_interceptor.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/string_ref.h"

namespace gls {
namespace grpc_values {

// kMaxFieldBytes
//
// A `traceparent`, `tracestate` or `baggage` metadata value longer than
// this is ignored whole, without being parsed (gRPC accepts headers far
// larger when a server raises GRPC_ARG_MAX_METADATA_SIZE). Above the W3C
// limits (512 bytes of tracestate, 8,192 of baggage) with room for
// whitespace.
inline constexpr size_t kMaxFieldBytes = 16 * 1024;

// kMaxMappedValueBytes
//
// The longest value a mapped metadata name (Propagation::Map) carries, on
// either side; a longer one is ignored (server) or not sent (client).
inline constexpr size_t kMaxMappedValueBytes = 256;

// TraceKeys
//
// The typed keys a Propagation reads on the client and sets on the server
// (see the file comment for what each holds). A default-constructed
// TraceKeys has new keys of its own; assign an application's existing keys
// to share them (the request_log example does).
struct TraceKeys {
  TypedKey<w3c::TraceParent> trace_parent;
  TypedKey<std::string> trace_id;
  TypedKey<std::string> span_id;
  TypedKey<std::string> parent_id;
  TypedKey<std::string> trace_state;
  TypedKey<std::vector<w3c::BaggageEntry>> baggage;
};

// Propagation
//
// What goes between a flow's values and an RPC's metadata: the manager, the
// trace keys, the mapped names, and where warnings go. Configure it before
// making a factory or serving a call with it, then leave it alone: it is
// read (never written) from every gRPC thread, and must outlive every
// channel, server and reactor using it.
class Propagation {
 public:
  // Propagation(manager, keys)
  //
  // Reads and sets `manager`'s values under `keys`. `manager` must outlive
  // this object.
  explicit Propagation(ContextManager& manager, TraceKeys keys = {});

  // Map(metadata_name, key)
  //
  // Also carries `key`'s string value as the metadata `metadata_name`: sent
  // when the calling flow has it, set when an RPC's metadata has it (one
  // field of at most kMaxMappedValueBytes printable ASCII). Throws
  // std::invalid_argument for a name gRPC or this file would refuse or
  // misread: empty, not all of [a-z0-9_.-], starting with "grpc-", ending
  // with "-bin", or one of traceparent, tracestate, baggage, or a name
  // already mapped. Returns *this.
  Propagation& Map(std::string metadata_name, TypedKey<std::string> key);

  // OnWarning(handler)
  //
  // Where the one warning line of an RPC with bad metadata goes (without a
  // trailing newline). Called on the server, inside the RPC's values, at
  // most once per RPC. By default the line is written to stderr, prefixed
  // "gls grpc: ". The handler must be thread-safe and should not throw.
  Propagation& OnWarning(std::function<void(std::string_view line)> handler);

  // OnClientSpan(handler)
  //
  // Called on the calling thread, in the caller's values, when a call is
  // created that sends a traceparent, with the traceparent sent (the call's
  // new span id is its parent_id): for logging the client span. Optional.
  Propagation& OnClientSpan(
      std::function<void(const w3c::TraceParent& sent)> handler);

  // manager(), keys()
  //
  // What this propagation reads and sets.
  ContextManager& manager() const { return *manager_; }
  const TraceKeys& keys() const { return keys_; }

  // Mapping
  //
  // One Map() entry.
  struct Mapping {
    std::string name;
    TypedKey<std::string> key;
  };
  // mappings(): the Map() entries, in the order added.
  const std::vector<Mapping>& mappings() const { return mappings_; }

  // Warn(line)
  //
  // Passes `line` to the warning handler.
  void Warn(std::string_view line) const;

  // ClientSpan(sent)
  //
  // Passes `sent` to the OnClientSpan handler, if any.
  void ClientSpan(const w3c::TraceParent& sent) const {
    if (client_span_) client_span_(sent);
  }

 private:
  ContextManager* manager_;
  TraceKeys keys_;
  std::vector<Mapping> mappings_;
  std::function<void(std::string_view)> warn_;
  std::function<void(const w3c::TraceParent&)> client_span_;
};

// MetadataToSend
//
// The metadata a call made here would carry: read from the running flow's
// values as the file comment says, each value legal for gRPC to send.
// Empty outside every scope. What the client interceptor sends.
std::vector<std::pair<std::string, std::string>> MetadataToSend(
    const Propagation& propagation);

// MakeClientInterceptorFactory
//
// A client interceptor factory for
// grpc::experimental::CreateCustomChannelWithInterceptors. For each call it
// reads MetadataToSend on the thread creating the call (where the sync,
// async and callback stubs all create it) and adds those fields to the
// call's initial metadata; when there is nothing to send it makes no
// interceptor. `propagation` must outlive the channel.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeClientInterceptorFactory(const Propagation& propagation);

// DecodeClientMetadata
//
// The values an RPC with client metadata `metadata` gets, as the file
// comment lists them, and in *warning (when non-null and anything was
// ignored) ONE line naming every field ignored and why, with any byte
// outside printable ASCII written as \xHH; otherwise *warning is left
// unchanged. Never throws on any input (std::bad_alloc aside). What
// RpcValues decodes with; public for servers with their own call loop.
Values DecodeClientMetadata(
    const Propagation& propagation,
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    std::string* warning = nullptr);

// RpcValues
//
// The values of the RPC `context` belongs to, as a Snapshot that holds
// exactly them (DecodeClientMetadata of its client metadata, whatever the
// calling thread had), ready to Run any of the call's code in. Warns once
// (OnWarning, inside the values) if anything was ignored: call it once per
// RPC and keep the snapshot. Call it once the client metadata has arrived:
// in the method body (sync, callback) or when the request tag completes
// (async).
Snapshot RpcValues(const Propagation& propagation,
                   const grpc::ServerContextBase& context);

// Serve
//
// Serve(propagation, context, body): runs `body` in the RPC's values
// (RpcValues) and returns what it returns; the thread's own values are back
// afterwards, also when `body` throws. For sync method bodies, and callback
// unary bodies answered with context.DefaultReactor().
template <typename F>
std::invoke_result_t<F&> Serve(const Propagation& propagation,
                               const grpc::ServerContextBase& context,
                               F&& body) {
  return RpcValues(propagation, context).Run(std::forward<F>(body));
}

// RunTag
//
// RunTag(rpc_values, code): runs `code` in the values of `rpc_values` (an
// RpcValues snapshot) and returns what it returns, holding its own
// reference to them meanwhile, so `code` may destroy the object that holds
// `rpc_values` (an async call deleting itself on its last tag). One atomic
// increment more than rpc_values.Run(code), which would read freed memory
// in that case.
template <typename F>
std::invoke_result_t<F&> RunTag(const Snapshot& rpc_values, F&& code) {
  Snapshot keep = rpc_values;
  return keep.Run(std::forward<F>(code));
}

namespace internal {

// Holds a reactor's snapshot. A base placed before the reactor, so it is
// built before the reactor's constructor runs (and can start operations).
struct SnapshotHolder {
  Snapshot rpc_snapshot;
};

template <typename Request>
std::true_type IsRead(grpc::ServerReadReactor<Request>*);
std::false_type IsRead(...);
template <typename Response>
std::true_type IsWrite(grpc::ServerWriteReactor<Response>*);
std::false_type IsWrite(...);
template <typename Request, typename Response>
std::true_type IsBidi(grpc::ServerBidiReactor<Request, Response>*);
std::false_type IsBidi(...);

template <typename R>
constexpr int kReactorKind =
    std::is_base_of_v<grpc::ServerUnaryReactor, R>        ? 1
    : decltype(IsRead(static_cast<R*>(nullptr)))::value   ? 2
    : decltype(IsWrite(static_cast<R*>(nullptr)))::value  ? 3
    : decltype(IsBidi(static_cast<R*>(nullptr)))::value   ? 4
                                                          : 0;

// The reactions every reactor kind has, run in the RPC's values. Placed
// after SnapshotHolder, so the snapshot is built before R's constructor
// runs (and can start operations).
template <typename R>
class InValuesBase : private SnapshotHolder, public R {
 public:
  template <typename... Args>
  explicit InValuesBase(Snapshot snapshot, Args&&... args)
      : SnapshotHolder{std::move(snapshot)}, R(std::forward<Args>(args)...) {}
  void OnSendInitialMetadataDone(bool ok) override {
    rpc_snapshot.Run([&] { R::OnSendInitialMetadataDone(ok); });
  }
  void OnCancel() override {
    rpc_snapshot.Run([&] { R::OnCancel(); });
  }
  void OnDone() override {
    // OnDone usually deletes the reactor, and the snapshot with it.
    RunTag(rpc_snapshot, [&] { R::OnDone(); });
  }

 protected:
  const Snapshot& values() const { return rpc_snapshot; }
};

// Adds the reading reaction (client streaming, bidi).
template <typename R, typename Base>
class WithReadDone : public Base {
 public:
  using Base::Base;
  void OnReadDone(bool ok) override {
    this->values().Run([&] { R::OnReadDone(ok); });
  }
};

// Adds the writing reaction (server streaming, bidi).
template <typename R, typename Base>
class WithWriteDone : public Base {
 public:
  using Base::Base;
  void OnWriteDone(bool ok) override {
    this->values().Run([&] { R::OnWriteDone(ok); });
  }
};

template <typename R, int Kind = kReactorKind<R>>
struct InValuesOf;
template <typename R>
struct InValuesOf<R, 1> {  // unary
  using type = InValuesBase<R>;
};
template <typename R>
struct InValuesOf<R, 2> {  // client streaming: the server reads
  using type = WithReadDone<R, InValuesBase<R>>;
};
template <typename R>
struct InValuesOf<R, 3> {  // server streaming: the server writes
  using type = WithWriteDone<R, InValuesBase<R>>;
};
template <typename R>
struct InValuesOf<R, 4> {  // bidi
  using type = WithWriteDone<R, WithReadDone<R, InValuesBase<R>>>;
};

// InValues<R>: R with every reaction its kind has run in the RPC's values.
template <typename R>
using InValues = typename InValuesOf<R>::type;

}  // namespace internal

// MakeReactor
//
// MakeReactor<R>(propagation, context, args...): a new R(args...) whose
// constructor and every reaction gRPC calls on it (OnSendInitialMetadataDone,
// OnReadDone, OnWriteDone, OnCancel, OnDone, whichever R's kind has) run in
// the RPC's values (RpcValues, decoded once). R is a class derived from
// grpc::ServerUnaryReactor, grpc::ServerReadReactor<Req>,
// grpc::ServerWriteReactor<Resp> or grpc::ServerBidiReactor<Req, Resp>,
// written as usual (its OnDone typically deletes it: it may; what is made
// is a class derived from R, with a virtual destructor from gRPC's base).
// Its reactions must not be declared `final` (they are wrapped by
// overriding them). Return the result from the callback method; gRPC owns
// it as it would own `new R(args...)`.
template <typename R, typename... Args>
R* MakeReactor(const Propagation& propagation,
               const grpc::CallbackServerContext& context, Args&&... args) {
  static_assert(internal::kReactorKind<R> != 0,
                "gls::grpc_values::MakeReactor<R>: R must derive from one of "
                "grpc::ServerUnaryReactor, ServerReadReactor<Req>, "
                "ServerWriteReactor<Resp>, ServerBidiReactor<Req, Resp>");
  Snapshot snapshot = RpcValues(propagation, context);
  return snapshot.Run([&]() -> R* {
    return new internal::InValues<R>(snapshot, std::forward<Args>(args)...);
  });
}

}  // namespace grpc_values
}  // namespace gls

#endif  // GLS_CONTRIB_GRPC_H_
